"""Training into a temporary MLflow registry, loading the version back, pinning, the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow.tracking._tracking_service.utils as tracking_utils
import pandas as pd
import pytest
from mlflow.tracking import fluent

import mlflow
from model import training
from model.cli import main
from model.engine import Engine, EngineConfig
from model.errors import PinError
from model.interpreter import AnswerInterpreter
from model.predictor import Predictor
from model.reference import RECORD_COLUMNS
from model.registry import Pin, check_pin, read_pin, write_pin
from model.settings import ModelSettings
from model.training import TrainingOptions, TrainingResult, train_model
from tests.unit.model.tiny_model import tiny_interpreter, tiny_knowledge_base

TURNS: list[dict[str, Any]] = [
    {"history": [{"question_id": "q1", "answer": "yes"}], "rejected_guesses": []},
    {"history": [{"question_id": "q9", "answer_text": "nope"}], "rejected_guesses": ["noun2"]},
    {"history": [{"question_id": "zz", "answer": "yes"}], "rejected_guesses": []},
]


def fresh_interpreter() -> AnswerInterpreter:
    trained = tiny_interpreter()
    return AnswerInterpreter(trained.encoder, trained.head, trained.config)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> ModelSettings:
    folder = tmp_path_factory.mktemp("registry")
    return ModelSettings(
        tracking_uri=f"sqlite:///{folder}/mlflow.db",
        artifact_folder=folder / "artifacts",
        pin_path=folder / "pin" / "model_version.json",
    )


@pytest.fixture(scope="module")
def trained(settings: ModelSettings) -> Iterator[TrainingResult]:
    patch = pytest.MonkeyPatch()
    # MLflow keeps the tracking URI and the active experiment in globals and exports them
    # to os.environ; undo all of it afterwards so no later test sees this temporary store.
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        # setenv first so that undo also removes a variable that was absent before.
        patch.setenv(name, "")
        patch.delenv(name)
    patch.setattr(tracking_utils, "_tracking_uri", None)
    patch.setattr(fluent, "_active_experiment_id", None)
    # The tiny interpreter is trained once per session (tiny_model); reuse it here.
    patch.setattr(
        training,
        "build_interpreter",
        lambda kind, train, folder, seed: (fresh_interpreter(), training.RECIPES["tiny"]),
    )
    options = TrainingOptions("tiny", register=True, pin=True, games=4, progress=False)
    try:
        yield train_model(settings, options, kb=tiny_knowledge_base())
    finally:
        patch.undo()


@pytest.fixture()
def environment(settings: ModelSettings, monkeypatch: pytest.MonkeyPatch) -> ModelSettings:
    """Point the CLI (which builds its own settings) at the temporary registry."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.tracking_uri)
    monkeypatch.setenv("MODEL_ARTIFACT_FOLDER", str(settings.artifact_folder))
    monkeypatch.setenv("TWENTYQ_PIN_PATH", str(settings.pin_path))
    return settings


def test_training_registers_and_pins_a_version(
    trained: TrainingResult, settings: ModelSettings
) -> None:
    pin = json.loads(settings.pin_path.read_text())

    assert pin == {"name": "twenty-questions", "version": "1", "run_id": trained.run_id}
    assert trained.pin == Pin("twenty-questions", "1", trained.run_id)


def test_the_registered_version_serves_a_list_of_dicts_unchanged(trained: TrainingResult) -> None:
    loaded = mlflow.pyfunc.load_model("models:/twenty-questions/1")
    kb = tiny_knowledge_base()
    local = Predictor(Engine(kb, EngineConfig()), kb, fresh_interpreter())

    results = loaded.predict(TURNS)

    assert results == local.predict(TURNS)
    assert results[1]["interpreted_answers"] == [
        {"question_id": "q9", "text": "nope", "answer": "no"}
    ]
    assert "error" in results[2]


def test_the_run_logs_the_reference_for_the_drift_job(trained: TrainingResult) -> None:
    parquet = mlflow.artifacts.download_artifacts(
        f"runs:/{trained.run_id}/reference/reference.parquet"
    )
    vocabulary = mlflow.artifacts.download_artifacts(
        f"runs:/{trained.run_id}/reference/vocabulary.json"
    )
    frame = pd.read_parquet(parquet)

    assert tuple(frame.columns) == RECORD_COLUMNS
    assert set(frame["kind"]) == {"guess", "outcome"}
    assert set(frame["run_id"].dropna()) == {trained.run_id}
    assert {"yep", "dunno", "nope"} <= set(json.loads(Path(vocabulary).read_text())["tokens"])


def test_the_version_carries_what_inference_needs(trained: TrainingResult) -> None:
    folder = Path(mlflow.artifacts.download_artifacts("models:/twenty-questions/1"))
    files = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}

    assert "artifacts/knowledge_base/knowledge_base.csv" in files
    assert "artifacts/interpreter/head.safetensors" in files
    assert "artifacts/interpreter/encoder/model.safetensors" in files
    assert "artifacts/reference/reference.parquet" in files
    assert "artifacts/model_config.json" in files
    assert "code/model/predictor.py" in files
    assert not any(name.startswith("code/model/data/") for name in files)


def test_the_run_has_the_evaluation_metrics(trained: TrainingResult) -> None:
    metrics = mlflow.get_run(trained.run_id).data.metrics

    for name in ("noise_free_win_rate", "noise_10_win_rate", "free_text_win_rate",
                 "interpreter_heldout_accuracy", "predict_batch64_median_ms",
                 "predict_single_median_ms", "training_time_s"):  # fmt: skip
        assert name in metrics
    assert metrics["noise_free_games"] == 4


def test_check_pin_accepts_the_pinned_version(
    trained: TrainingResult, environment: ModelSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_pin(environment).run_id == trained.run_id
    assert main(["check-pin"]) == 0
    assert "resolves in the registry" in capsys.readouterr().out


def test_check_pin_rejects_a_version_the_registry_lacks(
    trained: TrainingResult,
    environment: ModelSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "model_version.json"
    write_pin(Pin("twenty-questions", "7", ""), missing)
    monkeypatch.setenv("TWENTYQ_PIN_PATH", str(missing))

    assert main(["check-pin"]) == 1
    assert "version 7 of 'twenty-questions' is not in the registry" in capsys.readouterr().err


def test_register_then_pin_moves_the_pin(
    trained: TrainingResult,
    environment: ModelSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pin_path = tmp_path / "model_version.json"
    monkeypatch.setenv("TWENTYQ_PIN_PATH", str(pin_path))

    assert main(["register", "--run-id", trained.run_id]) == 0
    assert main(["pin", "--version", "2"]) == 0

    assert read_pin(pin_path) == Pin("twenty-questions", "2", trained.run_id)


def test_register_with_an_unknown_run_fails_clearly(
    environment: ModelSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["register", "--run-id", "0123456789abcdef"]) == 1
    assert "0123456789abcdef" in capsys.readouterr().err


def test_a_broken_pin_file_says_how_to_fix_it(tmp_path: Path) -> None:
    path = tmp_path / "model_version.json"
    path.write_text("{not json")

    with pytest.raises(PinError, match="twentyq model pin --version"):
        read_pin(path)
    with pytest.raises(PinError, match="twentyq model train --pin"):
        read_pin(tmp_path / "absent.json")


def test_evaluate_plays_games_on_the_pinned_version(
    trained: TrainingResult, environment: ModelSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", "--pinned", "--games", "3", "--json"]) == 0

    summary = json.loads(capsys.readouterr().out)
    assert summary["model_uri"] == "models:/twenty-questions/1"
    assert summary["evaluation"]["scenarios"]["noise_free"]["games"] == 3
    assert {check["name"] for check in summary["targets"]} >= {
        "noise_free win rate",
        "interpreter held-out accuracy",
        "predict batch of 64 (median ms)",
        "predict one turn (median ms)",
    }
    assert summary["latency"]["predict_single_median_ms"] > 0
