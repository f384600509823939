"""Broker settings and per-transport options (producer/broker.py), no network."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import ValidationError

from producer.broker import (
    BrokerSettings,
    broker_connection_url,
    celery_config,
    connect,
    transport_entity_name,
    transport_options,
)
from producer.errors import ConfigurationError
from producer.messages import DEAD_LETTER_QUEUE, EXPORT_QUEUE, TURNS_QUEUE


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read TWENTYQ_* variables; the machine's own must not leak in."""
    for name in list(os.environ):
        if name.startswith("TWENTYQ_"):
            monkeypatch.delenv(name)


def settings_for(**values: object) -> BrokerSettings:
    return BrokerSettings.model_validate(values)


@pytest.mark.parametrize(
    ("name", "prefix", "expected"),
    [
        (TURNS_QUEUE, "", "twentyq-turns"),
        (DEAD_LETTER_QUEUE, "", "twentyq-turns-dead"),
        (EXPORT_QUEUE, "prod-", "prod-twentyq-export"),
        ("a.b:c/d_e-f", "x.", "x-a-b_c_d_e-f"),
    ],
)
def test_entity_names_replace_dots_with_dashes(name: str, prefix: str, expected: str) -> None:
    assert transport_entity_name(name, prefix) == expected


@pytest.mark.parametrize(
    "url", ["amqp://guest@localhost//", "localhost:6379", "gcpubsub://my-project"]
)
def test_unsupported_broker_url_says_what_to_set(url: str) -> None:
    with pytest.raises(ValidationError, match="TWENTYQ_BROKER_URL"):
        settings_for(broker_url=url)


def test_non_redis_broker_needs_a_result_backend() -> None:
    settings = settings_for(broker_url="sqs://")
    with pytest.raises(ConfigurationError, match="TWENTYQ_RESULT_BACKEND"):
        celery_config(settings)


def test_redis_options_keep_the_visibility_timeout() -> None:
    settings = settings_for(broker_url="redis://h:6379/0", visibility_timeout_s=42)
    assert transport_options(settings)["visibility_timeout"] == 42
    assert celery_config(settings)["result_backend"] == "redis://h:6379/0"


def test_redis_scans_for_a_killed_workers_turns_soon_after_the_visibility_timeout() -> None:
    # kombu's defaults scan every 10 s but only act on every 10th scan: 100 s late.
    options = transport_options(
        settings_for(broker_url="redis://h:6379/0", visibility_timeout_s=10)
    )
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] <= 1
    options = transport_options(
        settings_for(broker_url="redis://h:6379/0", visibility_timeout_s=300)
    )
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] <= 30


def test_sqs_options_from_settings() -> None:
    settings = settings_for(
        broker_url="sqs://",
        sqs_region="eu-west-1",
        sqs_queue_name_prefix="prod-",
        sqs_wait_time_s=20,
        visibility_timeout_s=900,
        polling_interval_s=0.5,
    )
    options = transport_options(settings)
    assert options == {
        "region": "eu-west-1",
        "visibility_timeout": 900,
        "wait_time_seconds": 20,
        "polling_interval": 0.5,
        "queue_name_prefix": "prod-",
    }


def test_sqs_endpoint_override_rewrites_host_and_keeps_credentials() -> None:
    settings = settings_for(
        broker_url="sqs://key:se%2Fcret@", sqs_endpoint_url="http://127.0.0.1:5000"
    )
    assert broker_connection_url(settings) == "sqs://key:se%2Fcret@127.0.0.1:5000"
    assert transport_options(settings)["is_secure"] is False
    assert celery_config(settings.model_copy(update={"result_backend": "redis://r/1"}))[
        "broker_url"
    ].endswith("@127.0.0.1:5000")


def test_sqs_endpoint_must_be_http() -> None:
    with pytest.raises(ValidationError, match="TWENTYQ_SQS_ENDPOINT_URL"):
        settings_for(broker_url="sqs://", sqs_endpoint_url="127.0.0.1:5000")


def test_sqs_visibility_timeout_is_capped_at_twelve_hours() -> None:
    with pytest.raises(ValidationError, match="TWENTYQ_VISIBILITY_TIMEOUT_S"):
        settings_for(broker_url="sqs://", visibility_timeout_s=43_201)
    # Redis has no such cap.
    assert settings_for(visibility_timeout_s=43_201).visibility_timeout_s == 43_201


def test_predefined_queues_listed_under_both_names(monkeypatch: pytest.MonkeyPatch) -> None:
    urls = {
        name: f"https://sqs.example/123/{index}"
        for index, name in enumerate((TURNS_QUEUE, DEAD_LETTER_QUEUE, EXPORT_QUEUE))
    }
    monkeypatch.setenv("TWENTYQ_BROKER_URL", "sqs://")
    monkeypatch.setenv("TWENTYQ_SQS_QUEUE_NAME_PREFIX", "prod-")
    monkeypatch.setenv("TWENTYQ_SQS_PREDEFINED_QUEUES", json.dumps(urls))
    predefined = transport_options(BrokerSettings())["predefined_queues"]
    assert predefined["prod-twentyq-turns"] == {"url": urls[TURNS_QUEUE]}
    assert predefined[TURNS_QUEUE] == {"url": urls[TURNS_QUEUE]}
    assert predefined["prod-twentyq-export"] == {"url": urls[EXPORT_QUEUE]}
    assert len(predefined) == 6


def test_predefined_queues_must_name_every_queue() -> None:
    with pytest.raises(ValidationError, match=r"missing: \['twentyq.turns.dead'"):
        settings_for(
            broker_url="sqs://",
            sqs_predefined_queues={TURNS_QUEUE: "https://q/1", EXPORT_QUEUE: "https://q/2"},
        )


def test_pubsub_ack_deadline_follows_visibility_timeout_within_limits() -> None:
    url = "gcpubsub://projects/p"
    assert (
        transport_options(settings_for(broker_url=url, visibility_timeout_s=30))[
            "ack_deadline_seconds"
        ]
        == 30
    )
    assert (
        transport_options(settings_for(broker_url=url, visibility_timeout_s=3600))[
            "ack_deadline_seconds"
        ]
        == 600
    )
    assert (
        transport_options(
            settings_for(broker_url=url, visibility_timeout_s=3600, pubsub_ack_deadline_s=15)
        )["ack_deadline_seconds"]
        == 15
    )
    with pytest.raises(ValidationError):
        settings_for(broker_url=url, pubsub_ack_deadline_s=601)


def test_pubsub_options_from_settings() -> None:
    options = transport_options(
        settings_for(
            broker_url="gcpubsub://projects/p",
            pubsub_queue_name_prefix="prod-",
            pubsub_expiration_s=172_800,
            polling_interval_s=0.2,
        )
    )
    assert options == {
        "ack_deadline_seconds": 300,
        "queue_name_prefix": "prod-",
        "expiration_seconds": 172_800,
        "polling_interval": 0.2,
    }


def test_pubsub_and_sqs_use_twentyqs_transports_everywhere() -> None:
    """Celery (producer, worker) and plain kombu (sidecar) both get twentyq's own transports."""
    settings = settings_for(broker_url="gcpubsub://projects/p", result_backend="redis://r/1")
    assert celery_config(settings)["broker_transport"] == "producer.pubsub_transport:Transport"
    assert connect(settings).transport_cls == "producer.pubsub_transport:Transport"
    sqs = settings_for(broker_url="sqs://", result_backend="redis://r/1")
    assert celery_config(sqs)["broker_transport"] == "producer.sqs_transport:Transport"
    assert connect(sqs).transport_cls == "producer.sqs_transport:Transport"
    tls = settings_for(broker_url="rediss://cache:6380/0")
    assert celery_config(tls)["broker_transport"] is None


def test_redis_urls_get_the_bulk_transport_and_tls_urls_keep_kombus() -> None:
    """redis:// gets the bulk transport; rediss:// keeps kombu's (its TLS hangs on the name)."""
    plain = settings_for(broker_url="redis://cache:6379/0")
    assert celery_config(plain)["broker_transport"] == "producer.redis_transport:Transport"
    assert connect(plain).transport_cls == "producer.redis_transport:Transport"
    tls = settings_for(broker_url="rediss://cache:6380/0")
    assert celery_config(tls)["broker_transport"] is None
    assert connect(tls).transport_cls == "rediss"
