"""The MLflow side of the model: tracking set-up, registering versions, the pin file.

The pin (``{"name", "version", "run_id"}``; which file: ``ModelSettings.pin_path``)
has the shape ``producer.pin`` reads; ``model`` may not import ``producer``
(it travels alone into the registry), so this module writes the JSON itself.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import mlflow
from model.errors import ModelTransientError, PinError, RegistryError
from model.pyfunc import MODEL_ARTIFACT_PATH
from model.settings import ModelSettings

_UNREACHABLE_CODES = {"TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR"}


@dataclass(frozen=True)
class Pin:
    """A registered model version and the run that produced it."""

    name: str
    version: str
    run_id: str

    @property
    def model_uri(self) -> str:
        """``models:/NAME/VERSION``."""
        return f"models:/{self.name}/{self.version}"


def configure_tracking(settings: ModelSettings) -> str:
    """Point MLflow at the settings' store and experiment; returns the experiment id.

    A local ``sqlite:///`` store gets its folder created, and a new experiment
    keeps its artifacts under ``settings.artifact_folder`` (not ``./mlruns``).
    """
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.get_experiment_by_name(settings.experiment_name)
        if experiment is not None:
            experiment_id: str = experiment.experiment_id
        else:
            artifact_location = None
            if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
                settings.artifact_folder.mkdir(parents=True, exist_ok=True)
                artifact_location = settings.artifact_folder.resolve().as_uri()
            experiment_id = mlflow.create_experiment(
                settings.experiment_name, artifact_location=artifact_location
            )
    except MlflowException as error:
        raise _registry_error(error, f"cannot open the MLflow experiment at {uri}") from error
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def register_run(settings: ModelSettings, run_id: str, model_uri: str | None = None) -> Pin:
    """Register the pyfunc logged by ``run_id`` (or ``model_uri``) as a new version."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    try:
        registered = mlflow.register_model(
            model_uri or _logged_model_uri(run_id), settings.registered_model_name
        )
    except MlflowException as error:
        raise _registry_error(
            error,
            f"cannot register run {run_id!r} as {settings.registered_model_name!r}; "
            "check the run id (`mlflow runs list`) and that it logged a model",
        ) from error
    return Pin(settings.registered_model_name, str(registered.version), run_id)


def _logged_model_uri(run_id: str) -> str:
    """The URI of the pyfunc a run logged (MLflow 3 keeps models outside the run's artifacts)."""
    try:
        found = mlflow.search_logged_models(
            filter_string=f"source_run_id = '{run_id}' AND name = '{MODEL_ARTIFACT_PATH}'",
            output_format="list",
        )
    except MlflowException as error:
        raise _registry_error(error, f"cannot look up the model of run {run_id!r}") from error
    if not found:
        raise RegistryError(
            f"run {run_id!r} logged no model named {MODEL_ARTIFACT_PATH!r}; check the run id "
            "or train a new version (`twentyq model train`)"
        )
    return f"models:/{found[0].model_id}"


def find_version(settings: ModelSettings, version: str) -> Pin:
    """Look a version up in the registry; raise :class:`RegistryError` when it is missing."""
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    try:
        found = client.get_model_version(settings.registered_model_name, str(version))
    except MlflowException as error:
        raise _registry_error(
            error,
            f"version {version} of {settings.registered_model_name!r} is not in the registry at "
            f"{settings.tracking_uri}; list versions in the MLflow UI or train one "
            "(`twentyq model train`)",
        ) from error
    return Pin(settings.registered_model_name, str(found.version), str(found.run_id or ""))


def write_pin(pin: Pin, path: Path) -> None:
    """Write the pin file (indented JSON), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(pin), indent=2) + "\n")


def read_pin(path: Path) -> Pin:
    """Read the pin file; raise :class:`PinError` saying what is wrong with it."""
    try:
        raw: Any = json.loads(path.read_text())
        pin = Pin(name=str(raw["name"]), version=str(raw["version"]), run_id=raw.get("run_id", ""))
    except FileNotFoundError as error:
        raise PinError(
            f"no model pin at {path}: run `make demo` or `twentyq model train --pin` to train "
            "and pin a version in this MLflow store, or set TWENTYQ_PIN_PATH"
        ) from error
    except (ValueError, KeyError, TypeError) as error:
        raise PinError(
            f"the model pin {path} is not valid JSON with name and version ({error}); "
            "rewrite it with `twentyq model pin --version N`"
        ) from error
    if not pin.name or not pin.version.isdigit():
        raise PinError(f"the model pin {path} needs a name and a numeric version, got {raw!r}")
    return pin


def check_pin(settings: ModelSettings) -> Pin:
    """Return the pin when it resolves in the registry (and names the version's run)."""
    pin = read_pin(settings.pin_path)
    found = find_version(
        settings.model_copy(update={"registered_model_name": pin.name}), pin.version
    )
    if pin.run_id and found.run_id and pin.run_id != found.run_id:
        raise PinError(
            f"the pin {settings.pin_path} says {pin.model_uri} came from run {pin.run_id}, but the "
            f"registry says run {found.run_id}; re-pin with `twentyq model pin --version "
            f"{pin.version}`"
        )
    return found


def _registry_error(error: MlflowException, message: str) -> Exception:
    code = str(getattr(error, "error_code", ""))
    if code in _UNREACHABLE_CODES:
        return ModelTransientError(f"{message}: the registry is unreachable ({error}); retry")
    return RegistryError(f"{message} ({error})")
