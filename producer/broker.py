"""Broker settings and the Celery configuration shared by the producer and the worker.

The broker is chosen by URL (``redis://``, ``rediss://``, ``sqs://``,
``gcpubsub://``). Transport-specific options live in
:func:`transport_options` and nowhere else.
"""

from __future__ import annotations

import json
from typing import Any

from celery import Celery
from kombu import Connection, Exchange, Queue  # type: ignore[attr-defined]
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from producer.errors import ConfigurationError
from producer.messages import (
    DEAD_LETTER_QUEUE,
    EXPORT_QUEUE,
    TURN_TASK_NAME,
    TURNS_QUEUE,
)

REDIS_SCHEMES = ("redis", "rediss")


class BrokerSettings(BaseSettings):
    """Where the queues and results live; shared by every deployable (``TWENTYQ_`` prefix)."""

    model_config = SettingsConfigDict(env_prefix="TWENTYQ_", extra="ignore")

    broker_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Broker URL: redis://, rediss://, sqs:// or gcpubsub://",
    )
    result_backend: str | None = Field(
        default=None,
        description="Result backend URL; defaults to the broker URL when the broker is Redis",
    )
    visibility_timeout_s: int = Field(
        default=300,
        ge=10,
        description="Seconds before an unacked turn is redelivered (above the longest batch)",
    )
    result_expires_s: int = Field(
        default=86400, ge=60, description="Seconds a guess is kept in the result backend"
    )

    @property
    def scheme(self) -> str:
        """The broker URL's scheme, e.g. ``redis``."""
        return self.broker_url.split("://", 1)[0].lower()

    def resolved_result_backend(self) -> str:
        """The result backend URL, or a :class:`ConfigurationError` saying what to set."""
        if self.result_backend:
            return self.result_backend
        if self.scheme in REDIS_SCHEMES:
            return self.broker_url
        raise ConfigurationError(
            f"the broker {self.scheme}:// cannot store results: set TWENTYQ_RESULT_BACKEND "
            "(for example redis://host:6379/1)"
        )


def transport_options(settings: BrokerSettings) -> dict[str, Any]:
    """Broker transport options for the configured broker: the only transport-specific block."""
    if settings.scheme in REDIS_SCHEMES:
        return {
            "visibility_timeout": settings.visibility_timeout_s,
            "socket_timeout": 10,
            "socket_connect_timeout": 5,
        }
    return {"visibility_timeout": settings.visibility_timeout_s}


def task_queues() -> tuple[Queue, ...]:
    """The queues twentyq declares, each on a direct exchange of its own name."""
    return tuple(
        Queue(name, Exchange(name, type="direct"), routing_key=name)
        for name in (TURNS_QUEUE, DEAD_LETTER_QUEUE, EXPORT_QUEUE)
    )


def celery_config(settings: BrokerSettings) -> dict[str, Any]:
    """Celery configuration both sides agree on: JSON only, one turns queue."""
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.resolved_result_backend(),
        "broker_transport_options": transport_options(settings),
        "result_backend_transport_options": {"visibility_timeout": settings.visibility_timeout_s},
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_default_queue": TURNS_QUEUE,
        "task_queues": task_queues(),
        "task_routes": {TURN_TASK_NAME: {"queue": TURNS_QUEUE, "routing_key": TURNS_QUEUE}},
        "task_create_missing_queues": False,
        "result_expires": settings.result_expires_s,
        "broker_connection_retry_on_startup": True,
        "enable_utc": True,
    }


def create_celery_app(main: str, settings: BrokerSettings) -> Celery:
    """A Celery app configured for twentyq's queues."""
    app = Celery(main)
    app.conf.update(celery_config(settings))
    return app


def publish_json(
    connection: Connection, queue_name: str, body: dict[str, Any], *, max_retries: int = 5
) -> None:
    """Publish one JSON message to a twentyq queue, declaring it, retrying on connection errors."""
    queue = next(q for q in task_queues() if q.name == queue_name)
    producer = connection.Producer(serializer="json")
    producer.publish(
        json.loads(json.dumps(body, default=str)),
        exchange=queue.exchange,
        routing_key=queue.routing_key,
        declare=[queue],
        retry=True,
        retry_policy={"max_retries": max_retries, "interval_start": 0.1, "interval_step": 0.5},
        delivery_mode="persistent",
    )
