"""No message can stop a worker: poison pills and a fuzz from the raw bytes up, on real Redis.

One worker serves the whole module. After every message the worker must still
answer a valid turn, the message must have been dead-lettered (never dropped,
never left on the queue), and nothing may stay held as unacknowledged.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from kombu import Consumer

from producer.broker import BrokerSettings, connect, task_queues
from producer.client import create_producer_app, submit_turn
from producer.messages import DEAD_LETTER_QUEUE, TURN_TASK_NAME, TURNS_QUEUE, DeadLetter
from tests.integration.conftest import BrokerUnderTest, StubRegistration, drain, worker_env
from tests.integration.test_pipeline import make_turn
from tests.support.pubsub_emulator import pubsub_environment
from tests.support.sqs import queue_urls, sqs_client, sqs_environment
from tests.support.worker_process import WorkerProcess, running_worker

pytestmark = pytest.mark.integration


class Intake:
    """The module's worker, its Redis, and a client app."""

    def __init__(self, worker: WorkerProcess, client: redis.Redis, app: Any) -> None:
        self.worker, self.redis, self.app = worker, client, app

    def push_raw(self, item: bytes) -> None:
        self.redis.lpush(TURNS_QUEUE, item)

    def dead_letters(self) -> int:
        return int(self.redis.llen(DEAD_LETTER_QUEUE))

    def still_serves(self) -> None:
        turn = make_turn(1, 2)
        guess = submit_turn(turn, app=self.app).get(timeout_s=20)
        assert guess.turn_id == turn.turn_id

    def settled(self, timeout_s: float = 10.0) -> None:
        """Nothing waits on the queue and nothing is held unacknowledged."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.redis.llen(TURNS_QUEUE) == 0 and self.redis.hlen("unacked") == 0:
                return
            time.sleep(0.02)
        raise AssertionError(
            f"queue {self.redis.llen(TURNS_QUEUE)}, unacked {self.redis.hlen('unacked')}"
        )

    def expect_dead_letters(self, expected: int) -> None:
        """Once settled, exactly ``expected`` dead letters in all."""
        self.settled()
        assert self.dead_letters() == expected

    def last_letter(self) -> DeadLetter:
        return DeadLetter.model_validate(_kombu_body(self.redis.lindex(DEAD_LETTER_QUEUE, 0)))


def _kombu_body(item: bytes) -> Any:
    envelope = json.loads(item)
    return json.loads(base64.b64decode(envelope["body"]))


class SqsIntake(Intake):
    """The same checks on SQS (moto): the queue's own counters say what is left or held."""

    def __init__(self, worker: WorkerProcess, app: Any, env: dict[str, str]) -> None:
        super().__init__(worker, redis.Redis(), app)
        self.sqs = sqs_client(env["TWENTYQ_SQS_ENDPOINT_URL"])
        self.urls = queue_urls(self.sqs, env["TWENTYQ_SQS_QUEUE_NAME_PREFIX"])
        prefix = env["TWENTYQ_SQS_QUEUE_NAME_PREFIX"]
        self.turns_url = self.urls[prefix + "twentyq-turns"]
        self.dead_url = self.urls[prefix + "twentyq-turns-dead"]

    def push_raw(self, item: bytes) -> None:
        self.sqs.send_message(QueueUrl=self.turns_url, MessageBody=item.decode())

    def _count(self, url: str, *names: str) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names))
        return sum(int(attributes["Attributes"][name]) for name in names)

    def dead_letters(self) -> int:
        return self._count(self.dead_url, "ApproximateNumberOfMessages")

    def settled(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        names = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
        while self._count(self.turns_url, *names) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self._count(self.turns_url, *names) == 0, "left on the queue or held"


class PubSubIntake(Intake):
    """The same checks on the Pub/Sub emulator, which keeps no counts: dead letters are
    received and counted here, and what was never acknowledged shows as a redelivery."""

    def __init__(self, worker: WorkerProcess, app: Any, env: dict[str, str]) -> None:
        super().__init__(worker, redis.Redis(), app)
        self.env, self.received = env, 0
        # One consumer for the whole module: kombu's Pub/Sub pulls run on in the background,
        # so a consumer opened per count would leave what its last pull leased unread.
        self.connection = connect(BrokerSettings())
        queue = next(q for q in task_queues() if q.name == DEAD_LETTER_QUEUE)
        self.consumer = Consumer(self.connection, [queue], callbacks=[self._count], accept=["json"])
        self.consumer.consume()

    def _count(self, _: Any, message: Any) -> None:
        self.received += 1
        message.ack()

    def close(self) -> None:
        self.consumer.cancel()
        self.connection.close()

    def push_raw(self, item: bytes) -> None:
        publish_to_turns_topic(self.env, item)

    def dead_letters(self, wait_s: float = 0.3) -> int:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                self.connection.drain_events(timeout=max(deadline - time.monotonic(), 0.01))
        return self.received

    def settled(self, timeout_s: float = 10.0) -> None:
        """Nothing to read back: the worker's acknowledgements are proven by no redelivery."""

    def expect_dead_letters(self, expected: int) -> None:
        deadline = time.monotonic() + 30
        while self.dead_letters() < expected and time.monotonic() < deadline:
            pass
        assert self.dead_letters() == expected


def publish_to_turns_topic(env: dict[str, str], item: bytes) -> None:
    """Bytes a foreign client publishes to the turns topic, with the attribute kombu filters on."""
    from google.cloud.pubsub_v1 import PublisherClient

    topic = PublisherClient.topic_path(env["TWENTYQ_BROKER_URL"].rsplit("/", 1)[-1], TURNS_QUEUE)
    PublisherClient().publish(topic, item, routing_key=TURNS_QUEUE).result(timeout=30)


@pytest.fixture(scope="module")
def pubsub_intake(
    pubsub_emulator_host: str,
    redis_server_url: str,
    stub_registry: Callable[..., StubRegistration],
    tmp_path_factory: Any,
) -> Iterator[Intake]:
    env = {
        **pubsub_environment(pubsub_emulator_host, f"fz-{uuid.uuid4().hex[:10]}"),
        "TWENTYQ_RESULT_BACKEND": redis_server_url.rsplit("/", 1)[0] + "/9",
        "TWENTYQ_PUBSUB_ACK_DEADLINE_S": "10",
    }
    patch = pytest.MonkeyPatch()
    for name, value in env.items():
        patch.setenv(name, value)
    broker = BrokerUnderTest("pubsub", env, BrokerSettings())
    worker_settings = worker_env(broker, stub_registry(), batch_size="8", batch_window_ms="5")
    log = tmp_path_factory.mktemp("pubsub-intake") / "worker.log"
    app = create_producer_app(broker.settings)
    with connect(broker.settings) as connection:  # every topic and subscription
        for queue in task_queues():
            queue(connection.default_channel).declare()
    try:
        with running_worker(worker_settings, log) as worker:
            target = PubSubIntake(worker, app, env)
            yield target
            # Anything pulled and never acknowledged comes back after the ack deadline.
            counted = target.dead_letters()
            time.sleep(12)
            assert target.dead_letters(wait_s=1) == counted, "a message came back unacknowledged"
            assert worker.process.poll() is None, worker.log()[-3000:]
            target.close()
    finally:
        app.close()
        patch.undo()


@pytest.fixture(scope="module")
def sqs_intake(
    moto_url: str,
    redis_server_url: str,
    stub_registry: Callable[..., StubRegistration],
    tmp_path_factory: Any,
) -> Iterator[Intake]:
    env = {
        **sqs_environment(moto_url, f"fz{uuid.uuid4().hex[:8]}-"),
        "TWENTYQ_RESULT_BACKEND": redis_server_url.rsplit("/", 1)[0] + "/8",
    }
    patch = pytest.MonkeyPatch()
    for name, value in env.items():
        patch.setenv(name, value)
    broker = BrokerUnderTest("sqs", env, BrokerSettings())
    worker_settings = worker_env(broker, stub_registry(), batch_size="8", batch_window_ms="5")
    log = tmp_path_factory.mktemp("sqs-intake") / "worker.log"
    app = create_producer_app(broker.settings)
    with connect(broker.settings) as connection:  # every queue, the dead letters' included
        for queue in task_queues():
            queue(connection.default_channel).declare()
    try:
        with running_worker(worker_settings, log) as worker:
            yield SqsIntake(worker, app, env)
            assert worker.process.poll() is None, worker.log()[-3000:]
    finally:
        app.close()
        patch.undo()


@pytest.fixture(scope="module")
def intake(
    redis_server_url: str, stub_registry: Callable[..., StubRegistration], tmp_path_factory: Any
) -> Iterator[Intake]:
    url = redis_server_url.rsplit("/", 1)[0] + "/7"
    client = redis.Redis.from_url(url)
    client.flushdb()
    settings_ = BrokerSettings(broker_url=url)
    broker = BrokerUnderTest("redis", {"TWENTYQ_BROKER_URL": url}, settings_)
    env = worker_env(broker, stub_registry(), batch_size="8", batch_window_ms="5")
    log = tmp_path_factory.mktemp("intake") / "worker.log"
    app = create_producer_app(settings_)
    with running_worker(env, log) as worker:
        yield Intake(worker, client, app)
        assert worker.process.poll() is None, worker.log()[-3000:]
    app.close()
    client.close()


def envelope(body: bytes, headers: Any, **properties: Any) -> bytes:
    """A kombu Redis envelope, as kombu itself would write it."""
    return json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "content-type": "application/json",
            "content-encoding": "utf-8",
            "headers": headers,
            "properties": {
                "delivery_tag": str(uuid.uuid4()),
                "delivery_info": {"exchange": TURNS_QUEUE, "routing_key": TURNS_QUEUE},
                "body_encoding": "base64",
                **properties,
            },
        }
    ).encode()


def turn_json() -> dict[str, Any]:
    return make_turn(0, 1).model_dump(mode="json")


POISON = {
    # Issue 19: each of these stopped the fleet.
    "args_only_body": (
        lambda: envelope(json.dumps([[turn_json()]]).encode(), {"task": TURN_TASK_NAME, "id": "x"}),
        "invalid_turn",
    ),
    "headers_without_id": (
        lambda: envelope(json.dumps([[turn_json()], {}, {}]).encode(), {"task": TURN_TASK_NAME}),
        "invalid_envelope",
    ),
    "not_an_envelope": (lambda: b"garbage{", "malformed_envelope"),
    "celery_builtin_task": (
        lambda: envelope(b"[[], {}, {}]", {"task": "celery.accumulate", "id": "y"}),
        "unknown_task",
    ),
    "turn_as_a_string": (
        lambda: envelope(
            json.dumps([[{**turn_json(), "turn": "3"}], {}, {}]).encode(),
            {"task": TURN_TASK_NAME, "id": "z"},
        ),
        "invalid_turn",
    ),
}


@pytest.mark.parametrize("kind", list(POISON))
def test_a_poison_message_is_dead_lettered_and_the_worker_serves_on(
    intake: Intake, kind: str
) -> None:
    build, reason = POISON[kind]
    before = intake.dead_letters()
    intake.push_raw(build())
    intake.still_serves()
    intake.settled()
    assert intake.dead_letters() == before + 1
    assert intake.last_letter().reason.value == reason


def test_garbage_keeps_its_bytes_in_the_dead_letter(intake: Intake) -> None:
    raw = b"\xff\xfe not json {"
    intake.push_raw(raw)
    intake.still_serves()
    intake.settled()
    letter = intake.last_letter()
    assert letter.body_encoding == "base64" and base64.b64decode(letter.body) == raw


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_bodies = st.one_of(
    st.binary(max_size=120),
    _json.map(lambda value: json.dumps(value).encode()),
    st.tuples(_json, _json, _json).map(lambda parts: json.dumps(list(parts)).encode()),
    st.sampled_from(["turn", "game_id", "history", "sent_at", "metadata", "turn_id"]).flatmap(
        lambda field: _json.map(
            lambda bad: json.dumps([[{**turn_json(), field: bad}], {}, {}]).encode()
        )
    ),
)
_headers = st.one_of(
    _json,
    st.fixed_dictionaries(
        {"task": st.sampled_from([TURN_TASK_NAME, "celery.accumulate"]) | _json},
        optional={"id": st.uuids().map(str) | _json, "lang": _json},
    ),
)


@st.composite
def raw_items(draw: st.DrawFn) -> bytes:
    """Bytes on the turns list: random bytes, broken envelopes, or envelopes of bad turns."""
    kind = draw(st.sampled_from(["bytes", "json", "envelope"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(_json)).encode()
    item = json.loads(envelope(draw(_bodies), draw(_headers)))
    for key in draw(st.sets(st.sampled_from(["content-type", "content-encoding", "body"]))):
        item[key] = draw(_json)
    for key in draw(st.sets(st.sampled_from(["delivery_info", "body_encoding", "priority"]))):
        item["properties"][key] = draw(_json)
    return json.dumps(item).encode()


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.parametrize("which", ["intake", "sqs_intake", "pubsub_intake"])
@given(item=raw_items())
def test_whatever_lands_on_the_queue_is_answered_or_dead_lettered_never_lost(
    request: pytest.FixtureRequest, which: str, item: bytes
) -> None:
    target: Intake = request.getfixturevalue(which)
    if which == "sqs_intake":
        # SQS carries only text without control characters; the rest it refuses itself.
        assume(_sqs_can_carry(item))
    before = target.dead_letters()
    target.push_raw(item)
    target.still_serves()
    target.expect_dead_letters(before + 1)


def _sqs_can_carry(item: bytes) -> bool:
    try:
        text = item.decode()
    except UnicodeDecodeError:
        return False
    return bool(text) and all(
        ch in "\t\n\r" or " " <= ch <= "\ud7ff" or ch >= "\ue000" for ch in text
    )


def _push_foreign_bytes(broker: BrokerUnderTest, raw: bytes) -> None:
    # Bytes that no kombu client wrote, straight onto the broker's turns queue or topic.
    if broker.name == "pubsub":
        publish_to_turns_topic(broker.env, raw)
    elif broker.name == "sqs":
        client = sqs_client(broker.env["TWENTYQ_SQS_ENDPOINT_URL"])
        prefix = broker.env["TWENTYQ_SQS_QUEUE_NAME_PREFIX"]
        url = queue_urls(client, prefix)[prefix + "twentyq-turns"]
        client.send_message(QueueUrl=url, MessageBody=raw.decode("utf-8", "replace"))
    else:
        redis.Redis.from_url(broker.env["TWENTYQ_BROKER_URL"]).lpush(TURNS_QUEUE, raw)


@pytest.mark.parametrize("broker", ["redis", "sqs", "pubsub"], indirect=True)
@pytest.mark.parametrize("raw", [b"garbage{", b'{"no": "envelope"}'])
def test_foreign_bytes_on_the_queue_are_dead_lettered_and_the_worker_serves_on(
    broker: BrokerUnderTest, start_worker: Any, raw: bytes
) -> None:
    with start_worker(batch_size="4") as worker:
        _push_foreign_bytes(broker, raw)
        turn = make_turn(2, 1)
        assert submit_turn(turn, app=broker.client_app()).get(timeout_s=60).turn_id == turn.turn_id
        with broker.connection() as connection:
            [letter] = drain(connection, DEAD_LETTER_QUEUE, 1, timeout_s=30)
        assert worker.process.poll() is None, worker.log()[-3000:]
    assert letter["reason"] in {"malformed_envelope", "unknown_task", "undecodable"}
