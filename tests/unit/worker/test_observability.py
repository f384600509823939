"""Metrics and structured logs an operator reads."""

from __future__ import annotations

import json
import logging

from prometheus_client import generate_latest

from tests.unit.worker.conftest import MODEL
from worker.log import JsonFormatter
from worker.metrics import BatchReport, WorkerMetrics


def test_a_batch_report_lands_in_the_metrics() -> None:
    metrics = WorkerMetrics()
    metrics.record_model(MODEL)
    metrics.record_batch(
        BatchReport(
            batch_size=3,
            inference_s=0.02,
            queue_latencies_s=[0.1, 0.2],
            outcomes={"answered": 2, "dead_lettered": 1},
            dead_letters={"invalid_turn": 1},
        )
    )
    metrics.record_dead_letter("undecodable")
    page = generate_latest(metrics.registry).decode()
    assert 'twentyq_worker_turns_total{outcome="answered"} 2.0' in page
    assert 'twentyq_worker_turns_total{outcome="dead_lettered"} 2.0' in page
    assert 'twentyq_worker_dead_letters_total{reason="undecodable"} 1.0' in page
    assert "twentyq_worker_batch_size_sum 3.0" in page
    assert "twentyq_worker_queue_latency_seconds_count 2.0" in page
    assert 'name="stub",run_id="run-7",version="7"} 1.0' in page


def test_log_lines_are_json_carrying_turn_and_game_ids() -> None:
    record = logging.LogRecord("worker.task", logging.INFO, __file__, 1, "answered turn", (), None)
    record.turn_id = "t-1"
    record.game_id = "g-1"
    line = json.loads(JsonFormatter().format(record))
    assert (line["message"], line["turn_id"], line["game_id"]) == ("answered turn", "t-1", "g-1")
    assert line["level"] == "INFO"
