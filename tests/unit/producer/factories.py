"""Build wire-contract messages for the producer's unit tests."""

from __future__ import annotations

import uuid
from typing import Any

from producer.messages import Guess, Turn, utc_now
from producer.settings import ProducerSettings

UNIT_SETTINGS = ProducerSettings(
    guess_timeout_s=0.3, send_max_retries=1, send_retry_start_s=0.0, send_retry_step_s=0.0
)


def make_guess(turn: Turn, **overrides: Any) -> Guess:
    """A valid Guess answering ``turn``; ``overrides`` replace any field (as JSON-ready values)."""
    now = utc_now()
    data: dict[str, Any] = {
        "turn_id": str(turn.turn_id),
        "game_id": turn.game_id,
        "turn": turn.turn,
        "action": "ask",
        "question": {"id": "is_alive", "text": "Is it alive?"},
        "guesses": [{"noun": "cat", "probability": 0.4}, {"noun": "dog", "probability": 0.3}],
        "model": {"name": "twenty-questions", "version": "3", "run_id": "run-1"},
        "timing": {
            "sent_at": now,
            "started_at": now,
            "finished_at": now,
            "queue_ms": 2.5,
            "inference_ms": 1.5,
        },
        "worker": "host:1",
        "metadata": dict(turn.metadata),
    }
    data.update(overrides)
    return Guess.model_validate(data)


def ask(turn: Turn, question_id: str, text: str = "A question?") -> Guess:
    """The model asks ``question_id`` in answer to ``turn``."""
    return make_guess(turn, action="ask", question={"id": question_id, "text": text})


def guess_noun(turn: Turn, noun: str) -> Guess:
    """The model guesses ``noun`` in answer to ``turn``."""
    return make_guess(
        turn, action="guess", question=None, guesses=[{"noun": noun, "probability": 0.9}]
    )


def give_up(turn: Turn) -> Guess:
    """The model gives up in answer to ``turn``."""
    return make_guess(turn, action="give_up", question=None, guesses=[])


def turn_data(**overrides: Any) -> dict[str, Any]:
    """A valid turn as a JSON-ready dict; ``overrides`` replace fields."""
    data: dict[str, Any] = {"turn_id": str(uuid.uuid4()), "game_id": "game-1", "turn": 0}
    data.update(overrides)
    return data


class ScriptedModel:
    """Answers turns like the stub model: asks its questions in order, then guesses its nouns."""

    def __init__(self, questions: tuple[str, ...], nouns: tuple[str, ...]) -> None:
        self.questions, self.nouns = questions, nouns
        self.turns: list[Turn] = []

    def answer(self, turn: Turn) -> Guess:
        """The Guess for ``turn``."""
        self.turns.append(turn)
        asked = {entry.question_id for entry in turn.history}
        pending = [question for question in self.questions if question not in asked]
        if pending:
            return ask(turn, pending[0], f"Is it {pending[0]}?")
        remaining = [noun for noun in self.nouns if noun not in turn.rejected_guesses]
        return guess_noun(turn, remaining[0]) if remaining else give_up(turn)


class ScriptedHandle:
    """Stands in for a GuessHandle: returns the scripted model's guess, or raises."""

    def __init__(self, turn: Turn, guess: Guess | None, error: Exception | None = None) -> None:
        self.turn, self.guess, self.error = turn, guess, error
        self.turn_id = str(turn.turn_id)

    def get(self, timeout_s: float | None = None) -> Guess:
        if self.error is not None:
            raise self.error
        assert self.guess is not None
        return self.guess

    def elapsed_s(self) -> float:
        return 0.012
