"""The image's model stage: the checks that need no registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.deploy.script import load_script

fetch_model = load_script("fetch_model")


def test_credentials_come_from_build_secret_files(tmp_path: Path) -> None:
    (tmp_path / "MLFLOW_TRACKING_TOKEN").write_text("s3cret\n")
    (tmp_path / "MLFLOW_TRACKING_USERNAME").write_text("")
    (tmp_path / "UNRELATED").write_text("ignored")
    environ: dict[str, str] = {}
    assert fetch_model.load_secrets(tmp_path, environ) == ["MLFLOW_TRACKING_TOKEN"]
    assert environ == {"MLFLOW_TRACKING_TOKEN": "s3cret"}


def test_an_empty_s3_endpoint_build_arg_means_none() -> None:
    environ = {"MLFLOW_S3_ENDPOINT_URL": "", "MLFLOW_TRACKING_URI": "http://registry:5000"}
    fetch_model.drop_empty_variables(environ)
    assert environ == {"MLFLOW_TRACKING_URI": "http://registry:5000"}
    environ = {"MLFLOW_S3_ENDPOINT_URL": "http://minio:9000"}
    fetch_model.drop_empty_variables(environ)
    assert environ == {"MLFLOW_S3_ENDPOINT_URL": "http://minio:9000"}


def test_reads_the_repository_pin_shape(tmp_path: Path) -> None:
    pin = tmp_path / "model_version.json"
    pin.write_text(json.dumps({"name": "twenty-questions", "version": "3"}))
    assert fetch_model.read_pin(pin) == {"name": "twenty-questions", "version": "3", "run_id": ""}
    pin.write_text(json.dumps({"name": "", "version": "3"}))
    with pytest.raises(ValueError, match="non-empty 'name' and 'version'"):
        fetch_model.read_pin(pin)


def test_labels_that_disagree_with_the_pin_stop_the_build() -> None:
    pin = {"name": "twenty-questions", "version": "3", "run_id": "abc"}
    fetch_model.check_expected(pin, {"name": "twenty-questions", "version": "3", "run_id": ""})
    with pytest.raises(ValueError, match="model version '4'"):
        fetch_model.check_expected(pin, {"version": "4"})


def test_a_bad_pin_exits_2_before_touching_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pin = tmp_path / "model_version.json"
    pin.write_text("{not json")
    code = fetch_model.main(
        [
            "--pin", str(pin),
            "--dest", str(tmp_path / "model"),
            "--pin-out", str(tmp_path / "out.json"),
            "--secrets-dir", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 2
    assert "fetch_model:" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
