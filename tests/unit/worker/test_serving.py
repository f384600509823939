"""A batch end to end on in-memory transports: results, events, idempotency, dead letters."""

from __future__ import annotations

import json
from typing import Any

from celery import Celery

from producer.messages import DEAD_LETTER_QUEUE, EXPORT_QUEUE, DeadLetter, Guess, Turn
from tests.unit.worker.conftest import StubPredict, drain_queue, make_turn, task_message
from worker.model_loader import LoadedModel
from worker.runtime import Runtime
from worker.screen import TurnPayload, screen_message
from worker.serving import play_turns, serve_payloads


def payload_of(turn: Turn) -> TurnPayload:
    payload = screen_message(task_message(turn.model_dump(mode="json")), 65_536)
    assert isinstance(payload, TurnPayload)
    return payload


def test_a_batch_stores_each_guess_and_publishes_each_event(
    runtime: Runtime, memory_app: Celery
) -> None:
    turns = [make_turn(), make_turn(("is_alive", "has_legs"))]
    report = serve_payloads(runtime, [payload_of(turn) for turn in turns])
    assert report.delivered and report.outcomes["answered"] == 2 and report.batch_size == 2
    for turn in turns:
        stored = memory_app.AsyncResult(str(turn.turn_id))
        assert stored.state == "SUCCESS"
        assert Guess.model_validate(stored.result).turn_id == turn.turn_id
    events = [Guess.model_validate(body) for body in drain_queue(memory_app, EXPORT_QUEUE)]
    assert [event.turn_id for event in events] == [turn.turn_id for turn in turns]
    assert all(event.metadata == {"player": "p1"} for event in events)


def test_an_answered_turn_is_not_recomputed_but_its_event_is_republished(
    runtime: Runtime, memory_app: Celery
) -> None:
    turn = make_turn()
    serve_payloads(runtime, [payload_of(turn)])
    predict = StubPredict()
    assert runtime.model is not None
    runtime.model = LoadedModel(predict=predict, ref=runtime.model.ref)
    report = serve_payloads(runtime, [payload_of(turn)])
    assert predict.calls == []
    assert report.outcomes == {"answered": 0, "already_answered": 1, "dead_lettered": 0}
    first, again = [Guess.model_validate(b) for b in drain_queue(memory_app, EXPORT_QUEUE)]
    assert first == again


def test_the_same_turn_twice_in_a_batch_is_computed_once(
    runtime: Runtime, memory_app: Celery
) -> None:
    turn = make_turn()
    report = serve_payloads(runtime, [payload_of(turn), payload_of(turn)])
    assert report.outcomes["answered"] == 1
    assert len(drain_queue(memory_app, EXPORT_QUEUE)) == 1


def test_an_invalid_turn_in_a_batch_is_dead_lettered_with_its_original_body(
    runtime: Runtime, memory_app: Celery
) -> None:
    good, bad = make_turn(), make_turn(("unknown",))
    report = serve_payloads(runtime, [payload_of(good), payload_of(bad)])
    assert report.dead_letters == {"invalid_turn": 1}
    [letter] = [DeadLetter.model_validate(b) for b in drain_queue(memory_app, DEAD_LETTER_QUEUE)]
    assert json.loads(letter.body)[0][0]["turn_id"] == str(bad.turn_id)
    assert memory_app.AsyncResult(str(bad.turn_id)).state == "FAILURE"
    assert memory_app.AsyncResult(str(good.turn_id)).state == "SUCCESS"


def test_a_batch_that_cannot_be_delivered_reports_so(runtime: Runtime) -> None:
    def down(*_: Any) -> None:
        raise ConnectionError("backend down")

    runtime.outbox.deliver = down  # type: ignore[method-assign]
    assert not serve_payloads(runtime, [payload_of(make_turn())]).delivered


def test_an_unexpected_error_is_reported_undelivered_not_raised(runtime: Runtime) -> None:
    runtime.model = None  # require_model raises
    report = play_turns([payload_of(make_turn())])
    assert (report.batch_size, report.delivered) == (1, False)
