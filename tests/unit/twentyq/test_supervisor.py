"""The demo's process supervisor: every child stopped, stubborn ones killed, in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from twentyq.supervisor import Supervisor


class FakeProcess:
    """A process that exits on SIGTERM unless it is stubborn."""

    def __init__(self, pid: int, *, stubborn: bool = False) -> None:
        self.pid, self.stubborn = pid, stubborn
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            raise subprocess.TimeoutExpired("fake", timeout or 0)
        return self.returncode

    def receive(self, signum: int) -> None:
        if self.returncode is None and (signum == signal.SIGKILL or not self.stubborn):
            self.returncode = -signum


class FakeSystem:
    """Spawns FakeProcesses and delivers group signals to them, recording both."""

    def __init__(self, stubborn: set[str] | None = None) -> None:
        self.stubborn = stubborn or set()
        self.processes: dict[int, FakeProcess] = {}
        self.signals: list[tuple[int, int]] = []

    def spawn(self, argv: list[str], **kwargs: Any) -> FakeProcess:
        assert kwargs["start_new_session"] is True
        process = FakeProcess(100 + len(self.processes), stubborn=argv[0] in self.stubborn)
        self.processes[process.pid] = process
        return process

    def signal_group(self, pgid: int, signum: int) -> None:
        self.signals.append((pgid, signum))
        self.processes[pgid].receive(signum)


def _supervisor(system: FakeSystem, tmp_path: Path) -> Supervisor:
    return Supervisor(
        tmp_path, spawn=system.spawn, signal_group=system.signal_group, stop_timeout_s=0.01
    )


def test_children_are_stopped_newest_first_with_sigterm(tmp_path: Path) -> None:
    system = FakeSystem()
    supervisor = _supervisor(system, tmp_path)
    for name in ("redis", "worker", "export"):
        supervisor.start(name, [name], {})
    assert supervisor.stop_all() == []
    terms = [pgid for pgid, signum in system.signals if signum == signal.SIGTERM]
    assert terms == [102, 101, 100]
    assert all(process.poll() is not None for process in system.processes.values())
    assert supervisor.children == []


def test_a_child_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    system = FakeSystem(stubborn={"worker"})
    supervisor = _supervisor(system, tmp_path)
    supervisor.start("redis", ["redis"], {})
    supervisor.start("worker", ["worker"], {})
    assert supervisor.stop_all() == ["worker"]
    assert system.processes[101].poll() == -signal.SIGKILL
    assert system.processes[100].poll() == -signal.SIGTERM


def test_one_failing_stop_does_not_leave_the_others(tmp_path: Path) -> None:
    system = FakeSystem()
    supervisor = _supervisor(system, tmp_path)
    supervisor.start("redis", ["redis"], {})
    broken = supervisor.start("worker", ["worker"], {})

    def refuse(timeout: float | None = None) -> int:
        raise OSError("wait failed")

    broken.process.wait = refuse  # type: ignore[method-assign]
    supervisor.stop_all()
    assert system.processes[100].poll() is not None


def test_the_context_manager_stops_children_on_error(tmp_path: Path) -> None:
    system = FakeSystem()
    with pytest.raises(RuntimeError), _supervisor(system, tmp_path) as supervisor:
        supervisor.start("redis", ["redis"], {})
        raise RuntimeError("a step failed")
    assert system.processes[100].poll() is not None


def test_a_foreground_child_is_stopped_when_interrupted(tmp_path: Path) -> None:
    system = FakeSystem()
    supervisor = _supervisor(system, tmp_path)

    def interrupted_spawn(argv: list[str], **kwargs: Any) -> FakeProcess:
        process = system.spawn(argv, **kwargs)

        def wait(timeout: float | None = None) -> int:
            if timeout is None:
                raise KeyboardInterrupt
            return FakeProcess.wait(process, timeout)

        process.wait = wait  # type: ignore[method-assign]
        return process

    supervisor._spawn = interrupted_spawn
    with pytest.raises(KeyboardInterrupt):
        supervisor.run("train", ["train"], {})
    assert system.processes[100].poll() == -signal.SIGTERM
    assert supervisor.children == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but not yet reaped by its parent.
    status = (
        Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}").exists() else "X"
    )
    return status not in {"Z", "X"}


def test_real_grandchildren_die_with_their_group(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, stop_timeout_s=5)
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, time\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    child = supervisor.start("parent", [sys.executable, "-c", script], os.environ)
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the grandchild never started"
        time.sleep(0.05)
    grandchild = int(pid_file.read_text())
    supervisor.stop_all()
    assert child.process.poll() is not None
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)
