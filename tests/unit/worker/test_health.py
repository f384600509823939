"""Readiness: a worker that restarts its consumer in a loop or stops acknowledging says so."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.support.services import free_port
from worker.health import Health
from worker.metrics import WorkerMetrics


def clocked(stall_s: float = 10.0) -> tuple[Health, list[float]]:
    now = [0.0]
    return Health(stall_s=stall_s, clock=lambda: now[0]), now


def test_a_consumer_restarting_in_a_loop_is_not_ready_and_recovers_once_it_stops() -> None:
    health, now = clocked()
    health.consumer_started()  # the first start is no restart
    assert health.problems() == []
    for _ in range(3):
        now[0] += 5
        health.consumer_started()
    assert health.restarts == 3
    assert "restarted 3 times" in health.problems()[0]
    now[0] += 61
    assert health.problems() == []


def test_held_turns_that_see_no_acknowledgement_make_the_worker_not_ready() -> None:
    health, now = clocked(stall_s=10.0)
    health.held(4)
    now[0] = 9.0
    assert health.problems() == []
    now[0] = 11.0
    assert "4 turns held and none acknowledged" in health.problems()[0]
    health.settled(4)
    assert health.problems() == []


def test_an_idle_worker_is_ready() -> None:
    health, now = clocked(stall_s=1.0)
    now[0] = 1000.0
    assert health.problems() == []


def test_ready_answers_503_with_the_reasons_and_metrics_keep_answering() -> None:
    port = free_port()
    problems: list[str] = ["the consumer restarted 3 times"]
    WorkerMetrics().serve(port, lambda: problems)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5)
    assert refused.value.code == 503
    assert b"restarted 3 times" in refused.value.read()
    problems.clear()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert b"twentyq_worker_consumer_restarts_total" in response.read()
