"""What one load run measured, and the figures derived from it (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from producer.stats import LatencySummary

# A client that keeps one core this busy may be holding the server back.
CLIENT_BUSY_FRACTION = 0.8


@dataclass
class RunResult:
    """The raw outcome of one run against one target.

    ``latencies_ms`` run from the moment a request was due (open loop) or sent
    (closed loop) to the moment its answer reached the client; ``done_s`` are
    the answers' arrival times in seconds since the run started.
    """

    mode: str
    offered_per_s: float | None
    duration_s: float
    warmup_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    done_s: list[float] = field(default_factory=list)
    sent: int = 0
    failed: int = 0
    lost: int = 0
    client_cpu_s: float = 0.0
    wall_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    # The worker's own view of each guess (Guess.timing), where the server reports it.
    queue_ms: list[float] = field(default_factory=list)
    inference_ms: list[float] = field(default_factory=list)

    def record(self, latency_ms: float, done_s: float) -> None:
        """One answer that honoured the contract."""
        self.latencies_ms.append(latency_ms)
        self.done_s.append(done_s)

    def fail(self, error: str) -> None:
        """One request answered with an error or a contract breach (a few are kept as text)."""
        self.failed += 1
        if len(self.errors) < 5:
            self.errors.append(error)

    @property
    def throughput_per_s(self) -> float:
        """Answers per second inside the measurement window (after the warm-up)."""
        return throughput_per_s(self.done_s, self.warmup_s, self.duration_s)

    @property
    def client_cpu_ms_per_request(self) -> float:
        """The client process's CPU time per request sent."""
        return self.client_cpu_s * 1000.0 / self.sent if self.sent else 0.0

    @property
    def client_busy_fraction(self) -> float:
        """Share of one core the client used while the run lasted."""
        return self.client_cpu_s / self.wall_s if self.wall_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The run's figures, JSON-ready."""
        latency = LatencySummary.of(self.latencies_ms)
        queue = LatencySummary.of(self.queue_ms)
        inference = LatencySummary.of(self.inference_ms)
        return {
            "mode": self.mode,
            "offered_per_s": None if self.offered_per_s is None else round(self.offered_per_s, 1),
            "throughput_per_s": round(self.throughput_per_s, 1),
            "latency_ms": latency.to_dict() if latency else None,
            "sent": self.sent,
            "answered": len(self.latencies_ms),
            "failed": self.failed,
            "lost": self.lost,
            "errors": list(self.errors),
            "client_cpu_ms_per_request": round(self.client_cpu_ms_per_request, 3),
            "client_busy_fraction": round(self.client_busy_fraction, 3),
            "client_may_limit": self.client_busy_fraction >= CLIENT_BUSY_FRACTION,
            "worker_queue_ms": queue.to_dict() if queue else None,
            "worker_inference_ms": inference.to_dict() if inference else None,
        }


def throughput_per_s(done_s: Sequence[float], start_s: float, end_s: float) -> float:
    """Answers whose arrival falls in ``[start_s, end_s)``, per second."""
    if end_s <= start_s:
        raise ValueError(f"the window [{start_s}, {end_s}) is empty")
    inside = sum(1 for moment in done_s if start_s <= moment < end_s)
    return inside / (end_s - start_s)
