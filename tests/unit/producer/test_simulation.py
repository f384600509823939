"""Simulated games against a scripted model: game loop, failures, stop on transient errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from producer import simulation
from producer.errors import GuessTimeoutError, TurnFailedError
from producer.game import Game
from producer.messages import EXPORT_QUEUE, Answer, Turn
from producer.player import SimulatedPlayer, load_answer_table
from producer.simulation import SimulationOptions, play_simulated_game, run_simulation
from tests.unit.producer.factories import UNIT_SETTINGS, ScriptedHandle, ScriptedModel

TABLE = "noun,kind,is_alive,is_big\ncat,animal,1.0,0.2\ndog,animal,1.0,0.5\ncar,vehicle,0.0,1.0\n"


@pytest.fixture()
def model(monkeypatch: pytest.MonkeyPatch) -> ScriptedModel:
    scripted = ScriptedModel(("is_alive", "is_big"), ("cat", "dog", "car"))

    def submit(turn: Turn, **kwargs: Any) -> ScriptedHandle:
        return ScriptedHandle(turn, scripted.answer(turn))

    monkeypatch.setattr(simulation, "submit_turn", submit)
    return scripted


def _table(tmp_path: Path) -> Any:
    path = tmp_path / "table.csv"
    path.write_text(TABLE)
    return load_answer_table(path)


def _outcomes(memory_app: Celery) -> list[dict[str, Any]]:
    bodies = []
    with memory_app.connection_for_read() as connection:
        while (message := connection.default_channel.basic_get(EXPORT_QUEUE)) is not None:
            bodies.append(json.loads(message.body))
    return bodies


def test_games_are_played_to_a_win_and_reported(
    tmp_path: Path, memory_app: Celery, model: ScriptedModel
) -> None:
    options = SimulationOptions(games=6, concurrency=3, seed=5, progress=False)
    summary = run_simulation(_table(tmp_path), options, app=memory_app, settings=UNIT_SETTINGS)
    data = summary.to_dict()
    assert (data["games"], data["wins"], data["failed_games"]) == (6, 6, 0)
    # Two questions, then cat, dog, car in turn: a game takes 3, 4 or 5 turns.
    by_noun = {"cat": 3, "dog": 4, "car": 5}
    assert sorted(r.turns for r in summary.records) == sorted(
        by_noun[r.secret_noun] for r in summary.records
    )
    assert data["latency"]["client_ms"]["p50_ms"] == 12.0
    assert data["latency"]["queue_ms"]["count"] == data["total_turns"]
    outcomes = _outcomes(memory_app)
    assert sorted(o["game_id"] for o in outcomes) == sorted(r.game_id for r in summary.records)
    assert all(o["won"] and o["metadata"]["source"] == "twentyq-simulate" for o in outcomes)


def test_players_answer_from_the_table(
    tmp_path: Path, memory_app: Celery, model: ScriptedModel
) -> None:
    options = SimulationOptions(games=1, seed=1, progress=False)
    summary = run_simulation(_table(tmp_path), options, app=memory_app, settings=UNIT_SETTINGS)
    secret = summary.records[0].secret_noun
    truth = {"cat": Answer.PROBABLY_NOT, "dog": Answer.UNKNOWN, "car": Answer.YES}
    last_turn = model.turns[-1]
    answers = {entry.question_id: entry.answer for entry in last_turn.history}
    assert answers["is_big"] is truth[secret]


def test_free_text_answers_carry_only_the_text(
    tmp_path: Path, memory_app: Celery, model: ScriptedModel
) -> None:
    options = SimulationOptions(games=2, free_text_rate=1.0, seed=2, progress=False)
    run_simulation(_table(tmp_path), options, app=memory_app, settings=UNIT_SETTINGS)
    entries = [entry for turn in model.turns for entry in turn.history]
    assert entries and all(e.answer is None and e.answer_text for e in entries)


def _failing_submit(error: Exception) -> Callable[..., ScriptedHandle]:
    def submit(turn: Turn, **kwargs: Any) -> ScriptedHandle:
        return ScriptedHandle(turn, None, error)

    return submit


def test_a_dead_lettered_turn_fails_that_game_only(
    tmp_path: Path, memory_app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(simulation, "submit_turn", _failing_submit(TurnFailedError("no")))
    options = SimulationOptions(games=3, progress=False)
    data = run_simulation(
        _table(tmp_path), options, app=memory_app, settings=UNIT_SETTINGS
    ).to_dict()
    assert (data["games"], data["failed_games"], data["wins"]) == (3, 3, 0)
    assert [o["won"] for o in _outcomes(memory_app)] == [False, False, False]


def test_a_timeout_stops_the_run_and_is_raised(
    tmp_path: Path, memory_app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = GuessTimeoutError("no guess for turn x within 1 s")
    monkeypatch.setattr(simulation, "submit_turn", _failing_submit(error))
    options = SimulationOptions(games=50, concurrency=1, progress=False)
    with pytest.raises(GuessTimeoutError, match="no guess"):
        run_simulation(_table(tmp_path), options, app=memory_app, settings=UNIT_SETTINGS)


def test_a_stopped_game_is_abandoned_unreported(
    tmp_path: Path, memory_app: Celery, model: ScriptedModel
) -> None:
    stop = threading.Event()
    stop.set()
    player = SimulatedPlayer(_table(tmp_path), "cat")
    record = play_simulated_game(player, Game(), app=memory_app, settings=UNIT_SETTINGS, stop=stop)
    assert (record.failed, record.turns, model.turns) == ("stopped", 0, [])
    assert _outcomes(memory_app) == []
