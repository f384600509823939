"""What is particular to SQS: queue names without dots, and queues provisioned out of band."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from producer.broker import (
    QUEUE_NAMES,
    BrokerSettings,
    connect,
    publish_json,
    transport_entity_name,
)
from producer.messages import DEAD_LETTER_QUEUE, EXPORT_QUEUE, TURNS_QUEUE
from tests.integration.conftest import drain
from tests.support.sqs import (
    message_counts,
    provision_queues,
    queue_urls,
    sqs_client,
    sqs_environment,
)

pytestmark = pytest.mark.integration


@pytest.fixture()
def queue_name_prefix() -> str:
    """A prefix of this test's own, so no queue carries over from another test."""
    return f"t{uuid.uuid4().hex[:10]}-"


@pytest.fixture()
def sqs(moto_url: str) -> Any:
    """A boto3 SQS client on the session's moto server."""
    return sqs_client(moto_url)


def sqs_settings(moto_url: str, queue_name_prefix: str, **values: Any) -> BrokerSettings:
    """Broker settings for moto's SQS, as the environment of a deployment would give them."""
    environment = sqs_environment(moto_url, queue_name_prefix)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        return BrokerSettings(**values)


def test_queue_names_have_dashes_for_dots(moto_url: str, queue_name_prefix: str, sqs: Any) -> None:
    """twentyq.turns, twentyq.turns.dead and twentyq.export become three distinct SQS queues."""
    settings = sqs_settings(moto_url, queue_name_prefix)
    with connect(settings) as connection:
        for name in QUEUE_NAMES:
            publish_json(connection, name, {"queue": name})
        kombu_names = {
            name: connection.default_channel.canonical_queue_name(name) for name in QUEUE_NAMES
        }
    expected = {
        TURNS_QUEUE: f"{queue_name_prefix}twentyq-turns",
        DEAD_LETTER_QUEUE: f"{queue_name_prefix}twentyq-turns-dead",
        EXPORT_QUEUE: f"{queue_name_prefix}twentyq-export",
    }
    assert kombu_names == expected
    assert {
        name: transport_entity_name(name, queue_name_prefix) for name in QUEUE_NAMES
    } == expected
    urls = queue_urls(sqs, queue_name_prefix)
    assert set(urls) == set(expected.values())
    for sqs_name in expected.values():
        assert message_counts(sqs, urls[sqs_name]) == (1, 0), sqs_name


def test_queues_take_the_visibility_timeout(
    moto_url: str, queue_name_prefix: str, sqs: Any
) -> None:
    """Queues kombu creates get TWENTYQ_VISIBILITY_TIMEOUT_S, the redelivery delay after a crash."""
    settings = sqs_settings(moto_url, queue_name_prefix, visibility_timeout_s=123)
    with connect(settings) as connection:
        publish_json(connection, EXPORT_QUEUE, {"hello": 1})
    url = queue_urls(sqs, queue_name_prefix)[f"{queue_name_prefix}twentyq-export"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    assert attributes["Attributes"]["VisibilityTimeout"] == "123"


def test_predefined_queues_are_used_and_none_created(
    moto_url: str, queue_name_prefix: str, sqs: Any
) -> None:
    """With TWENTYQ_SQS_PREDEFINED_QUEUES, messages go to those URLs and no queue is created.

    The blocking receive path (the export sidecar's) is the one kombu 5.7 looks
    up by the dotted name; this receive goes through it.
    """
    provisioned = provision_queues(sqs, queue_name_prefix)
    settings = sqs_settings(moto_url, queue_name_prefix, sqs_predefined_queues=provisioned)
    with connect(settings) as connection:
        publish_json(connection, EXPORT_QUEUE, {"event": 1})
        publish_json(connection, DEAD_LETTER_QUEUE, {"letter": 1})
        assert message_counts(sqs, provisioned[EXPORT_QUEUE]) == (1, 0)
        assert message_counts(sqs, provisioned[DEAD_LETTER_QUEUE]) == (1, 0)
        received = drain(connection, EXPORT_QUEUE, 1)
    assert received == [{"event": 1}]
    assert message_counts(sqs, provisioned[EXPORT_QUEUE]) == (0, 0)
    assert set(queue_urls(sqs, queue_name_prefix).values()) == set(provisioned.values())
