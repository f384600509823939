"""Everything a batch writes: results and failures to the backend, events and dead letters.

Writes happen before the batch's messages are acknowledged, so a crash in
between means a redelivery, never a lost turn (at-least-once). On a Redis
result backend a whole batch's results are stored in one round trip.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from celery import Celery, states
from celery.backends.base import BaseKeyValueStoreBackend
from celery.backends.redis import RedisBackend

from producer.broker import publish_many_json
from producer.errors import TurnFailedError
from producer.messages import DEAD_LETTER_QUEUE, EXPORT_QUEUE, DeadLetter, Guess

logger = logging.getLogger(__name__)

# Stores each (key, meta) pair like Celery's RedisBackend.set (SETEX, then PUBLISH on the
# key's channel so pub/sub waiters in AsyncResult.get() wake up), and keeps the rule of
# KeyValueStoreBackend._store_result that a stored SUCCESS is never overwritten; both in
# one server-side call, so a batch of N results is one round trip instead of 3N.
# ARGV[1] is the expiry in seconds (0: none), ARGV[i + 1] the encoded meta of KEYS[i].
_STORE_RESULTS_LUA = """
local expires_s = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local value = ARGV[i + 1]
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
return #KEYS
"""


def failure_for(letter: DeadLetter) -> TurnFailedError:
    """The error the producer's ``handle.get()`` raises for a dead-lettered turn."""
    return TurnFailedError(
        f"{letter.reason.value}: {letter.error} (the turn was dead-lettered to "
        f"{DEAD_LETTER_QUEUE}; fix the turn or the model and send it again)"
    )


def encoded_meta(backend: BaseKeyValueStoreBackend, task_id: str, result: Any, state: str) -> str:
    """The stored form of a task's result, byte for byte what ``backend.store_result`` writes.

    Celery has no public API for the meta without storing it: this mirrors
    ``KeyValueStoreBackend._store_result`` (celery 5.6) and is the one place that uses
    the private ``_get_result_meta``.
    """
    meta = backend._get_result_meta(
        result=backend.encode_result(result, state), state=state, traceback=None, request=None
    )
    meta["task_id"] = task_id
    encoded: str = backend.encode(meta)
    return encoded


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

    def deliver(
        self,
        guesses: Iterable[Guess],
        letters: Iterable[DeadLetter],
        events: Iterable[Guess],
    ) -> None:
        """Publish dead letters, store guesses and failures, then publish export events."""
        letters = list(letters)
        guesses = list(guesses)
        failures = [(letter.task_id, failure_for(letter)) for letter in letters if letter.task_id]
        with self.app.pool.acquire(block=True) as connection:
            publish_many_json(
                connection,
                DEAD_LETTER_QUEUE,
                (letter.model_dump(mode="json") for letter in letters),
            )
            for letter in letters:
                logger.warning(
                    "dead-lettered turn: %s",
                    letter.error,
                    extra={"task_id": letter.task_id, "reason": letter.reason.value},
                )
            successes = [(str(guess.turn_id), guess.model_dump(mode="json")) for guess in guesses]
            self._store(failures, successes)
            publish_many_json(
                connection,
                EXPORT_QUEUE,
                [
                    *(dumped for _, dumped in successes),
                    *(event.model_dump(mode="json") for event in events),
                ],
            )

    def dead_letter(self, letter: DeadLetter) -> None:
        """Publish one dead letter and fail its task in the backend."""
        self.deliver((), (letter,), ())

    def _store(
        self,
        failures: Sequence[tuple[str, TurnFailedError]],
        successes: Sequence[tuple[str, dict[str, Any]]],
    ) -> None:
        backend = self.app.backend
        if not isinstance(backend, RedisBackend):
            for task_id, error in failures:
                backend.mark_as_failure(task_id, error)
            for task_id, result in successes:
                backend.mark_as_done(task_id, result)
            return
        items: list[tuple[str, Any, str]] = [
            (task_id, error, states.FAILURE) for task_id, error in failures
        ]
        items += [(task_id, result, states.SUCCESS) for task_id, result in successes]
        if not items:
            return
        keys = [backend.get_key_for_task(task_id) for task_id, _, _ in items]
        values = [encoded_meta(backend, task_id, result, state) for task_id, result, state in items]
        # EVAL rather than EVALSHA: always one round trip (Redis caches the compiled script).
        backend.client.eval(
            _STORE_RESULTS_LUA, len(keys), *keys, int(backend.expires or 0), *values
        )
