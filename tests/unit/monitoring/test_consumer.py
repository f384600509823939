"""The export consumer on kombu's in-memory broker: batches, acknowledgements, retries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kombu import Connection  # type: ignore[attr-defined]
from kombu.message import Message

from monitoring.consumer import ExportConsumer
from monitoring.errors import SinkUnavailableError
from monitoring.settings import MonitoringSettings
from monitoring.sink import LocalSink
from producer.broker import publish_json, task_queues
from producer.messages import EXPORT_QUEUE
from tests.unit.monitoring.synthetic import (
    REFERENCE,
    event_bodies,
    events_from_records,
    synthetic_records,
)
from tests.unit.monitoring.test_sink import DAY

EXPORT = next(q for q in task_queues() if q.name == EXPORT_QUEUE)


class FlakySink(LocalSink):
    """A local sink whose first ``failures`` writes fail; records every batch size."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures
        self.batch_sizes: list[int] = []

    def write_records(self, records: list[dict[str, Any]]) -> list[str]:
        if self.failures:
            self.failures -= 1
            raise SinkUnavailableError("the sink is down for this test")
        self.batch_sizes.append(len(records))
        return super().write_records(records)


@pytest.fixture()
def connection() -> Iterator[Connection]:
    with Connection("memory://") as conn:
        EXPORT(conn.default_channel).declare()
        EXPORT(conn.default_channel).purge()
        yield conn


def _bodies(games: int) -> list[dict[str, Any]]:
    frame = synthetic_records(np.random.default_rng(games), games, REFERENCE, DAY, DAY)
    return event_bodies(events_from_records(frame))


def _publish(connection: Connection, bodies: list[dict[str, Any]]) -> None:
    for body in bodies:
        publish_json(connection, EXPORT_QUEUE, body)


def _settings(tmp_path: Path, **changes: Any) -> MonitoringSettings:
    values: dict[str, Any] = {
        "sink_url": f"file://{tmp_path}",
        "batch_size": 10,
        "max_batch_age_s": 60.0,
        "poll_interval_s": 0.05,
        "write_retry_initial_s": 0.01,
        "write_retry_max_s": 0.05,
        "metrics_port": 0,
    }
    return MonitoringSettings(**(values | changes))


def _run_until(consumer: ExportConsumer, done: Callable[[], bool], timeout_s: float = 20.0) -> None:
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)
    consumer.request_stop()
    thread.join(timeout=20)
    assert not thread.is_alive(), "the consumer did not stop"


def _queued(connection: Connection) -> int:
    return int(EXPORT(connection.default_channel).queue_declare(passive=True).message_count)


def test_every_event_is_written_in_bounded_batches_and_acknowledged(
    connection: Connection, tmp_path: Path
) -> None:
    bodies = _bodies(3)
    _publish(connection, bodies)
    sink = FlakySink(tmp_path, failures=0)
    consumer = ExportConsumer(connection.clone(), sink, _settings(tmp_path, max_batch_age_s=0.2))
    _run_until(consumer, lambda: sum(sink.batch_sizes) >= len(bodies))
    assert max(sink.batch_sizes) <= 10, "a batch grew past batch_size"
    assert sorted(sink.read_records()["event_id"]) == sorted(
        b.get("turn_id") or f"outcome:{b['game_id']}" for b in bodies
    )
    assert _queued(connection) == 0
    metrics = consumer.metrics
    assert metrics.records.labels(kind="outcome")._value.get() == 3
    assert metrics.batches._value.get() == len(sink.batch_sizes)


def test_a_failing_sink_is_retried_without_losing_the_batch(
    connection: Connection, tmp_path: Path
) -> None:
    bodies = _bodies(1)
    _publish(connection, bodies)
    sink = FlakySink(tmp_path, failures=3)
    settings = _settings(tmp_path, batch_size=100, max_batch_age_s=0.1)
    consumer = ExportConsumer(connection.clone(), sink, settings)
    _run_until(consumer, lambda: sum(sink.batch_sizes) >= len(bodies))
    assert consumer.metrics.write_errors._value.get() == 3
    assert len(sink.read_records()) == len(bodies)
    assert _queued(connection) == 0


def test_stopping_while_the_sink_is_down_acknowledges_nothing(
    connection: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    acknowledged: list[object] = []
    monkeypatch.setattr(Message, "ack", lambda message, *_, **__: acknowledged.append(message))
    bodies = _bodies(1)
    _publish(connection, bodies)
    sink = FlakySink(tmp_path, failures=10**6)
    settings = _settings(tmp_path, batch_size=100, max_batch_age_s=0.1)
    consumer = ExportConsumer(connection.clone(), sink, settings)
    _run_until(consumer, lambda: consumer.metrics.write_errors._value.get() >= 2)
    assert sink.read_records().empty
    # Unacknowledged, the events go back to the broker (Redis: after the visibility timeout).
    assert acknowledged == []
    assert consumer.held_count == len(bodies)


def test_undecodable_events_are_dead_lettered_not_dropped(
    connection: Connection, tmp_path: Path
) -> None:
    _publish(connection, [{"kind": "guess", "nonsense": True}, *_bodies(1)[:2]])
    producer = connection.Producer()
    producer.publish(
        b"{not json",
        exchange=EXPORT.exchange,
        routing_key=EXPORT.routing_key,
        content_type="application/json",
        content_encoding="utf-8",
    )
    sink = FlakySink(tmp_path, failures=0)
    consumer = ExportConsumer(connection.clone(), sink, _settings(tmp_path, batch_size=4))
    _run_until(consumer, lambda: sum(sink.batch_sizes) >= 2)
    rejected = [p.read_text() for p in (tmp_path / "_rejected").rglob("*.jsonl")]
    assert "nonsense" in "".join(rejected) and "{not json" in "".join(rejected)
    assert consumer.metrics.rejected._value.get() == 2
    assert len(sink.read_records()) == 2
    assert _queued(connection) == 0


def test_a_partial_batch_is_due_once_its_oldest_event_is_old_enough(tmp_path: Path) -> None:
    now = [100.0]
    consumer = ExportConsumer(
        Connection("memory://"),
        LocalSink(tmp_path),
        _settings(tmp_path, max_batch_age_s=30.0),
        clock=lambda: now[0],
    )

    class Held:
        body = b"{}"
        content_type = "application/json"

        def decode(self) -> dict[str, Any]:
            return {}

    consumer.handle_message(Held())  # type: ignore[arg-type]
    assert consumer.held_count == 1 and not consumer.is_due()
    now[0] += 30.0
    assert consumer.is_due()
