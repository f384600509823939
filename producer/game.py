"""One game of Twenty Questions as the ambassador sees it: :class:`Game`.

The game keeps the history and the rejected guesses, builds each next
:class:`~producer.messages.Turn`, and applies the worker's
:class:`~producer.messages.Guess`:

>>> game = Game()                                     # doctest: +SKIP
>>> guess = submit_turn(game.next_turn()).get()       # doctest: +SKIP
>>> game.apply(guess)                                 # doctest: +SKIP
>>> if game.pending_question: game.answer(Answer.YES) # doctest: +SKIP
>>> elif game.pending_noun: game.confirm_guess(True)  # doctest: +SKIP
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from producer.errors import InvalidTurnError, PermanentError
from producer.messages import (
    MAX_QUESTIONS,
    MAX_REJECTED_GUESSES,
    MAX_TURN_NUMBER,
    Action,
    Answer,
    Guess,
    HistoryEntry,
    Question,
    Turn,
)
from producer.validation import describe_validation_error


class GameStateError(PermanentError):
    """Raised when a game is driven out of order (e.g. answering when no question is pending)."""


def new_game_id() -> str:
    """A fresh game id that fits the wire contract's identifier rules."""
    return f"game-{uuid.uuid4().hex}"


@dataclass
class Game:
    """A game in progress: history, rejected guesses, what the model last asked or guessed."""

    game_id: str = field(default_factory=new_game_id)
    metadata: dict[str, Any] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    rejected_guesses: list[str] = field(default_factory=list)
    turns: int = 0
    pending_question: Question | None = None
    pending_noun: str | None = None
    last_guess: Guess | None = None
    over: bool = False
    won: bool = False
    gave_up: bool = False

    def next_turn(self) -> Turn:
        """Build the turn to send now: a new turn id, the turn number, history and metadata."""
        self._require(not self.over, "the game is over; start a new Game")
        self._require(
            self.pending_question is None and self.pending_noun is None,
            "answer the pending question or guess before sending the next turn",
        )
        return Turn(
            turn_id=uuid.uuid4(),
            game_id=self.game_id,
            turn=self.turns,
            history=list(self.history),
            rejected_guesses=list(self.rejected_guesses),
            metadata=dict(self.metadata),
        )

    def apply(self, guess: Guess) -> None:
        """Take the worker's answer to the turn just sent: a question, a guess or giving up."""
        self._require(not self.over, "the game is over; start a new Game")
        self._require(guess.game_id == self.game_id, f"that guess is for game {guess.game_id}")
        self.turns += 1
        self.last_guess = guess
        if guess.action is Action.ASK and guess.question is not None:
            if self.question_limit_reached:
                # A 21st question cannot be sent back under the contract: the model lost.
                self._finish(won=False)
                self.gave_up = True
                return
            self.pending_question = guess.question
        elif guess.action is Action.GUESS and guess.guesses:
            self.pending_noun = guess.guesses[0].noun
        else:
            self._finish(won=False)
            self.gave_up = True

    def answer(self, answer: Answer | None = None, *, text: str | None = None) -> None:
        """Answer the pending question with a button answer, free text, or both."""
        question = self.pending_question
        if question is None:
            raise GameStateError(f"game {self.game_id}: no question is waiting for an answer")
        try:
            entry = HistoryEntry(question_id=question.id, answer=answer, answer_text=text)
        except ValidationError as error:
            raise InvalidTurnError(
                f"game {self.game_id}: that answer cannot be sent: "
                f"{describe_validation_error(error)}; answer again"
            ) from error
        self.history.append(entry)
        self.pending_question = None
        if self.turns > MAX_TURN_NUMBER:
            self._finish(won=False)

    def confirm_guess(self, correct: bool) -> None:
        """The player says whether the guessed noun is right: yes wins, no plays on."""
        noun = self.pending_noun
        if noun is None:
            raise GameStateError(f"game {self.game_id}: no guess is waiting for a yes or no")
        self.pending_noun = None
        if correct:
            self._finish(won=True)
            return
        self.rejected_guesses.append(noun)
        # The contract bounds both lists: a game that hit a bound cannot send another turn.
        if len(self.rejected_guesses) >= MAX_REJECTED_GUESSES or self.turns > MAX_TURN_NUMBER:
            self._finish(won=False)

    @property
    def questions_asked(self) -> int:
        """How many questions the player has answered."""
        return len(self.history)

    @property
    def question_limit_reached(self) -> bool:
        """Whether the game has used all its questions."""
        return len(self.history) >= MAX_QUESTIONS

    def _finish(self, *, won: bool) -> None:
        self.over = True
        self.won = won
        self.pending_question = None
        self.pending_noun = None

    def _require(self, condition: bool, problem: str) -> None:
        if not condition:
            raise GameStateError(f"game {self.game_id}: {problem}")
