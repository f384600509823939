"""Is this worker making progress? Readiness from consumer restarts and acknowledgements.

A worker whose consumer restarts in a loop, or that holds turns it never
acknowledges, looks alive to a process check while it serves nothing. The
intake reports here; ``/ready`` on the metrics port answers 503 with the
reason when either happens, and ``twentyq_worker_consumer_restarts_total``
counts the restarts.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

RESTART_WINDOW_S = 60.0
MAX_RESTARTS_IN_WINDOW = 3


@dataclass
class Health:
    """Progress bookkeeping of one worker process (its main process)."""

    stall_s: float = 120.0
    clock: Callable[[], float] = time.monotonic
    starts: int = 0
    _restarts: deque[float] = field(default_factory=deque)
    _held: int = 0
    _progress_at: float | None = None

    def consumer_started(self) -> None:
        """Celery's consumer (re)started its event loop; each start after the first is a restart."""
        self.starts += 1
        if self.starts > 1:
            self._restarts.append(self.clock())

    @property
    def restarts(self) -> int:
        """Consumer restarts since the process started."""
        return max(self.starts - 1, 0)

    def held(self, count: int) -> None:
        """``count`` more turns are held, waiting for a batch or in one."""
        if self._held == 0:
            self._progress_at = self.clock()
        self._held += count

    def settled(self, count: int) -> None:
        """``count`` held turns were acknowledged or handed back: progress."""
        self._held = max(self._held - count, 0)
        self._progress_at = self.clock()

    def problems(self) -> list[str]:
        """Why the worker is not ready (empty: it is)."""
        now = self.clock()
        while self._restarts and now - self._restarts[0] > RESTART_WINDOW_S:
            self._restarts.popleft()
        found = []
        if len(self._restarts) >= MAX_RESTARTS_IN_WINDOW:
            found.append(
                f"the consumer restarted {len(self._restarts)} times in the last "
                f"{RESTART_WINDOW_S:.0f} s: see the log for the error it restarts on"
            )
        if self._held and self._progress_at is not None and now - self._progress_at > self.stall_s:
            found.append(
                f"{self._held} turns held and none acknowledged for "
                f"{now - self._progress_at:.0f} s "
                f"(WORKER_STALL_S={self.stall_s:g}): the pool or the broker is stuck"
            )
        return found
