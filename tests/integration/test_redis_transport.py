"""twentyq's Redis transport against a real redis-server: bulk receive, ack and publish.

Each bulk operation must keep kombu's data layout, so kombu's visibility-timeout
restore still brings back every held message, and must cost one round trip per
batch (counted with Redis's own ``INFO commandstats``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu import Connection, Consumer  # type: ignore[attr-defined]

from producer import redis_transport
from producer.broker import BrokerSettings, connect, publish_many_json, task_queues
from producer.envelope import UNPARSED_CONTENT_TYPE
from producer.messages import EXPORT_QUEUE

pytestmark = pytest.mark.integration

UNACKED_KEY, UNACKED_INDEX_KEY = "unacked", "unacked_index"


def calls(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats").get(f"cmdstat_{command}", {})
    return int(stats.get("calls", 0))


@pytest.fixture()
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture()
def connection(redis_url: str) -> Iterator[Connection]:
    with connect(BrokerSettings(broker_url=redis_url)) as opened:
        assert isinstance(opened.default_channel, redis_transport.Channel)
        yield opened


def export_queue() -> Any:
    return next(queue for queue in task_queues() if queue.name == EXPORT_QUEUE)


def receive(connection: Connection, *, prefetch: int, no_ack: bool = False) -> list[Any]:
    """One ``drain_events``: what a single BRPOP wake-up hands the consumer."""
    received: list[Any] = []
    channel = connection.default_channel
    consumer = Consumer(channel, [export_queue()], callbacks=[lambda _, m: received.append(m)])
    consumer.no_ack = no_ack
    consumer.qos(prefetch_count=prefetch)
    consumer.consume()
    connection.drain_events(timeout=2)
    return received


def test_many_messages_go_out_in_one_lpush_and_arrive_in_order(
    connection: Connection, client: redis.Redis
) -> None:
    before = calls(client, "lpush")
    assert publish_many_json(connection, EXPORT_QUEUE, [{"n": n} for n in range(6)]) == 6
    assert calls(client, "lpush") - before == 1
    received = receive(connection, prefetch=10)
    assert [message.decode() for message in received] == [{"n": n} for n in range(6)]


def test_one_wake_up_takes_up_to_the_free_prefetch_and_holds_each_taken_message(
    connection: Connection, client: redis.Redis
) -> None:
    publish_many_json(connection, EXPORT_QUEUE, [{"n": n} for n in range(8)])
    received = receive(connection, prefetch=5)
    assert [message.decode()["n"] for message in received] == [0, 1, 2, 3, 4]
    assert client.llen(EXPORT_QUEUE) == 3, "took more than the prefetch allows"
    # Held exactly as kombu's QoS.append holds a message: [payload, exchange, routing_key].
    for message in received:
        record = json.loads(client.hget(UNACKED_KEY, message.delivery_tag))
        assert record[1:] == [EXPORT_QUEUE, EXPORT_QUEUE]
        assert record[0]["properties"]["delivery_tag"] == message.delivery_tag
        assert client.zscore(UNACKED_INDEX_KEY, message.delivery_tag) is not None


def test_a_held_message_of_a_dead_consumer_is_restored_by_kombu(
    redis_url: str, client: redis.Redis
) -> None:
    # The first consumer takes three and "dies" (never acks, never closes its channel).
    crashed = connect(BrokerSettings(broker_url=redis_url))
    publish_many_json(crashed, EXPORT_QUEUE, [{"n": n} for n in range(3)])
    taken = receive(crashed, prefetch=3)
    assert client.llen(EXPORT_QUEUE) == 0 and client.hlen(UNACKED_KEY) == 3
    # Another process's kombu restores them from the records the bulk take wrote.
    with Connection(redis_url) as survivor:
        for message in taken:
            survivor.default_channel.qos.restore_by_tag(message.delivery_tag)
    assert client.llen(EXPORT_QUEUE) == 3 and client.hlen(UNACKED_KEY) == 0
    with connect(BrokerSettings(broker_url=redis_url)) as survivor:
        again = receive(survivor, prefetch=10)
        assert sorted(message.decode()["n"] for message in again) == [0, 1, 2]
        assert all(message.headers.get("redelivered") for message in again)
    crashed.default_channel.qos.restore_at_shutdown = False
    crashed.release()


def test_a_batch_is_acknowledged_in_one_round_trip(
    connection: Connection, client: redis.Redis
) -> None:
    publish_many_json(connection, EXPORT_QUEUE, [{"n": n} for n in range(4)])
    received = receive(connection, prefetch=4)
    before = calls(client, "zrem")
    with connection.default_channel.qos.acks_in_one_round_trip():
        for message in received:
            message.ack()
        assert client.hlen(UNACKED_KEY) == 4, "acked before the block ended"
    assert calls(client, "zrem") - before == 1
    assert client.hlen(UNACKED_KEY) == 0 and client.zcard(UNACKED_INDEX_KEY) == 0


def test_a_consumer_without_acks_takes_one_message_and_holds_nothing(
    connection: Connection, client: redis.Redis
) -> None:
    publish_many_json(connection, EXPORT_QUEUE, [{"n": n} for n in range(3)])
    received = receive(connection, prefetch=3, no_ack=True)
    assert [message.decode() for message in received] == [{"n": 0}]
    assert client.llen(EXPORT_QUEUE) == 2 and client.hlen(UNACKED_KEY) == 0


def test_garbage_on_the_list_is_held_and_delivered_wrapped_with_its_bytes(
    connection: Connection, client: redis.Redis
) -> None:
    publish_many_json(connection, EXPORT_QUEUE, [{"n": 1}])
    client.lpush(EXPORT_QUEUE, b"not a kombu message", b'{"a": 0x10, "properties": {}}')
    received = receive(connection, prefetch=5)
    good, *wrapped = received
    assert good.decode() == {"n": 1}
    assert [message.content_type for message in wrapped] == [UNPARSED_CONTENT_TYPE] * 2
    assert [bytes.fromhex(message.body.decode()) for message in wrapped] == [
        b"not a kombu message",
        b'{"a": 0x10, "properties": {}}',
    ]
    # Held like any message, so a crash before its dead letter restores it, bytes and all.
    assert client.llen(EXPORT_QUEUE) == 0 and client.hlen(UNACKED_KEY) == 3
    for message in wrapped:
        record = json.loads(client.hget(UNACKED_KEY, message.delivery_tag))
        assert record[0]["content-type"] == UNPARSED_CONTENT_TYPE


def test_a_wake_up_moves_nothing_before_the_atomic_take(
    connection: Connection, client: redis.Redis
) -> None:
    # kombu's BRPOP pops a message before holding it; the peek leaves the list as it was.
    channel = connection.default_channel
    consumer = Consumer(channel, [export_queue()], callbacks=[lambda *_: None])
    consumer.qos(prefetch_count=5)
    consumer.consume()
    publish_many_json(connection, EXPORT_QUEUE, [{"n": 1}])
    before = calls(client, "brpop")
    connection.drain_events(timeout=2)
    assert calls(client, "brpop") == before
    assert calls(client, "blmove") >= 1
