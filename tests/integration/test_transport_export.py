"""The export path on every broker: events published with ``publish_json`` come out intact.

The worker and the producer publish to ``twentyq.export`` with
:func:`producer.broker.publish_json`; the sidecar consumes it with kombu. These
tests run that round trip on Redis, on SQS (moto) and on Pub/Sub (the
emulator), and then run the sidecar's own consumer on each broker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitoring.sink import open_sink
from producer.broker import publish_json
from producer.messages import (
    EXPORT_QUEUE,
    GameOutcome,
    Guess,
    ModelRef,
    Question,
    RankedNoun,
    Timing,
    export_event_adapter,
)
from tests.integration.conftest import BrokerUnderTest, drain
from tests.support.services import free_port
from tests.support.worker_process import REPOSITORY_ROOT

pytestmark = pytest.mark.integration


def make_guess(game_id: str, turn: int) -> Guess:
    """A Guess event as a worker would publish it."""
    now = datetime.now(UTC)
    return Guess(
        turn_id=uuid.uuid4(),
        game_id=game_id,
        turn=turn,
        action="ask",
        question=Question(id="is_alive", text="Is it alive?"),
        guesses=[RankedNoun(noun="cat", probability=0.4), RankedNoun(noun="dog", probability=0.3)],
        model=ModelRef(name="twentyq", version="3", run_id="abc123"),
        timing=Timing(sent_at=now, started_at=now, finished_at=now, queue_ms=1.5, inference_ms=2.5),
        worker="host:1",
        metadata={"player": "p1", "nested": {"ok": True}},
    )


def test_export_events_round_trip_unchanged(broker: BrokerUnderTest) -> None:
    """A Guess and a GameOutcome published to twentyq.export decode to the same events."""
    guess = make_guess("game-1", 3)
    outcome = GameOutcome(game_id="game-1", revealed_noun="cat", won=True, turns=4)
    with broker.connection() as connection:
        publish_json(connection, EXPORT_QUEUE, guess.model_dump(mode="json"))
        publish_json(connection, EXPORT_QUEUE, outcome.model_dump(mode="json"))
        bodies = drain(connection, EXPORT_QUEUE, 2)
    events = [export_event_adapter.validate_python(body) for body in bodies]
    assert sorted(events, key=lambda event: event.kind) == [guess, outcome]


def test_sidecar_exports_every_event(broker: BrokerUnderTest, tmp_path: Path) -> None:
    """``twentyq export`` on this broker writes every event, then stops cleanly on SIGTERM."""
    published = [make_guess(f"game-{index}", index) for index in range(12)]
    with broker.connection() as connection:
        for guess in published:
            publish_json(connection, EXPORT_QUEUE, guess.model_dump(mode="json"))
    sink_url = f"file://{tmp_path / 'exports'}"
    env = {
        **os.environ,
        **broker.env,
        "PYTHONPATH": str(REPOSITORY_ROOT),
        "MONITORING_SINK_URL": sink_url,
        "MONITORING_BATCH_SIZE": "5",
        "MONITORING_MAX_BATCH_AGE_S": "1",
        "MONITORING_POLL_INTERVAL_S": "0.5",
        "MONITORING_METRICS_PORT": str(free_port()),
    }
    sink = open_sink(sink_url)
    with (tmp_path / "sidecar.log").open("wb") as log:
        sidecar = subprocess.Popen(
            [sys.executable, "-m", "twentyq.cli", "export"],
            cwd=REPOSITORY_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _exported_count(sink) < len(published):
            time.sleep(0.5)
    finally:
        sidecar.send_signal(signal.SIGTERM)
        exit_code = sidecar.wait(timeout=60)
    log_text = (tmp_path / "sidecar.log").read_text(errors="replace")
    records = sink.read_records()
    assert sorted(records["event_id"]) == sorted(str(g.turn_id) for g in published), log_text
    assert exit_code == 0, log_text


def _exported_count(sink: Any) -> int:
    try:
        return len(sink.read_records())
    except FileNotFoundError:
        return 0
