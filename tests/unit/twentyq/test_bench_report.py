"""`twentyq bench`: target verdicts and the written report (JSON, markdown, PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from twentyq.benchmark.report import (
    Target,
    evaluate_targets,
    latency_at,
    render_markdown,
    write_report,
)


def _run(
    throughput: float, p50: float, p99: float, fraction: float | None = None
) -> dict[str, Any]:
    run: dict[str, Any] = {
        "mode": "open" if fraction else "saturation",
        "offered_per_s": throughput if fraction else None,
        "throughput_per_s": throughput,
        "latency_ms": {"count": 10, "mean_ms": p50, "p50_ms": p50, "p95_ms": p99, "p99_ms": p99},
        "sent": 10,
        "answered": 10,
        "failed": 0,
        "lost": 0,
        "errors": [],
        "client_cpu_ms_per_request": 0.4,
        "client_busy_fraction": 0.2,
        "client_may_limit": False,
    }
    if fraction:
        run["fraction"] = fraction
    return run


def _served(saturation: float, p50_at_half: float, cold_start_s: float) -> dict[str, Any]:
    return {
        "saturation_per_s": saturation,
        "saturation": _run(saturation, 40.0, 90.0),
        "loads": [
            _run(saturation * 0.25, 5.0, 20.0, 0.25),
            _run(saturation * 0.5, p50_at_half, 25.0, 0.5),
            _run(saturation * 0.9, 30.0, 120.0, 0.9),
        ],
        "cold_start_s": cold_start_s,
        "memory": [
            {
                "pid": 10,
                "command": "python -m twentyq.cli worker",
                "rss_mib": 600.0,
                "pss_mib": 250.0,
            },
            {
                "pid": 11,
                "command": "python -m twentyq.cli worker",
                "rss_mib": 500.0,
                "pss_mib": 200.0,
            },
        ],
    }


def _report() -> dict[str, Any]:
    scenarios = {
        "limit": {
            "throughput_per_s": 2000.0,
            "saturation_per_s": 2000.0,
            "batch_size": 32,
            "processes": 2,
            "batch_curve": {"1": {"throughput_per_s": 300.0}, "32": {"throughput_per_s": 1500.0}},
        },
        "batched": {
            **_served(1500.0, 4.0, 9.0),
            "cpu_ms_per_turn": {"worker main process": 0.2, "redis": 0.1, "client": 0.25},
        },
        "unbatched": _served(400.0, 8.0, 9.5),
        "mlflow_serve": {**_served(600.0, 9.0, 20.0), "client_ping": {"requests_per_s": 3000}},
    }
    return {
        "command": "twentyq bench --quick",
        "started_at": "2026-11-22T15:00:00+00:00",
        "machine": {
            "cpus": 2,
            "load_average_before": [0.5, 0.4, 0.3],
            "load_average_after": [1.5, 1.0, 0.5],
            "python": "3.11.7",
        },
        "model": {"name": "twenty-questions", "version": "1"},
        "corpus": {
            "turns": 900,
            "games": 60,
            "history_length": {"mean": 7.5},
            "free_text_share": 0.2,
        },
        "client": {"how": "one thread", "celery_send": {"send_rate_per_s": 4000.0}},
        "scenarios": scenarios,
        "targets": [target.to_dict() for target in evaluate_targets(scenarios)],
    }


def test_targets_are_judged_from_the_run() -> None:
    verdicts = {target.name: target for target in evaluate_targets(_report()["scenarios"])}
    ratio = verdicts["batched / one-turn-per-task throughput"]
    assert ratio.value == pytest.approx(3.75) and ratio.met is True
    assert verdicts["batched / mlflow models serve throughput"].met is True  # 2.5x
    limit = verdicts["batched / in-process limit throughput"]
    assert limit.value == pytest.approx(0.75) and limit.met is True
    assert verdicts["batched / stock Celery throughput"].met is None  # not run
    assert verdicts["batched p50 enqueue→guess at 50% load"].value == 4.0
    assert verdicts["batched p99 enqueue→guess at 50% load"].met is True
    cpu = verdicts["batched CPU per turn at saturation (client + worker + Redis)"]
    assert cpu.value == pytest.approx(0.55) and cpu.met is True
    assert verdicts["worker cold start to first guess"].met is True


def test_missed_and_unmeasured_targets_say_so() -> None:
    scenarios = _report()["scenarios"]
    scenarios["batched"] = _served(1000.0, 20.0, 30.0)
    del scenarios["mlflow_serve"]
    verdicts = {target.name: target for target in evaluate_targets(scenarios)}
    assert verdicts["batched / one-turn-per-task throughput"].met is False  # 2.5x
    assert verdicts["batched p50 enqueue→guess at 50% load"].met is False
    assert verdicts["worker cold start to first guess"].met is False
    unmeasured = verdicts["batched / mlflow models serve throughput"]
    assert unmeasured.value is None and unmeasured.met is None


def test_a_target_at_its_threshold_is_met() -> None:
    assert Target("x", 15.0, 15.0, at_least=False).met is True
    assert Target("x", 3.0, 3.0, at_least=True).met is True
    assert Target("x", 2.99, 3.0, at_least=True).met is False


def test_latency_is_read_at_the_asked_load() -> None:
    scenario = _served(1000.0, 11.0, 5.0)
    assert latency_at(scenario, 0.5, "p50_ms") == 11.0
    assert latency_at(scenario, 0.9, "p99_ms") == 120.0
    assert latency_at(scenario, 0.75, "p50_ms") is None
    assert latency_at(None, 0.5, "p50_ms") is None


def test_markdown_holds_every_scenario_and_verdict() -> None:
    text = render_markdown(_report())
    assert "twentyq bench --quick" in text
    assert "load average [0.5, 0.4, 0.3] before" in text
    for title in ("in-process predict", "batching on", "one turn per task", "mlflow models serve"):
        assert title in text
    assert "| Celery pipeline, batching on | 50% | 750 | 750 | 4.0 | 25.0 | 25.0 | 0 | – |" in text
    assert "| batched / one-turn-per-task throughput | ≥ 3 x | 3.75 x | met |" in text
    assert "| Celery pipeline, batching on | 1500 | 9.0 | 2 | 1100 | 450 |" in text


def test_report_files_are_written(tmp_path: Path) -> None:
    report = _report()
    paths = write_report(report, tmp_path / "out")
    assert json.loads(paths["json"].read_text())["scenarios"]["batched"]["saturation_per_s"] == 1500
    assert paths["markdown"].read_text().startswith("# twentyq bench")
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cpu_per_turn_and_client_headroom_are_reported() -> None:
    report = _report()
    report["scenarios"]["batched"]["cpu_ms_per_turn"] = {"worker pool": 3.0, "redis": 0.5}
    text = render_markdown(report)
    assert "| Celery pipeline, batching on | worker pool | 3.000 |" in text
    assert "| Celery pipeline, batching on | **total** | **3.500** |" in text
    assert "2.7× the batched pipeline's saturation" in text  # 4000 / 1500


def test_the_stock_celery_scenario_is_reported_and_judged() -> None:
    report = _report()
    report["scenarios"]["stock_celery"] = _served(500.0, 10.0, 12.0)
    report["client"]["stock_celery_send"] = {"send_rate_per_s": 1000.0}
    report["targets"] = [target.to_dict() for target in evaluate_targets(report["scenarios"])]
    verdicts = {target["name"]: target for target in report["targets"]}
    assert verdicts["batched / stock Celery throughput"]["value"] == pytest.approx(3.0)
    assert verdicts["batched / stock Celery throughput"]["met"] is True
    text = render_markdown(report)
    assert "| stock Celery app, send_task | 500 | 12.0 | 2 | 1100 | 450 |" in text
    assert "| stock Celery app, send_task | 50% | 250 | 250 | 10.0 |" in text
    assert "| batched / stock Celery throughput | ≥ 3 x | 3.00 x | met |" in text
    assert "2.0× the stock Celery app's saturation" in text  # 1000 / 500


def test_without_stock_celery_its_target_is_not_measured() -> None:
    verdicts = {target.name: target for target in evaluate_targets(_report()["scenarios"])}
    unmeasured = verdicts["batched / stock Celery throughput"]
    assert unmeasured.value is None and unmeasured.met is None
    assert "stock_celery_send" not in render_markdown(_report())


def test_a_run_without_the_limit_says_so() -> None:
    report = _report()
    assert "N=32: 1500" in render_markdown(report)
    del report["scenarios"]["limit"]
    assert "The limit: not measured in this run." in render_markdown(report)
