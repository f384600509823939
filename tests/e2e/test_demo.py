"""`twentyq demo` end to end in a fresh directory: it trains, serves, plays, and cleans up."""

from __future__ import annotations

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
    """A fresh working directory with a copy of the repository's pin (the demo re-pins it)."""
    directory = tmp_path_factory.mktemp("demo")
    shutil.copy(REPOSITORY_ROOT / "mlflow" / "model_version.json", directory / "pin.json")
    return directory


def _demo_env(directory: Path, marker: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TWENTYQ_", "MLFLOW_", "WORKER_", "MONITORING_", "MODEL_"))
    }
    env.update(
        {
            "TWENTYQ_PIN_PATH": str(directory / "pin.json"),
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
