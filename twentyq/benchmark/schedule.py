"""Open-loop arrival schedules: when each request is due, fixed before the run starts.

A fixed schedule keeps coordinated omission out of the figures: a request's
latency is counted from the moment it was *due*, so a client or server that
falls behind pays for every request it delayed, not only for the ones it sent.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

DEFAULT_LOAD_FRACTIONS = (0.25, 0.5, 0.9)


def arrival_offsets_s(
    rate_per_s: float, duration_s: float, *, seed: int = 0, poisson: bool = True
) -> list[float]:
    """Seconds after the start at which each request is due, over ``duration_s``.

    Poisson arrivals (exponential gaps, seeded) model independent players; with
    ``poisson=False`` the gaps are all ``1 / rate_per_s``. Raises ValueError on
    a rate or duration that is not positive.
    """
    if rate_per_s <= 0 or duration_s <= 0:
        raise ValueError(f"rate ({rate_per_s}/s) and duration ({duration_s} s) must be positive")
    rng = random.Random(seed)
    offsets: list[float] = []
    gap_s = 1.0 / rate_per_s
    moment_s = rng.expovariate(rate_per_s) if poisson else 0.0
    while moment_s < duration_s:
        offsets.append(moment_s)
        moment_s += rng.expovariate(rate_per_s) if poisson else gap_s
    return offsets


def offered_rates_per_s(
    saturation_per_s: float, fractions: Sequence[float] = DEFAULT_LOAD_FRACTIONS
) -> list[float]:
    """The offered loads to measure: each fraction of the measured saturation throughput."""
    if saturation_per_s <= 0:
        raise ValueError("saturation throughput must be positive to derive offered loads")
    for fraction in fractions:
        if not 0 < fraction <= 1.5:
            raise ValueError(f"load fraction {fraction} is outside (0, 1.5]")
    return [saturation_per_s * fraction for fraction in fractions]


class ClosedLoop:
    """Keep ``concurrency`` requests in flight for ``duration_s``: saturation throughput.

    Answers in the first ``warmup_s`` are not counted (connections and caches warm up).
    """

    mode = "saturation"

    def __init__(self, concurrency: int, duration_s: float, warmup_s: float = 1.0) -> None:
        if concurrency < 1 or duration_s <= warmup_s or warmup_s < 0:
            raise ValueError("a closed loop needs concurrency >= 1 and duration_s > warmup_s >= 0")
        self.concurrency = concurrency
        self.duration_s = duration_s
        self.warmup_s = warmup_s
        self.offered_per_s: float | None = None


class OpenLoop:
    """Send each request when it is due, answered or not: latency at an offered load."""

    mode = "open"

    def __init__(self, rate_per_s: float, duration_s: float, *, seed: int = 0) -> None:
        self.offsets_s = arrival_offsets_s(rate_per_s, duration_s, seed=seed)
        self.duration_s = duration_s
        self.warmup_s = 0.0
        self.offered_per_s: float | None = rate_per_s


Plan = ClosedLoop | OpenLoop
