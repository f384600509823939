"""Simulated players: answer statistics, free text, batched reproducible games."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from model.engine import Decision, Engine, EngineConfig, EngineTurn
from model.likelihood import ANSWER_CLASSES
from model.simulation import Player, load_phrasings, play_games, sample_answers
from tests.unit.model.test_engine import random_table

PHRASINGS = {
    "yes": ["yes it is", "sure"],
    "probably": ["i think so"],
    "unknown": ["no idea", "hard to say"],
    "probably_not": ["doubt it"],
    "no": ["nope", "not at all"],
}
TEXT_TO_CLASS = {text: name for name, texts in PHRASINGS.items() for text in texts}


def class_shares(classes: np.ndarray) -> dict[str, float]:
    return {name: float(np.mean(classes == k)) for k, name in enumerate(ANSWER_CLASSES)}


def test_truthful_player_never_contradicts_a_certain_cell() -> None:
    shares = class_shares(sample_answers(np.ones(20_000), 0.0, np.random.default_rng(0)))
    assert shares["no"] == shares["probably_not"] == shares["unknown"] == 0.0
    assert shares["yes"] == pytest.approx(0.95, abs=0.01)


def test_flip_rate_flips_that_share_of_answers() -> None:
    rng = np.random.default_rng(1)
    shares = class_shares(sample_answers(np.ones(40_000), 0.10, rng))
    # a flipped "yes" is "no" and a flipped "probably" is "probably_not": 10% in all
    assert shares["no"] + shares["probably_not"] == pytest.approx(0.10, abs=0.01)
    assert shares["no"] == pytest.approx(0.095, abs=0.01)
    low = class_shares(sample_answers(np.zeros(40_000), 0.10, rng))
    assert low["yes"] + low["probably"] == pytest.approx(0.10, abs=0.01)


def test_answer_classes_follow_p_yes() -> None:
    rng = np.random.default_rng(2)
    assert class_shares(sample_answers(np.full(20_000, 0.5), 0.0, rng))["unknown"] == (
        pytest.approx(0.60, abs=0.02)
    )
    assert class_shares(sample_answers(np.full(20_000, 0.75), 0.0, rng))["probably"] == (
        pytest.approx(0.55, abs=0.02)
    )


def test_same_seed_same_games_other_seed_other_games() -> None:
    table = random_table(30, 25, seed=7)
    engine = Engine(table)
    player = Player("noisy", flip_rate=0.1)
    first = play_games(engine, table, table.nouns, player, seed=11)
    again = play_games(engine, table, table.nouns, player, seed=11)
    other = play_games(engine, table, table.nouns, player, seed=12)
    assert [game.moves for game in first] == [game.moves for game in again]
    assert [game.moves for game in first] != [game.moves for game in other]


def test_games_end_with_a_win_or_a_give_up_within_the_rules() -> None:
    table = random_table(40, 30, seed=8)
    games = play_games(Engine(table), table, table.nouns, Player("truthful"), seed=0)
    assert all(game.finished for game in games)
    for game in games:
        assert game.turns_used <= 20
        last = game.moves[-1]
        if game.won:
            assert (last.action, last.guesses[0][0]) == ("guess", game.secret)
        else:
            assert last.action == "give_up"
        assert [move.turn for move in game.moves] == list(range(len(game.moves)))
    assert sum(game.won for game in games) >= 38


class CountingEngine(Engine):
    """An engine that records the size of every batch it decides."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.batch_sizes: list[int] = []

    def decide(self, turns: Sequence[EngineTurn]) -> list[Decision]:
        self.batch_sizes.append(len(turns))
        return super().decide(turns)


def test_all_games_advance_together_in_one_batch_per_step() -> None:
    table = random_table(25, 30, seed=9)
    engine = CountingEngine(table)
    games = play_games(engine, table, table.nouns, Player("truthful"), seed=0)
    assert engine.batch_sizes[0] == 25
    assert engine.batch_sizes == sorted(engine.batch_sizes, reverse=True)
    assert len(engine.batch_sizes) == max(len(game.moves) for game in games)


def test_free_text_player_types_phrasings_and_the_interpreter_reads_them() -> None:
    table = random_table(20, 25, seed=10)
    calls: list[list[str]] = []

    def interpret(texts: list[str]) -> list[str]:
        calls.append(texts)
        return [TEXT_TO_CLASS[text] for text in texts]

    player = Player("free_text", phrasings=PHRASINGS, interpret=interpret)
    games = play_games(Engine(table), table, table.nouns, player, seed=3)
    assert calls
    assert len(calls[0]) == 20  # one interpret call per step for all games
    answered = [move.answered for game in games for move in game.moves if move.answered]
    assert answered
    for _question_id, answer, text in answered:
        assert text is not None
        assert TEXT_TO_CLASS[text] == answer
    assert sum(game.won for game in games) >= 18


def test_interpreter_mistakes_reach_the_engine() -> None:
    table = random_table(20, 25, seed=10)
    player = Player(
        "free_text", phrasings=PHRASINGS, interpret=lambda texts: ["unknown"] * len(texts)
    )
    games = play_games(Engine(table), table, table.nouns, player, seed=3)
    answers = {move.answered[1] for game in games for move in game.moves if move.answered}
    assert answers == {"unknown"}
    reader = Player(
        "free_text",
        phrasings=PHRASINGS,
        interpret=lambda texts: [TEXT_TO_CLASS[text] for text in texts],
    )
    read_well = play_games(Engine(table), table, table.nouns, reader, seed=3)
    # "unknown" to everything tells the engine little: its games take longer
    assert sum(g.turns_used for g in games) > sum(g.turns_used for g in read_well) + 20


def test_interpreter_returning_nonsense_is_an_error() -> None:
    table = random_table(5, 10, seed=1)
    player = Player("free_text", phrasings=PHRASINGS, interpret=lambda texts: ["maybe"])
    with pytest.raises(ValueError, match="interpret returned"):
        play_games(Engine(table), table, table.nouns, player, seed=0)


def test_player_needs_phrasings_for_every_class_and_an_interpreter() -> None:
    with pytest.raises(ValueError, match="both"):
        Player("free_text", phrasings=PHRASINGS)
    with pytest.raises(ValueError, match="probably"):
        Player("free_text", phrasings={"yes": ["y"], "no": ["n"]}, interpret=lambda t: t)
    with pytest.raises(ValueError, match="flip_rate"):
        Player("bad", flip_rate=1.5)


def test_load_phrasings_reads_text_answer_rows(tmp_path: Path) -> None:
    path = tmp_path / "phrasings.csv"
    path.write_text('text,answer\nyes it is,yes\n"nah, no",no\nwhatever,maybe\n', encoding="utf-8")
    phrasings = load_phrasings(path)
    assert phrasings is not None
    assert phrasings["yes"] == ["yes it is"]
    assert phrasings["no"] == ["nah, no"]
    assert phrasings["unknown"] == []
    assert load_phrasings(tmp_path / "missing.csv") is None


def test_engine_config_threshold_changes_game_length() -> None:
    table = random_table(40, 30, seed=12)
    eager = play_games(
        Engine(table, EngineConfig(guess_threshold=0.3)), table, table.nouns, Player("t"), seed=0
    )
    careful = play_games(
        Engine(table, EngineConfig(guess_threshold=0.99)), table, table.nouns, Player("t"), seed=0
    )
    assert sum(g.questions_asked for g in eager) < sum(g.questions_asked for g in careful)
