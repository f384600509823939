"""Play many simulated games through the queue at once: :func:`run_simulation`.

Each game runs in a thread of its own (the wait for a guess is I/O), sends
its turns with :func:`~producer.client.submit_turn`, answers with a
:class:`~producer.player.SimulatedPlayer` and reports its outcome.
"""

from __future__ import annotations

import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from tqdm import tqdm

from producer.client import submit_turn
from producer.errors import TransientError, TurnFailedError
from producer.game import Game
from producer.outcome import report_outcome
from producer.player import AnswerTable, SimulatedPlayer
from producer.settings import ProducerSettings
from producer.stats import LatencySummary


@dataclass(frozen=True)
class SimulationOptions:
    """What to simulate: how many games, how many at once, how the players answer."""

    games: int
    concurrency: int = 4
    noise: float = 0.0
    free_text_rate: float = 0.0
    seed: int | None = None
    progress: bool = True


@dataclass
class GameRecord:
    """What one simulated game measured."""

    game_id: str
    secret_noun: str
    won: bool = False
    turns: int = 0
    failed: str | None = None
    client_ms: list[float] = field(default_factory=list)
    queue_ms: list[float] = field(default_factory=list)
    inference_ms: list[float] = field(default_factory=list)


def play_simulated_game(
    player: SimulatedPlayer,
    game: Game,
    *,
    app: Celery,
    settings: ProducerSettings,
    stop: threading.Event | None = None,
) -> GameRecord:
    """Play one game to its end through the queue and report its outcome.

    A turn the worker dead-lettered ends the game as failed; transient errors
    (timeout, broker down) propagate. When ``stop`` is set the game is
    abandoned before its next turn and not reported.
    """
    record = GameRecord(game_id=game.game_id, secret_noun=player.secret_noun)
    while not game.over:
        if stop is not None and stop.is_set():
            record.failed = "stopped"
            break
        handle = submit_turn(game.next_turn(), app=app, settings=settings)
        try:
            guess = handle.get(settings.guess_timeout_s)
        except TurnFailedError as error:
            record.failed = str(error)
            break
        record.client_ms.append(handle.elapsed_s() * 1000.0)
        record.queue_ms.append(guess.timing.queue_ms)
        record.inference_ms.append(guess.timing.inference_ms)
        game.apply(guess)
        if game.pending_question is not None:
            said = player.answer(game.pending_question.id)
            game.answer(None if said.text else said.answer, text=said.text)
        elif game.pending_noun is not None:
            game.confirm_guess(player.confirms(game.pending_noun))
    record.won, record.turns = game.won, game.turns
    if record.failed != "stopped":  # an abandoned game says nothing about the model
        report_outcome(game, revealed_noun=player.secret_noun, app=app, settings=settings)
    return record


@dataclass(frozen=True)
class SimulationSummary:
    """The figures ``twentyq simulate`` prints."""

    records: tuple[GameRecord, ...]
    elapsed_s: float

    @property
    def games(self) -> int:
        """Games played (failed ones included)."""
        return len(self.records)

    @property
    def wins(self) -> int:
        """Games the model won."""
        return sum(record.won for record in self.records)

    @property
    def total_turns(self) -> int:
        """Turns answered by the workers over all games."""
        return sum(len(record.client_ms) for record in self.records)

    def to_dict(self) -> dict[str, Any]:
        """Everything as one JSON-ready object (the ``--json`` output)."""
        turns = [record.turns for record in self.records]
        latency = {
            "client_ms": LatencySummary.of([v for r in self.records for v in r.client_ms]),
            "queue_ms": LatencySummary.of([v for r in self.records for v in r.queue_ms]),
            "inference_ms": LatencySummary.of([v for r in self.records for v in r.inference_ms]),
        }
        return {
            "games": self.games,
            "wins": self.wins,
            "failed_games": sum(record.failed is not None for record in self.records),
            "win_rate": self.wins / self.games if self.games else 0.0,
            "mean_turns": statistics.fmean(turns) if turns else 0.0,
            "median_turns": statistics.median(turns) if turns else 0.0,
            "total_turns": self.total_turns,
            "elapsed_s": round(self.elapsed_s, 3),
            "throughput_turns_per_s": self.total_turns / self.elapsed_s if self.elapsed_s else 0.0,
            "latency": {name: s.to_dict() if s else None for name, s in latency.items()},
        }

    def describe(self) -> str:
        """The human-readable summary, one figure per line."""
        data = self.to_dict()
        lines = [
            f"games            {data['games']} ({data['failed_games']} failed)",
            f"win rate         {data['win_rate']:.1%} ({data['wins']}/{data['games']})",
            f"turns per game   mean {data['mean_turns']:.1f}, median {data['median_turns']:g}",
            f"throughput       {data['throughput_turns_per_s']:.1f} turns/s "
            f"({data['total_turns']} turns in {data['elapsed_s']:.1f} s)",
        ]
        labels = {
            "client_ms": "enqueue→guess  ",
            "queue_ms": "worker queue   ",
            "inference_ms": "worker infer   ",
        }
        for name, label in labels.items():
            figures = data["latency"][name]
            text = "n/a" if figures is None else LatencySummary(**figures).describe()
            lines.append(f"{label}  {text}")
        return "\n".join(lines)


def run_simulation(
    table: AnswerTable,
    options: SimulationOptions,
    *,
    app: Celery,
    settings: ProducerSettings,
) -> SimulationSummary:
    """Play ``options.games`` games, ``options.concurrency`` at a time; summarise them.

    The first transient error (no guess in time, broker down) stops the run
    and is raised once the games in flight have ended.
    """
    rng = random.Random(options.seed)
    secrets = [rng.choice(table.nouns) for _ in range(options.games)]
    seeds = [rng.randrange(2**32) for _ in range(options.games)]
    stop = threading.Event()
    errors: list[TransientError] = []
    records: list[GameRecord] = []
    progress = tqdm(total=options.games, unit="game", file=sys.stderr, disable=not options.progress)

    def play(index: int) -> None:
        if stop.is_set():
            return
        player = SimulatedPlayer(
            table,
            secrets[index],
            noise=options.noise,
            free_text_rate=options.free_text_rate,
            rng=random.Random(seeds[index]),
        )
        metadata = {
            "source": "twentyq-simulate",
            "noise": options.noise,
            "free_text_rate": options.free_text_rate,
        }
        try:
            game = Game(metadata=metadata)
            records.append(play_simulated_game(player, game, app=app, settings=settings, stop=stop))
        except TransientError as error:
            stop.set()
            errors.append(error)
        progress.update(1)

    started_s = time.monotonic()
    with progress, ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
        try:
            list(pool.map(play, range(options.games)))
        except KeyboardInterrupt:
            stop.set()  # games in flight end after their current turn
            raise
    if errors:
        raise errors[0]
    return SimulationSummary(records=tuple(records), elapsed_s=time.monotonic() - started_s)
