"""Latency percentiles for the simulation summary (no numpy: the ambassador stays light)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) with linear interpolation between ranks (numpy's default).

    Raises ValueError on an empty sequence or a fraction outside [0, 1].
    """
    if not values:
        raise ValueError("percentile of no values is undefined")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    weight = position - lower
    return ordered[lower] * (1.0 - weight) + ordered[upper] * weight


@dataclass(frozen=True)
class LatencySummary:
    """p50 / p95 / p99 and the mean of a set of latencies, in milliseconds."""

    count: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @classmethod
    def of(cls, values_ms: Sequence[float]) -> LatencySummary | None:
        """Summarise latencies; None when there are none."""
        if not values_ms:
            return None
        return cls(
            count=len(values_ms),
            mean_ms=sum(values_ms) / len(values_ms),
            p50_ms=percentile(values_ms, 0.50),
            p95_ms=percentile(values_ms, 0.95),
            p99_ms=percentile(values_ms, 0.99),
        )

    def to_dict(self) -> dict[str, float]:
        """The figures, rounded to microseconds, for JSON output."""
        return {name: round(value, 3) for name, value in asdict(self).items()}

    def describe(self) -> str:
        """One line: ``p50 12.1 ms, p95 30.2 ms, p99 41.0 ms (mean 14.0 ms, n=120)``."""
        return (
            f"p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms, p99 {self.p99_ms:.1f} ms "
            f"(mean {self.mean_ms:.1f} ms, n={self.count})"
        )
