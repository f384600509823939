"""Ctrl-C, SIGTERM and SIGHUP during a bench: a flag the load loops check.

A KeyboardInterrupt raised by the signal handler can land inside a
``__del__`` (Celery's ``AsyncResult.__del__`` runs for every answered turn),
where Python ignores it; the flag makes sure the run still stops at the next
turn, and the supervisor then stops every child process.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_stop_requested = threading.Event()
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def raise_if_stopped() -> None:
    """Raise KeyboardInterrupt once a stop was requested by a signal."""
    if _stop_requested.is_set():
        raise KeyboardInterrupt


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside, SIGINT/SIGTERM/SIGHUP request a stop and raise KeyboardInterrupt."""

    def request_stop(signum: int, frame: FrameType | None) -> None:
        _stop_requested.set()
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, request_stop) for signum in _SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _stop_requested.clear()
