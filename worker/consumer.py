"""The worker's Celery consumer: turn messages go to :class:`worker.intake.TurnIntake`.

Celery's consumer blueprint (connection, QoS, event loop, reconnects) is kept
whole; only its task handler, the function the event loop calls with each
message, is replaced. Celery's handler decodes every message, builds a
``Request`` and runs the task's strategy, and a malformed message raises out
of it and restarts the consumer; ours screens the raw message and batches it.
So only ``twentyq.play_turn`` is served: Celery's built-in tasks
(``celery.accumulate``, ...) are never run from the queue, whatever it holds.
"""

from __future__ import annotations

from typing import Any

from celery.worker.consumer import Consumer

from producer.messages import DeadLetterReason
from worker.dead_letter import build_dead_letter, task_id_of
from worker.intake import TurnIntake
from worker.runtime import current_runtime


class TurnConsumer(Consumer):  # type: ignore[misc]
    """The consumer named by ``worker_consumer``."""

    def create_task_handler(self, *_: Any, **__: Any) -> Any:
        """The handler Celery's event loop calls with each raw message (on every reconnect)."""
        runtime = current_runtime()
        runtime.health.consumer_started()
        if runtime.health.restarts:
            runtime.metrics.consumer_restarts.inc()
        settings = runtime.settings
        intake = TurnIntake(
            self.pool,
            self.timer,
            batch_size=settings.batch_size,
            window_s=settings.batch_window_ms / 1000.0,
            slots=settings.pool_slots,
        )
        return intake.on_message

    def on_decode_error(self, message: Any, exc: BaseException) -> None:
        """kombu could not decode the message (a compression header it cannot undo, ...)."""
        letter = build_dead_letter(
            reason=DeadLetterReason.UNDECODABLE,
            error=f"{type(exc).__name__}: {exc}",
            body=getattr(message, "body", b""),
            attempts=1,
            task_id=task_id_of(getattr(message, "headers", None)),
            content_type=getattr(message, "content_type", None),
            content_encoding=getattr(message, "content_encoding", None),
        )
        current_runtime().dead_letter_message(letter, message)
