"""The turn pipeline end to end: producer -> queue -> worker subprocess -> backend + export."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from producer.client import GuessHandle, submit_turn
from producer.messages import EXPORT_QUEUE, Answer, HistoryEntry, Turn
from producer.pin import ModelPin, write_pin
from tests.integration.conftest import BrokerUnderTest, drain
from tests.support.stub_model import QUESTIONS
from tests.support.worker_process import REPOSITORY_ROOT

pytestmark = pytest.mark.integration

QUESTION_IDS = list(QUESTIONS)


def make_turn(game: int, turn: int) -> Turn:
    """A valid turn of game ``game`` with ``turn`` answered questions (free text on odd games)."""
    history = [
        HistoryEntry(question_id=question_id, answer=Answer.YES)
        if game % 2 == 0
        else HistoryEntry(question_id=question_id, answer_text="yes I think so")
        for question_id in QUESTION_IDS[:turn]
    ]
    return Turn(
        turn_id=uuid.uuid4(),
        game_id=f"game-{game}",
        turn=turn,
        history=history,
        metadata={"player": f"p{game}", "nested": {"turn": turn}},
    )


def submit_all(broker: BrokerUnderTest, turns: list[Turn]) -> list[GuessHandle]:
    app = broker.client_app()
    return [submit_turn(turn, app=app) for turn in turns]


def test_two_hundred_turns_in_two_hundred_guesses_out(
    broker: BrokerUnderTest, start_worker: Any, stub_registry: Any
) -> None:
    turns = [make_turn(game, turn) for game in range(40) for turn in range(5)]
    pin = stub_registry().pin
    with start_worker(batch_size="8", batch_window_ms="50") as worker:
        handles = submit_all(broker, turns)
        guesses = [handle.get(timeout_s=60) for handle in handles]
        answered = worker.wait_for_metric(
            'twentyq_worker_turns_total{outcome="answered"}', len(turns)
        )
        batches = worker.metric("twentyq_worker_batch_size_count")
    assert [guess.turn_id for guess in guesses] == [turn.turn_id for turn in turns]
    for turn, guess in zip(turns, guesses, strict=True):
        assert (guess.model.name, guess.model.version, guess.model.run_id) == (
            pin.name,
            pin.version,
            pin.run_id,
        )
        assert guess.game_id == turn.game_id and guess.turn == turn.turn
        assert guess.metadata == turn.metadata
        assert guess.answered == (turn.history[-1] if turn.history else None)
        if turn.history and turn.history[0].answer_text:
            assert len(guess.interpreted_answers) == len(turn.history)
    with broker.connection() as connection:
        events = drain(connection, EXPORT_QUEUE, len(turns))
    assert sorted(event["turn_id"] for event in events) == sorted(str(t.turn_id) for t in turns)
    assert answered == len(turns)
    # 200 turns sent at once are served in batches: fewer predict calls than turns.
    assert 0 < batches < len(turns)


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_on_redis_batches_are_held_and_acknowledged_in_bulk_and_nothing_stays_held(
    broker: BrokerUnderTest, start_worker: Any
) -> None:
    client = redis.Redis.from_url(broker.settings.broker_url)
    turns = [make_turn(game, 2) for game in range(64)]
    with start_worker(batch_size="16", batch_window_ms="20"):
        client.config_resetstat()
        guesses = [handle.get(timeout_s=60) for handle in submit_all(broker, turns)]
        deadline = time.monotonic() + 10
        while client.hlen("unacked") and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = client.info("commandstats")
    assert len(guesses) == len(turns)
    # Every turn acknowledged: nothing left held for a redelivery after the timeout.
    assert client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0
    acks = stats["cmdstat_zrem"]["calls"]
    assert 0 < acks < len(turns) / 2, f"{acks} ZREM calls for {len(turns)} turns: not in bulk"


def test_batch_size_one_serves_one_turn_per_predict(
    broker: BrokerUnderTest, start_worker: Any
) -> None:
    turns = [make_turn(game, 1) for game in range(10)]
    with start_worker(batch_size="1", batch_window_ms="0") as worker:
        guesses = [handle.get(timeout_s=30) for handle in submit_all(broker, turns)]
        batches = worker.wait_for_metric("twentyq_worker_batch_size_count", len(turns))
        batched_turns = worker.metric("twentyq_worker_batch_size_sum")
    assert [guess.turn_id for guess in guesses] == [turn.turn_id for turn in turns]
    assert batches == batched_turns == len(turns)


def test_a_turn_already_answered_is_not_recomputed(
    broker: BrokerUnderTest, start_worker: Any
) -> None:
    turn = make_turn(0, 2)
    with start_worker() as worker:
        first = submit_all(broker, [turn])[0].get(timeout_s=30)
        app = broker.client_app()
        app.send_task(
            "twentyq.play_turn", args=[turn.model_dump(mode="json")], task_id=str(turn.turn_id)
        )
        with broker.connection() as connection:
            events = drain(connection, EXPORT_QUEUE, 2)
        reused = worker.wait_for_metric('twentyq_worker_turns_total{outcome="already_answered"}', 1)
        recomputed = worker.metric('twentyq_worker_turns_total{outcome="answered"}')
    # The redelivered turn re-publishes the stored guess: same timing, not a new inference.
    assert [event["timing"] for event in events] == [first.model_dump(mode="json")["timing"]] * 2
    assert (recomputed, reused) == (1, 1)


def test_a_worker_with_an_unresolvable_pin_refuses_to_start(
    broker: BrokerUnderTest, stub_registry: Any, tmp_path: Path
) -> None:
    registration = stub_registry()
    pin_path = tmp_path / "model_version.json"
    write_pin(ModelPin(name=registration.pin.name, version="99"), pin_path)
    env = {
        **broker.env,
        "MLFLOW_TRACKING_URI": registration.tracking_uri,
        "TWENTYQ_PIN_PATH": str(pin_path),
        "PYTHONPATH": str(REPOSITORY_ROOT),
    }
    finished = subprocess.run(
        [sys.executable, "-m", "twentyq.cli", "worker"],
        cwd=REPOSITORY_ROOT,
        check=False,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 3
    message = finished.stderr
    assert "refuses to start" in message
    assert str(pin_path) in message
    assert f"{registration.pin.name} version 99" in message
    assert registration.tracking_uri in message
