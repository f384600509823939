"""`twentyq demo`: options, the children's environment, and cleanup on failure or signal."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from producer.errors import GuessTimeoutError
from producer.settings import ProducerSettings
from twentyq import demo
from twentyq.supervisor import Child, Supervisor


def test_defaults_and_quick() -> None:
    options = demo.parse_args(["--games", "5", "--quick"])
    assert (options.games, options.quick, options.state_dir) == (5, True, Path(".twentyq"))
    assert demo.parse_args([]).games == 20


def test_nonsense_counts_are_refused() -> None:
    with pytest.raises(SystemExit):
        demo.parse_args(["--games", "0"])


def test_children_share_one_broker_and_store(tmp_path: Path) -> None:
    env = demo.child_environment({"PATH": "/bin"}, "redis://127.0.0.1:7000/0", tmp_path)
    assert env["TWENTYQ_BROKER_URL"] == "redis://127.0.0.1:7000/0"
    assert env["MLFLOW_TRACKING_URI"] == "sqlite:///.twentyq/mlflow.db"
    assert env["MONITORING_SINK_URL"] == f"file://{tmp_path.resolve()}/exports"
    assert env["WORKER_METRICS_PORT"] != env["MONITORING_METRICS_PORT"]
    assert env["PATH"] == "/bin"


def test_a_configured_tracking_store_is_kept(tmp_path: Path) -> None:
    env = demo.child_environment(
        {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}, "redis://x", tmp_path
    )
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_the_players_table_falls_back_to_the_model_package(tmp_path: Path) -> None:
    settings = ProducerSettings(knowledge_base_path=tmp_path / "missing.csv")
    found = demo.knowledge_base_path(demo.DemoOptions(), settings)
    assert found.parts[-3:] == ("model", "data", "knowledge_base.csv")
    given = demo.DemoOptions(knowledge_base=tmp_path / "mine.csv")
    assert demo.knowledge_base_path(given, settings) == tmp_path / "mine.csv"


def _start_sleeper(started: list[int]) -> object:
    def start_broker(supervisor: Supervisor, state_dir: Path) -> str:
        child = supervisor.start("redis", ["sleep", "60"], os.environ)
        started.append(child.process.pid)
        return "redis://127.0.0.1:1/0"

    return start_broker


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture()
def demo_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TWENTYQ_BROKER_URL", raising=False)
    return tmp_path


def test_a_failing_step_stops_what_was_started(
    demo_cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[int] = []
    monkeypatch.setattr(demo, "start_broker", _start_sleeper(started))

    def fail(supervisor: Supervisor, env: Mapping[str, str], quick: bool, state_dir: Path) -> None:
        raise demo.DemoError("training failed (exit code 3): see its output above")

    monkeypatch.setattr(demo, "ensure_pinned_model", fail)
    assert demo.main(["--state-dir", str(demo_cwd / "state")]) == 1
    assert "training failed" in capsys.readouterr().err
    assert started and _gone(started[0])


def test_sigterm_stops_what_was_started(
    demo_cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[int] = []
    monkeypatch.setattr(demo, "start_broker", _start_sleeper(started))

    def terminated(
        supervisor: Supervisor, env: Mapping[str, str], quick: bool, state_dir: Path
    ) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(demo, "ensure_pinned_model", terminated)
    previous = signal.getsignal(signal.SIGTERM)
    assert demo.main(["--state-dir", str(demo_cwd / "state")]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert started and _gone(started[0])
    assert signal.getsignal(signal.SIGTERM) == previous


class RecordingSupervisor(Supervisor):
    """Runs nothing: records foreground commands and answers with scripted exit codes."""

    def __init__(self, log_dir: Path, codes: dict[str, int]) -> None:
        super().__init__(log_dir)
        self.codes = codes
        self.commands: list[list[str]] = []
        self.environments: list[dict[str, str]] = []

    def run(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> int:
        self.commands.append(list(argv))
        self.environments.append(dict(env))
        return self.codes[name]


def test_a_resolving_pin_is_not_retrained(tmp_path: Path) -> None:
    supervisor = RecordingSupervisor(tmp_path, {"check-pin": 0})
    demo.ensure_pinned_model(supervisor, {}, quick=False, state_dir=tmp_path)
    assert [argv[-2:] for argv in supervisor.commands] == [["model", "check-pin"]]


def test_an_unresolved_pin_is_trained_and_pinned_quickly_when_asked(tmp_path: Path) -> None:
    supervisor = RecordingSupervisor(tmp_path, {"check-pin": 1, "train": 0})
    env = demo.ensure_pinned_model(supervisor, {}, quick=True, state_dir=tmp_path)
    train = supervisor.commands[-1]
    assert train[train.index("model") :] == [
        "model",
        "train",
        "--pin",
        "--interpreter",
        "tiny",
        "--games",
        "60",
    ]
    # The committed pin is left alone: the demo trains and pins into its own state dir.
    private_pin = str((tmp_path / "model_version.json").resolve())
    assert supervisor.environments[-1]["TWENTYQ_PIN_PATH"] == private_pin
    assert env["TWENTYQ_PIN_PATH"] == private_pin


def test_a_private_pin_from_an_earlier_demo_is_reused(tmp_path: Path) -> None:
    class SecondCheckResolves(RecordingSupervisor):
        def run(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> int:
            super().run(name, argv, env)
            return 0 if "TWENTYQ_PIN_PATH" in env else 1

    supervisor = SecondCheckResolves(tmp_path, {"check-pin": 1})
    env = demo.ensure_pinned_model(supervisor, {}, quick=False, state_dir=tmp_path)
    assert [argv[-1] for argv in supervisor.commands] == ["check-pin", "check-pin"]
    assert env["TWENTYQ_PIN_PATH"].endswith("model_version.json")


def test_a_fresh_clone_checks_the_local_pin_once_then_trains_into_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default store's own pin is the demo's private pin: no second check of the same file.
    monkeypatch.chdir(tmp_path)
    supervisor = RecordingSupervisor(tmp_path, {"check-pin": 1, "train": 0})
    env = demo.ensure_pinned_model(supervisor, {}, quick=False, state_dir=Path(".twentyq"))
    assert [argv[-2:] for argv in supervisor.commands] == [
        ["model", "check-pin"],
        ["train", "--pin"],
    ]
    assert env["TWENTYQ_PIN_PATH"] == str(tmp_path / ".twentyq" / "model_version.json")


def test_an_explicit_pin_path_is_trained_in_place(tmp_path: Path) -> None:
    supervisor = RecordingSupervisor(tmp_path, {"check-pin": 1, "train": 0})
    env = demo.ensure_pinned_model(
        supervisor, {"TWENTYQ_PIN_PATH": "/pins/mine.json"}, quick=False, state_dir=tmp_path
    )
    assert env["TWENTYQ_PIN_PATH"] == "/pins/mine.json"
    assert [argv[-1] for argv in supervisor.commands] == ["check-pin", "--pin"]


def test_failed_training_stops_the_demo(tmp_path: Path) -> None:
    supervisor = RecordingSupervisor(tmp_path, {"check-pin": 1, "train": 3})
    with pytest.raises(demo.DemoError, match="exit code 3"):
        demo.ensure_pinned_model(supervisor, {}, quick=False, state_dir=tmp_path)


class _Exited:
    pid = 1

    def poll(self) -> int | None:
        return 2

    def wait(self, timeout: float | None = None) -> int:
        return 2


class _NeverAnswers:
    def get(self, timeout_s: float | None = None) -> None:
        raise GuessTimeoutError("no guess")


def test_a_worker_that_dies_early_is_reported_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "worker.log"
    log.write_text("loading...\nConfigurationError: the pin names no registered version\n")
    monkeypatch.setattr(demo, "submit_turn", lambda turn, **kwargs: _NeverAnswers())
    worker = Child("worker", _Exited(), log)
    with pytest.raises(demo.DemoError) as caught:
        demo.wait_for_worker(None, ProducerSettings(), worker, timeout_s=30)  # type: ignore[arg-type]
    assert "exited with code 2" in str(caught.value)
    assert "the pin names no registered version" in str(caught.value)


class _Running:
    pid = 1

    def poll(self) -> int | None:
        return None

    def wait(self, timeout: float | None = None) -> int:
        return 0


def test_a_worker_that_never_answers_times_out_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "submit_turn", lambda turn, **kwargs: _NeverAnswers())
    worker = Child("worker", _Running(), tmp_path / "worker.log")
    with pytest.raises(demo.DemoError, match="answered no turn within 0 s"):
        demo.wait_for_worker(None, ProducerSettings(), worker, timeout_s=0)  # type: ignore[arg-type]
