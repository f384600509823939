"""`twentyq bench`: open-loop schedules, offered loads, and the figures of a run."""

from __future__ import annotations

import pytest

from twentyq.benchmark.measurement import RunResult, throughput_per_s
from twentyq.benchmark.schedule import (
    ClosedLoop,
    OpenLoop,
    arrival_offsets_s,
    offered_rates_per_s,
)


def test_poisson_schedule_has_the_asked_rate_and_is_reproducible() -> None:
    offsets = arrival_offsets_s(200.0, 10.0, seed=3)
    assert 1800 < len(offsets) < 2200
    assert offsets == sorted(offsets)
    assert all(0 <= offset < 10.0 for offset in offsets)
    assert offsets == arrival_offsets_s(200.0, 10.0, seed=3)
    assert offsets != arrival_offsets_s(200.0, 10.0, seed=4)


def test_uniform_schedule_is_evenly_spaced() -> None:
    offsets = arrival_offsets_s(4.0, 1.0, poisson=False)
    assert offsets == [0.0, 0.25, 0.5, 0.75]


@pytest.mark.parametrize(("rate", "duration"), [(0.0, 1.0), (10.0, 0.0), (-1.0, 5.0)])
def test_schedule_refuses_nonsense(rate: float, duration: float) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        arrival_offsets_s(rate, duration)


def test_offered_loads_are_fractions_of_saturation() -> None:
    assert offered_rates_per_s(1000.0) == [250.0, 500.0, 900.0]
    assert offered_rates_per_s(100.0, (0.5,)) == [50.0]
    with pytest.raises(ValueError, match="saturation"):
        offered_rates_per_s(0.0)
    with pytest.raises(ValueError, match="outside"):
        offered_rates_per_s(100.0, (2.0,))


def test_plans_describe_their_run() -> None:
    open_loop = OpenLoop(50.0, 2.0, seed=1)
    assert open_loop.mode == "open" and open_loop.offered_per_s == 50.0
    assert open_loop.offsets_s == arrival_offsets_s(50.0, 2.0, seed=1)
    closed = ClosedLoop(8, 5.0, 1.0)
    assert (closed.mode, closed.offered_per_s, closed.concurrency) == ("saturation", None, 8)
    with pytest.raises(ValueError):
        ClosedLoop(8, 1.0, 1.0)
    with pytest.raises(ValueError):
        ClosedLoop(0, 5.0)


def test_throughput_counts_only_the_window() -> None:
    done = [0.5, 1.0, 1.5, 2.0, 2.5, 3.9, 4.0]
    assert throughput_per_s(done, 1.0, 4.0) == pytest.approx(5 / 3.0)
    with pytest.raises(ValueError, match="empty"):
        throughput_per_s(done, 2.0, 2.0)


def test_run_result_figures() -> None:
    run = RunResult("saturation", None, duration_s=4.0, warmup_s=1.0)
    for index in range(100):
        run.record(latency_ms=float(index + 1), done_s=1.0 + index * 0.03)
    run.sent, run.client_cpu_s, run.wall_s = 100, 0.5, 5.0
    for _ in range(7):
        run.fail("HTTP 500")
    figures = run.to_dict()
    assert figures["answered"] == 100 and figures["failed"] == 7
    assert figures["errors"] == ["HTTP 500"] * 5  # a few kept, not all
    assert figures["throughput_per_s"] == pytest.approx(100 / 3.0, abs=0.1)
    assert figures["latency_ms"]["p50_ms"] == pytest.approx(50.5)
    assert figures["latency_ms"]["p99_ms"] == pytest.approx(99.01)
    assert figures["client_cpu_ms_per_request"] == pytest.approx(5.0)
    assert figures["client_busy_fraction"] == pytest.approx(0.1)
    assert figures["client_may_limit"] is False


def test_a_busy_client_is_flagged() -> None:
    run = RunResult("open", 100.0, duration_s=2.0)
    run.client_cpu_s, run.wall_s = 1.9, 2.0
    assert run.to_dict()["client_may_limit"] is True
    assert run.to_dict()["latency_ms"] is None
