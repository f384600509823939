"""Synthetic production records: games drawn from a seeded scenario, with or without drift.

One generator makes record tables (fast, vectorised, for the statistical tests);
:func:`events_from_records` turns the same rows into wire events for the tests
that publish to a real broker.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from monitoring.record import COLUMNS
from producer.messages import (
    GameOutcome,
    Guess,
    HistoryEntry,
    InterpretedAnswer,
    ModelRef,
    Question,
    RankedNoun,
    Timing,
)

NOUNS = tuple(f"noun_{index:02d}" for index in range(40))
NEW_NOUNS = ("zebra", "quasar", "kettle", "tornado", "violin")
QUESTIONS = tuple(f"q{index:02d}" for index in range(30))
ANSWERS = ("yes", "probably", "unknown", "probably_not", "no")
PHRASES = {
    "yes": ("yes it is", "of course", "definitely yes"),
    "probably": ("i think so", "probably yes", "most likely"),
    "unknown": ("no idea", "hard to say", "i do not know"),
    "probably_not": ("i doubt it", "probably not", "not likely"),
    "no": ("no way", "not at all", "definitely not"),
}
SLANG = ("nah bruh", "lowkey yes", "no cap fr", "yeet sure", "bussin yes")
VOCABULARY = sorted({token for phrases in PHRASES.values() for p in phrases for token in p.split()})
MODEL_NAME = "twentyq-synthetic"


@dataclass(frozen=True)
class Scenario:
    """How synthetic games are played; the defaults are the reference behaviour."""

    noun_zipf: float = 0.8
    new_noun_share: float = 0.0
    confidence_a: float = 6.0
    confidence_b: float = 3.0
    mean_questions: float = 12.0
    drifted_questions: int = 0
    free_text_share: float = 0.3
    slang_share: float = 0.0
    win_probability: float = 0.7
    reveal_probability: float = 0.6


REFERENCE = Scenario()
# One planted shift per metric, each large enough that a user would want to hear of it.
SHIFTS = {
    "noun_distribution": replace(REFERENCE, new_noun_share=0.3),
    "top_confidence": replace(REFERENCE, confidence_a=4.0, confidence_b=4.0),
    "questions_to_guess": replace(REFERENCE, mean_questions=15.0),
    "question_limit_share": replace(REFERENCE, mean_questions=17.0),
    "answer_distribution": replace(REFERENCE, drifted_questions=3),
    "oov_rate": replace(REFERENCE, slang_share=0.5),
    "win_rate": replace(REFERENCE, win_probability=0.5),
    "reveal_rate": replace(REFERENCE, reveal_probability=0.4),
}


def _answer_table(drifted_questions: int) -> np.ndarray:
    """Cumulative answer probabilities per question, fixed (seed 0) for every scenario."""
    base = np.random.default_rng(0).dirichlet(np.full(len(ANSWERS), 2.0), size=len(QUESTIONS))
    # A drifted question gets "unknown" far more often: players stop understanding it.
    unknown = np.eye(len(ANSWERS))[ANSWERS.index("unknown")]
    base[:drifted_questions] = 0.4 * base[:drifted_questions] + 0.6 * unknown
    return np.cumsum(base, axis=1)


def _noun_weights(zipf: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, len(NOUNS) + 1) ** zipf
    return weights / weights.sum()


def _guess_nouns(rng: np.random.Generator, scenario: Scenario, count: int) -> np.ndarray:
    nouns = rng.choice(np.array(NOUNS), size=count, p=_noun_weights(scenario.noun_zipf))
    new = rng.random(count) < scenario.new_noun_share
    nouns[new] = rng.choice(np.array(NEW_NOUNS), size=int(new.sum()))
    return nouns


def _texts(rng: np.random.Generator, scenario: Scenario, answers: np.ndarray) -> list[str | None]:
    typed = rng.random(len(answers)) < scenario.free_text_share
    slang = rng.random(len(answers)) < scenario.slang_share
    picks = rng.integers(0, 3, len(answers))
    slang_picks = rng.integers(0, len(SLANG), len(answers))
    return [
        None if not t else SLANG[sp] if s else PHRASES[a][p]
        for t, s, a, p, sp in zip(typed, slang, answers, picks, slang_picks, strict=True)
    ]


def synthetic_records(
    rng: np.random.Generator,
    games: int,
    scenario: Scenario,
    start: datetime,
    end: datetime,
    *,
    model_version: str = "1",
) -> pd.DataFrame:
    """Records of ``games`` games played under ``scenario`` between ``start`` and ``end``."""
    asked = np.clip(1 + rng.poisson(scenario.mean_questions - 1, games), 1, 20)
    rows_per_game = asked + 1
    game = np.repeat(np.arange(games), rows_per_game)
    first_row = np.repeat(np.cumsum(rows_per_game) - rows_per_game, rows_per_game)
    turn = np.arange(len(game)) - first_row
    is_guess = turn == asked[game]
    question = rng.integers(0, len(QUESTIONS), len(game))
    answer_index = (
        rng.random(len(game))[:, None] > _answer_table(scenario.drifted_questions)[question]
    ).sum(axis=1)
    answers = np.array(ANSWERS)[np.minimum(answer_index, len(ANSWERS) - 1)]
    has_answer = turn > 0
    nouns = _guess_nouns(rng, scenario, games)
    game_ids = np.array([f"game-{x:016x}" for x in rng.integers(0, 2**63, games)])
    span_s = (end - start).total_seconds()
    game_time = np.array(
        [start + timedelta(seconds=float(s)) for s in rng.uniform(0, span_s * 0.95, games)]
    )
    guesses = pd.DataFrame(
        {
            "kind": "guess",
            "event_id": [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**63, len(game))],
            "game_id": game_ids[game],
            "turn": turn,
            "action": np.where(is_guess, "guess", "ask"),
            "question_id": np.where(
                is_guess, None, np.array(QUESTIONS)[rng.integers(0, len(QUESTIONS), len(game))]
            ),
            "top_noun": nouns[game],
            "top_probability": rng.beta(scenario.confidence_a, scenario.confidence_b, len(game)),
            "questions_asked": turn,
            "answered_question_id": np.where(has_answer, np.array(QUESTIONS)[question], None),
            "answered_answer": np.where(has_answer, answers, None),
            "answered_text": np.where(
                has_answer, np.array(_texts(rng, scenario, answers), dtype=object), None
            ),
            "model_name": MODEL_NAME,
            "model_version": model_version,
            "run_id": "synthetic",
            "event_time": pd.to_datetime(game_time[game], utc=True)
            + pd.to_timedelta(turn, unit="s"),
            "queue_ms": 1.0,
            "inference_ms": 2.0,
        }
    )
    won = rng.random(games) < scenario.win_probability
    revealed = rng.random(games) < scenario.reveal_probability
    outcomes = pd.DataFrame(
        {
            "kind": "outcome",
            "event_id": [f"outcome:{g}" for g in game_ids],
            "game_id": game_ids,
            "model_version": model_version,
            "event_time": pd.to_datetime(game_time, utc=True)
            + pd.to_timedelta(asked + 1, unit="s"),
            "won": won,
            "revealed_noun": np.where(revealed, nouns, None),
            "turns": asked + 1,
        }
    )
    return pd.concat([guesses, outcomes], ignore_index=True).reindex(columns=list(COLUMNS))


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _guess_event(row: dict[str, Any]) -> Guess:
    finished = row["event_time"].to_pydatetime()
    answered = None
    interpreted = []
    if _present(row["answered_question_id"]):
        text = row["answered_text"] if _present(row["answered_text"]) else None
        answered = HistoryEntry(
            question_id=row["answered_question_id"],
            answer=None if text else row["answered_answer"],
            answer_text=text,
        )
        if text:
            interpreted = [
                InterpretedAnswer(
                    question_id=row["answered_question_id"],
                    text=text,
                    answer=row["answered_answer"],
                )
            ]
    is_ask = row["action"] == "ask"
    return Guess(
        turn_id=uuid.UUID(row["event_id"]),
        game_id=row["game_id"],
        turn=int(row["turn"]),
        action=row["action"],
        question=Question(id=row["question_id"], text="Is it?") if is_ask else None,
        guesses=[RankedNoun(noun=row["top_noun"], probability=float(row["top_probability"]))],
        interpreted_answers=interpreted,
        answered=answered,
        model=ModelRef(name=row["model_name"], version=row["model_version"], run_id=row["run_id"]),
        timing=Timing(
            sent_at=finished,
            started_at=finished,
            finished_at=finished,
            queue_ms=1.0,
            inference_ms=2.0,
        ),
        worker="synthetic:1",
        questions_asked=int(row["questions_asked"]),
    )


def events_from_records(frame: pd.DataFrame) -> list[Guess | GameOutcome]:
    """The wire events whose records are ``frame``'s rows."""
    events: list[Guess | GameOutcome] = []
    for row in frame.to_dict("records"):
        if row["kind"] == "guess":
            events.append(_guess_event(row))
        else:
            events.append(
                GameOutcome(
                    game_id=row["game_id"],
                    revealed_noun=row["revealed_noun"] if _present(row["revealed_noun"]) else None,
                    won=bool(row["won"]),
                    turns=int(row["turns"]),
                    metadata={"model_version": row["model_version"]},
                    reported_at=row["event_time"].to_pydatetime(),
                )
            )
    return events


def event_bodies(events: list[Guess | GameOutcome]) -> list[dict[str, Any]]:
    """The JSON bodies the worker and the producer publish for these events."""
    return [json.loads(event.model_dump_json()) for event in events]
