"""kombu's Redis transport, with the bulk operations a micro-batching worker needs.

kombu's Redis channel makes one round trip per message for everything: a
``BRPOP`` to receive, a ``ZADD``+``HSET`` to hold it as unacknowledged, a
``ZREM``+``HDEL`` to acknowledge it, an ``LPUSH`` to publish. A batch of N
turns paid 4N round trips before any of its own work. This transport keeps
kombu's data layout and semantics (the same ``unacked`` / ``unacked_index``
structures, so kombu's visibility-timeout restore still covers every message)
and adds:

- bulk receive: when ``BRPOP`` hands a consumer a message, one Lua call holds
  it and takes up to the consumer's free prefetch more from the same list,
  holding each as unacknowledged in the same atomic step (the taken messages
  have no window where a kill loses them; the ``BRPOP``-ed one keeps kombu's);
- :meth:`QoS.acks_in_one_round_trip`: acknowledge a whole batch with one
  ``ZREM``+``HDEL`` of every tag;
- :meth:`Channel.put_many`: publish many messages with one ``LPUSH``;
- one redis-py client per channel instead of a new one per command.

Selected by :func:`producer.broker.transport_class` for ``redis://`` URLs
(``rediss://`` keeps kombu's own); ambassadors, workers and the sidecar use it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from queue import Empty
from time import time
from typing import Any

from kombu.transport import redis, virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

# Holds the message BRPOP just delivered (ARGV[3] its tag, ARGV[4] kombu's unacked record)
# and takes up to ARGV[2] more from KEYS[1], holding each in kombu's unacked structures
# (KEYS[2] the index, KEYS[3] the hash) exactly as QoS.append would, in one atomic call.
# An item that is not a kombu message goes back where it was and ends the run: kombu's
# own BRPOP path takes it next and handles it as it always does.
_HOLD_AND_TAKE_LUA = """
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
local taken = {}
for _ = 1, tonumber(ARGV[2]) do
  local item = redis.call('RPOP', KEYS[1])
  if not item then break end
  local ok, message = pcall(cjson.decode, item)
  local properties = ok and type(message) == 'table' and message['properties']
  local tag = type(properties) == 'table' and properties['delivery_tag']
  local info = type(properties) == 'table' and properties['delivery_info']
  if type(tag) ~= 'string' or type(info) ~= 'table' then
    redis.call('RPUSH', KEYS[1], item)
    break
  end
  redis.call('ZADD', KEYS[2], ARGV[1], tag)
  redis.call('HSET', KEYS[3], tag, '[' .. item .. ',' .. cjson.encode(info['exchange'] or '')
    .. ',' .. cjson.encode(info['routing_key'] or '') .. ']')
  taken[#taken + 1] = item
end
return taken
"""
UNBOUNDED_PREFETCH_TAKE = 100


class QoS(redis.QoS):  # type: ignore[misc]
    """kombu's Redis ack emulation, able to acknowledge many messages at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred_acks: list[str] | None = None
        self._held: set[str] = set()

    def append(self, message: Any, delivery_tag: str) -> None:
        """Hold a delivered message as unacknowledged (in Redis unless the bulk take did)."""
        if delivery_tag in self._held:
            self._held.discard(delivery_tag)
            virtual.QoS.append(self, message, delivery_tag)
            return
        super().append(message, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        """Acknowledge now, or at the end of :meth:`acks_in_one_round_trip` when inside one."""
        if self._deferred_acks is None:
            super().ack(delivery_tag)
            return
        self._deferred_acks.append(delivery_tag)
        self._quick_ack(delivery_tag)  # kombu's in-memory bookkeeping only

    @contextmanager
    def acks_in_one_round_trip(self) -> Iterator[None]:
        """Acknowledgements made inside reach Redis together, in one round trip, on exit.

        A crash before the exit leaves those messages held as unacknowledged: kombu
        restores them after the visibility timeout (a redelivery, never a loss).
        """
        if self._deferred_acks is not None:  # already batching: the outer block sends
            yield
            return
        self._deferred_acks = []
        try:
            yield
        finally:
            tags, self._deferred_acks = self._deferred_acks, None
            if tags:
                with self.channel.conn_or_acquire() as client:
                    pipe = client.pipeline()
                    pipe.zrem(self.unacked_index_key, *tags)
                    pipe.hdel(self.unacked_key, *tags)
                    pipe.execute()


class Channel(redis.Channel):  # type: ignore[misc]
    """kombu's Redis channel with bulk publishing and the bulk-ack QoS."""

    QoS = QoS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._routes: dict[tuple[str, str], list[str]] = {}
        self._acked_queues: set[str] = set()
        self._pooled_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        """kombu's client factory, with the synchronous client built once, not per command.

        kombu builds a new redis-py client for every command outside the poller
        (each publish, hold, ack); a client is only a handle on the channel's
        connection pool, but redis-py 7 takes about 0.4 ms of CPU to build one
        (a ~170-entry response-callback table). It is thread-safe, so one is shared.
        """
        if asynchronous:
            return super()._create_client(asynchronous=True)
        if self._pooled_client is None or self._pooled_client.connection_pool is not self.pool:
            self._pooled_client = super()._create_client()
        return self._pooled_client

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        """Consume like kombu; queues consumed with acks get the bulk receive."""
        (self._acked_queues.discard if no_ack else self._acked_queues.add)(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def _brpop_read(self, **options: Any) -> bool:
        """kombu 5.7's ``Channel._brpop_read``, holding and delivering in bulk.

        The message ``BRPOP`` returned is held, and up to the consumer's free
        prefetch more are taken from the same list and held, in one Lua call
        (kombu: one ``ZADD``+``HSET`` round trip per message); then all are delivered.
        """
        try:
            try:
                dest_item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            if not dest_item:
                raise Empty()
            key, item = (bytes_to_str(part) for part in dest_item)
        finally:
            self._in_poll = None  # type: ignore[assignment]
            self._flush_brpop_reauth()
        queue = key.rsplit(self.sep, 1)[0]
        self._queue_cycle.rotate(queue)
        message = loads(item)
        if queue not in self._acked_queues:  # no_ack consumer: nothing to hold
            self.connection._deliver(message, queue)
            return True
        messages = [message, *(loads(more) for more in self._hold_and_take(key, message))]
        for delivered in messages:
            self.qos._held.add(delivered["properties"]["delivery_tag"])
            self.connection._deliver(delivered, queue)
        return True

    def _hold_and_take(self, key: str, message: dict[str, Any]) -> list[str]:
        # Up to the consumer's free prefetch (after this message), from the list BRPOP
        # answered from. The unacked record is kombu's own: [message, exchange, routing_key].
        free = self.qos.can_consume_max_estimate()
        count = UNBOUNDED_PREFETCH_TAKE if free is None else max(int(free) - 1, 0)
        properties = message["properties"]
        info = properties["delivery_info"]
        record = dumps([message, info["exchange"], info["routing_key"]])
        with self.conn_or_acquire() as client:
            taken: list[str] = client.eval(
                _HOLD_AND_TAKE_LUA,
                3,
                key,
                self.unacked_index_key,
                self.unacked_key,
                time(),
                count,
                properties["delivery_tag"],
                record,
            )
        return taken

    def put_many(self, exchange: str, routing_key: str, messages: Sequence[dict[str, Any]]) -> None:
        """Publish prepared messages (``prepare_message``) with one ``LPUSH`` per queue.

        Routed like kombu's ``basic_publish`` (one binding lookup for all), and in
        order: a consumer receives them in the order given.
        """
        if not messages:
            return
        payloads: dict[int, list[str]] = {}
        for message in messages:
            self._inplace_augment_message(message, exchange, routing_key)
            priority = self._get_message_priority(message, reverse=False)
            payloads.setdefault(priority, []).append(dumps(message))
        route = (exchange, routing_key)
        if route not in self._routes:  # one binding lookup per route, not per batch
            self._routes[route] = self._lookup(exchange, routing_key)
        queues = self._routes[route]
        with self.conn_or_acquire() as client:
            pipe = client.pipeline()
            for queue in queues:
                for priority, items in payloads.items():
                    pipe.lpush(self._q_for_pri(queue, priority), *items)
            pipe.execute()


class Transport(redis.Transport):  # type: ignore[misc]
    """The Redis transport twentyq uses: kombu's, with :class:`Channel`."""

    Channel = Channel
