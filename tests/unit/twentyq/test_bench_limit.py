"""`twentyq bench`: the in-process limit and the interruption flag, with a stub model."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from twentyq.benchmark.interruption import raise_if_stopped, stop_on_signals
from twentyq.benchmark.limit import measure_batch_sizes, measure_limit, time_predict
from worker.settings import WorkerSettings

CORPUS = [
    {"game_id": "g", "turn": index, "history": [], "rejected_guesses": []} for index in range(10)
]


def stub_predict(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"action": "give_up"} for _ in turns]


def test_time_predict_counts_turns_served() -> None:
    calls: list[int] = []

    def counting(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
        calls.append(len(turns))
        return stub_predict(turns)

    served, seconds, calls_ms = time_predict(counting, [[{}] * 4, [{}] * 4], 0.05)
    assert served == 4 * len(calls_ms) == 4 * (len(calls) - 1)  # one warm-up call not counted
    assert seconds >= 0.05 and all(ms >= 0 for ms in calls_ms)


def test_limit_runs_one_forked_process_per_pool_process() -> None:
    settings = WorkerSettings(batch_size=4, concurrency=2, torch_threads=1, numpy_threads=1)
    figures = measure_limit(stub_predict, CORPUS, settings, 0.1)
    assert (figures["processes"], figures["batch_size"]) == (2, 4)
    assert figures["throughput_per_s"] > 0 and figures["predict_ms"]["count"] > 0
    assert figures["cpu_ms_per_turn"]["predict"] >= 0


def test_batch_size_curve_has_each_size() -> None:
    curve = measure_batch_sizes(stub_predict, CORPUS, [1, 8], 0.05)
    assert set(curve) == {"1", "8"}
    assert all(point["throughput_per_s"] > 0 for point in curve.values())


def test_a_signal_stops_the_run_even_when_swallowed() -> None:
    raise_if_stopped()  # nothing requested yet
    previous = signal.getsignal(signal.SIGTERM)
    with stop_on_signals():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt):
            raise_if_stopped()  # a library that swallowed it cannot hide the request
    raise_if_stopped()  # cleared on the way out
    assert signal.getsignal(signal.SIGTERM) is previous
