"""Run ``twentyq worker`` as a subprocess for integration tests: start, wait, stop, kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

READY_MARK = " ready."
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class WorkerProcess:
    """A running worker subprocess (its own process group) and its log file."""

    process: subprocess.Popen[bytes]
    log_path: Path
    env: Mapping[str, str]

    def metric(self, sample: str) -> float:
        """One sample's value from the worker's /metrics page (0 when absent)."""
        url = f"http://127.0.0.1:{self.env['WORKER_METRICS_PORT']}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            page = response.read().decode()
        for line in page.splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[-1])
        return 0.0

    def wait_for_metric(self, sample: str, value: float, timeout_s: float = 10.0) -> float:
        """Poll a sample until it reaches ``value`` (metrics land just after the results do)."""
        deadline = time.monotonic() + timeout_s
        current = self.metric(sample)
        while current < value and time.monotonic() < deadline:
            time.sleep(0.05)
            current = self.metric(sample)
        return current

    def log(self) -> str:
        """Everything the worker wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def wait_until_ready(self, timeout_s: float = 60.0) -> None:
        """Block until the worker consumes, or raise with its log when it exits or hangs."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if READY_MARK in self.log():
                return
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the worker exited with {self.process.returncode}:\n{self.log()}"
                )
            time.sleep(0.1)
        raise TimeoutError(f"the worker was not ready within {timeout_s:.0f} s:\n{self.log()}")

    def wait_for_log(self, text: str, timeout_s: float = 30.0) -> None:
        """Block until ``text`` appears in the worker's log."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log():
                return
            time.sleep(0.05)
        raise TimeoutError(f"{text!r} not in the worker's log within {timeout_s:.0f} s")

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM (Celery's warm shutdown) and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        """SIGKILL the whole worker, pool children included, as a crash would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the worker whatever state it is in; kill it when it does not stop in time."""
        try:
            self.terminate(timeout_s=20)
        except subprocess.TimeoutExpired:
            self.kill()
        if self.process.poll() is not None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)


def start_worker(env: Mapping[str, str], log_path: Path, *args: str) -> WorkerProcess:
    """Start ``twentyq worker ARGS`` with ``env`` added to this environment."""
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPOSITORY_ROOT), "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "twentyq.cli", "worker", *args],
            cwd=REPOSITORY_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return WorkerProcess(process, log_path, env)


@contextmanager
def running_worker(env: Mapping[str, str], log_path: Path, *args: str) -> Iterator[WorkerProcess]:
    """A ready worker for the ``with`` block, stopped after it."""
    worker = start_worker(env, log_path, *args)
    try:
        worker.wait_until_ready()
        yield worker
    finally:
        worker.stop()
