"""Which pin a command reads: the store's own after `make demo`, the committed one for a
shared registry, TWENTYQ_PIN_PATH over both; and the line that says so."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from model.settings import ModelSettings
from monitoring.cli import drift_main
from monitoring.settings import MonitoringSettings
from producer.errors import ConfigurationError
from producer.pin import (
    COMMITTED_PIN_PATH,
    ModelPin,
    default_pin_path,
    describe_pin_of,
    local_pin_path,
    read_pin,
    write_pin,
)
from worker.settings import WorkerSettings

SHARED_NAMES = (
    "MLFLOW_TRACKING_URI",
    "WORKER_TRACKING_URI",
    "MONITORING_TRACKING_URI",
    "MODEL_TRACKING_URI",
    "TWENTYQ_PIN_PATH",
    "WORKER_PIN_PATH",
    "MONITORING_PIN_PATH",
    "MODEL_PIN_PATH",
)
DEPLOYABLES: tuple[Callable[[], Any], ...] = (WorkerSettings, MonitoringSettings, ModelSettings)


def _describe(settings: Any) -> str:
    if isinstance(settings, ModelSettings):
        return settings.describe_pin_and_store()
    return describe_pin_of(settings)


@pytest.fixture()
def fresh_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with none of the pin or store variables set."""
    for name in SHARED_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("tracking_uri", "expected"),
    [
        ("sqlite:///.twentyq/mlflow.db", Path(".twentyq/model_version.json")),
        ("sqlite:////srv/mlflow/mlflow.db", Path("/srv/mlflow/model_version.json")),
        ("sqlite:///store.db?timeout=20", Path("model_version.json")),
        ("sqlite:///:memory:", None),
        ("sqlite://", None),
        ("http://mlflow.internal:5000", None),
        ("postgresql://mlflow@db/mlflow", None),
        ("databricks", None),
    ],
)
def test_only_a_local_sqlite_store_has_a_pin_of_its_own(
    tracking_uri: str, expected: Path | None
) -> None:
    assert local_pin_path(tracking_uri) == expected
    assert default_pin_path(tracking_uri) == (expected or COMMITTED_PIN_PATH)


@pytest.mark.parametrize("settings_class", DEPLOYABLES)
def test_after_the_demo_every_deployable_reads_the_demo_pin_unasked(
    settings_class: Callable[[], Any], fresh_clone: Path
) -> None:
    demo_pin = fresh_clone / ".twentyq" / "model_version.json"
    write_pin(ModelPin(name="twenty-questions", version="1", run_id="r1"), demo_pin)

    settings = settings_class()

    assert settings.pin_path == Path(".twentyq/model_version.json")
    assert read_pin(settings.pin_path).version == "1"
    line = _describe(settings)
    assert line.startswith("pin .twentyq/model_version.json (local fallback:")
    assert "MLflow store sqlite:///.twentyq/mlflow.db (default)" in line


@pytest.mark.parametrize("settings_class", DEPLOYABLES)
def test_a_shared_registry_keeps_the_committed_pin(
    settings_class: Callable[[], Any], fresh_clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Even with a demo's pin lying around: it belongs to the local store, not this one.
    write_pin(ModelPin(name="m", version="1"), fresh_clone / ".twentyq" / "model_version.json")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")

    settings = settings_class()

    assert settings.pin_path == COMMITTED_PIN_PATH
    assert _describe(settings) == (
        "pin mlflow/model_version.json (committed: the shared registry's pin) · "
        "MLflow store http://mlflow.internal:5000 (set by MLFLOW_TRACKING_URI)"
    )


@pytest.mark.parametrize("settings_class", DEPLOYABLES)
def test_a_pin_path_in_the_environment_wins_and_is_named(
    settings_class: Callable[[], Any], fresh_clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWENTYQ_PIN_PATH", "/etc/twentyq/model_version.json")

    settings = settings_class()

    assert settings.pin_path == Path("/etc/twentyq/model_version.json")
    assert _describe(settings).startswith(
        "pin /etc/twentyq/model_version.json (set by TWENTYQ_PIN_PATH) · "
    )


def test_the_model_tooling_follows_the_same_rule_as_the_other_deployables(
    fresh_clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # model/ may not import producer, so it keeps a copy of the rule: the two must agree.
    for uri in ("sqlite:///.twentyq/mlflow.db", "sqlite:////data/m.db", "http://mlflow:5000"):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        worker, tooling = WorkerSettings(), ModelSettings()
        assert tooling.pin_path == worker.pin_path
        assert tooling.describe_pin_and_store() == describe_pin_of(worker)


def test_a_fresh_clone_without_the_demo_is_told_how_to_make_the_pin(fresh_clone: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"model_version.json: run `make demo`"):
        read_pin(WorkerSettings().pin_path)


def test_drift_says_which_pin_and_store_before_it_fails(
    fresh_clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert drift_main(["--window", "1d"]) == 2
    first, *rest = capsys.readouterr().err.splitlines()
    assert first.startswith("twentyq drift: pin .twentyq/model_version.json (local fallback:")
    assert any("run `make demo`" in line for line in rest)
