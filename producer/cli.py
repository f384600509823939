"""``twentyq play`` (a human in the terminal) and ``twentyq simulate`` (simulated players)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from celery import Celery

from producer.broker import BrokerSettings
from producer.client import create_producer_app, submit_turn
from producer.errors import TwentyQError
from producer.game import Game
from producer.messages import Answer, Guess
from producer.outcome import report_outcome
from producer.player import load_answer_table
from producer.settings import ProducerSettings, load_broker_settings, load_producer_settings
from producer.simulation import SimulationOptions, run_simulation

ANSWER_KEYS: dict[str, Answer] = {
    "y": Answer.YES,
    "yes": Answer.YES,
    "p": Answer.PROBABLY,
    "probably": Answer.PROBABLY,
    "u": Answer.UNKNOWN,
    "?": Answer.UNKNOWN,
    "unknown": Answer.UNKNOWN,
    "pn": Answer.PROBABLY_NOT,
    "probably not": Answer.PROBABLY_NOT,
    "probably_not": Answer.PROBABLY_NOT,
    "n": Answer.NO,
    "no": Answer.NO,
}
QUIT_KEYS = {"q", "quit", "exit"}
ANSWER_HELP = "y=yes p=probably u=unknown pn=probably not n=no, or type any answer; q quits"


def _quiet_celery_logs() -> None:
    # Celery logs each reconnect attempt at ERROR; the CLI reports one clear error instead.
    for name in ("celery", "kombu"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not a rate: give a number from 0 to 1")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def parse_play_args(argv: Sequence[str]) -> argparse.Namespace:
    """Options of ``twentyq play``."""
    parser = argparse.ArgumentParser(
        prog="twentyq play",
        description="Think of a thing; the model asks questions through the queue and guesses.",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait for each guess"
    )
    return parser.parse_args(list(argv))


def parse_simulate_args(argv: Sequence[str]) -> argparse.Namespace:
    """Options of ``twentyq simulate``."""
    parser = argparse.ArgumentParser(
        prog="twentyq simulate",
        description="Simulated players play games through the queue; prints a summary.",
    )
    parser.add_argument("--games", type=_positive_int, default=20, help="games to play (20)")
    parser.add_argument(
        "--concurrency", type=_positive_int, default=4, help="games played at once (4)"
    )
    parser.add_argument("--noise", type=_rate, default=0.0, help="share of flipped answers (0)")
    parser.add_argument(
        "--free-text-rate", type=_rate, default=0.0, help="share of answers typed as text (0)"
    )
    parser.add_argument(
        "--knowledge-base", type=Path, default=None, help="table the players answer from"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible games")
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait per guess")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(list(argv))


def _settings_with_timeout(timeout_s: float | None) -> ProducerSettings:
    if timeout_s is None:
        return load_producer_settings()
    return load_producer_settings(guess_timeout_s=timeout_s)


def _announced_broker(command: str) -> BrokerSettings:
    """The broker settings, after one line on stderr naming the broker (the model is the
    one the workers on it pinned; every guess names its version)."""
    broker = load_broker_settings()
    print(f"twentyq {command}: {broker.describe()} · model: the workers' pin", file=sys.stderr)
    return broker


def simulate_main(argv: Sequence[str]) -> int:
    """Run ``twentyq simulate``; 0 on success, 1 when the games could not be played."""
    args = parse_simulate_args(argv)
    _quiet_celery_logs()
    try:
        settings = _settings_with_timeout(args.timeout)
        table = load_answer_table(args.knowledge_base or settings.knowledge_base_path)
        app = create_producer_app(_announced_broker("simulate"), settings)
        options = SimulationOptions(
            games=args.games,
            concurrency=args.concurrency,
            noise=args.noise,
            free_text_rate=args.free_text_rate,
            seed=args.seed,
            progress=not args.no_progress,
        )
        summary = run_simulation(table, options, app=app, settings=settings)
    except TwentyQError as error:
        print(f"twentyq simulate: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("twentyq simulate: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(summary.to_dict()) if args.json else summary.describe())
    return 0


def play_main(argv: Sequence[str]) -> int:
    """Run ``twentyq play``: 0 when the game ended, 1 on an error, 130 when the player quit."""
    args = parse_play_args(argv)
    _quiet_celery_logs()
    try:
        settings = _settings_with_timeout(args.timeout)
        app = create_producer_app(_announced_broker("play"), settings)
        return TerminalGame(app=app, settings=settings).play()
    except TwentyQError as error:
        print(f"\ntwentyq play: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nBye: the game was not finished.", file=sys.stderr)
        return 130


def _ranked(guess: Guess) -> str:
    return ", ".join(f"{ranked.noun} {ranked.probability:.0%}" for ranked in guess.guesses[:3])


class PlayerQuit(Exception):
    """Raised when the player quits (q, end of input)."""


class TerminalGame:
    """One game between a person at the terminal and the workers."""

    def __init__(
        self,
        *,
        app: Celery,
        settings: ProducerSettings,
        read_line: Callable[[str], str] = input,
        out: TextIO | None = None,
    ) -> None:
        self.app, self.settings = app, settings
        self.read_line, self.out = read_line, out or sys.stdout
        self.game = Game(metadata={"source": "twentyq-play"})

    def play(self) -> int:
        """Play to the end, report the outcome, return the exit code."""
        self._say("Think of a thing: an animal, a food, a tool... I will ask questions.")
        self._say(f"Answers: {ANSWER_HELP}")
        try:
            while not self.game.over:
                guess = submit_turn(self.game.next_turn(), app=self.app, settings=self.settings)
                self._take(guess.get(self.settings.guess_timeout_s))
        except PlayerQuit:
            self._say("\nBye: the game was not finished.")
            return 130
        self._finish()
        return 0

    def _take(self, guess: Guess) -> None:
        self.game.apply(guess)
        if self.game.pending_question is not None:
            number = self.game.questions_asked + 1
            if guess.guesses and number > 1:
                self._say(f"\n(thinking of: {_ranked(guess)})")
            self._say(f"\nQ{number}. {self.game.pending_question.text}")
            self._answer_question()
        elif self.game.pending_noun is not None:
            self._say(f"\nMy best guesses: {_ranked(guess)}")
            self.game.confirm_guess(self._ask_yes_no(f"Is it a {self.game.pending_noun}?"))
            if not self.game.won and not self.game.over:
                self._say("Hmm. Let me think again.")
        else:
            self._say("\nI give up!")

    def _answer_question(self) -> None:
        while True:
            reply = self._read("> ")
            key = reply.lower()
            if key in ANSWER_KEYS:
                self.game.answer(ANSWER_KEYS[key])
                return
            if reply:
                self.game.answer(text=reply[:200])
                return
            self._say(ANSWER_HELP)

    def _ask_yes_no(self, question: str) -> bool:
        while True:
            reply = self._read(f"{question} [y/n] ").lower()
            if reply in {"y", "yes"}:
                return True
            if reply in {"n", "no"}:
                return False
            self._say("Please answer y or n.")

    def _finish(self) -> None:
        revealed = None
        if self.game.won:
            self._say(f"I win! It took me {self.game.turns} turns.")
        else:
            self._say("You win! What was it?")
            try:
                revealed = self._read("It was: ").strip()[:64] or None
            except PlayerQuit:
                revealed = None
        report_outcome(self.game, revealed_noun=revealed, app=self.app, settings=self.settings)
        self._say("Thanks for playing.")

    def _read(self, prompt: str) -> str:
        try:
            reply = self.read_line(prompt).strip()
        except EOFError as error:
            raise PlayerQuit from error
        if reply.lower() in QUIT_KEYS:
            raise PlayerQuit
        return reply

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)
