"""`twentyq simulate` and `twentyq play` as subprocesses against a worker serving the stub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from producer.messages import EXPORT_QUEUE, GameOutcome, export_event_adapter
from tests.integration.conftest import BrokerUnderTest, drain
from tests.support.worker_process import REPOSITORY_ROOT, WorkerProcess

pytestmark = pytest.mark.integration

StartWorker = Callable[..., AbstractContextManager[WorkerProcess]]

# The stub model's questions (tests/support/stub_model.py) and nouns, as a players' table.
STUB_TABLE = """noun,kind,is_alive,is_animal,is_big,has_legs,is_food
cat,animal,1.0,1.0,0.2,1.0,0.0
dog,animal,1.0,1.0,0.5,1.0,0.0
elephant,animal,1.0,1.0,1.0,1.0,0.0
apple,food,0.6,0.0,0.0,0.0,1.0
car,vehicle,0.0,0.0,1.0,0.0,0.0
"""


def _twentyq(
    env: dict[str, str], *args: str, stdin: str = "", timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "twentyq.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPOSITORY_ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(REPOSITORY_ROOT)},
        check=False,
    )


def test_simulate_json_reports_every_game(
    broker: BrokerUnderTest, start_worker: StartWorker, tmp_path: Path
) -> None:
    table = tmp_path / "table.csv"
    table.write_text(STUB_TABLE)
    argv = ["simulate", "--games", "6", "--concurrency", "3", "--json", "--seed", "3"]
    argv += ["--knowledge-base", str(table), "--free-text-rate", "0.5"]
    with start_worker():
        result = _twentyq(broker.env, *argv)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    # Every stub game asks its 5 questions, then guesses down its noun list: always won.
    assert (summary["games"], summary["wins"], summary["failed_games"]) == (6, 6, 0)
    assert summary["win_rate"] == 1.0
    assert 6 <= summary["mean_turns"] <= 10
    assert summary["total_turns"] == round(summary["mean_turns"] * 6)
    assert summary["throughput_turns_per_s"] > 0
    for name in ("client_ms", "queue_ms", "inference_ms"):
        figures = summary["latency"][name]
        assert figures["count"] == summary["total_turns"]
        assert 0 <= figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
    assert summary["latency"]["client_ms"]["p50_ms"] >= summary["latency"]["inference_ms"]["p50_ms"]
    with broker.connection() as connection:
        events = [
            export_event_adapter.validate_python(body)
            for body in drain(connection, EXPORT_QUEUE, summary["total_turns"] + 6)
        ]
    outcomes = [event for event in events if isinstance(event, GameOutcome)]
    assert len(outcomes) == 6 and all(outcome.won for outcome in outcomes)
    assert all(outcome.revealed_noun for outcome in outcomes)


def test_a_person_plays_through_stdin(broker: BrokerUnderTest, start_worker: StartWorker) -> None:
    # 5 questions (two in free text), then: not a cat, yes a dog.
    replies = "y\nyes it is\nmaybe half\npn\nn\nn\ny\n"
    with start_worker():
        result = _twentyq(broker.env, "play", stdin=replies)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Q1. Is it alive?" in out and "Q5. Can you eat it?" in out
    assert "Is it a cat? [y/n]" in out and "Is it a dog? [y/n]" in out
    assert "I win! It took me 7 turns." in out
    with broker.connection() as connection:
        events = drain(connection, EXPORT_QUEUE, 8)
    outcome = export_event_adapter.validate_python(events[-1])
    assert isinstance(outcome, GameOutcome)
    assert (outcome.won, outcome.turns, outcome.revealed_noun) == (True, 7, "dog")


def test_play_without_a_worker_says_so(broker: BrokerUnderTest) -> None:
    result = _twentyq(broker.env, "play", "--timeout", "1", stdin="y\n")
    assert result.returncode == 1
    assert "no worker may be running" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_with_a_down_broker_says_so(tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    table.write_text(STUB_TABLE)
    env = {"TWENTYQ_BROKER_URL": "redis://127.0.0.1:9/0", "PRODUCER_SEND_MAX_RETRIES": "1"}
    result = _twentyq(env, "simulate", "--games", "1", "--knowledge-base", str(table))
    assert result.returncode == 1
    assert "unreachable" in result.stderr and "TWENTYQ_BROKER_URL" in result.stderr
    assert "Traceback" not in result.stderr
