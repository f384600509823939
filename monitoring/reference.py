"""The reference table and vocabulary a registered model version carries in MLflow."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow.artifacts
import pandas as pd
from mlflow.exceptions import MlflowException

from mlflow import MlflowClient
from monitoring.errors import ReferenceUnavailableError
from producer.pin import ModelPin

REFERENCE_ARTIFACT = "reference/reference.parquet"
VOCABULARY_ARTIFACT = "reference/vocabulary.json"


@dataclass(frozen=True)
class Reference:
    """A model version's held-out evaluation records and its interpreter's vocabulary."""

    model_name: str
    model_version: str
    run_id: str
    frame: pd.DataFrame
    vocabulary: frozenset[str]


def resolve_run_id(tracking_uri: str, name: str, version: str) -> str:
    """The run a registered model version came from."""
    try:
        run_id = MlflowClient(tracking_uri=tracking_uri).get_model_version(name, version).run_id
    except MlflowException as error:
        raise ReferenceUnavailableError(
            f"model {name} version {version} is not in the registry at {tracking_uri}: "
            "check MLFLOW_TRACKING_URI and the pin (TWENTYQ_PIN_PATH)"
        ) from error
    if not run_id:
        raise ReferenceUnavailableError(
            f"model {name} version {version} names no run, so it has no reference data: "
            "register it from the training run that logged reference/"
        )
    return str(run_id)


def _download(tracking_uri: str, run_id: str, artifact: str, folder: str) -> Path:
    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"runs:/{run_id}/{artifact}",
                dst_path=folder,
                tracking_uri=tracking_uri,
            )
        )
    except (MlflowException, OSError) as error:
        raise ReferenceUnavailableError(
            f"cannot fetch {artifact} of run {run_id} from {tracking_uri}: {error}; the "
            "training run must log reference/reference.parquet and reference/vocabulary.json"
        ) from error


def fetch_reference(tracking_uri: str, pin: ModelPin) -> Reference:
    """Download a version's reference table and vocabulary (the pin's run, else the registry's)."""
    run_id = pin.run_id or resolve_run_id(tracking_uri, pin.name, pin.version)
    with tempfile.TemporaryDirectory(prefix="twentyq-reference-") as folder:
        frame = pd.read_parquet(_download(tracking_uri, run_id, REFERENCE_ARTIFACT, folder))
        vocabulary_path = _download(tracking_uri, run_id, VOCABULARY_ARTIFACT, folder)
        tokens = json.loads(vocabulary_path.read_text()).get("tokens", [])
    return Reference(
        model_name=pin.name,
        model_version=pin.version,
        run_id=run_id,
        frame=frame,
        vocabulary=frozenset(str(token).lower() for token in tokens),
    )
