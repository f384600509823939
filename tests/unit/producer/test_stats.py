"""Latency percentiles agree with numpy's linear interpolation."""

from __future__ import annotations

import random

import numpy as np
import pytest

from producer.stats import LatencySummary, percentile


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.95, 0.99, 1.0])
def test_percentile_matches_numpy(fraction: float) -> None:
    rng = random.Random(11)
    values = [rng.expovariate(0.1) for _ in range(257)]
    assert percentile(values, fraction) == pytest.approx(np.percentile(values, fraction * 100))


def test_percentile_of_small_sets() -> None:
    assert percentile([5.0], 0.99) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5


def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        percentile([1.0], 1.5)


def test_summary_figures_and_text() -> None:
    summary = LatencySummary.of([float(v) for v in range(1, 101)])
    assert summary is not None
    assert (summary.count, summary.mean_ms, summary.p50_ms) == (100, 50.5, 50.5)
    assert summary.p99_ms == pytest.approx(99.01)
    assert summary.describe().startswith("p50 50.5 ms, p95 95.0 ms, p99 99.0 ms")
    assert LatencySummary.of([]) is None
