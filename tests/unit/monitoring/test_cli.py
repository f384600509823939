"""`twentyq drift` and `twentyq export` fail with messages that say what to do."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from monitoring import job
from monitoring.cli import drift_main, export_main
from monitoring.errors import NoRecordsError
from monitoring.settings import MonitoringSettings


def test_drift_without_a_pin_says_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MONITORING_SINK_URL", f"file://{tmp_path / 'exports'}")
    monkeypatch.setenv("TWENTYQ_PIN_PATH", str(tmp_path / "missing.json"))
    assert drift_main(["--window", "1d"]) == 2
    error = capsys.readouterr().err
    assert "no model pin" in error and "missing.json" in error


def test_drift_rejects_a_malformed_interval(capsys: pytest.CaptureFixture[str]) -> None:
    assert drift_main(["--every", "weekly"]) == 2
    assert "e.g. 90s" in capsys.readouterr().err


def test_invalid_settings_stop_the_sidecar_with_the_variable_to_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MONITORING_BATCH_SIZE", "0")
    with pytest.raises(SystemExit, match="MONITORING_"):
        export_main([])


def test_every_keeps_running_after_a_failed_run(monkeypatch: pytest.MonkeyPatch) -> None:
    stop = threading.Event()
    calls: list[str] = []

    def fake_run(settings: MonitoringSettings, end: object) -> str:
        calls.append("run")
        if len(calls) == 1:
            raise NoRecordsError("nothing exported yet")
        if len(calls) == 3:
            stop.set()
        return "done"

    monkeypatch.setattr(job, "run_drift", fake_run)
    seen: list[object] = []
    job.run_every(MonitoringSettings(), 0.01, stop, seen.append)  # type: ignore[arg-type]
    assert len(calls) == 3
    assert seen == ["done", "done"]
