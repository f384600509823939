"""When a batch starts: N turns, or T ms after its oldest turn arrived, onto a free pool slot.

A timer that flushes whatever the pool is doing (celery-batches', which round 1
used) sends many 1-3-turn batches under load, which queue in the pool behind
each other. Here a batch starts only when a pool process can take it, so
turns that arrive while every process is busy join the next batch instead of
queueing as batches of their own: batches grow with the load
(dynamic batching), and at low load a turn waits at most T.

Pure bookkeeping, no I/O and no Celery: :class:`worker.intake.TurnIntake`
drives it, and the unit tests drive it with a fake clock.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")


@dataclass
class BatchWindow(Generic[Item]):
    """Turns waiting for a batch, and how many batches are running in the pool."""

    size: int
    window_s: float
    slots: int
    clock: Callable[[], float] = time.monotonic
    running: int = 0
    _waiting: deque[tuple[float, Item]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if self.size < 1 or self.slots < 1 or self.window_s < 0:
            raise ValueError("a batch window needs size >= 1, slots >= 1 and window_s >= 0")

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, item: Item) -> None:
        """A turn arrived; its window starts now."""
        self._waiting.append((self.clock(), item))

    def _ready(self, now: float) -> bool:
        return bool(
            self._waiting
            and self.running < self.slots
            and (len(self._waiting) >= self.size or now - self._waiting[0][0] >= self.window_s)
        )

    def start_ready(self) -> list[list[Item]]:
        """The batches to start now (oldest turns first), each counted as running."""
        now = self.clock()
        batches: list[list[Item]] = []
        while self._ready(now):
            count = min(self.size, len(self._waiting))
            batches.append([self._waiting.popleft()[1] for _ in range(count)])
            self.running += 1
        return batches

    def finished(self) -> None:
        """A running batch came back (answered, failed or lost): its slot is free."""
        self.running = max(0, self.running - 1)

    def seconds_to_deadline(self) -> float | None:
        """Until the oldest waiting turn's window closes (0 when closed); None when none waits."""
        if not self._waiting:
            return None
        return max(0.0, self._waiting[0][0] + self.window_s - self.clock())
