"""The decide benchmark's turns look like production's mid-game turns."""

from __future__ import annotations

from model.benchmark import sample_turns, time_decide
from model.engine import Engine
from tests.unit.model.test_engine import random_table


def test_sampled_turns_are_valid_mid_game_states() -> None:
    table = random_table(30, 25, seed=1)
    engine = Engine(table)
    turns = sample_turns(table, 50, seed=0)
    assert len(turns) == 50
    assert all(engine.validate(turn) is None for turn in turns)
    assert max(len(turn.answers) for turn in turns) <= 19
    assert len({len(turn.answers) for turn in turns}) > 5
    assert sample_turns(table, 50, seed=0) == turns


def test_time_decide_reports_median_and_p95() -> None:
    table = random_table(30, 25, seed=2)
    figures = time_decide(Engine(table), [sample_turns(table, 8, seed=0)], repeats=5)
    assert 0.0 < figures["median_ms"] <= figures["p95_ms"]
