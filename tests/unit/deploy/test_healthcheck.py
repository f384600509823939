"""The image's health check tells a serving deployable from a dead one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from monitoring.settings import MonitoringSettings
from tests.support.services import free_port
from tests.unit.deploy.script import load_script
from tests.unit.deploy.setting_name import known_variables
from worker.settings import WorkerSettings

healthcheck = load_script("healthcheck")


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/metrics" else 404)
        self.end_headers()
        self.wfile.write(b"twentyq_worker_turns_total 0\n")

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture()
def metrics_port() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_ports_and_variables_match_the_settings_classes() -> None:
    assert healthcheck.METRICS_PORTS["worker"] == (
        "WORKER_METRICS_PORT",
        WorkerSettings().metrics_port,
    )
    assert healthcheck.METRICS_PORTS["export"] == (
        "MONITORING_METRICS_PORT",
        MonitoringSettings().metrics_port,
    )
    assert {variable for variable, _ in healthcheck.METRICS_PORTS.values()} <= known_variables()


def test_reads_the_command_behind_tini(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"tini\0--\0/opt/venv/bin/twentyq\0export\0")
    assert healthcheck.running_command(cmdline) == "export"
    cmdline.write_bytes(b"tini\0--\0twentyq\0drift\0--window\0007d\0")
    assert healthcheck.running_command(cmdline) == "drift"
    cmdline.write_bytes(b"python\0something-else\0")
    assert healthcheck.running_command(cmdline) == ""


def test_healthy_when_the_metrics_endpoint_answers(
    metrics_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKER_METRICS_PORT", str(metrics_port))
    assert healthcheck.main(["worker"]) == 0


def test_unhealthy_when_nothing_answers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    monkeypatch.setenv("MONITORING_METRICS_PORT", str(port))
    assert healthcheck.main(["export"]) == 1
    assert f"127.0.0.1:{port}/metrics did not answer" in capsys.readouterr().err


def test_one_shot_jobs_and_disabled_metrics_count_as_healthy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert healthcheck.main(["drift"]) == 0
    monkeypatch.setenv("WORKER_METRICS_PORT", "0")
    assert healthcheck.main(["worker"]) == 0
