"""The demo waits for the sidecar to empty the export queue before stopping it."""

from __future__ import annotations

import pytest

from producer.broker import connect, publish_json
from producer.messages import EXPORT_QUEUE
from producer.settings import load_broker_settings
from tests.integration.conftest import drain
from twentyq.demo import wait_for_exports_drained

pytestmark = pytest.mark.integration


def test_queued_export_events_are_counted_until_a_consumer_takes_them(redis_url: str) -> None:
    broker = load_broker_settings(broker_url=redis_url)
    with connect(broker) as connection:
        for n in range(3):
            publish_json(connection, EXPORT_QUEUE, {"kind": "outcome", "n": n})
        assert wait_for_exports_drained(broker, timeout_s=0.5) == 3
        assert len(drain(connection, EXPORT_QUEUE, 3)) == 3
    assert wait_for_exports_drained(broker, timeout_s=5.0) == 0
