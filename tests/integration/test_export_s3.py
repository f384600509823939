"""The S3 sink against a local moto server, including S3 being briefly unreachable."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import boto3
import numpy as np
import pytest
import redis
from kombu import Connection  # type: ignore[attr-defined]

from monitoring.consumer import ExportConsumer
from monitoring.settings import MonitoringSettings
from monitoring.sink import S3Sink, open_sink
from producer.broker import publish_json
from producer.messages import EXPORT_QUEUE
from tests.support.moto_server import MOTO_ENVIRONMENT, running_moto_server
from tests.support.services import free_port
from tests.unit.monitoring.synthetic import (
    REFERENCE,
    event_bodies,
    events_from_records,
    synthetic_records,
)
from tests.unit.monitoring.test_sink import DAY

pytestmark = pytest.mark.integration

BUCKET = "twentyq-exports"


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in MOTO_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with running_moto_server() as url:
        yield url


def _create_bucket(endpoint_url: str) -> None:
    boto3.client("s3", endpoint_url=endpoint_url, **_credentials()).create_bucket(Bucket=BUCKET)


def _credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": MOTO_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": MOTO_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
        "region_name": MOTO_ENVIRONMENT["AWS_DEFAULT_REGION"],
    }


def _bodies(seed: int, games: int) -> list[dict[str, object]]:
    frame = synthetic_records(np.random.default_rng(seed), games, REFERENCE, DAY, DAY)
    return event_bodies(events_from_records(frame))


def _publish(redis_url: str, bodies: list[dict[str, object]]) -> None:
    with Connection(redis_url) as connection:
        for body in bodies:
            publish_json(connection, EXPORT_QUEUE, body)


def _settings(endpoint_url: str, prefix: str) -> MonitoringSettings:
    return MonitoringSettings(
        sink_url=f"s3://{BUCKET}/{prefix}",
        s3_endpoint_url=endpoint_url,
        batch_size=50,
        max_batch_age_s=0.5,
        poll_interval_s=0.2,
        write_retry_initial_s=0.2,
        write_retry_max_s=1.0,
        metrics_port=0,
    )


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _start(consumer: ExportConsumer) -> threading.Thread:
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    return thread


def _ids(bodies: list[dict[str, object]]) -> set[str]:
    return {str(b.get("turn_id") or f"outcome:{b['game_id']}") for b in bodies}


def test_the_sidecar_writes_partitioned_parquet_to_s3(redis_url: str, moto_url: str) -> None:
    _create_bucket(moto_url)
    bodies = _bodies(1, 12)
    _publish(redis_url, bodies)
    settings = _settings(moto_url, "exports/prod")
    sink = open_sink(settings.sink_url, settings.s3_endpoint_url)
    assert isinstance(sink, S3Sink)
    consumer = ExportConsumer(Connection(redis_url), sink, settings)
    thread = _start(consumer)
    try:
        _wait_for(lambda: _ids(bodies) == set(sink.read_records()["event_id"]), 60, "the export")
    finally:
        consumer.request_stop()
        thread.join(timeout=30)
    listing = boto3.client("s3", endpoint_url=moto_url, **_credentials()).list_objects_v2(
        Bucket=BUCKET, Prefix="exports/prod/"
    )
    keys = [item["Key"] for item in listing["Contents"]]
    assert all(k.startswith("exports/prod/date=2026-05-01/model_version=1/part-") for k in keys)


def test_s3_briefly_unreachable_delays_the_export_but_loses_nothing(redis_url: str) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    bodies = _bodies(2, 10)
    _publish(redis_url, bodies)
    settings = _settings(endpoint, "outage")
    consumer = ExportConsumer(
        Connection(redis_url), open_sink(settings.sink_url, endpoint), settings
    )
    thread = _start(consumer)
    client = redis.Redis.from_url(redis_url)
    try:
        _wait_for(lambda: consumer.metrics.write_errors._value.get() >= 2, 60, "write errors")
        assert client.hlen("unacked") > 0, "events were acknowledged while S3 was down"
        with running_moto_server(port=port):
            _create_bucket(endpoint)
            sink = S3Sink(BUCKET, "outage", endpoint_url=endpoint)
            _wait_for(lambda: _ids(bodies) == set(sink.read_records()["event_id"]), 90, "recovery")
            assert thread.is_alive()
            consumer.request_stop()
            thread.join(timeout=30)
    finally:
        consumer.request_stop()
        thread.join(timeout=30)
    assert client.hlen("unacked") == 0 and client.llen(EXPORT_QUEUE) == 0
