"""Training options and the `train` command's argument checks (no MLflow run needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from model.cli import main
from model.phrasing import Phrasings
from model.settings import ModelSettings
from model.training import build_interpreter


def test_an_unknown_interpreter_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="minilm"):
        build_interpreter("bert-large", Phrasings(("yes",), ("yes",)), tmp_path, seed=0)


def test_pin_without_registering_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--pin", "--no-register"]) == 2
    assert "--pin needs a registered version" in capsys.readouterr().out


def test_settings_read_mlflow_and_pin_locations_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("TWENTYQ_PIN_PATH", "/etc/twentyq/pin.json")
    monkeypatch.setenv("MODEL_REGISTERED_MODEL_NAME", "twenty-questions-canary")

    settings = ModelSettings()

    assert settings.tracking_uri == "http://mlflow:5000"
    assert settings.pin_path == Path("/etc/twentyq/pin.json")
    assert settings.registered_model_name == "twenty-questions-canary"


def test_settings_default_to_a_local_store(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_TRACKING_URI", "TWENTYQ_PIN_PATH", "MODEL_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)

    settings = ModelSettings()

    assert settings.tracking_uri == "sqlite:///.twentyq/mlflow.db"
    # The local store's own pin: `--pin` never rewrites the committed mlflow/model_version.json.
    assert settings.pin_path == Path(".twentyq/model_version.json")
    assert settings.registered_model_name == "twenty-questions"


def test_build_kb_passes_every_option_to_the_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    import model.knowledge_base_build as builder

    received: list[list[str]] = []
    monkeypatch.setattr(builder, "main", lambda argv: received.append(list(argv)) or 0)

    assert main(["build-kb", "--check", "--output-dir", "/tmp/kb"]) == 0
    assert received == [["--check", "--output-dir", "/tmp/kb"]]


def scenario(name: str, wins: int, median: float | None) -> Any:
    from model.evaluation import ScenarioResult

    return ScenarioResult(name, 0.0, 100, wins, 100 - wins, 0, median, median, median)


def test_the_summary_marks_each_target_pass_or_fail() -> None:
    from model.evaluation import EvaluationReport
    from model.scorecard import format_summary, summarise

    report = EvaluationReport(
        0,
        {"noise_free": scenario("noise_free", 99, 9.0), "noise_10": scenario("noise_10", 70, 11.0)},
        {},
    )
    latency = {
        "predict_batch64_median_ms": 12.0,
        "predict_batch64_p95_ms": 20.0,
        "predict_single_median_ms": 11.0,
        "predict_single_p95_ms": 15.0,
    }

    summary = summarise(report, 0.93, latency)
    text = format_summary("evaluated models:/twenty-questions/3", summary)

    verdicts = {check["name"]: check["passed"] for check in summary["targets"]}
    assert verdicts == {
        "noise_free win rate": True,
        "noise_free median questions to win": True,
        "noise_10 win rate": False,
        "interpreter held-out accuracy": True,
        "predict batch of 64 (median ms)": True,
        "predict one turn (median ms)": False,
    }
    assert not summary["passed"]
    assert "[FAIL] noise_10 win rate: 0.7 >= 0.8" in text
    assert "[PASS] interpreter held-out accuracy: 0.93 >= 0.9" in text
