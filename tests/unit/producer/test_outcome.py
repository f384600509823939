"""Game outcomes: built from a game, validated, published as JSON to twentyq.export."""

from __future__ import annotations

import json

import pytest
from celery import Celery

from producer.errors import InvalidTurnError
from producer.game import Game
from producer.messages import EXPORT_QUEUE, GameOutcome, export_event_adapter
from producer.outcome import build_outcome, outcome_of, report_outcome
from tests.unit.producer.factories import guess_noun


def _won_game() -> Game:
    game = Game(game_id="g-won", metadata={"player": "ann"})
    game.apply(guess_noun(game.next_turn(), "owl"))
    game.confirm_guess(True)
    return game


def test_a_won_game_reveals_the_guessed_noun_and_the_model_version() -> None:
    outcome = outcome_of(_won_game())
    assert (outcome.game_id, outcome.won, outcome.turns, outcome.revealed_noun) == (
        "g-won",
        True,
        1,
        "owl",
    )
    assert outcome.metadata == {
        "player": "ann",
        "model_name": "twenty-questions",
        "model_version": "3",
    }


def test_a_lost_game_reveals_what_the_player_says() -> None:
    game = Game()
    game.apply(guess_noun(game.next_turn(), "owl"))
    game.confirm_guess(False)
    outcome = outcome_of(game, revealed_noun="hawk")
    assert (outcome.won, outcome.revealed_noun) == (False, "hawk")


def test_invalid_outcome_fields_are_named() -> None:
    with pytest.raises(InvalidTurnError, match="turns:"):
        build_outcome(game_id="g", won=False, turns=-3)


def test_report_outcome_publishes_the_outcome_as_json(memory_app: Celery) -> None:
    sent = report_outcome(_won_game(), app=memory_app)
    with memory_app.connection_for_read() as connection:
        message = connection.default_channel.basic_get(EXPORT_QUEUE)
    assert message is not None
    assert message.content_type == "application/json"
    received = export_event_adapter.validate_python(json.loads(message.body))
    assert isinstance(received, GameOutcome)
    assert received == sent


def test_report_outcome_accepts_a_ready_outcome(memory_app: Celery) -> None:
    outcome = build_outcome(game_id="g-2", won=False, turns=20, revealed_noun="kettle")
    assert report_outcome(outcome, app=memory_app) == outcome
