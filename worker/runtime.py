"""The worker process's state: built at start-up, inherited by prefork children."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from producer.broker import BrokerSettings
from producer.errors import ConfigurationError
from producer.messages import DeadLetter
from worker.health import Health
from worker.metrics import WorkerMetrics
from worker.model_loader import LoadedModel
from worker.outbox import Outbox
from worker.settings import WorkerSettings

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Settings, the warm model, metrics and the outbox of this worker."""

    settings: WorkerSettings
    broker: BrokerSettings
    outbox: Outbox
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    health: Health = field(default_factory=Health)
    model: LoadedModel | None = None

    def __post_init__(self) -> None:
        self.health.stall_s = self.settings.stall_s

    @property
    def worker_name(self) -> str:
        """``host/pid`` of the process serving a turn (the ``worker`` field of a Guess)."""
        return f"{socket.gethostname()}/{os.getpid()}"

    def require_model(self) -> LoadedModel:
        """The loaded model; a worker never serves before it is loaded."""
        if self.model is None:
            raise ConfigurationError(
                "no model is loaded in this worker process: start it with `twentyq worker` "
                "or `celery -A worker.app worker` so the pinned model loads first"
            )
        return self.model

    def dead_letter_message(self, letter: DeadLetter, message: Any) -> None:
        """Dead-letter a raw message and ack it; requeue it when the dead letter cannot go out."""
        properties = getattr(message, "properties", None)
        reply_to = properties.get("reply_to") if isinstance(properties, dict) else None
        try:
            self.outbox.dead_letter(letter, reply_to if isinstance(reply_to, str) else "")
        except Exception:  # broker or backend down: nothing may be dropped, so requeue
            logger.exception("could not dead-letter a message; requeueing it")
            message.reject(requeue=True)
            return
        self.metrics.record_dead_letter(letter.reason.value)
        message.ack()


_current: list[Runtime] = []


def install_runtime(runtime: Runtime) -> None:
    """Make ``runtime`` the process's runtime (one per process)."""
    _current[:] = [runtime]


def current_runtime() -> Runtime:
    """The process's runtime, or a :class:`ConfigurationError` when none was installed."""
    if not _current:
        raise ConfigurationError(
            "the worker runtime is not set up: build the app with worker.app.create_worker_app"
        )
    return _current[0]
