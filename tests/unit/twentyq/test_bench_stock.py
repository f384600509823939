"""`twentyq bench`'s stock_celery scenario: the stock app, its worker's command, its client."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from producer.messages import TURN_TASK_NAME, TURNS_QUEUE, ModelRef
from twentyq.benchmark import stock_worker
from twentyq.benchmark.celery_driver import StockCeleryDriver
from twentyq.benchmark.schedule import ClosedLoop, OpenLoop
from twentyq.benchmark.service import (
    WorkerShape,
    stock_worker_command,
    stock_worker_environment,
)
from twentyq.benchmark.stock_worker import (
    STOCK_QUEUE,
    STOCK_TASK_NAME,
    create_stock_app,
    predict_one,
)
from worker.model_loader import LoadedModel

ASK = {"action": "ask", "question": {"id": "q1", "text": "Is it alive?"}, "guesses": []}
TURN: dict[str, Any] = {"history": [], "rejected_guesses": []}
CORPUS = [{"turn_id": "x", "game_id": "g", "turn": 1, "metadata": {}, **TURN}]


def _model(seen: list[Any]) -> LoadedModel:
    def predict(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen.append(turns)
        return [ASK for _ in turns]

    return LoadedModel(predict=predict, ref=ModelRef(name="m", version="1", run_id="r"))


def test_the_stock_app_is_stock_celery_on_its_own_queue() -> None:
    app = create_stock_app("redis://127.0.0.1:7/0")
    assert app.conf.broker_url == "redis://127.0.0.1:7/0"
    assert app.conf.result_backend == "redis://127.0.0.1:7/0"
    assert app.conf.broker_transport is None  # kombu's own Redis transport
    assert not app.conf.broker_transport_options
    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]
    assert app.conf.task_default_queue == STOCK_QUEUE != TURNS_QUEUE
    assert STOCK_TASK_NAME != TURN_TASK_NAME
    assert STOCK_TASK_NAME in stock_worker.app.tasks


def test_the_task_returns_the_models_prediction_for_one_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []
    assert predict_one(_model(seen), TURN) == ASK and seen == [[TURN]]
    monkeypatch.setattr(stock_worker, "loaded_model", lambda: _model(seen))
    assert stock_worker.play_turn(TURN) == ASK


def test_the_stock_worker_runs_celery_itself_with_the_asked_pool() -> None:
    argv = stock_worker_command(WorkerShape(1, 0, 3))
    assert argv[1:6] == ["-m", "celery", "-A", "twentyq.benchmark.stock_worker", "worker"]
    assert argv[argv.index("-Q") + 1] == STOCK_QUEUE
    assert argv[argv.index("-c") + 1] == "3" and argv[argv.index("-P") + 1] == "prefork"
    env = stock_worker_environment({"PATH": "/bin"}, "redis://127.0.0.1:7/0", "sqlite:///x", 3)
    assert env["CELERY_BROKER_URL"] == env["CELERY_RESULT_BACKEND"] == "redis://127.0.0.1:7/0"
    assert env["MLFLOW_TRACKING_URI"] == "sqlite:///x" and env["WORKER_CONCURRENCY"] == "3"
    assert env["PATH"] == "/bin"


@dataclass
class _Handle:
    id: str
    result: Any


@dataclass
class _Consumer:
    """Answers every sent task at the next drain, as the backend's pub/sub consumer would."""

    answer: Callable[[str], dict[str, Any]]
    sent: list[str] = field(default_factory=list)
    on_message: Callable[[dict[str, Any]], None] | None = None

    def drain_events(self, timeout: float | None = None) -> None:
        sent, self.sent = self.sent, []
        for task_id in sent:
            assert self.on_message is not None
            self.on_message(self.answer(task_id))


class _App:
    def __init__(self, status: str = "SUCCESS", result: Any = ASK) -> None:
        self.status, self.result = status, result
        self.backend = self
        self.result_consumer = _Consumer(self._meta)
        self.calls: list[tuple[str, list[Any]]] = []

    def _meta(self, task_id: str) -> dict[str, Any]:
        return {"task_id": task_id, "status": self.status, "result": self.result}

    def send_task(self, name: str, args: list[Any]) -> _Handle:
        self.calls.append((name, args))
        handle = _Handle(str(uuid.uuid4()), self.result)
        self.result_consumer.sent.append(handle.id)
        return handle


def test_the_stock_client_sends_the_model_turn_and_reads_each_answer() -> None:
    app = _App()
    driver = StockCeleryDriver(app, CORPUS)  # type: ignore[arg-type]
    run = driver.run(ClosedLoop(4, 0.3, 0.1))
    assert run.sent > 4 and len(run.latencies_ms) == run.sent
    assert run.lost == 0 and run.failed == 0
    assert app.calls[0] == (STOCK_TASK_NAME, [TURN])
    scheduled = driver.run(OpenLoop(50.0, 0.3))
    assert scheduled.sent == len(scheduled.latencies_ms) > 0 and scheduled.lost == 0


@pytest.mark.parametrize(
    ("status", "result", "error"),
    [("FAILURE", "boom", "FAILURE: boom"), ("SUCCESS", {"action": "nod"}, "breaks the contract")],
)
def test_failed_and_off_contract_answers_are_counted(status: str, result: Any, error: str) -> None:
    driver = StockCeleryDriver(_App(status, result), CORPUS)  # type: ignore[arg-type]
    run = driver.run(ClosedLoop(2, 0.2, 0.05))
    assert run.failed == run.sent > 0 and not run.latencies_ms
    assert error in run.errors[0]


def test_reading_an_answer_checks_the_contract() -> None:
    driver = StockCeleryDriver(_App(), CORPUS)  # type: ignore[arg-type]
    assert driver.read({}, _Handle("1", ASK)).question is not None  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        driver.read({}, _Handle("1", {"action": "ask"}))  # type: ignore[arg-type]


def test_the_client_ceiling_counts_every_send() -> None:
    app = _App()
    figures = StockCeleryDriver(app, CORPUS).measure_send_rate(20)  # type: ignore[arg-type]
    assert figures["turns"] == 20 and len(app.calls) == 21  # one to connect first
    with pytest.raises(ValueError, match="at least one"):
        StockCeleryDriver(app, CORPUS).measure_send_rate(0)  # type: ignore[arg-type]
