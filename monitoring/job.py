"""One drift run end to end: read the sink, evaluate, report, log to MLflow, alert."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from monitoring.alert import alert_message, post_alert
from monitoring.evaluation import Alert, VersionDrift, compute_drift
from monitoring.report import write_report
from monitoring.settings import MonitoringSettings
from monitoring.sink import open_sink
from monitoring.tracking import log_drift
from producer.errors import TwentyQError

logger = logging.getLogger(__name__)


@dataclass
class DriftRun:
    """What one drift run produced."""

    drifts: list[VersionDrift]
    report_path: Path
    mlflow_run_ids: list[str]
    alerts: list[Alert]
    alert_posted: bool


def report_link(settings: MonitoringSettings, path: Path) -> str:
    """Where a reader of the alert finds the report: under the base URL, else a file URL."""
    if settings.report_base_url:
        return f"{settings.report_base_url.rstrip('/')}/{path.name}"
    return path.resolve().as_uri()


def run_drift(settings: MonitoringSettings, end: datetime | None = None) -> DriftRun:
    """Evaluate the windows ending at ``end`` (now by default) and act on the result."""
    end = end or datetime.now(UTC)
    start = end - settings.window_length * settings.windows_compared
    records = open_sink(settings.sink_url, settings.s3_endpoint_url).read_records(start, end)
    drifts = compute_drift(settings, records, end)
    path = write_report(
        drifts, datetime.now(UTC), settings.report_dir / f"drift-{end:%Y%m%dT%H%M%SZ}.html"
    )
    run_ids = [log_drift(drift, settings, path) for drift in drifts]
    alerts = [alert for drift in drifts for alert in drift.alerts]
    posted = False
    if alerts and settings.webhook_url:
        post_alert(settings.webhook_url, alert_message(alerts, report_link(settings, path)))
        posted = True
    elif alerts:
        logger.warning("drift alert with no MONITORING_WEBHOOK_URL set: %s", alerts)
    return DriftRun(drifts, path, run_ids, alerts, posted)


def run_every(
    settings: MonitoringSettings,
    interval_s: float,
    stop: threading.Event,
    on_run: Callable[[DriftRun], None] | None = None,
) -> None:
    """Run the drift job every ``interval_s`` seconds until ``stop`` is set.

    A run that fails is logged and the schedule goes on: the next window may succeed.
    """
    while not stop.is_set():
        started = datetime.now(UTC)
        try:
            result = run_drift(settings, started)
            if on_run is not None:
                on_run(result)
        except TwentyQError as error:
            logger.error("drift run at %s failed: %s", started.isoformat(), error)
        elapsed_s = (datetime.now(UTC) - started).total_seconds()
        stop.wait(max(0.0, interval_s - elapsed_s))
