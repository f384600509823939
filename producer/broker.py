"""Broker settings and the Celery configuration shared by the producer and the worker.

The broker is chosen by URL (``redis://``, ``rediss://``, ``sqs://``,
``gcpubsub://projects/PROJECT``). Transport-specific options live in
:func:`transport_options` (and the URL rewrite of :func:`broker_connection_url`)
and nowhere else; docs/transports.md explains each choice.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Sequence
from typing import Any, Self
from urllib.parse import urlsplit

from celery import Celery
from kombu import Connection, Exchange, Queue  # type: ignore[attr-defined]
from kombu.utils.url import maybe_sanitize_url
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from producer import redis_transport
from producer.errors import ConfigurationError
from producer.messages import (
    DEAD_LETTER_QUEUE,
    EXPORT_QUEUE,
    TURN_TASK_NAME,
    TURNS_QUEUE,
)

REDIS_SCHEMES = ("redis", "rediss")
PERSISTENT_DELIVERY_MODE = 2
SQS_SCHEME = "sqs"
PUBSUB_SCHEME = "gcpubsub"
SUPPORTED_SCHEMES = (*REDIS_SCHEMES, SQS_SCHEME, PUBSUB_SCHEME)
QUEUE_NAMES = (TURNS_QUEUE, DEAD_LETTER_QUEUE, EXPORT_QUEUE)

SQS_MAX_VISIBILITY_TIMEOUT_S = 43_200
PUBSUB_MIN_ACK_DEADLINE_S = 10
PUBSUB_MAX_ACK_DEADLINE_S = 600
PUBSUB_MIN_EXPIRATION_S = 86_400
PUBSUB_MAX_RETENTION_S = 604_800

# kombu's SQS and Pub/Sub transports both map a queue name this way: '.' becomes
# '-', other punctuation but '-' and '_' becomes '_'. Mirrored here so that the
# ambassador's library needs neither boto3 nor google-cloud-pubsub to compute it.
_ENTITY_NAME_TABLE = {ord(c): ord("_") for c in string.punctuation if c not in "-_."}
_ENTITY_NAME_TABLE[ord(".")] = ord("-")


class BrokerSettings(BaseSettings):
    """Where the queues and results live; shared by every deployable (``TWENTYQ_`` prefix)."""

    model_config = SettingsConfigDict(env_prefix="TWENTYQ_", extra="ignore")

    broker_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Broker URL: redis://, rediss://, sqs:// or gcpubsub://projects/PROJECT",
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
    polling_interval_s: float = Field(
        default=1.0,
        ge=0.0,
        le=60.0,
        description="SQS and Pub/Sub: seconds a consumer sleeps after an empty poll",
    )
    sqs_region: str = Field(default="us-east-1", min_length=1, description="SQS: AWS region")
    sqs_endpoint_url: str | None = Field(
        default=None,
        description="SQS: endpoint override, e.g. http://127.0.0.1:5000 for moto",
    )
    sqs_queue_name_prefix: str = Field(
        default="", description="SQS: prefix of every queue name, e.g. 'prod-'"
    )
    sqs_predefined_queues: dict[str, str] = Field(
        default_factory=dict,
        description="SQS: JSON map of twentyq queue name to an existing queue URL",
    )
    sqs_wait_time_s: int = Field(
        default=10, ge=0, le=20, description="SQS: long-polling wait of one receive call"
    )
    pubsub_ack_deadline_s: int | None = Field(
        default=None,
        ge=PUBSUB_MIN_ACK_DEADLINE_S,
        le=PUBSUB_MAX_ACK_DEADLINE_S,
        description="Pub/Sub: ack deadline; default: the visibility timeout, capped at 600",
    )
    pubsub_queue_name_prefix: str = Field(
        default="", description="Pub/Sub: prefix of every subscription name"
    )
    pubsub_expiration_s: int = Field(
        default=PUBSUB_MAX_RETENTION_S,
        ge=PUBSUB_MIN_EXPIRATION_S,
        le=PUBSUB_MAX_RETENTION_S,
        description="Pub/Sub: idle subscriptions expire, and unacked messages are kept, this long",
    )

    @field_validator("broker_url")
    @classmethod
    def _supported_broker(cls, url: str) -> str:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in SUPPORTED_SCHEMES:
            raise ValueError(
                f"TWENTYQ_BROKER_URL {url!r} names no supported broker: set it to a "
                "redis://, rediss://, sqs:// or gcpubsub://projects/PROJECT URL"
            )
        if scheme == PUBSUB_SCHEME and not url.split("://", 1)[1].strip("/").startswith(
            "projects/"
        ):
            raise ValueError(
                f"TWENTYQ_BROKER_URL {url!r} names no Google Cloud project: "
                "set it to gcpubsub://projects/YOUR-PROJECT-ID"
            )
        return url

    @field_validator("sqs_endpoint_url")
    @classmethod
    def _endpoint_is_http(cls, url: str | None) -> str | None:
        if url and urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(
                f"TWENTYQ_SQS_ENDPOINT_URL {url!r} is not an http(s) URL: "
                "set it to e.g. http://127.0.0.1:5000, or unset it to use AWS"
            )
        return url

    @model_validator(mode="after")
    def _transport_limits(self) -> Self:
        if self.scheme == SQS_SCHEME and self.visibility_timeout_s > SQS_MAX_VISIBILITY_TIMEOUT_S:
            raise ValueError(
                f"SQS allows a visibility timeout of at most {SQS_MAX_VISIBILITY_TIMEOUT_S} s: "
                "lower TWENTYQ_VISIBILITY_TIMEOUT_S"
            )
        if self.sqs_predefined_queues:
            unknown = sorted(set(self.sqs_predefined_queues) - set(QUEUE_NAMES))
            missing = [name for name in QUEUE_NAMES if name not in self.sqs_predefined_queues]
            if unknown or missing:
                raise ValueError(
                    "TWENTYQ_SQS_PREDEFINED_QUEUES must map exactly the queues "
                    f"{', '.join(QUEUE_NAMES)} to SQS queue URLs "
                    f"(missing: {missing or 'none'}; unknown: {unknown or 'none'})"
                )
        return self

    @property
    def scheme(self) -> str:
        """The broker URL's scheme, e.g. ``redis``."""
        return self.broker_url.split("://", 1)[0].lower()

    def describe(self) -> str:
        """One line naming the broker (password masked) and whether it is the default."""
        source = "set by TWENTYQ_BROKER_URL" if "broker_url" in self.model_fields_set else "default"
        return f"broker {maybe_sanitize_url(self.broker_url)} ({source})"

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


def masked_url(url: str, mask: str = "**") -> str:
    """``url`` with its password replaced by ``mask`` when it has one; else unchanged.

    Failover lists (``redis://a;redis://b``) are masked URL by URL.
    """
    if ";" in url:
        return ";".join(masked_url(part, mask) for part in url.split(";"))
    scheme, separator, rest = url.partition("://")
    userinfo, at, address = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not (separator and at and colon and password):
        return url
    return f"{scheme}://{user}:{mask}@{address}"


def transport_entity_name(queue_name: str, prefix: str = "") -> str:
    """The name kombu's SQS and Pub/Sub transports give a queue, e.g. ``twentyq-turns``.

    Dots become dashes. On SQS it is the queue's name, on Pub/Sub the subscription's (the topic
    keeps the exchange's dotted name).
    """
    return (prefix + queue_name).translate(_ENTITY_NAME_TABLE)


def broker_connection_url(settings: BrokerSettings) -> str:
    """The URL kombu connects to: the broker URL, with the SQS endpoint override applied.

    kombu's SQS transport takes its endpoint from the URL's host and port, so
    ``TWENTYQ_SQS_ENDPOINT_URL`` replaces them, keeping any credentials.
    """
    if settings.scheme != SQS_SCHEME or not settings.sqs_endpoint_url:
        return settings.broker_url
    userinfo = settings.broker_url.split("://", 1)[1].rpartition("@")
    credentials = userinfo[0] + "@" if userinfo[1] else ""
    return f"sqs://{credentials}{urlsplit(settings.sqs_endpoint_url).netloc}"


def transport_class(settings: BrokerSettings) -> str | None:
    """The kombu transport to use instead of the URL scheme's default, or None for the default.

    Pub/Sub gets :mod:`producer.pubsub_transport`, which confirms each publish; SQS
    :mod:`producer.sqs_transport`, which wraps bodies kombu could not build a message from;
    ``redis://`` gets :mod:`producer.redis_transport`, which adds bulk publish and
    bulk acknowledgement. ``rediss://`` keeps kombu's own transport, whose TLS
    defaults hang on the scheme's name (one round trip per message there).
    """
    if settings.scheme == PUBSUB_SCHEME:
        return "producer.pubsub_transport:Transport"
    if settings.scheme == SQS_SCHEME:
        return "producer.sqs_transport:Transport"
    if settings.scheme == "redis":
        return redis_transport_class()
    return None


def redis_transport_class() -> str:
    """The transport ``redis://`` URLs get (:mod:`producer.redis_transport`)."""
    return "producer.redis_transport:Transport"


def transport_options(settings: BrokerSettings) -> dict[str, Any]:
    """Broker transport options for the configured broker: the only transport-specific block."""
    if settings.scheme == SQS_SCHEME:
        return _sqs_options(settings)
    if settings.scheme == PUBSUB_SCHEME:
        return _pubsub_options(settings)
    return _redis_options(settings)


def _redis_options(settings: BrokerSettings) -> dict[str, Any]:
    # kombu scans for unacknowledged messages past the visibility timeout only every
    # interval x throttle seconds (10 x 10 by default): a killed worker's turns would wait
    # 100 s longer than the timeout says. Scan every tenth of the timeout (1-10 s), unthrottled.
    restore_interval_s = min(10, max(1, settings.visibility_timeout_s // 10))
    return {
        "visibility_timeout": settings.visibility_timeout_s,
        "unacked_restore_interval": restore_interval_s,
        "unacked_restore_throttle": 1,
        # A restorer killed while holding the scan lock blocks every other one until it expires.
        "unacked_mutex_expire": min(300, settings.visibility_timeout_s),
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
    }


def _sqs_options(settings: BrokerSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "region": settings.sqs_region,
        # Only applied when kombu creates a queue; a predefined queue keeps its own.
        "visibility_timeout": settings.visibility_timeout_s,
        "wait_time_seconds": settings.sqs_wait_time_s,
        "polling_interval": settings.polling_interval_s,
        "queue_name_prefix": settings.sqs_queue_name_prefix,
    }
    if settings.sqs_endpoint_url:
        options["is_secure"] = urlsplit(settings.sqs_endpoint_url).scheme == "https"
    if settings.sqs_predefined_queues:
        options["predefined_queues"] = _predefined_queues(settings)
    return options


def _predefined_queues(settings: BrokerSettings) -> dict[str, dict[str, str]]:
    # kombu 5.7 looks a predefined queue up by its SQS name when sending and by
    # its kombu name (dots kept) in the blocking receive path the export sidecar
    # uses, so each queue is listed under both names (docs/transports.md).
    queues: dict[str, dict[str, str]] = {}
    for name, url in settings.sqs_predefined_queues.items():
        sqs_name = transport_entity_name(name, settings.sqs_queue_name_prefix)
        queues[sqs_name] = {"url": url}
        queues[name] = {"url": url}
    return queues


def _pubsub_options(settings: BrokerSettings) -> dict[str, Any]:
    ack_deadline_s = settings.pubsub_ack_deadline_s or min(
        settings.visibility_timeout_s, PUBSUB_MAX_ACK_DEADLINE_S
    )
    return {
        "ack_deadline_seconds": ack_deadline_s,
        "queue_name_prefix": settings.pubsub_queue_name_prefix,
        "expiration_seconds": settings.pubsub_expiration_s,
        "polling_interval": settings.polling_interval_s,
    }


def task_queues() -> tuple[Queue, ...]:
    """The queues twentyq declares, each on a direct exchange of its own name."""
    return tuple(
        Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUE_NAMES
    )


def celery_config(settings: BrokerSettings) -> dict[str, Any]:
    """Celery configuration both sides agree on: JSON only, one turns queue."""
    return {
        "broker_url": broker_connection_url(settings),
        "broker_transport": transport_class(settings),
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


def connect(settings: BrokerSettings) -> Connection:
    """A kombu connection to the configured broker, with its transport options (not yet open)."""
    return Connection(
        broker_connection_url(settings),
        transport=transport_class(settings),
        transport_options=transport_options(settings),
    )


def publish_json(
    connection: Connection, queue_name: str, body: dict[str, Any], *, max_retries: int = 5
) -> None:
    """Publish one JSON message to a twentyq queue, declaring it, retrying on connection errors."""
    publish_many_json(connection, queue_name, (body,), max_retries=max_retries)


def publish_many_json(
    connection: Connection,
    queue_name: str,
    bodies: Iterable[dict[str, Any]],
    *,
    max_retries: int = 5,
) -> int:
    """Publish JSON messages to a twentyq queue through one producer; returns how many."""
    encoded = [json.dumps(body, default=str, allow_nan=False) for body in bodies]
    return publish_encoded(connection, queue_name, encoded, max_retries=max_retries)


def publish_encoded(
    connection: Connection,
    queue_name: str,
    bodies: Sequence[str],
    *,
    headers: Sequence[dict[str, Any]] | None = None,
    properties: Sequence[dict[str, Any]] | None = None,
    max_retries: int = 5,
) -> int:
    """Publish already-serialised JSON bodies to a twentyq queue; returns how many.

    Nothing is serialised again: a guess's JSON is the bytes its export event
    carries. On Redis every message goes out in one ``LPUSH`` (retried whole on
    connection errors: a retry after a lost reply can publish twice, at-least-once
    like a single publish); elsewhere one publish per message through one producer,
    the queue declared with the first.
    """
    if not bodies:
        return 0
    queue = next(q for q in task_queues() if q.name == queue_name)
    producer = connection.Producer(serializer="json")
    retry_policy = {"max_retries": max_retries, "interval_start": 0.1, "interval_step": 0.5}
    no_headers: list[dict[str, Any]] = [{} for _ in bodies]
    all_headers = list(headers) if headers is not None else no_headers
    all_properties = list(properties) if properties is not None else no_headers

    def put_many() -> None:
        producer.maybe_declare(queue)
        channel = producer.channel
        messages = [
            channel.prepare_message(
                body,
                content_type="application/json",
                content_encoding="utf-8",
                headers=message_headers,
                properties={"delivery_mode": PERSISTENT_DELIVERY_MODE, **message_properties},
            )
            for body, message_headers, message_properties in zip(
                bodies, all_headers, all_properties, strict=True
            )
        ]
        channel.put_many(queue.exchange.name, queue.routing_key, messages)

    if isinstance(producer.channel, redis_transport.Channel):
        connection.ensure(producer, put_many, **retry_policy)()
        return len(bodies)
    for index, (body, message_headers, message_properties) in enumerate(
        zip(bodies, all_headers, all_properties, strict=True)
    ):
        producer.publish(
            body,
            exchange=queue.exchange,
            routing_key=queue.routing_key,
            content_type="application/json",
            content_encoding="utf-8",
            headers=message_headers,
            declare=[] if index else [queue],
            retry=True,
            retry_policy=retry_policy,
            delivery_mode="persistent",
            **message_properties,
        )
    return len(bodies)
