"""Evaluation: simulated games against the engine, per player kind, checked against targets.

Scenarios: ``noise_free`` (truthful players), ``noise_10`` (10% of answers
flipped) and, when an ``interpret`` function is given, ``free_text`` (truthful
players typing held-out phrasings the interpreter must read). A game is won
when the engine guesses the secret noun within its 20 turns, where every
question and every guess counts as a turn (the classic rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from model.engine import Engine, KnowledgeTable
from model.reference import records_frame
from model.simulation import Game, Interpret, Player, load_phrasings, play_games

__all__ = [
    "EvaluationReport",
    "ScenarioResult",
    "TargetCheck",
    "evaluate",
    "reference_frame",
]

NOISE_FREE = "noise_free"
NOISE_10 = "noise_10"
FREE_TEXT = "free_text"

MIN_NOISE_FREE_WIN_RATE = 0.97
MAX_NOISE_FREE_MEDIAN_QUESTIONS = 12.0
MIN_NOISY_WIN_RATE = 0.80


@dataclass(frozen=True)
class ScenarioResult:
    """Outcome counts and figures of one scenario's games."""

    name: str
    flip_rate: float
    games: int
    wins: int
    give_ups: int
    wrong_guesses: int
    questions_to_win_median: float | None
    questions_to_win_p90: float | None
    turns_to_win_median: float | None

    @property
    def win_rate(self) -> float:
        """Share of games won within the 20 turns."""
        return self.wins / self.games if self.games else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as plain JSON-ready values."""
        return {
            "name": self.name,
            "flip_rate": self.flip_rate,
            "games": self.games,
            "wins": self.wins,
            "losses": self.games - self.wins,
            "give_ups": self.give_ups,
            "wrong_guesses": self.wrong_guesses,
            "win_rate": self.win_rate,
            "questions_to_win_median": self.questions_to_win_median,
            "questions_to_win_p90": self.questions_to_win_p90,
            "turns_to_win_median": self.turns_to_win_median,
        }


@dataclass(frozen=True)
class TargetCheck:
    """One evaluation target: the measured value, the bound, and whether it holds."""

    name: str
    value: float | None
    bound: float
    comparison: str
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        """Return the check as plain JSON-ready values."""
        return {
            "name": self.name,
            "value": self.value,
            "bound": self.bound,
            "comparison": self.comparison,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class EvaluationReport:
    """Results of :func:`evaluate`: per-scenario figures and the games themselves."""

    seed: int
    scenarios: dict[str, ScenarioResult]
    games: dict[str, list[Game]] = field(repr=False)

    def targets(self) -> list[TargetCheck]:
        """Check the issue's targets; a missing scenario fails its targets."""
        noise_free = self.scenarios.get(NOISE_FREE)
        noisy = self.scenarios.get(NOISE_10)
        median = noise_free.questions_to_win_median if noise_free else None
        return [
            _at_least(
                "noise_free win rate",
                noise_free.win_rate if noise_free else None,
                MIN_NOISE_FREE_WIN_RATE,
            ),
            _at_most("noise_free median questions to win", median, MAX_NOISE_FREE_MEDIAN_QUESTIONS),
            _at_least("noise_10 win rate", noisy.win_rate if noisy else None, MIN_NOISY_WIN_RATE),
        ]

    @property
    def passed(self) -> bool:
        """Whether every target holds."""
        return all(check.passed for check in self.targets())

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready values (for ``--json``)."""
        return {
            "seed": self.seed,
            "scenarios": {name: result.to_dict() for name, result in self.scenarios.items()},
            "targets": [check.to_dict() for check in self.targets()],
            "passed": self.passed,
        }


def evaluate(
    engine: Engine,
    kb: KnowledgeTable,
    *,
    games_per_noun: int = 1,
    n_games: int | None = None,
    seed: int = 0,
    interpret: Interpret | None = None,
    phrasings: Mapping[str, Sequence[str]] | None = None,
    progress: bool = True,
) -> EvaluationReport:
    """Play simulated games for every scenario and summarise them.

    Each scenario plays every noun ``games_per_noun`` times, or, when
    ``n_games`` is given, that many games on nouns drawn at random. The
    free-text scenario runs only with ``interpret``; its phrasings default to
    the interpreter's held-out file ``model/data/phrasings_heldout.csv``.
    """
    secrets = _choose_secrets(kb.nouns, games_per_noun, n_games, seed)
    players = [Player(NOISE_FREE, 0.0), Player(NOISE_10, 0.1)]
    if interpret is not None:
        texts = phrasings if phrasings is not None else load_phrasings()
        if texts is None:
            raise ValueError(
                "the free-text scenario needs phrasings: pass phrasings= or create "
                "model/data/phrasings_heldout.csv (columns text,answer)"
            )
        players.append(Player(FREE_TEXT, 0.0, texts, interpret))
    games: dict[str, list[Game]] = {}
    for offset, player in enumerate(players):
        games[player.name] = play_games(
            engine, kb, secrets, player, seed=seed + offset + 1, progress=progress
        )
    scenarios = {player.name: _summarise(player, games[player.name]) for player in players}
    return EvaluationReport(seed, scenarios, games)


def reference_frame(
    report: EvaluationReport,
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    run_id: str | None = None,
    event_time: datetime | None = None,
) -> pd.DataFrame:
    """Return the report's games as export records with exactly the columns of docs/records.md.

    One ``guess`` row per engine turn and one ``outcome`` row per game, over
    every scenario; ``model_*`` name the run being logged (see
    :func:`model.reference.records_frame`).
    """
    return records_frame(
        report.games,
        model_name=model_name,
        model_version=model_version,
        run_id=run_id,
        event_time=event_time,
    )


def _choose_secrets(
    nouns: Sequence[str], games_per_noun: int, n_games: int | None, seed: int
) -> list[str]:
    if n_games is not None:
        if n_games < 1:
            raise ValueError(f"n_games must be at least 1, got {n_games}")
        picks = np.random.default_rng(seed).integers(len(nouns), size=n_games)
        return [nouns[int(index)] for index in picks]
    if games_per_noun < 1:
        raise ValueError(f"games_per_noun must be at least 1, got {games_per_noun}")
    return [noun for noun in nouns for _ in range(games_per_noun)]


def _summarise(player: Player, games: list[Game]) -> ScenarioResult:
    won = [game for game in games if game.won]
    questions = np.array([game.questions_asked for game in won], dtype=float)
    turns = np.array([game.turns_used for game in won], dtype=float)
    wrong = sum(move.action == "guess" for game in games for move in game.moves) - len(won)
    return ScenarioResult(
        name=player.name,
        flip_rate=player.flip_rate,
        games=len(games),
        wins=len(won),
        give_ups=sum(not game.won for game in games),
        wrong_guesses=wrong,
        questions_to_win_median=float(np.median(questions)) if won else None,
        questions_to_win_p90=float(np.percentile(questions, 90)) if won else None,
        turns_to_win_median=float(np.median(turns)) if won else None,
    )


def _at_least(name: str, value: float | None, bound: float) -> TargetCheck:
    passed = value is not None and value >= bound
    return TargetCheck(name, value, bound, ">=", passed)


def _at_most(name: str, value: float | None, bound: float) -> TargetCheck:
    passed = value is not None and value <= bound
    return TargetCheck(name, value, bound, "<=", passed)
