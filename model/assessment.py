"""`twentyq model evaluate`: the evaluation games and latency of a registered version.

The version is loaded exactly as the worker loads it (``mlflow.pyfunc.load_model``);
the games use its own engine, knowledge base and interpreter, and the latency
is measured through its ``predict``.
"""

from __future__ import annotations

from typing import Any

import mlflow
from model.errors import RegistryError
from model.latency import measure_latency
from model.phrasing import (
    HELDOUT_PHRASINGS_PATH,
    TRAIN_PHRASINGS_PATH,
    load_phrasings,
)
from model.pyfunc import TwentyQuestionsModel
from model.registry import check_pin
from model.scorecard import evaluate_predictor, summarise
from model.settings import ModelSettings


def evaluate_registered(
    settings: ModelSettings, model_uri: str | None, games: int | None, progress: bool
) -> dict[str, Any]:
    """Evaluate ``model_uri`` (default: the pinned version); returns the summary dict."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    uri = model_uri or check_pin(settings).model_uri
    try:
        loaded = mlflow.pyfunc.load_model(uri)
    except mlflow.exceptions.MlflowException as error:
        raise RegistryError(
            f"cannot load {uri} from {settings.tracking_uri} ({error}); check the name and version"
        ) from error
    python_model = loaded.unwrap_python_model()
    if not isinstance(python_model, TwentyQuestionsModel) or python_model.predictor is None:
        raise RegistryError(f"{uri} is not a twentyq reference model; evaluate needs one")
    predictor = python_model.predictor
    report, accuracy = evaluate_predictor(
        predictor, load_phrasings(HELDOUT_PHRASINGS_PATH), games, settings.seed, progress
    )
    latency = measure_latency(
        loaded.predict, predictor.kb, load_phrasings(TRAIN_PHRASINGS_PATH).by_answer()
    )
    return {"model_uri": uri, **summarise(report, accuracy, latency)}
