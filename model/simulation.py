"""Simulated players and whole games played against the engine in batches.

A simulated player thinks of a secret noun and answers each question from the
knowledge base: it samples an answer class from the truthful answer profile
of the cell's ``p_yes`` (:func:`model.likelihood.answer_profile`), then flips
it (yes<->no, probably<->probably_not) with its flip rate. A free-text player
answers the same way but types a phrasing of the class, which the answer
interpreter must read back. All games of a batch advance together: one
``Engine.decide`` call per step for every game still running.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from model.engine import Action, Decision, Engine, EngineTurn, KnowledgeTable
from model.likelihood import ANSWER_CLASSES, FLIPPED_CLASS, answer_profile

Interpret = Callable[[list[str]], list[str]]
"""Maps free-text answers to answer classes, one class per text, in order."""

HELDOUT_PHRASINGS_PATH = Path(__file__).parent / "data" / "phrasings_heldout.csv"


@dataclass(frozen=True)
class Player:
    """How a simulated player answers: its flip rate and, for free text, its phrasings."""

    name: str
    flip_rate: float = 0.0
    phrasings: Mapping[str, Sequence[str]] | None = None
    interpret: Interpret | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.flip_rate <= 1.0:
            raise ValueError(f"flip_rate must be in [0, 1], got {self.flip_rate}")
        if (self.phrasings is None) != (self.interpret is None):
            raise ValueError("a free-text player needs both phrasings and an interpret function")
        if self.phrasings is not None:
            missing = [name for name in ANSWER_CLASSES if not self.phrasings.get(name)]
            if missing:
                raise ValueError(f"no phrasings for answer classes {missing}; give at least one")


@dataclass(frozen=True)
class Move:
    """One turn of a game as the engine saw and answered it."""

    turn: int
    action: Action
    question_id: str | None
    guesses: tuple[tuple[str, float], ...]
    questions_asked: int
    answered: tuple[str, str, str | None] | None
    """The newest history entry: (question_id, answer class, free text or None)."""


@dataclass
class Game:
    """A whole simulated game: the secret noun, the moves, and how it ended."""

    secret: str
    moves: list[Move] = field(default_factory=list)
    won: bool = False
    finished: bool = False

    @property
    def questions_asked(self) -> int:
        """Number of questions the engine asked."""
        return sum(move.action == "ask" for move in self.moves)

    @property
    def turns_used(self) -> int:
        """Questions asked plus guesses made, the winning guess included."""
        return sum(move.action != "give_up" for move in self.moves)


def sample_answers(
    p_yes: NDArray[np.floating], flip_rate: float, rng: np.random.Generator
) -> NDArray[np.int64]:
    """Sample one answer class index per ``p_yes`` cell, flipping with ``flip_rate``."""
    profile = answer_profile(np.asarray(p_yes))
    cumulative = profile.cumsum(axis=-1)
    draws = rng.random(profile.shape[:-1])[..., None]
    classes = np.minimum((draws >= cumulative).sum(axis=-1), len(ANSWER_CLASSES) - 1)
    flipped = rng.random(classes.shape) < flip_rate
    result: NDArray[np.int64] = np.where(flipped, np.asarray(FLIPPED_CLASS)[classes], classes)
    return result


def load_phrasings(path: Path = HELDOUT_PHRASINGS_PATH) -> dict[str, list[str]] | None:
    """Read ``text,answer`` rows into phrasings per answer class; None if the file is absent."""
    if not path.exists():
        return None
    phrasings: dict[str, list[str]] = {name: [] for name in ANSWER_CLASSES}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("answer") in phrasings and row.get("text"):
                phrasings[row["answer"]].append(row["text"])
    return phrasings


def play_games(
    engine: Engine,
    kb: KnowledgeTable,
    secrets: Sequence[str],
    player: Player,
    *,
    seed: int,
    progress: bool = False,
) -> list[Game]:
    """Play one game per secret noun with ``player``; the same seed gives the same games."""
    rng = np.random.default_rng(seed)
    table = _Table(kb)
    games = [Game(secret) for secret in secrets]
    states = [_GameState() for _ in secrets]
    # Each step makes one move per running game; no game lasts more than this many.
    max_steps = 2 * engine.config.max_questions + 1
    with tqdm(total=len(games), desc=player.name, disable=not progress, leave=False) as bar:
        for _ in range(max_steps):
            running = [index for index, game in enumerate(games) if not game.finished]
            if not running:
                break
            decisions = engine.decide([states[index].engine_turn() for index in running])
            askers: list[tuple[int, str]] = []
            for index, decision in zip(running, decisions, strict=True):
                state, game = states[index], games[index]
                game.moves.append(state.move(decision))
                if decision.action == "ask" and decision.question_id is not None:
                    askers.append((index, decision.question_id))
                elif decision.action == "guess":
                    state.record_guess(game, decision.guesses[0][0])
                else:
                    game.finished = True
            answers = _answer(
                askers, [games[index].secret for index, _ in askers], player, rng, table
            )
            for (index, question_id), (answer, text) in zip(askers, answers, strict=True):
                states[index].answers.append((question_id, answer))
                states[index].texts.append(text)
            bar.update(sum(games[index].finished for index in running))
    return games


@dataclass
class _GameState:
    answers: list[tuple[str, str]] = field(default_factory=list)
    texts: list[str | None] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def engine_turn(self) -> EngineTurn:
        return EngineTurn(tuple(self.answers), tuple(self.rejected))

    def move(self, decision: Decision) -> Move:
        answered = (*self.answers[-1], self.texts[-1]) if self.answers else None
        turn = len(self.answers) + len(self.rejected)
        return Move(
            turn,
            decision.action,
            decision.question_id,
            decision.guesses,
            len(self.answers),
            answered,
        )

    def record_guess(self, game: Game, noun: str) -> None:
        if noun == game.secret:
            game.won = game.finished = True
        else:
            self.rejected.append(noun)


class _Table:
    """The knowledge base's cells, looked up by noun and question id."""

    def __init__(self, kb: KnowledgeTable) -> None:
        self.p_yes = np.asarray(kb.p_yes)
        self.noun_index = {noun: index for index, noun in enumerate(kb.nouns)}
        self.question_index = {qid: index for index, qid in enumerate(kb.question_ids)}

    def cells(self, secrets: Sequence[str], question_ids: Sequence[str]) -> NDArray[np.floating]:
        rows = [self.noun_index[noun] for noun in secrets]
        columns = [self.question_index[question_id] for question_id in question_ids]
        cells: NDArray[np.floating] = self.p_yes[rows, columns]
        return cells


def _answer(
    askers: list[tuple[int, str]],
    secrets: list[str],
    player: Player,
    rng: np.random.Generator,
    table: _Table,
) -> list[tuple[str, str | None]]:
    """Return each asked player's (answer class, free text or None)."""
    if not askers:
        return []
    cells = table.cells(secrets, [question_id for _, question_id in askers])
    classes = [ANSWER_CLASSES[k] for k in sample_answers(cells, player.flip_rate, rng)]
    if player.phrasings is None or player.interpret is None:
        return [(answer, None) for answer in classes]
    typed = [_pick(player.phrasings[name], rng) for name in classes]
    return list(zip(_interpret(player.interpret, typed), typed, strict=True))


def _pick(options: Sequence[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _interpret(interpret: Interpret, texts: list[str]) -> list[str]:
    classes = list(interpret(texts))
    if len(classes) != len(texts):
        raise ValueError(f"interpret returned {len(classes)} classes for {len(texts)} texts")
    unknown = sorted({name for name in classes if name not in ANSWER_CLASSES})
    if unknown:
        raise ValueError(f"interpret returned unknown answer classes {unknown}")
    return classes
