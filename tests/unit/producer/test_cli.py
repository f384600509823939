"""`twentyq play` / `twentyq simulate`: options, answer keys, errors a user sees."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from producer import cli as producer_cli
from producer.cli import ANSWER_KEYS, PlayerQuit, TerminalGame, parse_simulate_args, simulate_main
from producer.errors import ConfigurationError
from producer.messages import EXPORT_QUEUE, Answer, Question, Turn
from producer.settings import ProducerSettings, load_producer_settings
from tests.unit.producer.factories import UNIT_SETTINGS, ScriptedHandle, ScriptedModel


def test_simulate_defaults() -> None:
    args = parse_simulate_args([])
    assert (args.games, args.concurrency, args.noise, args.free_text_rate, args.json) == (
        20,
        4,
        0.0,
        0.0,
        False,
    )


def test_simulate_options() -> None:
    args = parse_simulate_args(
        [
            "--games",
            "5",
            "--json",
            "--concurrency",
            "2",
            "--noise",
            "0.1",
            "--free-text-rate",
            "0.3",
            "--knowledge-base",
            "kb.csv",
            "--seed",
            "4",
            "--timeout",
            "9",
        ]
    )
    assert (args.games, args.concurrency, args.noise, args.free_text_rate) == (5, 2, 0.1, 0.3)
    assert (args.knowledge_base, args.seed, args.timeout, args.json) == (
        Path("kb.csv"),
        4,
        9.0,
        True,
    )


@pytest.mark.parametrize(
    "argv", [["--noise", "1.5"], ["--games", "0"], ["--free-text-rate", "-0.1"], ["--what"]]
)
def test_simulate_refuses_bad_options(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_simulate_args(argv)
    assert caught.value.code == 2
    assert "twentyq simulate" in capsys.readouterr().err


def test_simulate_without_a_table_says_how_to_give_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = simulate_main(["--knowledge-base", str(tmp_path / "missing.csv")])
    assert code == 1
    assert "--knowledge-base PATH" in capsys.readouterr().err


def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODUCER_GUESS_TIMEOUT_S", "soon")
    with pytest.raises(ConfigurationError, match="PRODUCER_GUESS_TIMEOUT_S"):
        load_producer_settings()


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODUCER_SEND_MAX_RETRIES", "7")
    settings = load_producer_settings()
    assert settings.send_max_retries == 7
    assert settings.retry_policy()["max_retries"] == 7


class _Script:
    """Feeds a TerminalGame's prompts from a list of replies."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = iter(replies)
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        try:
            return next(self.replies)
        except StopIteration:
            raise EOFError from None


@pytest.fixture()
def terminal(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    def build(replies: list[str]) -> TerminalGame:
        game = TerminalGame(app=None, settings=ProducerSettings(), read_line=_Script(replies))  # type: ignore[arg-type]
        game.game.pending_question = Question(id="is_alive", text="Is it alive?")
        return game

    yield build


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("y", Answer.YES),
        ("P", Answer.PROBABLY),
        ("u", Answer.UNKNOWN),
        ("pn", Answer.PROBABLY_NOT),
        ("no", Answer.NO),
        ("probably not", Answer.PROBABLY_NOT),
    ],
)
def test_answer_keys(terminal: Any, reply: str, expected: Answer) -> None:
    game = terminal([reply])
    game._answer_question()
    entry = game.game.history[0]
    assert (entry.question_id, entry.answer, entry.answer_text) == ("is_alive", expected, None)


def test_anything_else_is_sent_as_free_text(terminal: Any) -> None:
    game = terminal(["", "well, sort of"])
    game._answer_question()
    entry = game.game.history[0]
    assert (entry.answer, entry.answer_text) == (None, "well, sort of")


def test_q_and_end_of_input_quit(terminal: Any) -> None:
    with pytest.raises(PlayerQuit):
        terminal(["q"])._answer_question()
    with pytest.raises(PlayerQuit):
        terminal([])._answer_question()


def test_yes_no_insists_on_y_or_n(terminal: Any, capsys: pytest.CaptureFixture[str]) -> None:
    game = terminal(["maybe", "n"])
    assert game._ask_yes_no("Is it a cat?") is False
    assert "Please answer y or n." in capsys.readouterr().out


def test_every_answer_class_has_a_key() -> None:
    assert set(ANSWER_KEYS.values()) == set(Answer)


@pytest.fixture()
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedModel:
    model = ScriptedModel(("is_alive", "is_big"), ("cat", "dog"))

    def submit(turn: Turn, **kwargs: Any) -> ScriptedHandle:
        return ScriptedHandle(turn, model.answer(turn))

    monkeypatch.setattr(producer_cli, "submit_turn", submit)
    return model


def _play(memory_app: Celery, replies: list[str]) -> tuple[int, TerminalGame]:
    game = TerminalGame(app=memory_app, settings=UNIT_SETTINGS, read_line=_Script(replies))
    return game.play(), game


def _reported(memory_app: Celery) -> dict[str, Any]:
    with memory_app.connection_for_read() as connection:
        message = connection.default_channel.basic_get(EXPORT_QUEUE)
    assert message is not None, "no outcome was reported"
    body: dict[str, Any] = json.loads(message.body)
    return body


def test_a_whole_game_in_the_terminal(
    memory_app: Celery, scripted: ScriptedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    code, game = _play(memory_app, ["y", "sort of", "n", "y"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Q1. Is it is_alive?" in out and "Q2. Is it is_big?" in out
    assert "(thinking of: cat 40%, dog 30%)" in out
    assert "Is it a cat?" in scripted_prompts(game) and "Is it a dog?" in scripted_prompts(game)
    assert "I win! It took me 4 turns." in out
    outcome = _reported(memory_app)
    assert (outcome["won"], outcome["turns"], outcome["revealed_noun"]) == (True, 4, "dog")
    assert scripted.turns[-1].history[1].answer_text == "sort of"


def test_a_lost_game_asks_what_it_was(
    memory_app: Celery, scripted: ScriptedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = _play(memory_app, ["n", "n", "n", "n", "an owl"])
    assert code == 0
    assert "I give up!" in capsys.readouterr().out
    outcome = _reported(memory_app)
    assert (outcome["won"], outcome["revealed_noun"]) == (False, "an owl")


def test_quitting_midway_exits_130_without_an_outcome(
    memory_app: Celery, scripted: ScriptedModel
) -> None:
    code, _ = _play(memory_app, ["y", "q"])
    assert code == 130
    with memory_app.connection_for_read() as connection:
        assert connection.default_channel.basic_get(EXPORT_QUEUE) is None


def scripted_prompts(game: TerminalGame) -> str:
    """Every prompt the game showed, joined."""
    script = game.read_line
    assert isinstance(script, _Script)
    return "\n".join(script.prompts)


def test_a_bad_broker_url_is_named_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    table = tmp_path / "table.csv"
    table.write_text("noun,kind,q\ncat,animal,1\n")
    monkeypatch.setenv("TWENTYQ_BROKER_URL", "amqp://rabbit")
    assert simulate_main(["--knowledge-base", str(table)]) == 1
    assert "TWENTYQ_BROKER_URL" in capsys.readouterr().err
