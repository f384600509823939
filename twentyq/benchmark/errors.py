"""The benchmark's errors."""

from __future__ import annotations

from producer.errors import PermanentError


class BenchError(PermanentError):
    """Raised when a benchmark step cannot run; the message says which and what to check."""
