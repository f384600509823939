"""Everything a batch writes: results and failures to the backend, events and dead letters.

Writes happen before the batch's messages are acknowledged, so a crash in
between means a redelivery, never a lost turn (at-least-once).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from celery import Celery, states
from celery.backends.base import KeyValueStoreBackend

from producer.broker import publish_json
from producer.errors import TurnFailedError
from producer.messages import DEAD_LETTER_QUEUE, EXPORT_QUEUE, DeadLetter, Guess

logger = logging.getLogger(__name__)


def failure_for(letter: DeadLetter) -> TurnFailedError:
    """The error the producer's ``handle.get()`` raises for a dead-lettered turn."""
    return TurnFailedError(
        f"{letter.reason.value}: {letter.error} (the turn was dead-lettered to "
        f"{DEAD_LETTER_QUEUE}; fix the turn or the model and send it again)"
    )


class Outbox:
    """The backend and broker writes of one worker, through the Celery app's pools."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def stored_results(self, task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Finished results already in the backend, by task id (one round trip on Redis)."""
        if not task_ids:
            return {}
        backend = self.app.backend
        if isinstance(backend, KeyValueStoreBackend):
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
        """Store guesses and failures, publish dead letters then export events."""
        backend = self.app.backend
        with self.app.pool.acquire(block=True) as connection:
            for letter in letters:
                publish_json(connection, DEAD_LETTER_QUEUE, letter.model_dump(mode="json"))
                if letter.task_id:
                    backend.mark_as_failure(letter.task_id, failure_for(letter))
                logger.warning(
                    "dead-lettered turn: %s",
                    letter.error,
                    extra={"task_id": letter.task_id, "reason": letter.reason.value},
                )
            published = []
            for guess in guesses:
                backend.mark_as_done(str(guess.turn_id), guess.model_dump(mode="json"))
                published.append(guess)
            for event in [*published, *events]:
                publish_json(connection, EXPORT_QUEUE, event.model_dump(mode="json"))

    def dead_letter(self, letter: DeadLetter) -> None:
        """Publish one dead letter and fail its task in the backend."""
        self.deliver((), (letter,), ())
