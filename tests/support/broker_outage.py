"""Kill a private Redis under a running worker and time the recovery.

Used by tests/integration/test_broker_faults.py, and run on its own for the
figures in docs/operations.md ("Broker faults")::

    python -m tests.support.broker_outage 7 20 150
    python -m tests.support.broker_outage 7 20 --setting BROKER_RECONNECT_INTERVAL_MAX_S=30
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from producer.broker import BrokerSettings
from producer.client import create_producer_app, submit_turn
from producer.messages import Answer, HistoryEntry, Turn
from tests.support.registry import register_stub_model
from tests.support.services import free_port, redis_server_binary, wait_for_port
from tests.support.stub_model import QUESTIONS
from tests.support.worker_process import WorkerProcess, running_worker


@dataclass
class RedisServer:
    """A private redis-server that can be killed and started again on the same port."""

    workdir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL a worker is configured with."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> float:
        """Start the server; return the wall-clock time it accepts connections."""
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return time.time()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


def log_times(worker: WorkerProcess, text: str) -> list[float]:
    """Wall-clock times of the worker's JSON log lines whose message contains ``text``."""
    times = []
    for line in worker.log().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if text in entry["message"]:
                times.append(datetime.fromisoformat(entry["time"]).timestamp())
    return times


def wait_for_count(worker: WorkerProcess, text: str, count: int, timeout_s: float) -> None:
    """Block until ``text`` is in ``count`` of the worker's JSON log lines."""
    deadline = time.monotonic() + timeout_s
    while len(log_times(worker, text)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{text!r} not logged {count} times:\n{worker.log()[-3000:]}")
        time.sleep(0.05)


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Recovery:
    """One outage: how long Redis was down, and how soon after it the worker served again."""

    outage_s: float
    reconnect_s: float
    answer_s: float
    outage_cpu_percent: float


def time_recovery(redis: RedisServer, worker: WorkerProcess, outage_s: float) -> Recovery:
    """Kill Redis for ``outage_s``, start it again, and time the first answer after that."""
    connected_before = len(log_times(worker, f"Connected to {redis.url}"))
    redis.kill()
    cpu_before_s = cpu_s(worker.process.pid)
    time.sleep(outage_s)
    cpu_percent = 100 * (cpu_s(worker.process.pid) - cpu_before_s) / outage_s
    back_at = redis.start()
    app = create_producer_app(BrokerSettings(broker_url=redis.url))
    try:
        turn = outage_turn()
        guess = submit_turn(turn, app=app).get(timeout_s=60)
        answer_s = time.time() - back_at
    finally:
        app.close()
    assert guess.turn_id == turn.turn_id
    wait_for_count(worker, f"Connected to {redis.url}", connected_before + 1, timeout_s=10)
    # Up to one port poll (50 ms) early: the worker may connect before the poll sees the port.
    reconnect_s = max(0.0, log_times(worker, f"Connected to {redis.url}")[-1] - back_at)
    return Recovery(outage_s, reconnect_s, answer_s, cpu_percent)


def outage_turn() -> Turn:
    """A valid one-question turn."""
    question_id = next(iter(QUESTIONS))
    return Turn(
        turn_id=uuid.uuid4(),
        game_id="outage",
        turn=1,
        history=[HistoryEntry(question_id=question_id, answer=Answer.YES)],
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one worker on a private Redis and time recovery from each outage given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outages_s", nargs="+", type=float, help="outage lengths, seconds")
    parser.add_argument("--setting", action="append", default=[], help="WORKER_ NAME=VALUE")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="twentyq-outage-") as workdir:
        root = Path(workdir)
        tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
        register_stub_model(tracking_uri, root / "pin.json")
        redis = RedisServer(root, free_port())
        redis.start()
        env = {
            "TWENTYQ_BROKER_URL": redis.url,
            "MLFLOW_TRACKING_URI": tracking_uri,
            "TWENTYQ_PIN_PATH": str(root / "pin.json"),
            "WORKER_METRICS_PORT": str(free_port()),
            "WORKER_LOG_FORMAT": "json",
        }
        for setting in args.setting:
            name, _, value = setting.partition("=")
            env[f"WORKER_{name.upper()}"] = value
        try:
            with running_worker(env, root / "worker.log") as worker:
                print("outage_s reconnect_s answer_s worker_cpu_during_outage_%")
                for outage_s in args.outages_s:
                    r = time_recovery(redis, worker, outage_s)
                    print(
                        f"{r.outage_s:8.0f} {r.reconnect_s:11.2f} {r.answer_s:8.2f} "
                        f"{r.outage_cpu_percent:8.2f}",
                        flush=True,
                    )
        finally:
            redis.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
