"""The model pin: which registered model version runs, and which pin file a process reads.

Only the file's shape and the choice of file live here (no MLflow import): the
worker resolves the pin against the registry, the sidecar fetches its
reference data, the model's CLI writes it.

Which pin belongs to which store: the committed ``mlflow/model_version.json``
names a version in the shared registry a deployment points ``MLFLOW_TRACKING_URI``
at. A local SQLite store (``sqlite:///DIR/mlflow.db``, the default
``.twentyq/mlflow.db`` that ``make demo`` fills) has its own pin beside it,
``DIR/model_version.json``, because a version registered there exists nowhere
else. ``TWENTYQ_PIN_PATH`` overrides both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from producer.errors import ConfigurationError

COMMITTED_PIN_PATH = Path("mlflow/model_version.json")
DEFAULT_PIN_PATH = COMMITTED_PIN_PATH
LOCAL_PIN_NAME = "model_version.json"
_SQLITE_PREFIX = "sqlite:///"


class ModelPin(BaseModel):
    """A registered model name and version, and the run id it resolved to when pinned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    version: str = Field(min_length=1, pattern=r"^[0-9]+$")
    run_id: str = ""

    @property
    def model_uri(self) -> str:
        """The MLflow URI of the pinned version, ``models:/NAME/VERSION``."""
        return f"models:/{self.name}/{self.version}"


def local_pin_path(tracking_uri: str) -> Path | None:
    """The pin of a local SQLite store (``model_version.json`` beside its database), or None.

    None for every other store (an MLflow server, a database server, in-memory SQLite):
    those are shared registries, whose pin is the committed one.
    """
    if not tracking_uri.startswith(_SQLITE_PREFIX):
        return None
    database = tracking_uri.removeprefix(_SQLITE_PREFIX).split("?", 1)[0]
    if database in {"", ":memory:"}:
        return None
    return Path(database).parent / LOCAL_PIN_NAME


def default_pin_path(tracking_uri: str) -> Path:
    """The pin a process reads when no pin path is set: the store's own, else the committed one."""
    return local_pin_path(tracking_uri) or COMMITTED_PIN_PATH


def default_pin_path_of(settings_data: Mapping[str, Any]) -> Path:
    """``default_factory`` of a settings class's ``pin_path``: the pin of its ``tracking_uri``."""
    return default_pin_path(str(settings_data.get("tracking_uri", "")))


def describe_pin_and_store(
    pin_path: Path, tracking_uri: str, *, pin_path_set: bool, tracking_uri_set: bool
) -> str:
    """One line saying which pin and which MLflow store a command uses, and why.

    ``pin_path_set`` / ``tracking_uri_set``: whether the value came from the environment
    (or the caller) rather than the default.
    """
    if pin_path_set:
        pin_source = "set by TWENTYQ_PIN_PATH"
    elif pin_path == local_pin_path(tracking_uri):
        pin_source = (
            f"local fallback: the SQLite store's own pin; the committed {COMMITTED_PIN_PATH} "
            "is for a shared registry"
        )
    else:
        pin_source = "committed: the shared registry's pin"
    store_source = "set by MLFLOW_TRACKING_URI" if tracking_uri_set else "default"
    return f"pin {pin_path} ({pin_source}) · MLflow store {tracking_uri} ({store_source})"


class PinnedSettings(Protocol):
    """A deployable's settings that name a pin and an MLflow store."""

    @property
    def pin_path(self) -> Path: ...

    @property
    def tracking_uri(self) -> str: ...

    @property
    def model_fields_set(self) -> set[str]: ...


def describe_pin_of(settings: PinnedSettings) -> str:
    """:func:`describe_pin_and_store` for a settings object, from the fields it was given."""
    given = settings.model_fields_set
    return describe_pin_and_store(
        settings.pin_path,
        settings.tracking_uri,
        pin_path_set="pin_path" in given,
        tracking_uri_set="tracking_uri" in given,
    )


def read_pin(path: Path = DEFAULT_PIN_PATH) -> ModelPin:
    """Read the pin, or raise :class:`ConfigurationError` saying what is wrong with it."""
    try:
        return ModelPin.model_validate_json(Path(path).read_text())
    except FileNotFoundError as error:
        raise ConfigurationError(
            f"no model pin at {path}: run `make demo` or `twentyq model train --pin` to train "
            "and pin a version in this MLflow store, or set TWENTYQ_PIN_PATH"
        ) from error
    except ValidationError as error:
        raise ConfigurationError(f"the model pin {path} is invalid: {error}") from error


def write_pin(pin: ModelPin, path: Path = DEFAULT_PIN_PATH) -> None:
    """Write the pin as indented JSON."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(pin.model_dump(), indent=2) + "\n")
