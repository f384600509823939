"""Fixtures for the worker's unit tests: an in-memory broker and backend, a stub predict."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from kombu import Consumer  # type: ignore[attr-defined]
from kombu.serialization import loads

from producer.broker import BrokerSettings, task_queues
from producer.messages import HistoryEntry, ModelRef, Turn
from worker.model_loader import LoadedModel
from worker.outbox import Outbox
from worker.runtime import Runtime, install_runtime
from worker.settings import WorkerSettings

MODEL = ModelRef(name="stub", version="7", run_id="run-7")


def make_turn(question_ids: tuple[str, ...] = ("is_alive",), **changes: Any) -> Turn:
    """A valid turn answering ``question_ids`` with yes."""
    fields: dict[str, Any] = {
        "turn_id": uuid.uuid4(),
        "game_id": "game-1",
        "turn": len(question_ids),
        "history": [HistoryEntry(question_id=q, answer="yes") for q in question_ids],
        "metadata": {"player": "p1"},
    }
    fields.update(changes)
    return Turn(**fields)


class StubPredict:
    """A contract-honouring predict that records its calls; ``unknown`` ids yield errors."""

    def __init__(self, fail_times: int = 0, poison: str | None = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.fail_times = fail_times
        self.poison = poison

    def __call__(self, turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.calls.append(turns)
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("the model is having a bad day")
        if self.poison and any(
            entry["question_id"] == self.poison for turn in turns for entry in turn["history"]
        ):
            raise RuntimeError(f"poisoned by {self.poison}")
        return [self._answer(turn) for turn in turns]

    @staticmethod
    def _answer(turn: dict[str, Any]) -> dict[str, Any]:
        if any(entry["question_id"] == "unknown" for entry in turn["history"]):
            return {"error": "unknown question id 'unknown'"}
        return {
            "action": "ask",
            "question": {"id": "is_big", "text": "Is it big?"},
            "guesses": [{"noun": "cat", "probability": 0.5}],
            "interpreted_answers": [],
        }


@pytest.fixture()
def memory_app() -> Iterator[Celery]:
    """A Celery app on kombu's in-memory transport with an in-memory result cache."""
    app = Celery("unit", broker="memory://", backend="cache+memory://")
    app.conf.update(task_queues=task_queues(), accept_content=["json"])
    yield app
    app.close()


@pytest.fixture()
def runtime(memory_app: Celery) -> Runtime:
    """A worker runtime with the stub model, installed as the process's runtime."""
    settings = WorkerSettings(max_retries=1, retry_backoff_s=0.0, metrics_port=0)
    current = Runtime(
        settings=settings,
        broker=BrokerSettings(broker_url="redis://unused:6379/0"),
        outbox=Outbox(memory_app),
        model=LoadedModel(predict=StubPredict(), ref=MODEL),
    )
    install_runtime(current)
    return current


def drain_queue(app: Celery, queue_name: str) -> list[Any]:
    """Every message waiting on an in-memory queue, decoded."""
    queue = next(q for q in task_queues() if q.name == queue_name)
    bodies: list[Any] = []

    def keep(body: Any, message: Any) -> None:
        bodies.append(body)
        message.ack()

    with (
        app.connection_for_write() as connection,
        Consumer(connection, queues=[queue], callbacks=[keep], accept=["json"]),
    ):
        while True:
            try:
                connection.drain_events(timeout=0.05)
            except TimeoutError:
                return bodies


class FakeMessage:
    """The parts of a kombu message the worker reads; records acks and rejects."""

    def __init__(
        self,
        body: bytes,
        headers: dict[str, Any] | None = None,
        content_type: str = "application/json",
        content_encoding: str = "utf-8",
    ) -> None:
        self.body = body
        self.headers = headers if headers is not None else {}
        self.content_type = content_type
        self.content_encoding = content_encoding
        self.properties: dict[str, Any] = {}
        self.acked = False
        self.requeued = False

    def decode(self) -> Any:
        return loads(
            self.body, self.content_type, self.content_encoding, accept=["application/json"]
        )

    def ack(self) -> None:
        self.acked = True

    def reject(self, requeue: bool = False) -> None:
        self.requeued = requeue


def task_message(turn: dict[str, Any], task_id: str | None = None) -> FakeMessage:
    """A protocol-2 task message carrying ``turn``."""
    body = json.dumps([[turn], {}, {"callbacks": None}]).encode()
    headers = {"task": "twentyq.play_turn", "id": task_id or str(turn.get("turn_id"))}
    return FakeMessage(body, headers)
