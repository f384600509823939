"""Settings of the model's tooling (`twentyq model ...`): where MLflow lives, names, the pin.

Built once when a command starts and passed down; nothing reads the
environment at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TRACKING_URI = "sqlite:///.twentyq/mlflow.db"
DEFAULT_ARTIFACT_FOLDER = Path(".twentyq/mlartifacts")
COMMITTED_PIN_PATH = Path("mlflow/model_version.json")
_SQLITE_PREFIX = "sqlite:///"


# The same rule as producer.pin (which ``model`` may not import; a unit test keeps the
# two in step): a local SQLite store has its own pin beside its database, because a
# version registered there exists nowhere else; any other store is the shared registry
# the committed pin names a version of.
def local_pin_path(tracking_uri: str) -> Path | None:
    """``model_version.json`` beside a local SQLite store's database, or None for other stores."""
    if not tracking_uri.startswith(_SQLITE_PREFIX):
        return None
    database = tracking_uri.removeprefix(_SQLITE_PREFIX).split("?", 1)[0]
    if database in {"", ":memory:"}:
        return None
    return Path(database).parent / "model_version.json"


def default_pin_path(tracking_uri: str) -> Path:
    """The pin used when none is set: the store's own, else the committed one."""
    return local_pin_path(tracking_uri) or COMMITTED_PIN_PATH


class ModelSettings(BaseSettings):
    """Configuration of training, registration and pinning (env prefix ``MODEL_``)."""

    model_config = SettingsConfigDict(
        env_prefix="MODEL_", extra="ignore", frozen=True, populate_by_name=True
    )

    tracking_uri: str = Field(
        default=DEFAULT_TRACKING_URI,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "MODEL_TRACKING_URI"),
        description="MLflow tracking and registry URI.",
    )
    artifact_folder: Path = Field(
        default=DEFAULT_ARTIFACT_FOLDER,
        description="Artifact root of a new experiment (used with a local sqlite/file store).",
    )
    experiment_name: str = Field(default="twenty-questions", min_length=1)
    registered_model_name: str = Field(default="twenty-questions", min_length=1)
    # After tracking_uri: the default pin is the store's own (see local_pin_path).
    pin_path: Path = Field(
        default_factory=lambda data: default_pin_path(str(data.get("tracking_uri", ""))),
        validation_alias=AliasChoices("TWENTYQ_PIN_PATH", "MODEL_PIN_PATH"),
        description="The pin file: read by `evaluate --pinned`, `check-pin`; written by `--pin`.",
    )
    torch_threads: int = Field(
        default=1,
        ge=1,
        description="torch threads the served model uses (one per worker process scales best).",
    )
    seed: int = Field(default=0, description="Seed of training and evaluation games.")

    def describe_pin_and_store(self) -> str:
        """One line: which pin and which MLflow store a command uses, and why (as producer.pin)."""
        given = self.model_fields_set
        if "pin_path" in given:
            pin_source = "set by TWENTYQ_PIN_PATH"
        elif self.pin_path == local_pin_path(self.tracking_uri):
            pin_source = (
                f"local fallback: the SQLite store's own pin; the committed {COMMITTED_PIN_PATH} "
                "is for a shared registry"
            )
        else:
            pin_source = "committed: the shared registry's pin"
        store_source = "set by MLFLOW_TRACKING_URI" if "tracking_uri" in given else "default"
        store = f"MLflow store {self.tracking_uri} ({store_source})"
        return f"pin {self.pin_path} ({pin_source}) · {store}"
