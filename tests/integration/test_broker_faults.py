"""Broker faults as an operator sees them: Redis lost and back, a retry limit, exit statuses.

Each test runs its own redis-server, so that it can kill it and start it again on
the same port. docs/operations.md ("Broker faults") has the figures, measured with
``python -m tests.support.broker_outage``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from producer.broker import BrokerSettings
from producer.client import close_client, create_producer_app, submit_turn
from producer.errors import BrokerUnavailableError
from producer.settings import ProducerSettings
from tests.integration.conftest import BrokerUnderTest, StubRegistration, worker_env
from tests.support.broker_outage import (
    RedisServer,
    log_times,
    outage_turn,
    time_recovery,
    wait_for_count,
)
from tests.support.services import free_port
from tests.support.worker_process import running_worker, start_worker

pytestmark = pytest.mark.integration

# Long enough that Celery's own back-off (attempts 2, 4, 6 s apart) is still asleep
# when Redis is back: uncapped, the first answer comes about 5 s late.
OUTAGE_S = 7.0
# The 1 s cap, plus a round of polling and one answer.
RECOVERY_BUDGET_S = 3.0


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A stopped private redis-server on a free port (``start()`` it)."""
    server = RedisServer(tmp_path, free_port())
    yield server
    server.kill()


@pytest.fixture()
def env_for(stub_registry: Callable[..., StubRegistration]) -> Callable[..., dict[str, str]]:
    """Factory: a worker's environment for a broker URL, WORKER_ settings as keywords."""

    def env(url: str, **settings: str) -> dict[str, str]:
        broker = BrokerUnderTest("redis", {"TWENTYQ_BROKER_URL": url}, BrokerSettings())
        return worker_env(broker, stub_registry(), **settings)

    return env


def test_after_an_outage_the_worker_answers_within_seconds_of_redis_returning(
    redis_server: RedisServer, env_for: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    redis_server.start()
    with running_worker(env_for(redis_server.url), tmp_path / "worker.log") as worker:
        recovery = time_recovery(redis_server, worker, OUTAGE_S)
    log = worker.log()
    assert recovery.answer_s < RECOVERY_BUDGET_S, log[-3000:]
    # The URL as configured, in the banner and in every connection error; no password shown.
    assert f".> transport:   {redis_server.url}\n" in log
    assert f"Cannot connect to {redis_server.url}: " in log
    assert "Transport://" not in log and ":**@" not in log
    assert "Trying again in 1.00 second... (attempt 1, no limit)" in log


def test_an_outage_past_celerys_retry_limit_still_ends_in_recovery(
    redis_server: RedisServer, env_for: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    # Celery gives up after 100 retries by default; 0.1 s apart, that is about 11 s.
    env = env_for(redis_server.url, broker_reconnect_interval_max_s="0.1")
    redis_server.start()
    with running_worker(env, tmp_path / "worker.log") as worker:
        redis_server.kill()
        wait_for_count(worker, "(attempt 101, no limit)", 1, timeout_s=60)
        back_at = redis_server.start()
        wait_for_count(worker, f"Connected to {redis_server.url}", 2, timeout_s=10)
        assert log_times(worker, "Connected to")[-1] - back_at < RECOVERY_BUDGET_S
        assert worker.process.poll() is None


def test_a_retry_limit_ends_in_exit_status_1_saying_why(
    redis_server: RedisServer, env_for: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    # Redis is never started: the worker loads its model, then cannot reach the broker.
    settings = {"broker_reconnect_max_retries": "2", "broker_reconnect_interval_max_s": "0.1"}
    worker = start_worker(env_for(redis_server.url, **settings), tmp_path / "worker.log")
    try:
        exit_code = worker.process.wait(timeout=120)
    finally:
        worker.stop()
    log = worker.log()
    assert exit_code == 1, log[-3000:]
    assert f"gave up on the broker at {redis_server.url} after 2 retries" in log
    assert "Unrecoverable error: OperationalError" in log
    assert "twentyq worker: stopped with exit status 1" in log


def test_during_an_outage_the_caller_is_told_the_truth_and_recovers_without_a_restart(
    redis_server: RedisServer, env_for: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    # Issue 21, item 3: no "the Celery application must be restarted", no tracebacks from
    # collected handles; the same app answers once Redis is back.
    redis_server.start()
    settings = ProducerSettings(send_max_retries=1, send_retry_start_s=0.1, guess_timeout_s=3)
    app = create_producer_app(BrokerSettings(broker_url=redis_server.url), settings)
    with running_worker(env_for(redis_server.url), tmp_path / "worker.log"):
        assert submit_turn(outage_turn(), app=app, settings=settings).get(timeout_s=30)
        waiting = submit_turn(outage_turn(), app=app, settings=settings)
        redis_server.kill()
        with pytest.raises(BrokerUnavailableError) as sending:
            submit_turn(outage_turn(), app=app, settings=settings)
        try:
            waiting.get(timeout_s=3)
        except BrokerUnavailableError as waited:
            assert "nothing needs restarting" in str(waited)
        for error in (sending.value,):
            assert "is unreachable" in str(error) and "restarted" not in str(error)
        redis_server.start()
        guess = submit_turn(outage_turn(), app=app, settings=settings).get(timeout_s=30)
        assert guess.model.name
    close_client(app)
    app.close()
