"""The Redis pop-and-hold queue against real Redis: kombu-compatible bookkeeping."""

from __future__ import annotations

import json
import time

import pytest
import redis
from kombu import Connection  # type: ignore[attr-defined]
from kombu.exceptions import ContentDisallowed

from monitoring.redis_queue import UNACKED_INDEX_KEY, UNACKED_KEY, RedisExportQueue
from producer.broker import publish_json
from producer.messages import EXPORT_QUEUE, TURNS_QUEUE

pytestmark = pytest.mark.integration


def test_a_popped_message_is_held_until_acknowledged(redis_url: str) -> None:
    with Connection(redis_url) as connection:
        publish_json(connection, EXPORT_QUEUE, {"kind": "outcome", "n": 1})
    client = redis.Redis.from_url(redis_url)
    queue = RedisExportQueue(client, EXPORT_QUEUE, visibility_timeout_s=60)
    message = queue.pop()
    assert message is not None
    assert message.decode() == {"kind": "outcome", "n": 1}
    # Held in kombu's own structures, in the same step as the pop.
    assert client.llen(EXPORT_QUEUE) == 0
    assert client.hexists(UNACKED_KEY, message.delivery_tag)
    assert client.zscore(UNACKED_INDEX_KEY, message.delivery_tag) is not None
    message.ack()
    assert client.hlen(UNACKED_KEY) == 0 and client.zcard(UNACKED_INDEX_KEY) == 0
    assert queue.pop() is None


def test_stale_messages_of_this_queue_only_are_restored(redis_url: str) -> None:
    with Connection(redis_url) as connection:
        publish_json(connection, EXPORT_QUEUE, {"kind": "outcome", "n": 2})
    client = redis.Redis.from_url(redis_url)
    # Another queue's held message (a worker's turn) must be left to its own consumer.
    other = json.dumps([{"body": "", "properties": {"delivery_tag": "t"}}, "x", TURNS_QUEUE])
    client.hset(UNACKED_KEY, "t", other)
    client.zadd(UNACKED_INDEX_KEY, {"t": time.time() - 3600})
    queue = RedisExportQueue(client, EXPORT_QUEUE, visibility_timeout_s=0.5)
    held = queue.pop()
    assert held is not None
    assert queue.restore_stale() == 0, "restored a message still within its visibility timeout"
    time.sleep(0.6)
    assert queue.restore_stale() == 1
    again = queue.pop()
    assert again is not None and again.delivery_tag == held.delivery_tag
    assert again.decode() == {"kind": "outcome", "n": 2}
    assert client.hexists(UNACKED_KEY, "t")


def test_garbage_on_the_list_is_handed_over_for_dead_lettering(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.lpush(EXPORT_QUEUE, b"not a kombu message")
    queue = RedisExportQueue(client, EXPORT_QUEUE, visibility_timeout_s=60)
    message = queue.pop()
    assert message is not None
    assert message.delivery_tag.startswith("undecodable:")
    with pytest.raises(ContentDisallowed):
        message.decode()
    assert message.body == "not a kombu message"
    # Held as a well-formed message, so kombu's own restore can put it back too.
    held = json.loads(client.hget(UNACKED_KEY, message.delivery_tag))  # type: ignore[arg-type]
    assert held[0]["body"] == "not a kombu message" and held[2] == EXPORT_QUEUE
    message.ack()
    assert client.hlen(UNACKED_KEY) == 0
