"""Turns that break the contract are refused before enqueue, naming the field."""

from __future__ import annotations

import uuid

import pytest

from producer.errors import InvalidTurnError
from producer.messages import MAX_METADATA_BYTES, Turn
from producer.validation import validate_turn
from tests.unit.producer.factories import turn_data


def test_a_valid_turn_passes() -> None:
    data = turn_data(history=[{"question_id": "is_alive", "answer": "yes"}])
    assert validate_turn(data).history[0].question_id == "is_alive"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"turn_id": "not-a-uuid"}, "turn_id"),
        ({"game_id": "has spaces"}, "game_id"),
        ({"turn": -1}, "turn"),
        ({"history": [{"question_id": "q", "answer": "maybe"}]}, "history.0.answer"),
        ({"history": [{"question_id": "q"}]}, "history.0"),
        ({"metadata": {"blob": "x" * MAX_METADATA_BYTES}}, "metadata"),
        ({"rejected_guesses": ["x" * 200]}, "rejected_guesses.0"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_an_invalid_turn_is_refused_naming_the_field(
    overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidTurnError) as caught:
        validate_turn(turn_data(**overrides))
    assert f"{field}:" in str(caught.value)
    assert "was not sent" in str(caught.value)


def test_an_unvalidated_turn_object_is_checked_again() -> None:
    sneaky = Turn.model_construct(turn_id=uuid.uuid4(), game_id="g", turn=99, history=[])
    with pytest.raises(InvalidTurnError, match="turn:"):
        validate_turn(sneaky)
