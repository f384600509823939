"""Fixtures of the producer's unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery

from producer.broker import BrokerSettings
from producer.client import create_producer_app
from producer.messages import EXPORT_QUEUE, TURNS_QUEUE
from tests.unit.producer.factories import UNIT_SETTINGS


@pytest.fixture()
def memory_app() -> Iterator[Celery]:
    """A producer app on kombu's in-memory broker and Celery's in-memory result store.

    The memory broker's queues live as long as the process: they are emptied first.
    """
    # model_construct: the validator admits only real brokers; unit tests use kombu's memory one.
    broker = BrokerSettings.model_construct(
        broker_url="memory://", result_backend="cache+memory://"
    )
    app = create_producer_app(broker, UNIT_SETTINGS)
    with app.connection_for_write() as connection:
        for queue_name in (TURNS_QUEUE, EXPORT_QUEUE):
            connection.default_channel.queue_purge(queue_name)
    yield app
    app.close()
