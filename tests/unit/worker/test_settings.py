"""Worker settings: defaults, env names, and failing fast with what to set."""

from __future__ import annotations

from pathlib import Path

import pytest

from producer.errors import ConfigurationError
from worker.app import worker_config
from worker.settings import WorkerSettings, load_broker_settings


def test_defaults_and_the_shared_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("TWENTYQ_PIN_PATH", "/pins/model_version.json")
    settings = WorkerSettings.from_env()
    assert settings.tracking_uri == "http://mlflow:5000"
    assert settings.pin_path == Path("/pins/model_version.json")
    assert (settings.batch_size, settings.batch_window_ms, settings.metrics_port) == (32, 0, 9100)


def test_an_invalid_setting_names_the_variable_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_BATCH_SIZE", "0")
    monkeypatch.setenv("WORKER_POOL", "gevent")
    with pytest.raises(ConfigurationError) as caught:
        WorkerSettings.from_env()
    message = str(caught.value)
    assert "WORKER_BATCH_SIZE" in message and "WORKER_POOL" in message


def test_a_model_path_without_a_model_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WORKER_MODEL_PATH", str(tmp_path))
    with pytest.raises(ConfigurationError, match="WORKER_MODEL_PATH"):
        WorkerSettings.from_env()


def test_the_visibility_timeout_must_outlast_the_longest_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TWENTYQ_VISIBILITY_TIMEOUT_S", "10")
    settings = WorkerSettings(max_retries=4, retry_backoff_s=1.0)  # 1+2+4+8 = 15 s of back-off
    with pytest.raises(ConfigurationError, match="TWENTYQ_VISIBILITY_TIMEOUT_S"):
        load_broker_settings(settings)
    assert load_broker_settings(WorkerSettings(max_retries=1)).visibility_timeout_s == 10


def test_prefetch_holds_one_batch_per_process_and_acks_come_late() -> None:
    config = worker_config(WorkerSettings(batch_size=16, concurrency=2))
    assert config["worker_prefetch_multiplier"] == 32  # one batch running, one filling
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_consumer"] == "worker.consumer:TurnConsumer"


def test_one_batch_runs_per_pool_process_and_one_in_a_solo_pool() -> None:
    assert WorkerSettings(concurrency=3).pool_slots == 3
    assert WorkerSettings(concurrency=3, pool="threads").pool_slots == 3
    assert WorkerSettings(concurrency=3, pool="solo").pool_slots == 1
