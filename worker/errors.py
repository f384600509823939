"""The worker's errors, below the project's error tree."""

from __future__ import annotations

from producer.errors import PermanentError, TransientError


class ModelLoadError(PermanentError):
    """Raised when the pinned model cannot be resolved or loaded; the worker refuses to start."""


class ModelFailedError(TransientError):
    """Raised when the model's ``predict`` raised or broke the model contract for a batch."""
