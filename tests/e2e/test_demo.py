"""`twentyq demo` end to end in a fresh directory: it trains, serves, plays, and cleans up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

# Training, a cold worker and the drift job take minutes on a busy 2-core machine.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
MARKER = "TWENTYQ_E2E_MARKER"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh working directory, as a fresh clone is: no store, no pin of its own yet."""
    directory = tmp_path_factory.mktemp("demo")
    (directory / "mlflow").mkdir()
    shutil.copy(REPOSITORY_ROOT / "mlflow" / "model_version.json", directory / "mlflow")
    return directory


def _demo_env(directory: Path, marker: str) -> dict[str, str]:
    # No pin, store or broker variable: what a newcomer's shell has.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TWENTYQ_", "MLFLOW_", "WORKER_", "MONITORING_", "MODEL_"))
    }
    env.update(
        {
            "PYTHONPATH": str(REPOSITORY_ROOT),
            "PYTHONUNBUFFERED": "1",
            MARKER: marker,
        }
    )
    return env


def _processes_with(marker: str) -> list[str]:
    """Command lines of live processes whose environment carries the marker."""
    found = []
    needle = f"{MARKER}={marker}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return found


def _start_demo(directory: Path, marker: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "twentyq.cli", "demo", "--quick", *args],
        cwd=directory,
        env=_demo_env(directory, marker),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_gone(marker: str, timeout_s: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while (left := _processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_demo_plays_games_and_leaves_no_process(demo_dir: Path) -> None:
    marker = uuid.uuid4().hex
    demo = _start_demo(demo_dir, marker, "--games", "5")
    try:
        output, _ = demo.communicate(timeout=540)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, output
    assert "starting a private Redis" in output
    assert "training and pinning the model" in output
    assert "games            5 (0 failed)" in output
    assert "win rate" in output and "enqueue→guess" in output
    assert "stopped every process the demo started" in output
    assert (demo_dir / ".twentyq" / "mlflow.db").exists()
    assert _wait_gone(marker) == []


def _twentyq(directory: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "twentyq.cli", *args],
        cwd=directory,
        env={**_demo_env(directory, uuid.uuid4().hex), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


LOCAL_PIN_LINE = "pin .twentyq/model_version.json (local fallback: the SQLite store's own pin"


def test_the_commands_after_the_demo_find_its_pin_and_store(demo_dir: Path, redis_url: str) -> None:
    """Each command as the README prints it, with no pin or store variable set."""
    pin = demo_dir / ".twentyq" / "model_version.json"
    assert pin.exists(), "the demo (the test above) pins the model in the local store"
    committed = (demo_dir / "mlflow" / "model_version.json").read_text()

    check = _twentyq(demo_dir, "model", "check-pin")
    assert check.returncode == 0, check.stderr
    assert f"twentyq model check-pin: {LOCAL_PIN_LINE}" in check.stderr
    assert "resolves in the registry" in check.stdout

    drift = _twentyq(demo_dir, "drift", "--json")
    assert drift.returncode == 0, drift.stderr
    assert f"twentyq drift: {LOCAL_PIN_LINE}" in drift.stderr
    assert json.loads(drift.stdout)["versions"], "the demo's exports are compared"

    # The demo's private Redis is gone; the README starts one on the default port, and
    # the tests must not assume 6379: only the broker is given here, never the pin.
    marker, log = uuid.uuid4().hex, demo_dir / "after-demo-worker.log"
    with log.open("w") as worker_stderr:
        worker = subprocess.Popen(
            [sys.executable, "-m", "twentyq.cli", "worker"],
            cwd=demo_dir,
            env={
                **_demo_env(demo_dir, marker),
                "TWENTYQ_BROKER_URL": redis_url,
                "WORKER_METRICS_PORT": "0",
                "WORKER_LOG_FORMAT": "text",
            },
            stdout=subprocess.DEVNULL,
            stderr=worker_stderr,
        )
    try:
        # In a clone the default table path (model/data/...) is relative to the repository root.
        table = str(REPOSITORY_ROOT / "model" / "data" / "knowledge_base.csv")
        played = _twentyq(
            demo_dir,
            *("simulate", "--games", "2", "--json", "--no-progress", "--timeout", "120"),
            *("--knowledge-base", table),
            TWENTYQ_BROKER_URL=redis_url,
        )
        assert played.returncode == 0, played.stderr
        assert json.loads(played.stdout)["failed_games"] == 0
        assert "twentyq simulate: broker redis://" in played.stderr
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert f"twentyq worker: {LOCAL_PIN_LINE}" in log.read_text()
    assert _wait_gone(marker) == []
    assert (demo_dir / "mlflow" / "model_version.json").read_text() == committed


def test_ctrl_c_stops_every_child(demo_dir: Path) -> None:
    marker = uuid.uuid4().hex
    demo = _start_demo(demo_dir, marker, "--games", "500")
    assert demo.stdout is not None
    lines = []
    try:
        for line in demo.stdout:
            lines.append(line)
            if "playing 500 simulated games" in line:
                break
        assert _processes_with(marker), "the demo should have children running by now"
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
    output = "".join(lines) + rest
    assert demo.returncode == 130, output
    assert "interrupted" in output
    assert _wait_gone(marker) == []
