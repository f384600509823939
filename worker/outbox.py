"""Everything a batch writes: results, replies, export events and dead letters, each once.

Writes happen before the batch's messages are acknowledged, so a crash in
between means a redelivery, never a lost turn (at-least-once). A guess is
serialised once (``model_dump_json``) and those bytes are what the result
backend stores, what the client's reply channel gets and what the export event
carries. On a Redis result backend a whole batch's results and replies are one
round trip; its export events and dead letters another.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import Celery, states
from celery.backends.base import BaseKeyValueStoreBackend
from celery.backends.redis import RedisBackend

from producer.broker import publish_encoded, publish_many_json
from producer.envelope import is_reply_channel
from producer.errors import TurnFailedError
from producer.messages import DEAD_LETTER_QUEUE, EXPORT_QUEUE, DeadLetter, TurnFailure, utc_now
from worker.celery_adapter import encoded_meta, success_meta

logger = logging.getLogger(__name__)

# Stores each (key, meta) pair like Celery's RedisBackend.set (SETEX, then PUBLISH on the
# key's channel so a stock client's AsyncResult.get() wakes up), keeping the rule of
# KeyValueStoreBackend._store_result that a stored SUCCESS is never overwritten; then pushes
# each reply onto its client's reply list (expiring with the results). One server-side call.
# ARGV[1]: expiry in seconds (0: none); ARGV[2]: how many results; then the metas, then the
# replies; KEYS: the result keys, then the reply lists.
_STORE_AND_REPLY_LUA = """
local expires_s, results = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, results do
  local key, value = KEYS[i], ARGV[i + 2]
  local current = redis.call('GET', key)
  local ok, meta = false, nil
  if current then ok, meta = pcall(cjson.decode, current) end
  if not (ok and type(meta) == 'table' and meta['status'] == 'SUCCESS') then
    if expires_s > 0 then
      redis.call('SETEX', key, expires_s, value)
    else
      redis.call('SET', key, value)
    end
    redis.call('PUBLISH', key, value)
  end
end
for i = results + 1, #KEYS do
  redis.call('LPUSH', KEYS[i], ARGV[i + 2])
  if expires_s > 0 then redis.call('EXPIRE', KEYS[i], expires_s) end
end
return #KEYS
"""


def failure_for(letter: DeadLetter) -> TurnFailedError:
    """The error a stock client's ``AsyncResult.get()`` raises for a dead-lettered turn."""
    return TurnFailedError(
        f"{letter.reason.value}: {letter.error} (the turn was dead-lettered to "
        f"{DEAD_LETTER_QUEUE}; fix the turn or the model and send it again)"
    )


@dataclass
class Delivery:
    """One batch's writes: serialised guesses, dead letters, and where each reply goes."""

    answered: list[tuple[str, str, str]] = field(default_factory=list)  # turn id, JSON, reply
    republished: list[tuple[str, str]] = field(default_factory=list)  # stored JSON, reply
    letters: list[tuple[DeadLetter, str]] = field(default_factory=list)  # letter, reply

    def replies(self) -> list[tuple[str, str]]:
        """``(reply list, record)`` for every turn whose sender waits on a reply channel."""
        records = [(reply, guess) for _, guess, reply in self.answered if is_reply_channel(reply)]
        records += [(reply, guess) for guess, reply in self.republished if is_reply_channel(reply)]
        records += [
            (reply, _failure_record(letter))
            for letter, reply in self.letters
            if letter.task_id and is_reply_channel(reply)
        ]
        return records


def _failure_record(letter: DeadLetter) -> str:
    return TurnFailure(
        turn_id=letter.task_id, reason=letter.reason, error=letter.error
    ).model_dump_json()


class Outbox:
    """The backend and broker writes of one worker, through the Celery app's pools."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def stored_results(self, task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Finished results already in the backend, by task id (one round trip on Redis)."""
        if not task_ids:
            return {}
        backend = self.app.backend
        if isinstance(backend, BaseKeyValueStoreBackend):
            keys = [backend.get_key_for_task(task_id) for task_id in task_ids]
            found = backend.mget(keys)
            # Redis answers a list in key order; memcached-style caches a dict of hits.
            values = [found.get(key) for key in keys] if isinstance(found, dict) else found
            metas = {
                task_id: backend.decode_result(value)
                for task_id, value in zip(task_ids, values, strict=True)
                if value
            }
        else:
            metas = {task_id: backend.get_task_meta(task_id) for task_id in task_ids}
        return {
            task_id: meta
            for task_id, meta in metas.items()
            if meta.get("status") in states.READY_STATES
        }

    def deliver(self, delivery: Delivery) -> None:
        """Publish dead letters, store results and replies, then publish export events."""
        with self.app.pool.acquire(block=True) as connection:
            publish_many_json(
                connection,
                DEAD_LETTER_QUEUE,
                [letter.model_dump(mode="json") for letter, _ in delivery.letters],
            )
            for letter, _ in delivery.letters:
                logger.warning(
                    "dead-lettered turn: %s",
                    letter.error,
                    extra={"task_id": letter.task_id, "reason": letter.reason.value},
                )
            self._store(delivery)
            events = [guess for _, guess, _ in delivery.answered]
            events += [guess for guess, _ in delivery.republished]
            publish_encoded(connection, EXPORT_QUEUE, events)

    def dead_letter(self, letter: DeadLetter, reply_to: str = "") -> None:
        """Publish one dead letter and fail its task in the backend."""
        self.deliver(Delivery(letters=[(letter, reply_to)]))

    def _store(self, delivery: Delivery) -> None:
        backend = self.app.backend
        failures = [
            (letter.task_id, failure_for(letter))
            for letter, _ in delivery.letters
            if letter.task_id
        ]
        if not isinstance(backend, RedisBackend):
            for task_id, error in failures:
                backend.mark_as_failure(task_id, error)
            for task_id, guess, _ in delivery.answered:
                backend.mark_as_done(task_id, json.loads(guess))
            return
        date_done = utc_now().isoformat()
        stored = [
            (task_id, encoded_meta(backend, task_id, error, states.FAILURE))
            for task_id, error in failures
        ]
        stored += [
            (task_id, success_meta(task_id, guess, date_done))
            for task_id, guess, _ in delivery.answered
        ]
        replies = delivery.replies()
        if not stored and not replies:
            return
        keys = [backend.get_key_for_task(task_id) for task_id, _ in stored]
        keys += [reply for reply, _ in replies]
        values = [meta for _, meta in stored] + [record for _, record in replies]
        # EVAL rather than EVALSHA: always one round trip (Redis caches the compiled script).
        backend.client.eval(
            _STORE_AND_REPLY_LUA, len(keys), *keys, int(backend.expires or 0), len(stored), *values
        )
