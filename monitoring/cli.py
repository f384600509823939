"""`twentyq export` (the sidecar) and `twentyq drift` (the drift job)."""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from monitoring.consumer import ExportConsumer
from monitoring.metric import ExportMetrics
from monitoring.settings import MonitoringSettings, parse_duration
from monitoring.sink import open_sink
from producer.broker import BrokerSettings, connect
from producer.errors import ConfigurationError, TwentyQError
from producer.pin import describe_pin_of
from producer.settings import load_broker_settings, load_settings

if TYPE_CHECKING:
    from monitoring.job import DriftRun

logger = logging.getLogger("monitoring")


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _settings(**overrides: Any) -> MonitoringSettings:
    try:
        return load_settings(MonitoringSettings, **overrides)
    except ConfigurationError as error:
        raise SystemExit(f"twentyq: {error}") from error


def _broker_settings() -> BrokerSettings:
    try:
        return load_broker_settings()
    except ConfigurationError as error:
        raise SystemExit(f"twentyq: {error}") from error


def _on_stop_signals(stop: Any) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop())


def export_main(argv: Sequence[str]) -> int:
    """Run the export sidecar until SIGTERM or SIGINT; flush what it holds, then exit 0."""
    argparse.ArgumentParser(
        prog="twentyq export",
        description="Consume twentyq.export and write Parquet batches to MONITORING_SINK_URL.",
    ).parse_args(list(argv))
    _configure_logging()
    settings = _settings()
    broker = _broker_settings()
    print(f"twentyq export: {broker.describe()} · sink {settings.sink_url}", file=sys.stderr)
    metrics = ExportMetrics()
    try:
        sink = open_sink(settings.sink_url, settings.s3_endpoint_url)
        metrics.serve(settings.metrics_port)
    except (TwentyQError, OSError) as error:
        print(f"twentyq export: {error}", file=sys.stderr)
        return 2
    connection = connect(broker)
    consumer = ExportConsumer(connection, sink, settings, metrics)
    _on_stop_signals(consumer.request_stop)
    logger.info(
        "exporting %s to %s in batches of %d (metrics on port %d)",
        "twentyq.export",
        sink.url,
        settings.batch_size,
        settings.metrics_port,
    )
    try:
        consumer.run()
    finally:
        connection.release()
    logger.info("export sidecar stopped")
    return 0


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _print_run(run: DriftRun, as_json: bool) -> None:
    if as_json:
        body = {
            "report": str(run.report_path),
            "mlflow_run_ids": run.mlflow_run_ids,
            "alert_posted": run.alert_posted,
            "versions": [drift.summary() for drift in run.drifts],
        }
        print(json.dumps(_finite(body), indent=2, default=str), flush=True)
        return
    for drift in run.drifts:
        print(f"model {drift.model_name} version {drift.model_version} ({drift.reference_note})")
        for metric in drift.windows[-1].metrics:
            print(
                f"  {metric.name:<22} value {metric.value:8.4f}  threshold {metric.threshold:6.3f}"
                f"  p {metric.p_value:9.3g}  n {metric.n_reference}/{metric.n_current}"
                f"  {metric.verdict}"
            )
        for alert in drift.alerts:
            print(f"  ALERT {alert.metric}: breached {alert.consecutive} windows in a row")
    print(f"report: {run.report_path}", flush=True)


def _drift_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twentyq drift",
        description="Compare exported production records with the pinned model's reference.",
    )
    parser.add_argument("--window", help="window length, e.g. 7d, 12h (MONITORING_WINDOW)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--every", help="keep running, once per this interval, e.g. 7d")
    parser.add_argument("--end", help="end of the newest window, ISO 8601 (default: now)")
    return parser


def drift_main(argv: Sequence[str]) -> int:
    """Run the drift job once (or every ``--every``); exit 0 on success, 2 on an error."""
    args = _drift_parser().parse_args(list(argv))
    _configure_logging()
    # Imported here so the export sidecar never loads MLflow, scipy or matplotlib.
    from monitoring.job import run_drift, run_every  # noqa: PLC0415

    settings = _settings(**({"window": args.window} if args.window else {}))
    print(f"twentyq drift: {describe_pin_of(settings)}", file=sys.stderr, flush=True)
    try:
        end = datetime.fromisoformat(args.end).astimezone(UTC) if args.end else None
        interval_s = parse_duration(args.every).total_seconds() if args.every else None
    except ValueError as error:
        print(f"twentyq drift: {error}", file=sys.stderr)
        return 2
    if interval_s is not None:
        stop = threading.Event()
        _on_stop_signals(stop.set)
        run_every(settings, interval_s, stop, lambda run: _print_run(run, args.json))
        return 0
    try:
        run = run_drift(settings, end)
    except TwentyQError as error:
        print(f"twentyq drift: {error}", file=sys.stderr)
        return 2
    _print_run(run, args.json)
    return 0
