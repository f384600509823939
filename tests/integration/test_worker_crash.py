"""At-least-once under crashes and shutdowns: no turn is lost, none is left unacknowledged."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from producer.client import GuessHandle, submit_turn
from producer.messages import TURNS_QUEUE, Turn
from tests.integration.conftest import BrokerUnderTest, drain
from tests.integration.test_pipeline import make_turn

pytestmark = pytest.mark.integration

BATCH_SLEEP_S = 3.0


def wait_for_predict_calls(call_log: Path, count: int, timeout_s: float = 30.0) -> None:
    """Block until the stub model logged ``count`` predict calls (the warm-up is the first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if call_log.exists() and len(call_log.read_text().split()) >= count:
            return
        time.sleep(0.02)
    raise TimeoutError(f"the model was not called {count} times within {timeout_s:.0f} s")


@dataclass(frozen=True)
class SlowBatch:
    """Four turns for a stub model that sleeps in every predict and logs each call."""

    call_log: Path
    model: dict[str, Any]
    turns: list[Turn]

    def submit_and_wait_until_in_flight(self, broker: BrokerUnderTest) -> list[GuessHandle]:
        """Send the turns; return once their batch is inside ``predict``."""
        app = broker.client_app()
        handles = [submit_turn(turn, app=app) for turn in self.turns]
        wait_for_predict_calls(self.call_log, 2)
        return handles


@pytest.fixture()
def slow_batch(tmp_path: Path) -> SlowBatch:
    call_log = tmp_path / "calls.log"
    return SlowBatch(
        call_log=call_log,
        model={"sleep_s": BATCH_SLEEP_S, "call_log": str(call_log)},
        turns=[make_turn(game, 1) for game in range(4)],
    )


def test_a_worker_killed_mid_batch_loses_no_turn(
    broker: BrokerUnderTest, start_worker: Any, slow_batch: SlowBatch
) -> None:
    model, turns = slow_batch.model, slow_batch.turns
    # The shortest visibility timeout BrokerSettings allows: the kill's turns come back soon.
    quick_redelivery = {"TWENTYQ_VISIBILITY_TIMEOUT_S": "10"}
    with start_worker(model, quick_redelivery, batch_size="4", batch_window_ms="500") as first:
        handles = slow_batch.submit_and_wait_until_in_flight(broker)
        first.kill()
        killed_pid = first.process.pid
    assert not any(handle.result.ready() for handle in handles)
    with start_worker(model, quick_redelivery, batch_size="4", batch_window_ms="500"):
        guesses = [handle.get(timeout_s=90) for handle in handles]
    assert [guess.turn_id for guess in guesses] == [turn.turn_id for turn in turns]
    assert all(not guess.worker.endswith(f"/{killed_pid}") for guess in guesses)


def test_sigterm_finishes_the_batch_in_flight(
    broker: BrokerUnderTest, start_worker: Any, slow_batch: SlowBatch
) -> None:
    turns = slow_batch.turns
    with start_worker(slow_batch.model, batch_size="4", batch_window_ms="500") as worker:
        handles = slow_batch.submit_and_wait_until_in_flight(broker)
        exit_code = worker.terminate(timeout_s=60)
        assert exit_code == 0, worker.log()[-3000:]
    # Answered during the warm shutdown, and acknowledged: nothing comes back to the queue.
    assert [handle.result.ready() for handle in handles] == [True] * len(turns)
    assert [handle.get(timeout_s=1).turn_id for handle in handles] == [t.turn_id for t in turns]
    with broker.connection() as connection:
        assert drain(connection, TURNS_QUEUE, 1, timeout_s=3) == []


def pool_children(pid: int) -> list[int]:
    """Process ids of ``pid``'s children (the prefork pool)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def test_a_pool_process_killed_mid_batch_hands_its_turns_back_at_once(
    broker: BrokerUnderTest, start_worker: Any, slow_batch: SlowBatch
) -> None:
    turns = slow_batch.turns
    # The visibility timeout stays at 300 s: only the requeue on a lost pool process
    # can bring these turns back within the test's timeout.
    with start_worker(slow_batch.model, batch_size="4", batch_window_ms="500") as worker:
        handles = slow_batch.submit_and_wait_until_in_flight(broker)
        [child] = pool_children(worker.process.pid)
        os.kill(child, signal.SIGKILL)
        guesses = [handle.get(timeout_s=60) for handle in handles]
        assert worker.process.poll() is None
    assert [guess.turn_id for guess in guesses] == [turn.turn_id for turn in turns]
    assert all(not guess.worker.endswith(f"/{child}") for guess in guesses)


KILL_ROUNDS = 6
TURNS_PER_ROUND = 250


@pytest.mark.slow
def test_repeated_kills_under_load_lose_no_turn(broker: BrokerUnderTest, start_worker: Any) -> None:
    # Issue 21: one turn in 6,000 was lost when a worker holding turns was SIGKILLed. Here
    # every round kills the whole worker (pool included) while it holds turns it took,
    # then the next worker must answer every turn of every round: none may be missing.
    quick_redelivery = {"TWENTYQ_VISIBILITY_TIMEOUT_S": "10"}
    app = broker.client_app()
    handles: list[GuessHandle] = []
    killed = 0
    for round_number in range(KILL_ROUNDS):
        with start_worker(None, quick_redelivery, batch_size="16") as worker:
            turns = [make_turn(round_number * 1000 + game, 1) for game in range(TURNS_PER_ROUND)]
            handles += [submit_turn(turn, app=app) for turn in turns]
            deadline = time.monotonic() + 30
            while worker.metric('twentyq_worker_turns_total{outcome="answered"}') < 20:
                assert time.monotonic() < deadline, worker.log()[-2000:]
                time.sleep(0.01)
            worker.kill()
            killed += 1
    with start_worker(None, quick_redelivery, batch_size="16"):
        missing = []
        for handle in handles:
            try:
                handle.get(timeout_s=60)
            except Exception:  # counted, not raised: the test reports how many were lost
                missing.append(handle.turn_id)
    assert killed == KILL_ROUNDS
    assert missing == [], f"{len(missing)} of {len(handles)} turns lost across {killed} kills"
