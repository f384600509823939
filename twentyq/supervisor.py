"""Start child processes for ``twentyq demo`` and make sure none outlives it.

Each child leads a process group of its own, so stopping it also stops its
children (a Celery worker's pool processes), and a Ctrl-C in the terminal
reaches only the demo, which then stops the children in order.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol


class ChildProcess(Protocol):
    """What the supervisor needs of a process (``subprocess.Popen`` has it)."""

    pid: int

    def poll(self) -> int | None:
        """The exit code, or None while running."""

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit code; raise ``subprocess.TimeoutExpired`` after ``timeout``."""


Spawn = Callable[..., ChildProcess]
SignalGroup = Callable[[int, int], None]


@dataclass
class Child:
    """A started child: its name, process and log file."""

    name: str
    process: ChildProcess
    log_path: Path | None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on ``host:port`` within ``timeout_s``."""
    deadline_s = time.monotonic() + timeout_s
    while time.monotonic() < deadline_s:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _signal_group(pgid: int, signum: int) -> None:
    os.killpg(pgid, signum)


class Supervisor:
    """Starts children in their own process groups and stops every one of them on exit."""

    def __init__(
        self,
        log_dir: Path,
        *,
        spawn: Spawn = subprocess.Popen,
        signal_group: SignalGroup = _signal_group,
        stop_timeout_s: float = 15.0,
    ) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []
        self._spawn = spawn
        self._signal_group = signal_group
        self.stop_timeout_s = stop_timeout_s

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> Child:
        """Start a background child whose output goes to ``<log_dir>/<name>.log``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            process = self._spawn(
                list(argv),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def run(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> int:
        """Run a foreground child, its output streamed to ours; return its exit code."""
        process = self._spawn(
            list(argv), env=dict(env), stdin=subprocess.DEVNULL, start_new_session=True
        )
        child = Child(name, process, None)
        self.children.append(child)
        try:
            return process.wait()
        finally:
            self.stop(child)

    def stop(self, child: Child) -> bool:
        """Stop one child and its process group: SIGTERM, then SIGKILL. True if it was killed."""
        killed = False
        if child.process.poll() is None:
            self._send(child, signal.SIGTERM)
            try:
                child.process.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                killed = True
        # Pool processes may outlive their parent: the group still holds them.
        self._send(child, signal.SIGKILL)
        if killed:
            child.process.wait(timeout=self.stop_timeout_s)
        if child in self.children:
            self.children.remove(child)
        return killed

    def stop_all(self) -> list[str]:
        """Stop every child, newest first; return the names that needed SIGKILL."""
        killed = []
        for child in reversed(list(self.children)):
            try:
                if self.stop(child):
                    killed.append(child.name)
            except Exception as error:  # one child's trouble must not leave the others running
                print(f"twentyq demo: could not stop {child.name}: {error}", file=sys.stderr)
        return killed

    def _send(self, child: Child, signum: int) -> None:
        with suppress(ProcessLookupError, PermissionError):  # the group is already gone
            self._signal_group(child.process.pid, signum)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with _signals_ignored():
            self.stop_all()


@contextmanager
def _signals_ignored() -> Iterator[None]:
    # A second Ctrl-C during cleanup must not leave children running.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def tail(path: Path | None, lines: int = 20) -> str:
    """The last lines of a log file, for error messages."""
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
