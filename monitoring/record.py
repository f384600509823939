"""Export events as flat records (docs/records.md): one row per event, one schema for all."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from producer.messages import GameOutcome, Guess

RECORD_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("event_id", pa.string()),
        ("game_id", pa.string()),
        ("turn", pa.int64()),
        ("action", pa.string()),
        ("question_id", pa.string()),
        ("top_noun", pa.string()),
        ("top_probability", pa.float64()),
        ("guesses_json", pa.string()),
        ("questions_asked", pa.int64()),
        ("answered_question_id", pa.string()),
        ("answered_answer", pa.string()),
        ("answered_text", pa.string()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("run_id", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("queue_ms", pa.float64()),
        ("inference_ms", pa.float64()),
        ("won", pa.bool_()),
        ("revealed_noun", pa.string()),
        ("turns", pa.int64()),
        ("metadata_json", pa.string()),
    ]
)
COLUMNS = tuple(RECORD_SCHEMA.names)
UNKNOWN_VERSION = "unknown"


def _answered_class(guess: Guess) -> str | None:
    answered = guess.answered
    if answered is None:
        return None
    if answered.answer is not None:
        return answered.answer.value
    for interpreted in guess.interpreted_answers:
        if interpreted.question_id == answered.question_id:
            return interpreted.answer.value
    return None


def guess_record(guess: Guess) -> dict[str, Any]:
    """The flat record of one Guess event."""
    top = guess.guesses[0] if guess.guesses else None
    answered = guess.answered
    return {
        "kind": "guess",
        "event_id": str(guess.turn_id),
        "game_id": guess.game_id,
        "turn": guess.turn,
        "action": guess.action.value,
        "question_id": guess.question.id if guess.question else None,
        "top_noun": top.noun if top else None,
        "top_probability": top.probability if top else None,
        "guesses_json": json.dumps([g.model_dump(mode="json") for g in guess.guesses]),
        "questions_asked": guess.questions_asked,
        "answered_question_id": answered.question_id if answered else None,
        "answered_answer": _answered_class(guess),
        "answered_text": answered.answer_text if answered else None,
        "model_name": guess.model.name,
        "model_version": guess.model.version,
        "run_id": guess.model.run_id,
        "event_time": guess.timing.finished_at,
        "queue_ms": guess.timing.queue_ms,
        "inference_ms": guess.timing.inference_ms,
        "won": None,
        "revealed_noun": None,
        "turns": None,
        "metadata_json": json.dumps(guess.metadata, default=str),
    }


def outcome_record(outcome: GameOutcome) -> dict[str, Any]:
    """The flat record of one GameOutcome event."""
    version = outcome.metadata.get("model_version")
    return {
        **dict.fromkeys(COLUMNS),
        "kind": "outcome",
        "event_id": f"outcome:{outcome.game_id}",
        "game_id": outcome.game_id,
        "model_name": outcome.metadata.get("model_name"),
        "model_version": str(version) if version is not None else None,
        "event_time": outcome.reported_at,
        "won": outcome.won,
        "revealed_noun": outcome.revealed_noun,
        "turns": outcome.turns,
        "metadata_json": json.dumps(outcome.metadata, default=str),
    }


def event_record(event: Guess | GameOutcome) -> dict[str, Any]:
    """The flat record of any export event."""
    return guess_record(event) if isinstance(event, Guess) else outcome_record(event)


def records_table(records: list[dict[str, Any]]) -> pa.Table:
    """A pyarrow table of records in the shared schema."""
    return pa.Table.from_pylist(records, schema=RECORD_SCHEMA)


def partition_key(record: dict[str, Any]) -> tuple[str, str]:
    """The (date, model version) partition a record is written under."""
    event_time: datetime = record["event_time"]
    return event_time.strftime("%Y-%m-%d"), record["model_version"] or UNKNOWN_VERSION


def deduplicate(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop records written more than once: ``event_id`` is unique (the dedupe rule)."""
    return frame.drop_duplicates(subset="event_id", keep="first").reset_index(drop=True)


def assign_outcome_versions(frame: pd.DataFrame) -> pd.DataFrame:
    """Give outcome rows without a model version the version that played their game."""
    missing = (frame["kind"] == "outcome") & frame["model_version"].isna()
    if not missing.any():
        return frame
    guesses = frame[frame["kind"] == "guess"].dropna(subset=["model_version"])
    version_of_game = guesses.groupby("game_id")["model_version"].last()
    frame = frame.copy()
    frame.loc[missing, "model_version"] = frame.loc[missing, "game_id"].map(version_of_game)
    return frame
