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
from worker.dead_letter import build_dead_letter
from worker.inference import RetryPolicy, serve_batch
from worker.outbox import Outbox, encoded_meta

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

    Outbox(redis_app).deliver(guesses, (), ())

    assert len(sent) == 1
    monkeypatch.undo()
    for guess in guesses:
        stored = AsyncResult(str(guess.turn_id), app=redis_app).get(timeout=5)
        assert Guess.model_validate(stored) == guess
    assert len(drain_queue(redis_app, EXPORT_QUEUE)) == BATCH_SIZE


def test_the_stored_meta_matches_what_celery_itself_stores(redis_app: Celery) -> None:
    backend = redis_app.backend
    guess = make_guesses(1)[0]
    body = guess.model_dump(mode="json")
    backend.mark_as_done("by-celery", body)

    ours = backend.decode(encoded_meta(backend, "by-outbox", body, "SUCCESS"))
    theirs = backend.decode(backend.get(backend.get_key_for_task("by-celery")))

    assert ours.keys() == theirs.keys()
    for meta in (ours, theirs):
        meta.pop("date_done")
        meta.pop("task_id")
    assert ours == theirs


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

    Outbox(redis_app).deliver((guess,), (), ())

    waiter.join(timeout=10)
    server.close()
    assert [Guess.model_validate(result) for result in received] == [guess]


def test_a_dead_lettered_turn_fails_get_and_a_stored_guess_is_never_overwritten(
    redis_app: Celery,
) -> None:
    guess, doomed = make_guesses(2)
    outbox = Outbox(redis_app)
    outbox.deliver((guess,), (), ())
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

    outbox.deliver((), letters, ())

    assert AsyncResult(str(guess.turn_id), app=redis_app).get(timeout=5) == guess.model_dump(
        mode="json"
    )
    with pytest.raises(TurnFailedError, match="the model is having a bad day"):
        AsyncResult(str(doomed.turn_id), app=redis_app).get(timeout=5)
    assert len(drain_queue(redis_app, DEAD_LETTER_QUEUE)) == 2
