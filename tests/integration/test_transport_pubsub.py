"""What is particular to Pub/Sub: one topic and one filtered subscription per queue.

Runs against the Pub/Sub emulator; each test uses a project of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from producer.broker import QUEUE_NAMES, BrokerSettings, connect, publish_json
from producer.messages import EXPORT_QUEUE, TURNS_QUEUE
from tests.integration.conftest import drain
from tests.support.pubsub_emulator import pubsub_environment, skip_or_fail_without_emulator
from tests.support.worker_process import REPOSITORY_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture()
def pubsub_settings(pubsub_emulator_host: str) -> Iterator[BrokerSettings]:
    """Settings for a fresh emulator project, with PUBSUB_EMULATOR_HOST set for the clients."""
    environment = pubsub_environment(pubsub_emulator_host, f"twentyq-{uuid.uuid4().hex[:10]}")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        yield BrokerSettings(pubsub_ack_deadline_s=15)


def project_of(settings: BrokerSettings) -> str:
    return settings.broker_url.rsplit("/", 1)[-1]


def test_each_queue_is_a_topic_and_a_filtered_subscription(
    pubsub_settings: BrokerSettings,
) -> None:
    """Topics keep the dotted names; subscriptions get dashes, the ack deadline and a filter."""
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

    with connect(pubsub_settings) as connection:
        for name in QUEUE_NAMES:
            publish_json(connection, name, {"queue": name})
    project = project_of(pubsub_settings)
    publisher, subscriber = PublisherClient(), SubscriberClient()
    topics = {
        topic.name.rsplit("/", 1)[-1]
        for topic in publisher.list_topics(request={"project": f"projects/{project}"})
    }
    assert topics == set(QUEUE_NAMES)
    subscriptions = {
        subscription.name.rsplit("/", 1)[-1]: subscription
        for subscription in subscriber.list_subscriptions(
            request={"project": f"projects/{project}"}
        )
    }
    assert set(subscriptions) == {"twentyq-turns", "twentyq-turns-dead", "twentyq-export"}
    turns = subscriptions["twentyq-turns"]
    assert turns.topic.endswith("/topics/twentyq.turns")
    assert turns.ack_deadline_seconds == 15
    assert turns.filter == 'attributes.routing_key="twentyq.turns"'


def test_foreign_publisher_message_is_consumed(pubsub_settings: BrokerSettings) -> None:
    """A non-Python ambassador can publish straight to the topic with a stock Pub/Sub client.

    It sends kombu's JSON envelope as the data and the ``routing_key`` attribute
    the subscription filters on. (The emulator ignores filters, so the loss of
    a message without the attribute, which real Pub/Sub filters out, cannot be
    shown here; the filter itself is checked above.)
    """
    from google.cloud.pubsub_v1 import PublisherClient

    with connect(pubsub_settings) as connection:
        drain(connection, EXPORT_QUEUE, 0, timeout_s=0.1)  # declares topic and subscription
        topic = PublisherClient.topic_path(project_of(pubsub_settings), EXPORT_QUEUE)
        PublisherClient().publish(
            topic, _kombu_envelope({"from": "elsewhere"}), routing_key=EXPORT_QUEUE
        ).result(timeout=10)
        received = drain(connection, EXPORT_QUEUE, 1, timeout_s=10)
    assert received == [{"from": "elsewhere"}]


def _kombu_envelope(body: dict[str, Any]) -> bytes:
    """The JSON document kombu's Pub/Sub transport puts in a message's data."""
    return json.dumps(
        {
            "body": json.dumps(body),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {},
            "properties": {
                "delivery_mode": 2,
                "delivery_info": {"exchange": EXPORT_QUEUE, "routing_key": EXPORT_QUEUE},
                "priority": 0,
                "body_encoding": "utf-8",
            },
        }
    ).encode()


PUBLISH_AND_EXIT = """
from producer.broker import BrokerSettings, connect, create_celery_app, publish_json
from producer.messages import EXPORT_QUEUE, TURN_TASK_NAME

settings = BrokerSettings()
with connect(settings) as connection:
    for index in range({count}):
        publish_json(connection, EXPORT_QUEUE, {{"index": index}})
app = create_celery_app("publish-and-exit", settings)
for index in range({count}):
    app.send_task(TURN_TASK_NAME, args=[{{"index": index}}])
"""


def test_every_publish_is_sent_before_the_process_exits(
    pubsub_settings: BrokerSettings, redis_url: str
) -> None:
    """A process that publishes and exits at once loses nothing (kombu alone lost most).

    Both paths are covered: ``publish_json`` (outcomes, export events) and
    Celery's ``send_task`` (turns).
    """
    count = 25
    env = {**os.environ, "TWENTYQ_RESULT_BACKEND": redis_url, "PYTHONPATH": str(REPOSITORY_ROOT)}
    subprocess.run(
        [sys.executable, "-c", PUBLISH_AND_EXIT.format(count=count)],
        env=env,
        cwd=REPOSITORY_ROOT,
        check=True,
        timeout=120,
    )
    with connect(pubsub_settings) as connection:
        events = drain(connection, EXPORT_QUEUE, count, timeout_s=20)
        turns = drain(connection, TURNS_QUEUE, count, timeout_s=20)
    assert sorted(event["index"] for event in events) == list(range(count))
    assert len(turns) == count


@pytest.mark.parametrize(("ci", "outcome"), [("true", "fail"), ("", "skip")])
def test_missing_emulator_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: str
) -> None:
    """Without java the Pub/Sub cases skip with what to install, except under CI=true."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, no gcloud
    monkeypatch.delenv("TWENTYQ_TEST_PUBSUB_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception
    with pytest.raises(expected, match="java"):
        skip_or_fail_without_emulator()
