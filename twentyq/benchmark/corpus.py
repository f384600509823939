"""Realistic turns for the benchmark: the game states of simulated games, replayed.

Simulated players (``producer.player``) play whole games against the loaded
model in lock-step, one ``predict`` per round for every game still running.
Every turn they send is kept, so the corpus holds histories of every length
the real games reach, canonical answers and a share of free text, exactly as
players produce them. Load runs later send these turns in a shuffled order,
each with a fresh ``turn_id``.
"""

from __future__ import annotations

import random
import statistics
import uuid
from collections.abc import Sequence
from typing import Any

from producer.game import Game
from producer.messages import Guess, ModelRef
from producer.player import AnswerTable, SimulatedPlayer
from worker.inference import infer_batch
from worker.model_loader import PredictFunction

CorpusTurn = dict[str, Any]
BENCH_WORKER_NAME = "twentyq-bench"


def _answer(game: Game, player: SimulatedPlayer) -> None:
    if game.pending_question is not None:
        said = player.answer(game.pending_question.id)
        game.answer(None if said.text else said.answer, text=said.text)
    elif game.pending_noun is not None:
        game.confirm_guess(player.confirms(game.pending_noun))


def replay_games(
    predict: PredictFunction,
    model: ModelRef,
    table: AnswerTable,
    *,
    games: int,
    seed: int = 0,
    noise: float = 0.1,
    free_text_rate: float = 0.2,
) -> list[CorpusTurn]:
    """Play ``games`` simulated games to their end; return every turn sent, shuffled.

    A turn the model rejects ends its game (the turn stays out of the corpus).
    """
    rng = random.Random(seed)
    playing: list[tuple[Game, SimulatedPlayer]] = []
    for index in range(games):
        player = SimulatedPlayer(
            table,
            rng.choice(table.nouns),
            noise=noise,
            free_text_rate=free_text_rate,
            rng=random.Random(rng.randrange(2**32)),
        )
        game = Game(game_id=f"bench-{seed}-{index}", metadata={"source": BENCH_WORKER_NAME})
        playing.append((game, player))
    corpus: list[CorpusTurn] = []
    while playing:
        turns = [game.next_turn() for game, _ in playing]
        outcomes = infer_batch(predict, turns, model, BENCH_WORKER_NAME)
        for (game, player), turn, outcome in zip(playing, turns, outcomes, strict=True):
            if not isinstance(outcome, Guess):
                game.over = True
                continue
            corpus.append(turn.model_dump(mode="json", exclude={"turn_id", "sent_at"}))
            game.apply(outcome)
            _answer(game, player)
        playing = [(game, player) for game, player in playing if not game.over]
    rng.shuffle(corpus)
    return corpus


def fresh_turn(template: CorpusTurn) -> CorpusTurn:
    """A copy of a corpus turn with a new ``turn_id`` (the idempotency key) and no ``sent_at``."""
    return {**template, "turn_id": str(uuid.uuid4())}


def model_input(turn: CorpusTurn) -> dict[str, Any]:
    """The part of a corpus turn the model sees (the model contract's turn)."""
    return {"history": turn["history"], "rejected_guesses": turn["rejected_guesses"]}


def describe_corpus(corpus: Sequence[CorpusTurn]) -> dict[str, Any]:
    """Shape of the corpus: turns, history lengths, share of free-text answers."""
    if not corpus:
        raise ValueError("the corpus is empty: play at least one game")
    lengths = [len(turn["history"]) for turn in corpus]
    answers = [entry for turn in corpus for entry in turn["history"]]
    typed = sum(1 for entry in answers if entry.get("answer_text"))
    return {
        "turns": len(corpus),
        "games": len({turn["game_id"] for turn in corpus}),
        "history_length": {
            "min": min(lengths),
            "mean": round(statistics.fmean(lengths), 2),
            "max": max(lengths),
        },
        "with_rejected_guesses": sum(1 for turn in corpus if turn["rejected_guesses"]),
        "free_text_share": round(typed / len(answers), 3) if answers else 0.0,
    }
