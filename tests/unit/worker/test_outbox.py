"""The outbox on a real Redis result backend: one round trip per batch, readable by get()."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery
from celery.result import AsyncResult

from producer.broker import task_queues
from producer.errors import TurnFailedError
from producer.messages import DEAD_LETTER_QUEUE, EXPORT_QUEUE, DeadLetterReason, Guess
from tests.unit.worker.conftest import MODEL, StubPredict, drain_queue, make_turn
from worker.celery_adapter import encoded_meta, success_meta
from worker.dead_letter import build_dead_letter
from worker.inference import RetryPolicy, serve_batch
from worker.outbox import Delivery, Outbox

BATCH_SIZE = 8


@pytest.fixture()
def redis_app(redis_url: str) -> Iterator[Celery]:
    """A Celery app with an in-memory broker and the test's real Redis as result backend."""
    app = Celery("outbox-unit", broker="memory://", backend=redis_url)
    app.conf.update(
        task_queues=task_queues(),
        accept_content=["json"],
        result_accept_content=["json"],
        result_serializer="json",
        result_expires=600,
    )
    yield app
    # kombu's memory transport is shared by the whole process: leave no message behind.
    for queue_name in (EXPORT_QUEUE, DEAD_LETTER_QUEUE):
        drain_queue(app, queue_name)
    app.close()


def make_guesses(count: int) -> list[Guess]:
    """``count`` guesses as the worker's inference step produces them."""
    turns = [make_turn(turn=index) for index in range(count)]
    outcomes = serve_batch(StubPredict(), turns, MODEL, "unit@host", RetryPolicy(0, 0.0))
    return [outcome for outcome in outcomes if isinstance(outcome, Guess)]


def delivery_of(guesses: list[Guess], reply_to: str = "") -> Delivery:
    """What the serving step hands the outbox for ``guesses``: each serialised once."""
    return Delivery(
        answered=[(str(guess.turn_id), guess.model_dump_json(), reply_to) for guess in guesses]
    )


def count_round_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every request sent to any Redis server from now on (a pipeline is one)."""
    sent: list[int] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent.append(1)
        original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sent


def test_a_batch_of_guesses_is_stored_in_one_round_trip(
    redis_app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    guesses = make_guesses(BATCH_SIZE)
    assert len(guesses) == BATCH_SIZE
    redis_app.backend.client.ping()  # connect first so that the count is the batch's alone
    sent = count_round_trips(monkeypatch)

    Outbox(redis_app).deliver(delivery_of(guesses, "twentyq.reply.unit"))

    assert len(sent) == 1
    monkeypatch.undo()
    for guess in guesses:
        stored = AsyncResult(str(guess.turn_id), app=redis_app).get(timeout=5)
        assert Guess.model_validate(stored) == guess
    assert len(drain_queue(redis_app, EXPORT_QUEUE)) == BATCH_SIZE
    replies = redis_app.backend.client.lrange("twentyq.reply.unit", 0, -1)
    assert sorted(Guess.model_validate_json(r).turn_id for r in replies) == sorted(
        guess.turn_id for guess in guesses
    )
    assert 0 < redis_app.backend.client.ttl("twentyq.reply.unit") <= 600


def test_the_stored_meta_matches_what_celery_itself_stores(redis_app: Celery) -> None:
    backend = redis_app.backend
    guess = make_guesses(1)[0]
    body = guess.model_dump(mode="json")
    backend.mark_as_done("by-celery", body)

    ours = backend.decode(encoded_meta(backend, "by-outbox", body, "SUCCESS"))
    once = backend.decode(success_meta("by-outbox", guess.model_dump_json(), "2026-01-01T00:00"))
    theirs = backend.decode(backend.get(backend.get_key_for_task("by-celery")))

    assert ours.keys() == theirs.keys() == once.keys()
    for meta in (ours, theirs, once):
        meta.pop("date_done")
        meta.pop("task_id")
    assert ours == theirs == once


def test_a_waiting_get_wakes_up_when_the_batch_is_stored(redis_url: str, redis_app: Celery) -> None:
    guess = make_guesses(1)[0]
    task_id = str(guess.turn_id)
    received: list[Any] = []
    waiter = threading.Thread(
        target=lambda: received.append(AsyncResult(task_id, app=redis_app).get(timeout=10))
    )
    waiter.start()
    server = redis.Redis.from_url(redis_url)
    key = redis_app.backend.get_key_for_task(task_id)
    deadline = time.monotonic() + 10
    # Deliver only once the waiter listens on the channel, so that only PUBLISH can wake it.
    while dict(server.pubsub_numsub(key)).get(key, 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert dict(server.pubsub_numsub(key)).get(key) == 1

    Outbox(redis_app).deliver(delivery_of([guess]))

    waiter.join(timeout=10)
    server.close()
    assert [Guess.model_validate(result) for result in received] == [guess]


def test_a_dead_lettered_turn_fails_get_and_a_stored_guess_is_never_overwritten(
    redis_app: Celery,
) -> None:
    guess, doomed = make_guesses(2)
    outbox = Outbox(redis_app)
    outbox.deliver(delivery_of([guess]))
    letters = [
        build_dead_letter(
            reason=DeadLetterReason.MODEL_ERROR,
            error="the model is having a bad day",
            body="{}",
            attempts=3,
            task_id=str(turn_id),
        )
        for turn_id in (guess.turn_id, doomed.turn_id)
    ]

    outbox.deliver(Delivery(letters=[(letter, "") for letter in letters]))

    assert AsyncResult(str(guess.turn_id), app=redis_app).get(timeout=5) == guess.model_dump(
        mode="json"
    )
    with pytest.raises(TurnFailedError, match="the model is having a bad day"):
        AsyncResult(str(doomed.turn_id), app=redis_app).get(timeout=5)
    assert len(drain_queue(redis_app, DEAD_LETTER_QUEUE)) == 2
