"""Errors the sidecar and the drift job raise, below the project's error tree."""

from __future__ import annotations

from producer.errors import PermanentError, TransientError


class SinkUnavailableError(TransientError):
    """Raised when the export sink (folder or S3 bucket) cannot be written or read right now."""


class ReferenceUnavailableError(PermanentError):
    """Raised when the pinned model version's reference data cannot be fetched from MLflow."""


class NoRecordsError(PermanentError):
    """Raised when a drift window holds no exported records for any model version."""


class AlertDeliveryError(TransientError):
    """Raised when the alert webhook cannot be reached or refuses the message."""
