"""kombu's Redis transport, with the atomic bulk take and the bulk writes a batching worker needs.

kombu's Redis channel makes one round trip per message for everything, and
its receive is two: a ``BRPOP`` takes the message off the list, then a
``ZADD``+``HSET`` holds it as unacknowledged, so a consumer killed in between
loses it. This transport keeps kombu's data layout (the same ``unacked`` /
``unacked_index`` structures, so kombu's visibility-timeout restore still
covers every message) and, for a channel consuming one queue with acks:

- waits with ``BLMOVE q q RIGHT RIGHT``, which moves nothing, then takes up to
  the free prefetch and holds each taken message in one Lua call: no message
  is ever off the queue without being held;
- wraps what is no kombu envelope (hex-encoded, content type
  :data:`~producer.envelope.UNPARSED_CONTENT_TYPE`) for the worker to refuse;
- :meth:`QoS.acks_in_one_round_trip`: acknowledges a batch with one
  ``ZREM``+``HDEL`` of every tag;
- restores a held message by its routing key when kombu cannot route it
  (kombu deleted the record and lost the message);

and everywhere :meth:`Channel.put_many` (many messages, one ``LPUSH``) and
one redis-py client per channel instead of a new one per command. Read from
kombu 5.7 (``_brpop_start``, ``_brpop_read``, ``_do_restore_message``).

Selected by :func:`producer.broker.transport_class` for ``redis://`` URLs
(``rediss://`` keeps kombu's own); ambassadors, workers and the sidecar use it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from queue import Empty
from time import monotonic, time
from typing import Any

from kombu.transport import redis, virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from producer.envelope import UNPARSED_CONTENT_TYPE, envelope_problem, wrap_unparsed

# Takes up to ARGV[2] messages from the lists KEYS[1..n-2] (a queue's priority lists, highest
# first) and holds each in kombu's unacked structures (KEYS[n-1] the index, KEYS[n] the hash)
# exactly as QoS.append would, in one atomic call: a message is never off the queue without
# being held, so kombu's visibility-timeout restore covers every message a consumer took.
# An item with no kombu delivery tag is held too, wrapped in an envelope of its own (its
# bytes hex-encoded, content type UNPARSED_CONTENT_TYPE) so the consumer dead-letters it and
# a restore after a crash keeps its bytes. ARGV[3]/ARGV[4]: the queue's exchange and key;
# ARGV[5]: the wrapper's content type.
_TAKE_AND_HOLD_LUA = """
local index, hash = KEYS[#KEYS - 1], KEYS[#KEYS]
local taken = {}
local function wrap(item, n)
  local tag = 'unparsed-' .. redis.sha1hex(item) .. '-' .. ARGV[1] .. '-' .. n
  local hex = string.gsub(item, '.', function(c) return string.format('%02x', string.byte(c)) end)
  local info = {exchange = ARGV[3], routing_key = ARGV[4]}
  return tag, cjson.encode({body = hex, ['content-type'] = ARGV[5],
    ['content-encoding'] = 'binary', properties = {delivery_tag = tag, delivery_info = info}})
end
for k = 1, #KEYS - 2 do
  while #taken < 2 * tonumber(ARGV[2]) do
    local item = redis.call('RPOP', KEYS[k])
    if not item then break end
    local ok, message = pcall(cjson.decode, item)
    local properties = ok and type(message) == 'table' and message['properties']
    local tag = type(properties) == 'table' and properties['delivery_tag']
    local info = type(properties) == 'table' and properties['delivery_info']
    local record
    if type(tag) == 'string' and type(info) == 'table' then
      record = '[' .. item .. ',' .. cjson.encode(info['exchange'] or '') .. ','
        .. cjson.encode(info['routing_key'] or '') .. ']'
    else
      tag, item = wrap(item, #taken)
      record = '[' .. item .. ',' .. cjson.encode(ARGV[3]) .. ',' .. cjson.encode(ARGV[4]) .. ']'
    end
    redis.call('ZADD', index, ARGV[1], tag)
    redis.call('HSET', hash, tag, record)
    taken[#taken + 1] = tag
    taken[#taken + 1] = item
  end
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

    def _consumed_with_acks(self) -> str | None:
        # The bulk take serves a channel consuming exactly one queue with acks (the worker's
        # turns); any other mix of queues keeps kombu's BRPOP across all of them.
        queues = list(self.active_queues)
        if len(queues) == 1 and queues[0] in self._acked_queues:
            return str(queues[0])
        return None

    def _brpop_start(self, timeout: float | None = None) -> None:
        """Wait for a message without taking it (``BLMOVE key key RIGHT RIGHT``), or kombu's BRPOP.

        ``BLMOVE`` from a list to the same end of itself blocks until the list has an
        item and leaves it where it was: a wake-up that moves nothing, so no message is
        ever off the queue before :meth:`_brpop_read` takes and holds it atomically.
        """
        queue = self._consumed_with_acks()
        if queue is None:
            super()._brpop_start(timeout)
            return
        command = ["BLMOVE", queue, queue, "RIGHT", "RIGHT", self.brpop_timeout or 0]
        if self.global_keyprefix:
            command = self.client._prefix_args(command)
        self._in_poll = self.client.connection
        self._brpop_sent_at = monotonic()  # type: ignore[assignment]
        self.client.connection.send_command(*command)

    def _brpop_read(self, **options: Any) -> bool:
        """After a wake-up, take and hold up to the free prefetch in one call and deliver them.

        A taken item that is not a kombu envelope is delivered as an
        :data:`UNPARSED_CONTENT_TYPE` message, for the consumer to dead-letter.
        """
        queue = self._consumed_with_acks()
        if queue is None:
            return bool(super()._brpop_read(**options))
        try:
            try:
                self.client.parse_response(self.client.connection, "BLMOVE", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
        finally:
            self._in_poll = None  # type: ignore[assignment]
            self._flush_brpop_reauth()
        taken = self.take_and_hold(queue)
        if not taken:
            raise Empty()
        for message in taken:
            self.qos._held.add(message["properties"]["delivery_tag"])
            self.connection._deliver(message, queue)
        return True

    def take_and_hold(self, queue: str, count: int | None = None) -> list[dict[str, Any]]:
        """Take up to ``count`` (default: the free prefetch) messages, each held as unacked.

        One server-side call; the messages come back parsed, highest priority first.
        """
        if count is None:
            free = self.qos.can_consume_max_estimate()
            count = UNBOUNDED_PREFETCH_TAKE if free is None else max(int(free), 1)
        keys = [self._q_for_pri(queue, priority) for priority in self.priority_steps]
        with self.conn_or_acquire() as client:
            flat = client.eval(
                _TAKE_AND_HOLD_LUA,
                len(keys) + 2,
                *keys,
                self.unacked_index_key,
                self.unacked_key,
                time(),
                count,
                queue,
                queue,
                UNPARSED_CONTENT_TYPE,
            )
            pairs = zip(flat[::2], flat[1::2], strict=True)
            return [
                self._parsed_or_wrapped(client, queue, bytes_to_str(tag), item)
                for tag, item in pairs
            ]

    def _parsed_or_wrapped(self, client: Any, queue: str, tag: str, item: bytes) -> dict[str, Any]:
        # Lua's cjson accepts what Python's json refuses (bytes that are not UTF-8, hex
        # numbers) and checks only the delivery tag: what kombu cannot build a Message from
        # is wrapped here and its held record rewritten under the tag Lua held it by, so
        # neither this read nor a restore after a crash chokes on it.
        try:
            message = loads(bytes_to_str(item))
            problem = envelope_problem(message, tag)
        except ValueError as error:
            message, problem = None, f"not JSON ({error})"
        if problem is None:
            return message  # type: ignore[no-any-return]
        wrapped = wrap_unparsed(bytes(item), tag, queue)
        client.hset(self.unacked_key, tag, dumps([wrapped, queue, queue]))
        return wrapped

    def _do_restore_message(
        self,
        payload: Any,
        exchange: str,
        routing_key: str,
        pipe: Any,
        leftmost: bool = False,
    ) -> None:
        """kombu 5.7's restore of one held message, never dropping it when routing fails.

        kombu logs a message it cannot route back (``Could not restore message``) and
        still deletes its held record in the same transaction: after a reconnect, a
        closed channel's restore lost every message it held. Here such a message goes
        back to the queue its routing key names (twentyq's queues are bound by their
        own name), and when even that fails the transaction is aborted, so the record
        stays and the visibility-timeout restore brings the message back later.
        """
        try:
            queues = list(self._lookup(exchange, routing_key))
        except self.connection_errors:
            raise
        except Exception:  # a closed channel's state: route by the routing key itself
            queues = [routing_key]
        if not queues or not isinstance(payload, dict):
            raise ValueError("nothing to restore the message to; it stays held")
        for key in ("headers",):
            if isinstance(payload.get(key), dict):
                payload[key]["redelivered"] = True
        properties = payload.get("properties")
        if isinstance(properties, dict) and isinstance(properties.get("delivery_info"), dict):
            properties["delivery_info"]["redelivered"] = True
        priority = self._get_message_priority(payload, reverse=False)
        push = pipe.lpush if leftmost else pipe.rpush
        for queue in queues:
            push(self._q_for_pri(queue, priority), dumps(payload))

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
