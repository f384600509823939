"""The image's model stage against a real MLflow registry (SQLite store in a temp folder)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.deploy.script import load_script

pytestmark = pytest.mark.integration

fetch_model = load_script("fetch_model")

MODEL_NAME = "twenty-questions"


class _EchoModel:
    """A stand-in pyfunc: what the build stage copies does not depend on the model's code."""

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        # Unannotated on purpose: MLflow infers a signature from hints and warns about ours.
        return model_input


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A local MLflow registry (SQLite + artifact folder) holding version 1 of the model."""
    from mlflow.pyfunc.model import PythonModel

    import mlflow

    folder = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", uri)
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment(
        "build", artifact_location=(folder / "artifacts").as_uri()
    )
    model_class = type("EchoModel", (_EchoModel, PythonModel), {})
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.pyfunc.log_model(
            name="model",
            python_model=model_class(),
            registered_model_name=MODEL_NAME,
            pip_requirements=[],
        )
    yield {"uri": uri, "run_id": run.info.run_id}
    patch.undo()
    mlflow.set_tracking_uri(previous_uri)


def _run(tmp_path: Path, pin: dict[str, str], *extra: str) -> tuple[int, Path, Path]:
    pin_path = tmp_path / "model_version.json"
    pin_path.write_text(json.dumps(pin))
    dest, pin_out = tmp_path / "model", tmp_path / "baked" / "model_version.json"
    code = fetch_model.main(
        [
            "--pin", str(pin_path),
            "--dest", str(dest),
            "--pin-out", str(pin_out),
            "--secrets-dir", str(tmp_path / "no-secrets"),
            *extra,
        ]
    )  # fmt: skip
    return code, dest, pin_out


def test_bakes_the_pinned_version_and_completes_the_pin(
    registry: dict[str, str], tmp_path: Path
) -> None:
    import mlflow

    pin = {"name": MODEL_NAME, "version": "1", "run_id": ""}
    code, dest, pin_out = _run(tmp_path, pin, "--expect-name", MODEL_NAME, "--expect-version", "1")
    assert code == 0
    baked = json.loads(pin_out.read_text())
    assert baked == {"name": MODEL_NAME, "version": "1", "run_id": registry["run_id"]}
    # What the worker checks at start-up: the local copy was logged by the pin's run.
    assert mlflow.models.Model.load(str(dest)).run_id == baked["run_id"]


@pytest.mark.parametrize(
    "case",
    [
        ({"name": MODEL_NAME, "version": "1"}, ["--expect-version", "2"], 2),
        ({"name": MODEL_NAME, "version": "1", "run_id": "0" * 32}, [], 2),
        ({"name": MODEL_NAME, "version": "1"}, ["--expect-run-id", "f" * 32], 2),
        ({"name": MODEL_NAME, "version": "7"}, [], 3),
    ],
    ids=["label-disagrees", "version-replaced", "run-label-disagrees", "no-such-version"],
)
def test_refuses_an_image_that_would_lie_about_its_model(
    registry: dict[str, str],
    tmp_path: Path,
    case: tuple[dict[str, str], list[str], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    pin, extra, expected_code = case
    code, dest, pin_out = _run(tmp_path, pin, *extra)
    assert code == expected_code
    assert not pin_out.exists() and not (dest / "MLmodel").exists()
    assert capsys.readouterr().err.startswith("fetch_model: ")
