"""Export events become the flat records of docs/records.md."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pandas as pd

from monitoring.record import (
    COLUMNS,
    assign_outcome_versions,
    deduplicate,
    event_record,
    partition_key,
)
from producer.messages import (
    GameOutcome,
    Guess,
    HistoryEntry,
    InterpretedAnswer,
    ModelRef,
    RankedNoun,
    Timing,
)

FINISHED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _guess(**changes: object) -> Guess:
    fields: dict[str, object] = {
        "turn_id": uuid.uuid4(),
        "game_id": "game-1",
        "turn": 7,
        "action": "guess",
        "guesses": [
            RankedNoun(noun="cat", probability=0.8),
            RankedNoun(noun="dog", probability=0.1),
        ],
        "answered": HistoryEntry(question_id="is_alive", answer_text="yeah totally"),
        "interpreted_answers": [
            InterpretedAnswer(question_id="is_alive", text="yeah totally", answer="yes")
        ],
        "model": ModelRef(name="twentyq", version="4", run_id="r1"),
        "timing": Timing(
            sent_at=FINISHED,
            started_at=FINISHED,
            finished_at=FINISHED,
            queue_ms=3.0,
            inference_ms=9.5,
        ),
        "worker": "host:1",
        "questions_asked": 6,
        "metadata": {"player": "p"},
    }
    fields.update(changes)
    return Guess.model_validate(fields)


def test_a_guess_becomes_one_record_with_every_column() -> None:
    guess = _guess()
    record = event_record(guess)
    assert set(record) == set(COLUMNS)
    assert record["event_id"] == str(guess.turn_id)
    assert (record["top_noun"], record["top_probability"]) == ("cat", 0.8)
    assert json.loads(record["guesses_json"])[1] == {"noun": "dog", "probability": 0.1}
    assert record["questions_asked"] == 6
    # Free text is recorded with the class the model read it as.
    assert record["answered_answer"] == "yes"
    assert record["answered_text"] == "yeah totally"
    assert (record["model_version"], record["event_time"]) == ("4", FINISHED)
    assert record["won"] is None
    assert partition_key(record) == ("2026-03-04", "4")


def test_a_button_answer_is_recorded_as_given() -> None:
    guess = _guess(answered=HistoryEntry(question_id="is_big", answer="probably_not"))
    record = event_record(guess)
    assert (record["answered_answer"], record["answered_text"]) == ("probably_not", None)


def test_an_outcome_becomes_one_record_keyed_by_its_game() -> None:
    outcome = GameOutcome(
        game_id="game-9",
        revealed_noun="owl",
        won=False,
        turns=12,
        metadata={"model_version": 4},
        reported_at=FINISHED,
    )
    record = event_record(outcome)
    assert record["event_id"] == "outcome:game-9"
    assert (record["won"], record["revealed_noun"], record["turns"]) == (False, "owl", 12)
    assert record["model_version"] == "4"
    assert record["top_noun"] is None


def test_readers_drop_records_written_twice() -> None:
    frame = pd.DataFrame({"event_id": ["a", "b", "a", "c", "b"], "turn": [1, 2, 1, 3, 2]})
    assert deduplicate(frame)["event_id"].tolist() == ["a", "b", "c"]


def test_outcomes_without_a_version_take_their_games_version() -> None:
    frame = pd.DataFrame(
        {
            "kind": ["guess", "outcome", "outcome"],
            "game_id": ["g1", "g1", "g2"],
            "model_version": ["3", None, None],
        }
    )
    assert assign_outcome_versions(frame)["model_version"].tolist()[:2] == ["3", "3"]
