"""worker.celery_adapter, run through the Celery and kombu code it leans on.

Each test drives the dependency's own code path (the banner, the consumer's
reconnect loop, the worker's exit status), so an upgrade that moves one of them
fails here rather than in production. The canaries fail when Celery
or kombu stop needing the adapter.
"""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys
from importlib.metadata import version
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from celery import Celery
from celery.apps.worker import Worker
from celery.worker.consumer.consumer import Consumer
from kombu.connection import Connection as KombuConnection
from kombu.exceptions import OperationalError

from producer.broker import BrokerSettings, create_celery_app
from tests.support.worker_process import REPOSITORY_ROOT
from worker import celery_adapter
from worker.app import worker_config
from worker.settings import WorkerSettings

URL = "redis://127.0.0.1:6390/0"


def worker_app(url: str = URL, reconnect_interval_max_s: float = 1.0, **settings: Any) -> Celery:
    """The worker's Celery configuration for ``url``, adapter installed (nothing connects)."""
    app = create_celery_app("adapter-test", BrokerSettings(broker_url=url))
    app.conf.update(worker_config(WorkerSettings(**settings)))
    celery_adapter.install(app, reconnect_interval_max_s)
    return app


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6390/0", "redis://127.0.0.1:6390/0"),
        ("redis://:s3cret@cache:6379/1", "redis://:**@cache:6379/1"),
        (
            "rediss://app:s3cret@cache:6380/0?ssl_cert_reqs=required",
            "rediss://app:**@cache:6380/0?ssl_cert_reqs=required",
        ),
        ("sqs://AKIAEXAMPLE:a%2Fsecret@", "sqs://AKIAEXAMPLE:**@"),
        ("sqs://", "sqs://"),
        ("gcpubsub://projects/demo", "gcpubsub://projects/demo"),
        ("redis://user@cache/0", "redis://user@cache/0"),
        ("redis://:a@one/0;redis://two/0", "redis://:**@one/0;redis://two/0"),
    ],
)
def test_the_url_is_shown_as_configured_its_password_masked_only_when_it_has_one(
    url: str, shown: str
) -> None:
    assert celery_adapter.masked_url(url) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [(URL, URL), ("redis://:s3cret@127.0.0.1:6390/0", "redis://:**@127.0.0.1:6390/0")],
)
def test_the_worker_banner_names_the_configured_url(url: str, shown: str) -> None:
    app = worker_app(url)
    stand_in = SimpleNamespace(
        app=app,
        hostname="w@host",
        concurrency=1,
        autoscale=None,
        pool_cls="prefork",
        task_events=False,
    )
    banner = Worker.startup_info(stand_in, artlines=False)  # type: ignore[arg-type]
    assert f".> transport:   {shown}\n" in banner
    assert app.connection_for_read().as_uri(include_password=True) == url


class RefusingBroker:
    """Stands in for kombu's connect step: refuses ``failures`` times, then connects."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def __call__(self) -> object:
        if self.failures:
            self.failures -= 1
            raise redis.exceptions.ConnectionError("Error 111 connecting. Connection refused.")
        return object()


def reconnect_log(
    app: Celery,
    failures: int,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[str], list[float]]:
    """Run Celery's consumer reconnect loop against a broker that refuses ``failures`` times.

    Returns the consumer's error messages and the seconds kombu slept.
    """
    slept_s: list[float] = []
    monkeypatch.setattr("kombu.utils.functional.sleep", slept_s.append)
    connection = app.connection_for_read()
    monkeypatch.setattr(connection, "_connection_factory", RefusingBroker(failures))
    consumer = SimpleNamespace(app=app, first_connection_attempt=False)
    consumer.broker_connection_retry_attempt = 0
    with caplog.at_level(logging.ERROR, logger=celery_adapter.CONSUMER_LOGGER):
        Consumer.ensure_connected(consumer, connection)  # type: ignore[arg-type]
    messages = [r.getMessage() for r in caplog.records if r.name == celery_adapter.CONSUMER_LOGGER]
    return messages, slept_s


def test_reconnecting_waits_at_most_the_cap_and_names_the_url(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = worker_app(reconnect_interval_max_s=1.5)
    messages, slept_s = reconnect_log(app, 130, caplog, monkeypatch)
    # Past Celery's default limit of 100 retries: the worker keeps trying, 1.5 s apart.
    assert len(messages) == 130
    assert sum(slept_s) == pytest.approx(130 * 1.5)
    assert max(slept_s) == 1.0  # kombu sleeps in steps of at most a second
    assert messages[0].startswith(f"consumer: Cannot connect to {URL}: Error 111")
    assert "Trying again in 1.50 seconds... (attempt 1, no limit)" in messages[0]
    assert "(attempt 130, no limit)" in messages[-1]


def test_a_retry_limit_ends_in_an_error_that_says_so(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = worker_app(broker_reconnect_max_retries=3)
    with pytest.raises(OperationalError):
        reconnect_log(app, 10, caplog, monkeypatch)
    consumer_errors = [r for r in caplog.records if r.name == celery_adapter.CONSUMER_LOGGER]
    assert "Trying again in 1.00 second... (3/3)" in consumer_errors[-1].getMessage()
    [gave_up] = [r for r in caplog.records if r.name == celery_adapter.__name__]
    assert gave_up.levelno == logging.CRITICAL
    assert gave_up.getMessage().startswith(f"gave up on the broker at {URL} after 3 retries")


def test_the_override_keeps_kombus_parameters() -> None:
    ours = inspect.signature(celery_adapter.BrokerConnection.ensure_connection).parameters
    kombus = inspect.signature(KombuConnection._ensure_connection).parameters
    assert list(ours) == list(kombus)
    assert [p.default for p in ours.values()] == [p.default for p in kombus.values()]


BROKEN_WORKER = """
import sys
from celery import Celery, bootsteps
from celery.exceptions import WorkerShutdown
from worker.celery_adapter import run_worker

class Stop(bootsteps.StartStopStep):
    def start(self, worker):
        raise {error}

app = Celery("adapter-test", broker="memory://", backend="cache+memory://")
app.steps["worker"].add(Stop)
options = ["--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat"]
sys.exit(run_worker(app, options))
"""


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [("ValueError('a step that cannot start')", 1), ("WorkerShutdown(0)", 0)],
)
def test_the_exit_status_is_the_workers(error: str, exit_code: int) -> None:
    script = BROKEN_WORKER.format(error=error)
    finished = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == exit_code, finished.stderr[-3000:]
    said = f"twentyq worker: stopped with exit status {exit_code}"
    assert (said in finished.stderr) == bool(exit_code)
    if exit_code:
        assert "Unrecoverable error: ValueError('a step that cannot start')" in finished.stderr


# Canaries: they fail when Celery or kombu fix what the adapter works around, so that it
# can go.


def test_canary_kombu_builds_the_url_from_its_parts() -> None:
    app = create_celery_app("adapter-test", BrokerSettings(broker_url=URL))
    assert app.connection_for_read().as_uri() == (
        "producer.redis_transport:Transport://:**@127.0.0.1:6390/0"
    )


def test_canary_celerys_reconnect_interval_grows(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_celery_app("adapter-test", BrokerSettings(broker_url=URL))
    messages, slept_s = reconnect_log(app, 3, caplog, monkeypatch)
    assert ["in 2.00 seconds" in m for m in messages] == [True, False, False]
    assert sum(slept_s) == 2 + 4 + 6


@pytest.mark.parametrize(
    ("package", "read"),
    [("celery", celery_adapter.CELERY_VERSION_READ), ("kombu", celery_adapter.KOMBU_VERSION_READ)],
)
def test_the_adapter_was_read_from_the_installed_minor_version(package: str, read: str) -> None:
    installed = version(package)
    assert installed.split(".")[:2] == read.split(".")[:2], (
        f"{package} {installed} is installed, worker/celery_adapter.py was read from {read}: "
        "check each piece its docstring lists against the new version, then update the constant"
    )
