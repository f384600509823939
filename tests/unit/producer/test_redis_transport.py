"""The bulk-ack QoS of twentyq's Redis transport, on fakeredis (the real-server proof is in
tests/integration/test_redis_transport.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fakeredis
import pytest

from producer.redis_transport import QoS


class FakeChannel:
    """What the QoS needs of a kombu Redis channel."""

    unacked_key = "unacked"
    unacked_index_key = "unacked_index"
    do_restore = False

    def __init__(self) -> None:
        self.client = fakeredis.FakeRedis()

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        yield client or self.client


class Message:
    def __init__(self, tag: str) -> None:
        self.delivery_tag = tag
        self.delivery_info = {"exchange": "twentyq.turns", "routing_key": "twentyq.turns"}
        self._raw = {"properties": {"delivery_tag": tag}}


@pytest.fixture()
def held() -> tuple[QoS, FakeChannel]:
    channel = FakeChannel()
    qos = QoS(channel, prefetch_count=3)
    for tag in ("a", "b", "c"):
        qos.append(Message(tag), tag)
    assert channel.client.hlen("unacked") == 3
    return qos, channel


def test_acks_in_a_block_reach_redis_together_when_it_ends(held: tuple[QoS, FakeChannel]) -> None:
    qos, channel = held
    with qos.acks_in_one_round_trip():
        qos.ack("a")
        with qos.acks_in_one_round_trip():  # a nested block leaves sending to the outer one
            qos.ack("b")
        assert channel.client.hlen("unacked") == 3
    assert channel.client.hkeys("unacked") == [b"c"]
    assert channel.client.zrange("unacked_index", 0, -1) == [b"c"]
    assert qos.can_consume_max_estimate() == 2  # their prefetch slots are free again


def test_an_ack_outside_a_block_goes_at_once(held: tuple[QoS, FakeChannel]) -> None:
    qos, channel = held
    qos.ack("c")
    assert sorted(channel.client.hkeys("unacked")) == [b"a", b"b"]


def test_a_message_the_bulk_take_already_held_is_not_written_again(
    held: tuple[QoS, FakeChannel],
) -> None:
    qos, channel = held
    qos._held.add("d")
    qos.append(Message("d"), "d")
    assert channel.client.hlen("unacked") == 3  # the Lua take wrote it, not append
    assert "d" in qos._delivered and "d" not in qos._held
