"""Load the pinned model version once per worker, warm it, or refuse to start."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow import MlflowClient
from producer.errors import ConfigurationError
from producer.messages import ModelRef
from producer.pin import ModelPin, read_pin
from worker.errors import ModelLoadError
from worker.settings import WorkerSettings

logger = logging.getLogger(__name__)

PredictFunction = Callable[[list[dict[str, Any]]], Any]

# One cheap, valid turn: an empty game. Any contract-honouring model can answer it.
WARM_UP_TURN: dict[str, Any] = {"history": [], "rejected_guesses": []}


@dataclass(frozen=True)
class LoadedModel:
    """The pinned model, ready to serve, and the reference every output carries."""

    predict: PredictFunction
    ref: ModelRef


def _refusal(pin_path: object, pin: ModelPin | None, settings: WorkerSettings, why: str) -> str:
    name = f"{pin.name} version {pin.version}" if pin else "(unknown: the pin is unreadable)"
    source = f"local copy {settings.model_path}" if settings.model_path else "registry"
    return (
        f"The worker refuses to start: it cannot serve the pinned model. Pin file: {pin_path}; "
        f"model: {name}; registry URI: {settings.tracking_uri}; loading from: {source}. "
        f"Cause: {why}. Fix the pin (`twentyq model train --pin`), MLFLOW_TRACKING_URI or "
        "WORKER_MODEL_PATH, then start the worker again; it never serves an unpinned model."
    )


def set_thread_counts(settings: WorkerSettings) -> None:
    """Fix torch's thread pool for this process; BLAS threads follow the environment.

    ``twentyq worker`` exports :meth:`WorkerSettings.thread_environment` before
    numpy loads; here the variables are exported again for any child process.
    """
    os.environ.update(settings.thread_environment())
    try:
        import torch  # noqa: PLC0415 - optional: only models built on torch need it
    except ImportError:  # a model without torch needs no torch threads
        return
    torch.set_num_threads(settings.torch_threads or settings.threads_per_process)


def _resolve_run_id(pin: ModelPin, settings: WorkerSettings) -> str:
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    version = client.get_model_version(pin.name, pin.version)
    run_id = str(version.run_id or "")
    if pin.run_id and run_id != pin.run_id:
        raise ModelLoadError(
            f"the registry says version {pin.version} came from run {run_id}, the pin says "
            f"{pin.run_id}: the version was replaced; re-pin it"
        )
    return run_id


def _load_pyfunc(pin: ModelPin, settings: WorkerSettings) -> tuple[Any, str]:
    if settings.model_path is None:
        run_id = _resolve_run_id(pin, settings)
        mlflow.set_tracking_uri(settings.tracking_uri)
        mlflow.set_registry_uri(settings.tracking_uri)
        return mlflow.pyfunc.load_model(pin.model_uri), run_id
    local_run_id = str(mlflow.models.Model.load(str(settings.model_path)).run_id or "")
    expected_run_id = pin.run_id or _resolve_run_id(pin, settings)
    if local_run_id != expected_run_id:
        raise ModelLoadError(
            f"the local copy was logged by run {local_run_id or '(none)'}, the pin names run "
            f"{expected_run_id}: rebuild the image or fix WORKER_MODEL_PATH"
        )
    return mlflow.pyfunc.load_model(str(settings.model_path)), local_run_id


def load_pinned_model(settings: WorkerSettings) -> LoadedModel:
    """Resolve the pin, load its version, warm it with one predict; else :class:`ModelLoadError`."""
    pin: ModelPin | None = None
    try:
        pin = read_pin(settings.pin_path)
        pyfunc, run_id = _load_pyfunc(pin, settings)
        warm_up = pyfunc.predict([WARM_UP_TURN])
        if not isinstance(warm_up, list) or len(warm_up) != 1:
            raise ModelLoadError(f"warm-up predict returned {warm_up!r}, not a list of one")
    except (ConfigurationError, ModelLoadError) as error:
        raise ModelLoadError(_refusal(settings.pin_path, pin, settings, str(error))) from error
    except Exception as error:  # MLflow raises many types; every one means "cannot serve"
        why = f"{type(error).__name__}: {error}"
        raise ModelLoadError(_refusal(settings.pin_path, pin, settings, why)) from error
    ref = ModelRef(name=pin.name, version=pin.version, run_id=run_id)
    logger.info("loaded and warmed model %s version %s (run %s)", ref.name, ref.version, run_id)
    return LoadedModel(predict=pyfunc.predict, ref=ref)
