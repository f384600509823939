"""Loading the pinned model: warm-up, the reference on outputs, and refusing to start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from producer.pin import ModelPin, write_pin
from tests.unit.worker.conftest import StubPredict
from worker import model_loader
from worker.errors import ModelLoadError
from worker.model_loader import WARM_UP_TURN, load_pinned_model
from worker.settings import WorkerSettings


class FakePyfunc:
    def __init__(self, predict: Any) -> None:
        self.predict = predict


def _settings(tmp_path: Path, **changes: Any) -> WorkerSettings:
    return WorkerSettings(
        pin_path=tmp_path / "model_version.json",
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        **changes,
    )


def test_the_model_is_warmed_with_one_predict_and_named_on_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    write_pin(ModelPin(name="twenty", version="3", run_id="abc"), settings.pin_path)
    predict = StubPredict()
    monkeypatch.setattr(model_loader, "_load_pyfunc", lambda pin, s: (FakePyfunc(predict), "abc"))
    loaded = load_pinned_model(settings)
    assert predict.calls == [[WARM_UP_TURN]]
    assert (loaded.ref.name, loaded.ref.version, loaded.ref.run_id) == ("twenty", "3", "abc")


def test_a_missing_pin_refuses_with_the_pin_path_and_registry(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(ModelLoadError) as caught:
        load_pinned_model(settings)
    message = str(caught.value)
    assert "refuses to start" in message
    assert str(settings.pin_path) in message and settings.tracking_uri in message


def test_a_model_failing_its_warm_up_refuses_with_the_model_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    write_pin(ModelPin(name="twenty", version="3"), settings.pin_path)
    broken = FakePyfunc(StubPredict(fail_times=1))
    monkeypatch.setattr(model_loader, "_load_pyfunc", lambda pin, s: (broken, "abc"))
    with pytest.raises(ModelLoadError, match=r"twenty version 3.*bad day"):
        load_pinned_model(settings)


def test_a_local_copy_from_another_run_is_refused(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("run_id: other-run\nflavors: {}\n")
    settings = _settings(tmp_path, model_path=model_dir)
    write_pin(ModelPin(name="twenty", version="3", run_id="pinned-run"), settings.pin_path)
    with pytest.raises(ModelLoadError, match=r"other-run.*pinned-run"):
        load_pinned_model(settings)
