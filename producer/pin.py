"""The model pin, ``mlflow/model_version.json``: which registered model version runs.

Only the file's shape lives here (no MLflow import): the worker resolves it
against the registry, the sidecar fetches its reference data, the model's CLI
writes it.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from producer.errors import ConfigurationError

DEFAULT_PIN_PATH = Path("mlflow/model_version.json")


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


def read_pin(path: Path = DEFAULT_PIN_PATH) -> ModelPin:
    """Read the pin, or raise :class:`ConfigurationError` saying what is wrong with it."""
    try:
        return ModelPin.model_validate_json(Path(path).read_text())
    except FileNotFoundError as error:
        raise ConfigurationError(
            f"no model pin at {path}: run `twentyq model train --pin` or set TWENTYQ_PIN_PATH"
        ) from error
    except ValidationError as error:
        raise ConfigurationError(f"the model pin {path} is invalid: {error}") from error


def write_pin(pin: ModelPin, path: Path = DEFAULT_PIN_PATH) -> None:
    """Write the pin as indented JSON."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(pin.model_dump(), indent=2) + "\n")
