"""The project's error tree: one root, transient versus permanent below it.

``worker``, ``monitoring`` and ``model`` define their own errors as subclasses
of these, so a caller can catch every twentyq error with :class:`TwentyQError`.
"""

from __future__ import annotations


class TwentyQError(Exception):
    """Raised for any error twentyq itself reports; the root of the tree."""


class TransientError(TwentyQError):
    """Raised when a dependency (broker, registry, store) is briefly unreachable; retry."""


class PermanentError(TwentyQError):
    """Raised when retrying cannot help: invalid input, an unloadable model, bad config."""


class ConfigurationError(PermanentError):
    """Raised when a setting is missing or invalid; the message says what to set."""


class InvalidTurnError(PermanentError):
    """Raised when a turn breaks the wire contract; the message names the field."""


class BrokerUnavailableError(TransientError):
    """Raised when the broker cannot be reached after the configured retries."""


class GuessTimeoutError(TransientError):
    """Raised when no guess arrived for a submitted turn within the timeout."""


class TurnFailedError(PermanentError):
    """Raised when the worker could not serve a turn and dead-lettered it."""
