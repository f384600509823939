"""The export sidecar as a process against real Redis: SIGKILL mid-batch loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import redis
from kombu import Connection  # type: ignore[attr-defined]

from monitoring.sink import LocalSink
from producer.broker import publish_json
from producer.messages import EXPORT_QUEUE
from tests.support.services import free_port
from tests.unit.monitoring.synthetic import (
    REFERENCE,
    event_bodies,
    events_from_records,
    synthetic_records,
)
from tests.unit.monitoring.test_sink import DAY

pytestmark = pytest.mark.integration

SIDECAR = "from monitoring.cli import export_main; raise SystemExit(export_main([]))"


def _start_sidecar(redis_url: str, sink_root: Path, metrics_port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TWENTYQ_BROKER_URL": redis_url,
        # Events a killed sidecar held come back after this (the setting's minimum).
        "TWENTYQ_VISIBILITY_TIMEOUT_S": "10",
        "MONITORING_SINK_URL": f"file://{sink_root}",
        "MONITORING_BATCH_SIZE": "100",
        "MONITORING_MAX_BATCH_AGE_S": "1",
        "MONITORING_POLL_INTERVAL_S": "0.2",
        "MONITORING_METRICS_PORT": str(metrics_port),
    }
    return subprocess.Popen(
        [sys.executable, "-c", SIDECAR],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )


def _wait_for(
    condition: Callable[[], bool], timeout_s: float, what: str, state: Callable[[], object] = str
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}: {state()}")


def _publish_slowly(redis_url: str, bodies: list[dict[str, object]], done: threading.Event) -> None:
    with Connection(redis_url) as connection:
        for index, body in enumerate(bodies):
            publish_json(connection, EXPORT_QUEUE, body)
            if index % 20 == 19:
                time.sleep(0.02)
    done.set()


def _event_ids(bodies: list[dict[str, object]]) -> set[str]:
    return {str(b.get("turn_id") or f"outcome:{b['game_id']}") for b in bodies}


def test_sidecar_killed_mid_batch_and_restarted_loses_no_record(
    redis_url: str, tmp_path: Path
) -> None:
    frame = synthetic_records(np.random.default_rng(42), 150, REFERENCE, DAY, DAY)
    bodies = event_bodies(events_from_records(frame))
    published = _event_ids(bodies)
    sink = LocalSink(tmp_path / "exports")
    client = redis.Redis.from_url(redis_url)
    publishing_done = threading.Event()
    publisher = threading.Thread(
        target=_publish_slowly, args=(redis_url, bodies, publishing_done), daemon=True
    )
    first = _start_sidecar(redis_url, sink.root, free_port())
    try:
        publisher.start()
        _wait_for(lambda: len(sink.record_keys()) >= 2, 60, "the first batches")
        # Mid-batch: the sidecar holds delivered, unacknowledged events right now.
        _wait_for(lambda: client.hlen("unacked") > 0, 10, "events in flight")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        in_flight = client.hlen("unacked")
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    assert in_flight > 0, "the sidecar was not killed mid-batch"
    written_before_restart = set(sink.read_records()["event_id"])
    assert written_before_restart < published

    publisher.join(timeout=60)
    assert publishing_done.is_set()
    metrics_port = free_port()
    second = _start_sidecar(redis_url, sink.root, metrics_port)
    try:
        # Done when every event is in the sink and the broker holds none, not even the ones
        # the killed sidecar had in flight (they come back after the visibility timeout).
        _wait_for(
            lambda: (
                set(sink.read_records()["event_id"]) == published
                and client.llen(EXPORT_QUEUE) == 0
                and client.hlen("unacked") == 0
            ),
            120,
            "every event in the sink and none left in the broker",
            lambda: {
                "missing": len(published - set(sink.read_records()["event_id"])),
                "queued": client.llen(EXPORT_QUEUE),
                "unacked": client.hlen("unacked"),
                "keys": client.keys("*"),
            },
        )
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read()
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, second.stderr.read().decode()  # type: ignore[union-attr]
    finally:
        if second.poll() is None:
            second.kill()
    records = sink.read_records()
    assert len(records) == len(published) and records["event_id"].is_unique
    assert b"twentyq_export_records_total" in metrics
    assert b"twentyq_export_lag_seconds" in metrics
    assert client.llen(EXPORT_QUEUE) == 0 and client.hlen("unacked") == 0


def test_sigterm_flushes_a_partial_batch_and_dead_letters_garbage(
    redis_url: str, tmp_path: Path
) -> None:
    frame = synthetic_records(np.random.default_rng(43), 3, REFERENCE, DAY, DAY)
    bodies = event_bodies(events_from_records(frame))[:30]
    with Connection(redis_url) as connection:
        for body in bodies:
            publish_json(connection, EXPORT_QUEUE, body)
    sink = LocalSink(tmp_path / "exports")
    client = redis.Redis.from_url(redis_url)
    client.lpush(EXPORT_QUEUE, b"not a kombu message")
    sidecar = _start_sidecar(redis_url, sink.root, free_port())
    try:
        # 31 messages, batch size 100, age 1 s: wait until all are held, then stop at once.
        _wait_for(
            lambda: client.llen(EXPORT_QUEUE) == 0 and client.hlen("unacked") == 31, 30, "delivery"
        )
        sidecar.send_signal(signal.SIGTERM)
        assert sidecar.wait(timeout=30) == 0
    finally:
        if sidecar.poll() is None:
            sidecar.kill()
    assert set(sink.read_records()["event_id"]) == _event_ids(bodies)
    rejected = "".join(p.read_text() for p in (sink.root / "_rejected").rglob("*.jsonl"))
    assert "not a kombu message" in rejected
    assert client.hlen("unacked") == 0
