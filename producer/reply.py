"""One reply channel per client process: a Redis list the workers push guesses onto.

A turn sent by :class:`producer.client.TurnClient` names the client's list in
its ``reply_to`` property; the worker pushes the guess's JSON there, in the
same round trip that stores the result. One thread per client drains the list
in bulk (a blocking pop, then up to :data:`DRAIN_MAX` more in one call) and
wakes the handles waiting for those turns, so a client waiting for many turns
holds one connection, not one subscription per turn.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from producer.envelope import reply_channel_name
from producer.messages import Guess, TurnFailure, reply_adapter

logger = logging.getLogger(__name__)

DRAIN_MAX = 1000
BLOCK_S = 1
RETRY_S = 0.5
# A turn nobody waits for any more is forgotten this long after it was sent; its guess
# stays readable from the result backend (GuessHandle.get falls back to it).
PENDING_MAX_AGE_S = 3600.0

Reply = Guess | TurnFailure


class PendingReply:
    """A turn's reply, once it arrives; safe to wait on from any thread."""

    __slots__ = ("_callbacks", "_event", "expected_at_s", "value")

    def __init__(self) -> None:
        self.expected_at_s = time.monotonic()
        self._event = threading.Event()
        self._callbacks: list[Callable[[Reply], None]] = []
        self.value: Reply | None = None

    def resolve(self, value: Reply) -> None:
        """Store the reply and wake every waiter (the first reply wins)."""
        if self._event.is_set():
            return
        self.value = value
        self._event.set()
        for callback in self._callbacks:
            callback(value)

    def wait(self, timeout_s: float) -> Reply | None:
        """The reply, or None when none arrived within ``timeout_s``."""
        self._event.wait(timeout_s)
        return self.value

    def add_callback(self, callback: Callable[[Reply], None]) -> None:
        """Call ``callback(reply)`` once the reply is in (at once when it already is)."""
        self._callbacks.append(callback)
        if self._event.is_set() and self.value is not None:
            callback(self.value)


class ReplyChannel:
    """The reply list of one client and the thread that drains it."""

    def __init__(self, redis_client: Any) -> None:
        self.name = reply_channel_name(uuid.uuid4())
        self._redis = redis_client
        self._pending: dict[str, PendingReply] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.last_error: BaseException | None = None

    def expect(self, turn_ids: list[str]) -> list[PendingReply]:
        """Register turns before they are sent, so no reply can arrive unclaimed."""
        pending = [PendingReply() for _ in turn_ids]
        with self._lock:
            self._prune()
            self._pending.update(zip(turn_ids, pending, strict=True))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._drain_forever, name="twentyq-replies", daemon=True
                )
                self._thread.start()
        return pending

    def _prune(self) -> None:
        # Oldest first (dicts keep insertion order): stop at the first one still young.
        oldest_s = time.monotonic() - PENDING_MAX_AGE_S
        for turn_id, pending in list(self._pending.items()):
            if pending.expected_at_s > oldest_s:
                break
            del self._pending[turn_id]

    def forget(self, turn_id: str) -> None:
        """Stop waiting for a turn (its caller gave up)."""
        with self._lock:
            self._pending.pop(turn_id, None)

    def close(self) -> None:
        """Stop the draining thread (within :data:`BLOCK_S`)."""
        self._stopping.set()

    def _drain_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                first = self._redis.blpop([self.name], timeout=BLOCK_S)
                if first is None:
                    continue
                more = self._redis.lpop(self.name, DRAIN_MAX) or []
                self.last_error = None
            except Exception as error:  # the backend is down: waiters time out meanwhile
                if self.last_error is None:
                    logger.warning("lost the reply channel %s: %s; retrying", self.name, error)
                self.last_error = error
                time.sleep(RETRY_S)
                continue
            self._dispatch([first[1], *more])

    def _dispatch(self, records: list[bytes]) -> None:
        for record in records:
            try:
                reply = reply_adapter.validate_json(record)
            except ValidationError as error:
                logger.error("a reply breaks the wire contract, ignored: %s", error)
                continue
            with self._lock:
                pending = self._pending.pop(str(reply.turn_id), None)
            if pending is not None:
                pending.resolve(reply)
