"""Fixtures for the worker's integration scenarios: a broker, a registry, a worker subprocess.

``broker`` is parametrised by transport; adding a transport means adding a
param to :data:`BROKERS` and a branch in :func:`broker`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from kombu import Connection, Consumer  # type: ignore[attr-defined]

from producer.broker import BrokerSettings, connect, task_queues
from producer.client import create_producer_app
from producer.pin import ModelPin
from tests.support.moto_server import running_moto_server
from tests.support.pubsub_emulator import (
    pubsub_environment,
    running_pubsub_emulator,
    skip_or_fail_without_emulator,
)
from tests.support.registry import register_stub_model
from tests.support.services import free_port
from tests.support.sqs import sqs_environment
from tests.support.worker_process import WorkerProcess, running_worker

BROKERS = ["redis", "sqs", "pubsub"]


@dataclass
class BrokerUnderTest:
    """A broker for one test: env for the worker subprocess, settings for the client side."""

    name: str
    env: dict[str, str]
    settings: BrokerSettings
    apps: list[Celery] = field(default_factory=list)

    def client_app(self) -> Celery:
        """A producer-side Celery app on this broker (closed after the test)."""
        app = create_producer_app(self.settings)
        self.apps.append(app)
        return app

    def connection(self) -> Connection:
        """A kombu connection to this broker."""
        return connect(self.settings)


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> Iterator[BrokerUnderTest]:
    """The broker a scenario runs on; one param per transport."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        env = {"TWENTYQ_BROKER_URL": url, "TWENTYQ_VISIBILITY_TIMEOUT_S": "300"}
        under_test = BrokerUnderTest("redis", env, BrokerSettings(broker_url=url))
    else:
        env = _transport_env(request, request.param)
        monkeypatch = request.getfixturevalue("monkeypatch")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        under_test = BrokerUnderTest(request.param, env, BrokerSettings())
    yield under_test
    for app in under_test.apps:
        app.close()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """URL of a moto server (SQS, S3) private to this test session."""
    with running_moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def pubsub_emulator_host() -> Iterator[str]:
    """``host:port`` of a Pub/Sub emulator private to this session; see docs/transports.md."""
    skip_or_fail_without_emulator()
    with running_pubsub_emulator() as host:
        yield host


def _transport_env(request: pytest.FixtureRequest, transport: str) -> dict[str, str]:
    # Queues (SQS prefix) or a whole project (Pub/Sub) of the test's own; results in Redis.
    tag = uuid.uuid4().hex[:10]
    if transport == "sqs":
        env = sqs_environment(request.getfixturevalue("moto_url"), f"t{tag}-")
    elif transport == "pubsub":
        env = pubsub_environment(request.getfixturevalue("pubsub_emulator_host"), f"tq-{tag}")
    else:  # pragma: no cover - a new transport param needs its branch here
        raise ValueError(f"no broker fixture for {transport!r}")
    return {
        **env,
        "TWENTYQ_RESULT_BACKEND": request.getfixturevalue("redis_url"),
        "TWENTYQ_VISIBILITY_TIMEOUT_S": "300",
    }


@dataclass(frozen=True)
class StubRegistration:
    """The stub model registered in a temporary MLflow store, and its pin file."""

    tracking_uri: str
    pin_path: Path
    pin: ModelPin


@pytest.fixture(scope="session")
def stub_registry(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., StubRegistration]:
    """Factory: the stub registered with the given model config (cached per config)."""
    root = tmp_path_factory.mktemp("registry")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    registered: dict[str, StubRegistration] = {}

    def register(**options: Any) -> StubRegistration:
        key = json.dumps(options, sort_keys=True)
        if key not in registered:
            pin_path = root / f"pin-{len(registered)}.json"
            pin = register_stub_model(tracking_uri, pin_path, **options)
            registered[key] = StubRegistration(tracking_uri, pin_path, pin)
        return registered[key]

    return register


def worker_env(
    broker: BrokerUnderTest, registration: StubRegistration, **settings: str
) -> dict[str, str]:
    """Environment for a worker subprocess serving ``registration`` on ``broker``."""
    env = {
        **broker.env,
        "MLFLOW_TRACKING_URI": registration.tracking_uri,
        "TWENTYQ_PIN_PATH": str(registration.pin_path),
        "WORKER_METRICS_PORT": str(free_port()),
        "WORKER_LOG_FORMAT": "json",
        "WORKER_RETRY_BACKOFF_S": "0.05",
    }
    env.update({f"WORKER_{name.upper()}": value for name, value in settings.items()})
    return env


@pytest.fixture()
def worker_log(tmp_path: Path) -> Path:
    """Where this test's worker writes its log."""
    return tmp_path / "worker.log"


@pytest.fixture()
def start_worker(
    broker: BrokerUnderTest,
    stub_registry: Callable[..., StubRegistration],
    tmp_path: Path,
) -> Iterator[Callable[..., AbstractContextManager[WorkerProcess]]]:
    """Factory: ``with start_worker(model_options, **settings) as worker:`` a ready worker."""
    count = [0]

    def start(
        model_options: dict[str, Any] | None = None,
        extra_env: dict[str, str] | None = None,
        **settings: str,
    ) -> AbstractContextManager[WorkerProcess]:
        count[0] += 1
        registration = stub_registry(**(model_options or {}))
        env = {**worker_env(broker, registration, **settings), **(extra_env or {})}
        return running_worker(env, tmp_path / f"worker-{count[0]}.log")

    yield start


def drain(
    connection: Connection, queue_name: str, count: int, timeout_s: float = 30.0
) -> list[Any]:
    """Receive ``count`` JSON messages from a twentyq queue, acknowledging each."""
    queue = next(q for q in task_queues() if q.name == queue_name)
    received: list[Any] = []

    def keep(body: Any, message: Any) -> None:
        received.append(body)
        message.ack()

    deadline = time.monotonic() + timeout_s
    with Consumer(connection, queues=[queue], callbacks=[keep], accept=["json"]):
        while len(received) < count and time.monotonic() < deadline:
            try:
                connection.drain_events(timeout=0.5)
            except TimeoutError:
                continue
    return received
