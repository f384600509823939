"""Monitoring settings come from MONITORING_* (and the shared names), checked at start-up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from monitoring.settings import MonitoringSettings, parse_duration


def test_defaults_match_the_documentation(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_TRACKING_URI", "TWENTYQ_PIN_PATH", "MONITORING_METRICS_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = MonitoringSettings()
    assert settings.sink_url == "file://./.twentyq/exports"
    assert settings.metrics_port == 9101
    assert settings.tracking_uri == "sqlite:///.twentyq/mlflow.db"
    assert settings.pin_path == Path(".twentyq/model_version.json")  # the local store's own
    assert settings.window_length == timedelta(days=7)


def test_environment_overrides_use_the_documented_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITORING_SINK_URL", "s3://bucket/exports")
    monkeypatch.setenv("MONITORING_BATCH_SIZE", "42")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("TWENTYQ_PIN_PATH", "/pins/model.json")
    settings = MonitoringSettings()
    assert (settings.sink_url, settings.batch_size) == ("s3://bucket/exports", 42)
    assert settings.tracking_uri == "http://mlflow:5000"
    assert settings.pin_path == Path("/pins/model.json")


def test_a_bad_sink_url_fails_fast_saying_what_to_set() -> None:
    with pytest.raises(ValidationError, match="MONITORING_SINK_URL"):
        MonitoringSettings(sink_url="ftp://host/path")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", timedelta(seconds=90)), ("12h", timedelta(hours=12)), ("7d", timedelta(days=7))],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_a_bad_window_says_how_to_write_one() -> None:
    with pytest.raises(ValidationError, match=r"e\.g\. 90s"):
        MonitoringSettings(window="a week")
