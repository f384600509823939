"""`twentyq bench` on a fresh checkout: it finds or trains a pin that resolves, like the demo."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.twentyq.test_demo import RecordingSupervisor
from twentyq.bench import use_a_resolving_pin


def test_the_committed_pin_is_used_when_it_resolves(tmp_path: Path) -> None:
    supervisor = RecordingSupervisor(tmp_path, {"check-pin": 0})
    environ: dict[str, str] = {}
    use_a_resolving_pin(supervisor, environ)
    assert environ == {}
    assert [argv[-1] for argv in supervisor.commands] == ["check-pin"]


def test_a_fresh_checkout_trains_and_pins_privately_with_the_transformer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    supervisor = RecordingSupervisor(tmp_path, {"check-pin": 1, "train": 0})
    environ: dict[str, str] = {}
    use_a_resolving_pin(supervisor, environ)
    train = supervisor.commands[-1]
    # The real interpreter (the cold-start target is about it), not the demo's quick one.
    assert train[train.index("model") :] == ["model", "train", "--pin"]
    assert environ["TWENTYQ_PIN_PATH"] == str((tmp_path / ".twentyq/model_version.json").resolve())


def test_a_pin_named_for_the_workers_is_the_one_checked_and_used(tmp_path: Path) -> None:
    supervisor = RecordingSupervisor(tmp_path, {"check-pin": 0})
    environ = {"WORKER_PIN_PATH": "/pins/bench.json"}
    use_a_resolving_pin(supervisor, environ)
    assert supervisor.environments[0]["TWENTYQ_PIN_PATH"] == "/pins/bench.json"
    assert environ["TWENTYQ_PIN_PATH"] == "/pins/bench.json"
