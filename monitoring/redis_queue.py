"""The export queue on Redis, read without kombu's in-flight gap.

kombu's Redis transport takes a message off the list with ``BRPOP`` and only
then, in a second round trip, records it as unacknowledged: a sidecar killed
between the two loses that message. Here one Lua script pops the message and
records it in kombu's own ``unacked`` / ``unacked_index`` structures
atomically, so a kill at any moment leaves every message either queued or
held-and-restorable. Acknowledging and restoring use the same structures, so
kombu consumers on the same Redis (Celery workers) restore the sidecar's
stale messages too, and the sidecar restores only its own queue's.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from kombu.serialization import loads, prepare_accept_content

ACCEPT_CONTENT = prepare_accept_content(["json"])
UNACKED_KEY = "unacked"
UNACKED_INDEX_KEY = "unacked_index"

_POP_AND_HOLD = """
local item = redis.call('RPOP', KEYS[1])
if not item then return nil end
local ok, message = pcall(cjson.decode, item)
local tag
if ok and type(message) == 'table' and type(message['properties']) == 'table'
   and type(message['properties']['delivery_tag']) == 'string' then
  tag = message['properties']['delivery_tag']
else
  -- Held (and restorable by kombu) as a well-formed message the sidecar will dead-letter.
  tag = 'undecodable:' .. redis.sha1hex(item)
  item = cjson.encode({body = item, ['content-type'] = 'application/x-undecodable',
    ['content-encoding'] = 'binary', headers = {},
    properties = {delivery_tag = tag, body_encoding = 'plain',
      delivery_info = {exchange = ARGV[2], routing_key = ARGV[3]}}})
end
redis.call('ZADD', KEYS[2], ARGV[1], tag)
redis.call('HSET', KEYS[3], tag, '[' .. item .. ',' .. cjson.encode(ARGV[2]) .. ','
  .. cjson.encode(ARGV[3]) .. ']')
return {tag, item}
"""

_RESTORE_STALE = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
local restored = 0
for _, tag in ipairs(stale) do
  local held = redis.call('HGET', KEYS[2], tag)
  if held then
    local ok, entry = pcall(cjson.decode, held)
    if ok and entry[3] == ARGV[2] then
      redis.call('ZREM', KEYS[1], tag)
      redis.call('HDEL', KEYS[2], tag)
      redis.call('RPUSH', KEYS[3], cjson.encode(entry[1]))
      restored = restored + 1
    end
  end
end
return restored
"""


@dataclass
class RedisMessage:
    """One held export message: what the consumer needs of a kombu message."""

    queue: RedisExportQueue
    delivery_tag: str
    raw: bytes
    content_type: str | None = None
    content_encoding: str | None = None
    body: bytes | str = b""
    _envelope: dict[str, Any] = field(default_factory=dict)

    def decode(self) -> Any:
        """The JSON payload; raises kombu's decode errors like a kombu message would."""
        envelope = json.loads(self.raw)
        self.content_type = envelope.get("content-type")
        self.content_encoding = envelope.get("content-encoding")
        body = envelope.get("body", "")
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        self.body = body
        return loads(body, self.content_type, self.content_encoding, accept=ACCEPT_CONTENT)

    def ack(self) -> None:
        """Forget the message: it has been written."""
        self.queue.ack(self.delivery_tag)


class RedisExportQueue:
    """Pop-and-hold, acknowledge and restore on one kombu-format Redis queue."""

    def __init__(
        self, client: redis.Redis, queue: str, visibility_timeout_s: float, exchange: str = ""
    ) -> None:
        self.client = client
        self.queue = queue
        self.exchange = exchange or queue
        self.visibility_timeout_s = visibility_timeout_s
        self._pop = client.register_script(_POP_AND_HOLD)
        self._restore = client.register_script(_RESTORE_STALE)

    @classmethod
    def from_url(cls, url: str, queue: str, visibility_timeout_s: float) -> RedisExportQueue:
        """Connect to the Redis a ``redis://`` or ``rediss://`` broker URL names."""
        client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        return cls(client, queue, visibility_timeout_s)

    def pop(self) -> RedisMessage | None:
        """Take the next message, held as unacknowledged in the same step; None when empty."""
        keys = [self.queue, UNACKED_INDEX_KEY, UNACKED_KEY]
        found = self._pop(keys=keys, args=[time.time(), self.exchange, self.queue])
        if not found:
            return None
        tag, raw = found
        tag_text = tag.decode() if isinstance(tag, bytes) else str(tag)
        return RedisMessage(self, tag_text, raw, body=raw)

    def ack(self, delivery_tag: str) -> None:
        """Remove a held message for good."""
        pipe = self.client.pipeline()
        pipe.zrem(UNACKED_INDEX_KEY, delivery_tag)
        pipe.hdel(UNACKED_KEY, delivery_tag)
        pipe.execute()

    def restore_stale(self) -> int:
        """Put back this queue's messages held longer than the visibility timeout."""
        ceiling = time.time() - self.visibility_timeout_s
        keys = [UNACKED_INDEX_KEY, UNACKED_KEY, self.queue]
        return int(self._restore(keys=keys, args=[ceiling, self.queue]))
