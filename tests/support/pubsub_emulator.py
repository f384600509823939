"""Run the Google Pub/Sub emulator on a free local port for a test session.

The emulator is a Java program shipped with the Google Cloud SDK: either the
``cloud-pubsub-emulator`` launcher or ``gcloud beta emulators pubsub start``.
Clients find it through ``PUBSUB_EMULATOR_HOST``; any project id is accepted,
so each test can use a project of its own for isolation.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.services import free_port, wait_for_port

EMULATOR_LAUNCHER = Path(
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"
)
STARTUP_TIMEOUT_S = 60.0


def emulator_command(port: int) -> list[str] | None:
    """The command that starts the emulator on ``127.0.0.1:port``, or None when none is installed.

    ``TWENTYQ_TEST_PUBSUB_EMULATOR`` names a launcher to use instead of the SDK's.
    """
    if shutil.which("java") is None:
        return None
    launcher = os.environ.get("TWENTYQ_TEST_PUBSUB_EMULATOR") or str(EMULATOR_LAUNCHER)
    if Path(launcher).is_file():
        return [launcher, "--host=127.0.0.1", f"--port={port}"]
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    return [
        gcloud,
        "beta",
        "emulators",
        "pubsub",
        "start",
        f"--host-port=127.0.0.1:{port}",
        "--project=twentyq-test",
        "--quiet",
    ]


def missing_emulator_reason() -> str | None:
    """Why the emulator cannot run here (what to install), or None when it can."""
    if shutil.which("java") is None:
        return "the Pub/Sub emulator needs java: apt-get install default-jre-headless"
    if emulator_command(0) is None:
        return (
            "no Pub/Sub emulator: install the Google Cloud SDK component "
            "(apt-get install google-cloud-cli-pubsub-emulator, or "
            "`gcloud components install pubsub-emulator`)"
        )
    return None


def skip_or_fail_without_emulator() -> None:
    """Skip the calling test when no emulator can run here; fail instead when ``CI=true``.

    A developer's laptop may lack java or the SDK component; CI must not.
    """
    if os.environ.get("TWENTYQ_TEST_PUBSUB_EMULATOR_HOST"):
        return
    reason = missing_emulator_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@contextmanager
def running_pubsub_emulator() -> Iterator[str]:
    """Run the emulator on a free port; yield its ``host:port`` for ``PUBSUB_EMULATOR_HOST``.

    ``TWENTYQ_TEST_PUBSUB_EMULATOR_HOST`` points the tests at a running emulator instead.
    """
    external = os.environ.get("TWENTYQ_TEST_PUBSUB_EMULATOR_HOST")
    if external:
        yield external
        return
    port = free_port()
    command = emulator_command(port)
    if command is None:
        raise RuntimeError(missing_emulator_reason() or "no Pub/Sub emulator")
    with tempfile.TemporaryDirectory(prefix="twentyq-pubsub-") as workdir:
        log_path = Path(workdir) / "emulator.log"
        with log_path.open("wb") as log:
            # A session of its own: gcloud starts java as a child, and both must stop.
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            try:
                wait_for_port(port, timeout_s=STARTUP_TIMEOUT_S)
            except TimeoutError as error:
                raise RuntimeError(
                    f"the Pub/Sub emulator did not start: {log_path.read_text()[-2000:]}"
                ) from error
            yield f"127.0.0.1:{port}"
        finally:
            _stop_process_group(process)


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def pubsub_environment(emulator_host: str, project_id: str) -> dict[str, str]:
    """Variables that point a worker, producer or sidecar at the emulator, in one project."""
    return {
        "TWENTYQ_BROKER_URL": f"gcpubsub://projects/{project_id}",
        "PUBSUB_EMULATOR_HOST": emulator_host,
        "TWENTYQ_POLLING_INTERVAL_S": "0.1",
    }
