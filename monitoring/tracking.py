"""Log drift statistics to MLflow: one monitoring run per model version per drift run."""

from __future__ import annotations

import math
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag

from mlflow import MlflowClient
from monitoring.evaluation import VersionDrift
from monitoring.settings import MonitoringSettings


def window_step(drift: VersionDrift, settings: MonitoringSettings, index: int) -> int:
    """A window's step: its end as a count of window lengths since the epoch.

    Steps are the same for the same window in every run, so the MLflow UI lines up
    one run's windows with another's.
    """
    end = drift.windows[index].end
    return int(end.timestamp() // settings.window_length.total_seconds())


def _metric_values(
    drift: VersionDrift, settings: MonitoringSettings
) -> list[tuple[str, float, int, int]]:
    rows = []
    for index, window in enumerate(drift.windows):
        step = window_step(drift, settings, index)
        timestamp_ms = int(window.end.timestamp() * 1000)
        for metric in window.metrics:
            figures = {
                "value": metric.value,
                "p_value": metric.p_value,
                "threshold": metric.threshold,
                "breach": float(metric.breach),
                "n_current": float(metric.n_current),
                "current_value": metric.current_value,
            }
            rows += [
                (f"{metric.name}.{key}", float(number), timestamp_ms, step)
                for key, number in figures.items()
                if math.isfinite(number)
            ]
    return rows


def log_drift(drift: VersionDrift, settings: MonitoringSettings, report: Path | None = None) -> str:
    """Log every statistic of every window, tagged with the model; return the run id."""
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    experiment = client.get_experiment_by_name(settings.experiment_name)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(settings.experiment_name)
    )
    latest = drift.windows[-1]
    run = client.create_run(
        experiment_id,
        run_name=f"drift-{drift.model_name}-v{drift.model_version}-{latest.end:%Y%m%dT%H%MZ}",
        tags={
            "model_name": drift.model_name,
            "model_version": drift.model_version,
            "reference_run_id": drift.reference_run_id,
            "twentyq.kind": "drift",
        },
    )
    run_id = str(run.info.run_id)
    metrics = [
        Metric(key, value, timestamp, step)
        for key, value, timestamp, step in _metric_values(drift, settings)
    ]
    params = [
        Param("window", settings.window),
        Param("windows_compared", str(settings.windows_compared)),
        Param("alert_after_windows", str(settings.alert_after_windows)),
        Param("significance_level", str(settings.significance_level)),
        Param("min_samples", str(settings.min_samples)),
        Param("reference", drift.reference_note),
    ]
    tags = [RunTag("alerts", ",".join(a.metric for a in drift.alerts) or "none")]
    for start in range(0, len(metrics), 900):
        client.log_batch(run_id, metrics=metrics[start : start + 900])
    client.log_batch(run_id, params=params, tags=tags)
    if report is not None:
        client.log_artifact(run_id, str(report), artifact_path="report")
    client.set_terminated(run_id)
    return run_id
