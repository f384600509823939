"""The wire contract between ambassadors, workers and the monitoring sidecar.

Every message is JSON. This module is the single source of truth for the
message shapes, their bounds, and the queue and task names; ``worker`` and
``monitoring`` import it, and it imports nothing from them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

SCHEMA_VERSION: Literal[1] = 1

TURN_TASK_NAME = "twentyq.play_turn"
TURNS_QUEUE = "twentyq.turns"
DEAD_LETTER_QUEUE = "twentyq.turns.dead"
EXPORT_QUEUE = "twentyq.export"

MAX_QUESTIONS = 20
MAX_REJECTED_GUESSES = 20
MAX_TURN_NUMBER = MAX_QUESTIONS + MAX_REJECTED_GUESSES + 1
MAX_ANSWER_TEXT_CHARS = 200
MAX_METADATA_BYTES = 4096
MAX_ID_CHARS = 64
MAX_NOUN_CHARS = 64
MAX_TOP_GUESSES = 10
# A turn's sent_at may run this far ahead of the worker's clock (clock skew), and lag this
# far behind it (a backlog the queue still holds); outside, the turn is refused.
MAX_CLOCK_AHEAD_S = 300
MAX_TURN_AGE_S = 7 * 86_400

Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[A-Za-z0-9_.:-]+$")
]
Noun = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NOUN_CHARS)
]


def utc_now() -> datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


class Answer(StrEnum):
    """The five answers a player can give with a button."""

    YES = "yes"
    PROBABLY = "probably"
    UNKNOWN = "unknown"
    PROBABLY_NOT = "probably_not"
    NO = "no"


class Action(StrEnum):
    """What the model does on a turn."""

    ASK = "ask"
    GUESS = "guess"
    GIVE_UP = "give_up"


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_metadata_size(metadata: dict[str, Any]) -> dict[str, Any]:
    try:
        text = json.dumps(metadata, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError as error:
        raise ValueError(
            "metadata must be standard JSON: NaN and Infinity cannot be read by strict JSON "
            "readers (a browser, the Node client); send finite numbers or strings"
        ) from error
    size_bytes = len(text.encode())
    if size_bytes > MAX_METADATA_BYTES:
        raise ValueError(
            f"metadata is {size_bytes} bytes as JSON; the limit is {MAX_METADATA_BYTES} bytes"
        )
    return metadata


class HistoryEntry(_Message):
    """One answered question. ``answer_text`` is free text the model interprets."""

    question_id: Identifier
    answer: Answer | None = None
    answer_text: (
        Annotated[
            str,
            StringConstraints(
                strip_whitespace=True, min_length=1, max_length=MAX_ANSWER_TEXT_CHARS
            ),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _needs_an_answer(self) -> HistoryEntry:
        if self.answer is None and self.answer_text is None:
            raise ValueError("each history entry needs an answer or an answer_text")
        return self


class Turn(_Message):
    """A game state sent by an ambassador; the model answers with a :class:`Guess`.

    ``turn_id`` is the idempotency key and the Celery task id.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    turn_id: UUID
    game_id: Identifier
    turn: int = Field(ge=0, le=MAX_TURN_NUMBER)
    history: list[HistoryEntry] = Field(default_factory=list, max_length=MAX_QUESTIONS)
    rejected_guesses: list[Noun] = Field(default_factory=list, max_length=MAX_REJECTED_GUESSES)
    metadata: dict[str, Any] = Field(default_factory=dict)
    sent_at: datetime = Field(default_factory=utc_now)

    _check_metadata = field_validator("metadata")(_check_metadata_size)

    @field_validator("sent_at")
    @classmethod
    def _sent_recently(cls, sent_at: datetime) -> datetime:
        if sent_at.tzinfo is None:
            raise ValueError("sent_at needs a timezone (UTC), e.g. 2026-12-03T13:00:00Z")
        age_s = (utc_now() - sent_at).total_seconds()
        if age_s < -MAX_CLOCK_AHEAD_S or age_s > MAX_TURN_AGE_S:
            raise ValueError(
                f"sent_at {sent_at.isoformat()} is {abs(age_s):.0f} s "
                f"{'ahead of' if age_s < 0 else 'behind'} the worker's clock; at most "
                f"{MAX_CLOCK_AHEAD_S} s ahead and {MAX_TURN_AGE_S} s behind are accepted: "
                "check the sender's clock"
            )
        return sent_at

    @field_validator("history")
    @classmethod
    def _questions_asked_once(cls, history: list[HistoryEntry]) -> list[HistoryEntry]:
        seen: set[str] = set()
        for entry in history:
            if entry.question_id in seen:
                raise ValueError(f"question {entry.question_id!r} is answered twice")
            seen.add(entry.question_id)
        return history

    def model_input(self) -> dict[str, Any]:
        """Return the part of the turn the model sees (the model contract's turn)."""
        return {
            "history": [entry.model_dump(mode="json", exclude_none=True) for entry in self.history],
            "rejected_guesses": list(self.rejected_guesses),
        }


class Question(_Message):
    """A question the model asks."""

    id: Identifier
    text: Annotated[str, StringConstraints(min_length=1, max_length=300)]


class RankedNoun(_Message):
    """A candidate noun and the model's probability for it."""

    noun: Noun
    probability: float = Field(ge=0.0, le=1.0)


class InterpretedAnswer(_Message):
    """How the model read one free-text answer."""

    question_id: Identifier
    text: str
    answer: Answer


class ModelRef(_Message):
    """The registered model version that produced an output."""

    name: str
    version: str
    run_id: str


class Timing(_Message):
    """Where a turn's time went, in milliseconds."""

    sent_at: datetime
    started_at: datetime
    finished_at: datetime
    queue_ms: float = Field(ge=0.0)
    inference_ms: float = Field(ge=0.0)


class Prediction(_Message):
    """One result of the model contract: ``predict(turns) -> predictions``."""

    action: Action
    question: Question | None = None
    guesses: list[RankedNoun] = Field(default_factory=list, max_length=MAX_TOP_GUESSES)
    interpreted_answers: list[InterpretedAnswer] = Field(default_factory=list)

    @model_validator(mode="after")
    def _question_when_asking(self) -> Prediction:
        if (self.action is Action.ASK) != (self.question is not None):
            raise ValueError("a question is given exactly when the action is 'ask'")
        return self


class Guess(Prediction):
    """The worker's answer to a turn: the task result and an export event.

    ``answered`` is the newest history entry, the answer this guess responds
    to, so the export stream records every answer of a game exactly once;
    ``questions_asked`` is the number of answered questions in the turn.
    """

    kind: Literal["guess"] = "guess"
    schema_version: Literal[1] = SCHEMA_VERSION
    turn_id: UUID
    game_id: Identifier
    turn: int
    answered: HistoryEntry | None = None
    questions_asked: int = Field(default=0, ge=0, le=MAX_QUESTIONS)
    model: ModelRef
    timing: Timing
    worker: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class GameOutcome(_Message):
    """How a game ended, reported by the ambassador to the export queue."""

    kind: Literal["outcome"] = "outcome"
    schema_version: Literal[1] = SCHEMA_VERSION
    game_id: Identifier
    revealed_noun: Noun | None = None
    won: bool
    turns: int = Field(ge=0, le=MAX_TURN_NUMBER + 1)
    metadata: dict[str, Any] = Field(default_factory=dict)
    reported_at: datetime = Field(default_factory=utc_now)

    _check_metadata = field_validator("metadata")(_check_metadata_size)


class DeadLetterReason(StrEnum):
    """Why a message was dead-lettered (docs/worker.md has an example of each)."""

    MALFORMED_ENVELOPE = "malformed_envelope"
    INVALID_ENVELOPE = "invalid_envelope"
    INVALID_TURN = "invalid_turn"
    UNDECODABLE = "undecodable"
    REFUSED_CONTENT_TYPE = "refused_content_type"
    UNKNOWN_TASK = "unknown_task"
    MODEL_ERROR = "model_error"


class DeadLetter(_Message):
    """A message the worker could not serve, kept with the reason.

    ``body`` is the original message body untouched: its text when it was
    UTF-8, else base64 (``body_encoding`` says which).
    """

    kind: Literal["dead_letter"] = "dead_letter"
    schema_version: Literal[1] = SCHEMA_VERSION
    reason: DeadLetterReason
    error: str
    failed_at: datetime = Field(default_factory=utc_now)
    attempts: int = Field(ge=0)
    task_id: str | None = None
    content_type: str | None = None
    content_encoding: str | None = None
    body: str
    body_encoding: Literal["utf-8", "base64"] = "utf-8"


class TurnFailure(_Message):
    """What a client's reply channel gets for a turn the worker dead-lettered."""

    kind: Literal["failure"] = "failure"
    turn_id: str
    reason: DeadLetterReason
    error: str


reply_adapter: TypeAdapter[Guess | TurnFailure] = TypeAdapter(
    Annotated[Guess | TurnFailure, Field(discriminator="kind")]
)

ExportEvent = Annotated[Guess | GameOutcome, Field(discriminator="kind")]
export_event_adapter: TypeAdapter[Guess | GameOutcome] = TypeAdapter(ExportEvent)
