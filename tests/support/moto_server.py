"""Run a local moto server (S3, SQS, ... on one port) for a test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.services import free_port

# moto accepts any credentials; fixed ones keep boto3 away from the machine's own.
MOTO_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto's placeholder, not a secret
    "AWS_DEFAULT_REGION": "us-east-1",
}


def moto_server_binary() -> str:
    """The ``moto_server`` executable: beside this Python, else on PATH."""
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return str(beside)
    found = shutil.which("moto_server")
    if found:
        return found
    raise RuntimeError("no moto_server executable: pip install 'moto[server]'")


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise TimeoutError(f"moto_server did not answer on {url} within {timeout_s:.0f} s")


@contextmanager
def running_moto_server(port: int | None = None, timeout_s: float = 30.0) -> Iterator[str]:
    """Start ``moto_server`` on ``port`` (default: a free one); yield ``http://127.0.0.1:PORT``.

    ``TWENTYQ_TEST_MOTO_URL`` points the tests at a server already running instead
    (unless a port is asked for).
    """
    external = os.environ.get("TWENTYQ_TEST_MOTO_URL")
    if external and port is None:
        yield external.rstrip("/")
        return
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile(prefix="twentyq-moto-") as log:
        process = subprocess.Popen(
            [moto_server_binary(), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **MOTO_ENVIRONMENT},
        )
        try:
            _wait_until_serving(url, process, timeout_s)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
