"""submit_turn and GuessHandle on kombu's in-memory broker and Celery's in-memory results."""

from __future__ import annotations

import json
from typing import Any

import pytest
from celery import Celery

from producer.client import submit_turn
from producer.errors import (
    GuessTimeoutError,
    InvalidTurnError,
    TurnFailedError,
)
from producer.game import Game
from producer.messages import TURN_TASK_NAME, TURNS_QUEUE, HistoryEntry
from tests.unit.producer.factories import UNIT_SETTINGS, make_guess, turn_data


def _queued_message(memory_app: Celery) -> Any:
    with memory_app.connection_for_read() as connection:
        message = connection.default_channel.basic_get(TURNS_QUEUE)
    assert message is not None, f"nothing was queued on {TURNS_QUEUE}"
    return message


def test_a_turn_is_sent_as_json_by_task_name_with_the_turn_id_as_task_id(
    memory_app: Celery,
) -> None:
    turn = Game(game_id="g-7").next_turn()
    submit_turn(turn, app=memory_app, settings=UNIT_SETTINGS)
    message = _queued_message(memory_app)
    assert message.content_type == "application/json"
    assert message.headers["task"] == TURN_TASK_NAME
    assert message.headers["id"] == str(turn.turn_id)
    args, kwargs, _ = json.loads(message.body)
    assert args == [turn.model_dump(mode="json")]
    assert kwargs == {}


def test_the_task_headers_name_the_turn_without_repeating_what_the_player_typed(
    memory_app: Celery,
) -> None:
    typed = HistoryEntry(question_id="is_alive", answer_text="my secret pet goldfish, I think")
    game = Game(game_id="g-8", history=[typed], turns=1)
    submit_turn(game.next_turn(), app=memory_app, settings=UNIT_SETTINGS)
    headers = _queued_message(memory_app).headers
    assert headers["argsrepr"] == "(turn 1 of game g-8,)"
    assert "goldfish" not in json.dumps(headers)


def test_an_invalid_turn_is_refused_before_anything_is_queued(memory_app: Celery) -> None:
    with pytest.raises(InvalidTurnError, match="game_id:"):
        submit_turn(turn_data(game_id=""), app=memory_app, settings=UNIT_SETTINGS)
    with memory_app.connection_for_read() as connection:
        assert connection.default_channel.basic_get(TURNS_QUEUE) is None


def test_get_returns_the_validated_guess(memory_app: Celery) -> None:
    turn = Game().next_turn()
    handle = submit_turn(turn, app=memory_app, settings=UNIT_SETTINGS)
    memory_app.backend.store_result(
        handle.turn_id, make_guess(turn).model_dump(mode="json"), "SUCCESS"
    )
    guess = handle.get()
    assert guess.turn_id == turn.turn_id
    assert guess.question is not None and guess.question.id == "is_alive"


def test_no_guess_in_time_raises_a_timeout_naming_the_turn(memory_app: Celery) -> None:
    handle = submit_turn(Game().next_turn(), app=memory_app, settings=UNIT_SETTINGS)
    with pytest.raises(GuessTimeoutError) as caught:
        handle.get(timeout_s=0.2)
    message = str(caught.value)
    assert handle.turn_id in message
    assert "0.2 s" in message
    assert "no worker" in message


def test_a_dead_lettered_turn_raises_turn_failed_with_the_reason(memory_app: Celery) -> None:
    handle = submit_turn(Game().next_turn(), app=memory_app, settings=UNIT_SETTINGS)
    reason = ValueError("invalid_turn: unknown question id 'is_purple'")
    memory_app.backend.mark_as_failure(handle.turn_id, reason)
    with pytest.raises(TurnFailedError, match="unknown question id 'is_purple'"):
        handle.get(timeout_s=5)


def test_a_result_that_breaks_the_contract_is_a_failure(memory_app: Celery) -> None:
    handle = submit_turn(Game().next_turn(), app=memory_app, settings=UNIT_SETTINGS)
    memory_app.backend.store_result(handle.turn_id, {"action": "dance"}, "SUCCESS")
    with pytest.raises(TurnFailedError, match="breaks the wire contract"):
        handle.get(timeout_s=5)
