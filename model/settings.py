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
    pin_path: Path = Field(
        default=Path("mlflow/model_version.json"),
        validation_alias=AliasChoices("TWENTYQ_PIN_PATH", "MODEL_PIN_PATH"),
        description="Where `--pin` writes the pin file.",
    )
    torch_threads: int = Field(
        default=1,
        ge=1,
        description="torch threads the served model uses (one per worker process scales best).",
    )
    seed: int = Field(default=0, description="Seed of training and evaluation games.")
