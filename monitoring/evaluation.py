"""The drift job: windows of exported records per model version against their reference."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from pydantic import ValidationError

from monitoring.drift import MetricResult, evaluate_window, outcome_counts, reveal_rate
from monitoring.errors import NoRecordsError, ReferenceUnavailableError
from monitoring.record import UNKNOWN_VERSION, assign_outcome_versions
from monitoring.reference import Reference, fetch_reference
from monitoring.settings import MonitoringSettings
from producer.pin import ModelPin, read_pin

logger = logging.getLogger(__name__)


@dataclass
class WindowResult:
    """Every metric of one model version over ``[start, end)``."""

    start: datetime
    end: datetime
    metrics: list[MetricResult]

    def metric(self, name: str) -> MetricResult:
        """The result of the metric called ``name``."""
        return next(result for result in self.metrics if result.name == name)


@dataclass(frozen=True)
class Alert:
    """A metric that breached in the last ``consecutive`` windows of one model version."""

    metric: str
    model_name: str
    model_version: str
    consecutive: int
    value: float
    threshold: float
    p_value: float
    reference_value: float
    current_value: float


@dataclass
class VersionDrift:
    """The drift of one model version across the evaluated windows (oldest first)."""

    model_name: str
    model_version: str
    reference_run_id: str
    reference_note: str
    windows: list[WindowResult]
    alerts: list[Alert] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary of the latest window and the alerts."""
        latest = self.windows[-1]
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "reference_run_id": self.reference_run_id,
            "reference": self.reference_note,
            "window": {"start": latest.start.isoformat(), "end": latest.end.isoformat()},
            "metrics": {
                m.name: {
                    "value": m.value,
                    "threshold": m.threshold,
                    "p_value": m.p_value,
                    "n_reference": m.n_reference,
                    "n_current": m.n_current,
                    "reference_value": m.reference_value,
                    "current_value": m.current_value,
                    "breach": m.breach,
                    "verdict": m.verdict,
                }
                for m in latest.metrics
            },
            "alerts": [alert.__dict__ for alert in self.alerts],
        }


def window_bounds(end: datetime, length: timedelta, count: int) -> list[tuple[datetime, datetime]]:
    """``count`` back-to-back windows of ``length`` ending at ``end``, oldest first."""
    return [(end - length * (k + 1), end - length * k) for k in reversed(range(count))]


def find_alerts(drift: VersionDrift, after_windows: int) -> list[Alert]:
    """Metrics that breached in each of the last ``after_windows`` windows."""
    if len(drift.windows) < after_windows:
        return []
    recent = drift.windows[-after_windows:]
    alerts = []
    for latest in recent[-1].metrics:
        if all(window.metric(latest.name).breach for window in recent):
            alerts.append(
                Alert(
                    metric=latest.name,
                    model_name=drift.model_name,
                    model_version=drift.model_version,
                    consecutive=after_windows,
                    value=latest.value,
                    threshold=latest.threshold,
                    p_value=latest.p_value,
                    reference_value=latest.reference_value,
                    current_value=latest.current_value,
                )
            )
    return alerts


def _rebase_reveal_rate(
    windows: list[WindowResult], frames: list[pd.DataFrame], settings: MonitoringSettings
) -> None:
    """Compare reveal rates with the oldest window when the reference reveals every noun.

    An offline evaluation knows every secret noun, so its reveal rate is 100 % and says
    nothing about players; production's own oldest window is the baseline instead.
    """
    for window, frame in zip(windows, frames, strict=True):
        result = reveal_rate(frames[0], frame, settings)
        result.details["baseline"] = f"oldest window, from {windows[0].start.isoformat()}"
        window.metrics = [result if m.name == result.name else m for m in window.metrics]


def evaluate_version(
    records: pd.DataFrame,
    reference: Reference,
    bounds: list[tuple[datetime, datetime]],
    settings: MonitoringSettings,
    *,
    model_version: str,
    reference_note: str = "",
) -> VersionDrift:
    """One model version's records, window by window, against its reference."""
    times = records["event_time"]
    frames = [
        records[(times >= pd.Timestamp(start)) & (times < pd.Timestamp(end))]
        for start, end in bounds
    ]
    vocabulary = set(reference.vocabulary)
    windows = [
        WindowResult(start, end, evaluate_window(reference.frame, frame, vocabulary, settings))
        for (start, end), frame in zip(bounds, frames, strict=True)
    ]
    revealed, games = outcome_counts(reference.frame, "revealed_noun")
    if games and revealed == games:
        _rebase_reveal_rate(windows, frames, settings)
    drift = VersionDrift(
        model_name=reference.model_name,
        model_version=model_version,
        reference_run_id=reference.run_id,
        reference_note=reference_note or f"version {reference.model_version}",
        windows=windows,
    )
    drift.alerts = find_alerts(drift, settings.alert_after_windows)
    return drift


def _reference_for(
    name: str, version: str, pinned: Reference, fetch: Callable[[ModelPin], Reference]
) -> tuple[Reference, str]:
    if version == pinned.model_version and name == pinned.model_name:
        return pinned, f"pinned version {version}"
    try:
        return fetch(ModelPin(name=name, version=version)), f"own reference of version {version}"
    except (ReferenceUnavailableError, ValidationError) as error:
        logger.warning(
            "version %s has no reference of its own, using the pinned one: %s", version, error
        )
        return pinned, f"pinned version {pinned.model_version} (version {version} has none)"


def evaluate_records(
    records: pd.DataFrame,
    pinned: Reference,
    bounds: list[tuple[datetime, datetime]],
    settings: MonitoringSettings,
    fetch: Callable[[ModelPin], Reference],
) -> list[VersionDrift]:
    """Split records by model version and evaluate each against its reference."""
    records = assign_outcome_versions(records)
    records = records.assign(model_version=records["model_version"].fillna(UNKNOWN_VERSION))
    results = []
    for version, rows in sorted(records.groupby("model_version"), key=lambda item: str(item[0])):
        names = rows["model_name"].dropna()
        name = str(names.iloc[0]) if len(names) else pinned.model_name
        reference, note = _reference_for(name, str(version), pinned, fetch)
        results.append(
            evaluate_version(
                rows, reference, bounds, settings, model_version=str(version), reference_note=note
            )
        )
    return results


def compute_drift(
    settings: MonitoringSettings, records: pd.DataFrame, end: datetime
) -> list[VersionDrift]:
    """Fetch the pinned reference and evaluate the records (already read from the sink)."""
    pin = read_pin(settings.pin_path)
    pinned = fetch_reference(settings.tracking_uri, pin)
    if records.empty:
        raise NoRecordsError(
            f"no exported records up to {end.isoformat()} in {settings.sink_url}: is the export "
            "sidecar running (`twentyq export`) and MONITORING_SINK_URL the same for both?"
        )
    bounds = window_bounds(end, settings.window_length, settings.windows_compared)
    return evaluate_records(
        records, pinned, bounds, settings, lambda p: fetch_reference(settings.tracking_uri, p)
    )
