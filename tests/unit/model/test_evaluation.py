"""Evaluation over simulated games, its targets, and the reference table."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model.engine import Engine
from model.evaluation import (
    EvaluationReport,
    ScenarioResult,
    evaluate,
    reference_frame,
)
from tests.unit.model.test_engine import random_table
from tests.unit.model.test_simulation import PHRASINGS, TEXT_TO_CLASS

RECORDS_DOC = Path(__file__).parents[3] / "docs" / "records.md"


def documented_columns() -> list[str]:
    """The export record columns, in order, from the first cell of each table row."""
    columns: list[str] = []
    for line in RECORDS_DOC.read_text(encoding="utf-8").splitlines():
        cells = line.split("|")
        if len(cells) > 2 and cells[1].strip().startswith("`"):
            columns += re.findall(r"`([a-z_]+)`", cells[1])
    return columns


def interpret(texts: list[str]) -> list[str]:
    return [TEXT_TO_CLASS[text] for text in texts]


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    table = random_table(60, 40, seed=21)
    return evaluate(
        Engine(table), table, seed=5, interpret=interpret, phrasings=PHRASINGS, progress=False
    )


def test_small_table_reaches_the_targets(report: EvaluationReport) -> None:
    assert set(report.scenarios) == {"noise_free", "noise_10", "free_text"}
    noise_free, noisy = report.scenarios["noise_free"], report.scenarios["noise_10"]
    assert noise_free.games == noisy.games == 60
    assert noise_free.win_rate >= 0.97
    assert noisy.win_rate >= 0.8
    assert report.scenarios["free_text"].win_rate >= 0.97
    assert report.passed
    assert [check.passed for check in report.targets()] == [True, True, True]


def test_counts_add_up(report: EvaluationReport) -> None:
    for name, result in report.scenarios.items():
        games = report.games[name]
        assert result.wins + result.give_ups == result.games == len(games)
        assert result.wins == sum(game.won for game in games)
        assert result.questions_to_win_median is not None
        assert result.questions_to_win_p90 is not None
        assert result.questions_to_win_median <= result.questions_to_win_p90 <= 20


def test_report_is_json_ready(report: EvaluationReport) -> None:
    data = json.loads(json.dumps(report.to_dict()))
    assert data["scenarios"]["noise_10"]["games"] == 60
    assert {check["name"] for check in data["targets"]} == {
        "noise_free win rate",
        "noise_free median questions to win",
        "noise_10 win rate",
    }
    assert data["passed"] is True


def scenario(name: str, wins: int, median: float | None) -> ScenarioResult:
    return ScenarioResult(name, 0.0, 100, wins, 100 - wins, 0, median, median, median)


def test_targets_fail_when_missed() -> None:
    report = EvaluationReport(
        0,
        {"noise_free": scenario("noise_free", 96, 9.0), "noise_10": scenario("noise_10", 80, 14.0)},
        {},
    )
    assert [check.passed for check in report.targets()] == [False, True, True]
    slow = EvaluationReport(
        0,
        {"noise_free": scenario("noise_free", 99, 13.0), "noise_10": scenario("noise_10", 79, 14)},
        {},
    )
    assert [check.passed for check in slow.targets()] == [True, False, False]
    assert not slow.passed
    assert not EvaluationReport(0, {}, {}).passed


def test_n_games_draws_that_many_games_and_no_free_text_without_interpreter() -> None:
    table = random_table(30, 25, seed=22)
    result = evaluate(Engine(table), table, n_games=7, seed=1, progress=False)
    assert set(result.scenarios) == {"noise_free", "noise_10"}
    assert result.scenarios["noise_free"].games == 7
    with pytest.raises(ValueError, match="n_games"):
        evaluate(Engine(table), table, n_games=0, progress=False)


def test_same_seed_same_report() -> None:
    table = random_table(30, 25, seed=23)
    first = evaluate(Engine(table), table, seed=3, progress=False)
    again = evaluate(Engine(table), table, seed=3, progress=False)
    assert first.to_dict() == again.to_dict()


def test_reference_frame_has_exactly_the_documented_columns(report: EvaluationReport) -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    frame = reference_frame(
        report, model_name="twenty-questions", model_version="3", run_id="abc", event_time=when
    )
    assert list(frame.columns) == documented_columns()
    assert len(documented_columns()) == 23
    guesses, outcomes = frame[frame.kind == "guess"], frame[frame.kind == "outcome"]
    all_games = [game for games in report.games.values() for game in games]
    assert len(outcomes) == len(all_games) == 180
    assert len(guesses) == sum(len(game.moves) for game in all_games)
    assert frame.event_id.is_unique
    assert (frame.model_version == "3").all()
    assert (frame.event_time == pd.Timestamp(when)).all()
    assert outcomes.won.sum() == sum(game.won for game in all_games)
    assert outcomes.turns.tolist() == [len(game.moves) for game in all_games]
    assert guesses.queue_ms.isna().all()
    assert guesses.won.isna().all()
    assert outcomes.turn.isna().all()


def test_reference_guess_rows_describe_each_turn(report: EvaluationReport) -> None:
    frame = reference_frame(report)
    guesses = frame[frame.kind == "guess"]
    asks = guesses[guesses.action == "ask"]
    assert asks.question_id.notna().all()
    assert guesses[guesses.action != "ask"].question_id.isna().all()
    first_turns = guesses[guesses.turn == 0]
    assert first_turns.answered_question_id.isna().all()
    assert (first_turns.questions_asked == 0).all()
    later = guesses[guesses.questions_asked > 0]
    assert later.answered_answer.isin(["yes", "probably", "unknown", "probably_not", "no"]).all()
    free_text = later[later.game_id.str.startswith("eval-free_text-")]
    assert free_text.answered_text.map(TEXT_TO_CLASS).tolist() == free_text.answered_answer.tolist()
    assert later[~later.game_id.str.startswith("eval-free_text-")].answered_text.isna().all()
    top = json.loads(guesses.guesses_json.iloc[0])[0]
    assert (top["noun"], top["probability"]) == (
        guesses.top_noun.iloc[0],
        pytest.approx(guesses.top_probability.iloc[0]),
    )


def test_reference_frame_writes_to_parquet(report: EvaluationReport, tmp_path: Path) -> None:
    path = tmp_path / "reference.parquet"
    reference_frame(report, model_version="1").to_parquet(path)
    back = pd.read_parquet(path)
    assert list(back.columns) == documented_columns()
    assert len(back) == len(reference_frame(report))
    # The sidecar's export files use these Arrow types; the drift job reads both alike.
    schema = pq.read_schema(path)
    assert schema.field("answered_text").type == pa.string()  # null in most rows
    assert schema.field("queue_ms").type == pa.float64()  # null in every row
    assert schema.field("turn").type == pa.int64()
    assert schema.field("won").type == pa.bool_()
    assert schema.field("event_time").type == pa.timestamp("us", tz="UTC")
