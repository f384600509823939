"""`twentyq doctor` and `twentyq --version`: one line per check, and what to fix when one fails."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from twentyq import cli, doctor
from twentyq.doctor import BrokerProbe, Check


@pytest.fixture
def bound_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"twentyq {cli._version()}"
    assert cli._version()[0].isdigit()


def test_a_failed_check_says_what_to_fix() -> None:
    line = Check("broker", False, "redis://x did not answer", "start Redis").line()
    assert line.startswith("FAIL")
    assert line.endswith("-> start Redis")
    assert "->" not in Check("broker", True, "answers", "start Redis").line()


def test_python_older_than_3_11_fails() -> None:
    assert doctor.check_python((3, 11, 0)).ok
    old = doctor.check_python((3, 10, 12))
    assert not old.ok
    assert "3.10.12" in old.detail


def test_an_unreachable_redis_fails_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWENTYQ_BROKER_URL", f"redis://127.0.0.1:{_closed_port()}/0")
    probe = doctor.probe_broker(lambda url: doctor.ping_redis(url, timeout_s=0.5))
    assert not probe.check.ok
    assert "TWENTYQ_BROKER_URL" in probe.check.fix
    assert not doctor.check_redis_version(probe).ok


def test_a_reachable_redis_reports_its_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWENTYQ_BROKER_URL", "redis://:secret@127.0.0.1:6379/0")
    pinged: list[str] = []

    def ping(url: str) -> str:
        pinged.append(url)
        return "7.2.4"

    probe = doctor.probe_broker(ping)
    assert pinged == ["redis://:secret@127.0.0.1:6379/0"]
    assert probe.check.ok
    assert "secret" not in probe.check.line()
    assert doctor.check_redis_version(probe).line().endswith("Redis 7.2.4")


def test_redis_older_than_6_2_fails() -> None:
    probe = BrokerProbe(Check("broker", True, "answers"), "6.0.16")
    check = doctor.check_redis_version(probe)
    assert not check.ok
    assert "BLMOVE" in check.detail


def test_sqs_broker_is_not_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWENTYQ_BROKER_URL", "sqs://")

    def ping(url: str) -> str:
        raise AssertionError("an SQS broker must not be pinged")

    probe = doctor.probe_broker(ping)
    assert probe.check.ok
    assert "not checked" in probe.check.detail


def test_a_bad_broker_url_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWENTYQ_BROKER_URL", "amqp://localhost")
    probe = doctor.probe_broker()
    assert not probe.check.ok
    assert "TWENTYQ_BROKER_URL" in probe.check.detail


def test_a_taken_port_fails_and_a_free_one_passes(bound_port: int) -> None:
    taken = doctor.check_port("worker", "WORKER_METRICS_PORT", bound_port)
    assert not taken.ok
    assert "WORKER_METRICS_PORT" in taken.fix
    assert doctor.check_port("worker", "WORKER_METRICS_PORT", _closed_port()).ok
    assert doctor.check_port("worker", "WORKER_METRICS_PORT", 0).ok


def test_a_missing_sqlite_store_fails_without_creating_it(tmp_path: Path) -> None:
    database = tmp_path / "mlflow.db"

    class Settings:
        tracking_uri = f"sqlite:///{database}"

    check = doctor.check_registry(Settings())
    assert not check.ok
    assert "make demo" in check.fix
    assert not database.exists()


def test_doctor_exits_1_when_a_check_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        doctor,
        "run_checks",
        lambda: [Check("python", True, "Python 3.11.7"), Check("pin", False, "no pin", "pin it")],
    )
    assert doctor.main([]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ok")
    assert out[1].startswith("FAIL") and out[1].endswith("-> pin it")
    assert out[-1] == "1 ok, 1 failed"
    monkeypatch.setattr(doctor, "run_checks", lambda: [Check("python", True, "Python 3.11.7")])
    assert doctor.main([]) == 0
