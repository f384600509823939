"""A batch end to end on in-memory transports: results, events, idempotency, acks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from celery import Celery

import worker.task as task_module
from producer.messages import DEAD_LETTER_QUEUE, EXPORT_QUEUE, DeadLetter, Guess, Turn
from tests.unit.worker.conftest import StubPredict, drain_queue, make_turn, task_message
from worker.metrics import BatchReport
from worker.model_loader import LoadedModel
from worker.runtime import Runtime
from worker.task import TurnBatchTask, serve_requests


class Request:
    """What celery-batches hands a batch: args plus the raw message we carry along."""

    def __init__(self, turn: Turn) -> None:
        message = task_message(turn.model_dump(mode="json"))
        self.args = (turn.model_dump(mode="json"),)
        self.kwargs: dict[str, Any] = {}
        self.raw_body = message.body
        self.content_type = message.content_type
        self.content_encoding = message.content_encoding


def test_a_batch_stores_each_guess_and_publishes_each_event(
    runtime: Runtime, memory_app: Celery
) -> None:
    turns = [make_turn(), make_turn(("is_alive", "has_legs"))]
    report = serve_requests(runtime, [Request(turn) for turn in turns])
    assert report.delivered and report.outcomes["answered"] == 2 and report.batch_size == 2
    for turn in turns:
        stored = memory_app.AsyncResult(str(turn.turn_id))
        assert stored.state == "SUCCESS"
        assert Guess.model_validate(stored.result).turn_id == turn.turn_id
    events = [Guess.model_validate(body) for body in drain_queue(memory_app, EXPORT_QUEUE)]
    assert [event.turn_id for event in events] == [turn.turn_id for turn in turns]


def test_an_answered_turn_is_not_recomputed_but_its_event_is_republished(
    runtime: Runtime, memory_app: Celery
) -> None:
    turn = make_turn()
    serve_requests(runtime, [Request(turn)])
    predict = StubPredict()
    assert runtime.model is not None
    runtime.model = LoadedModel(predict=predict, ref=runtime.model.ref)
    report = serve_requests(runtime, [Request(turn)])
    assert predict.calls == []
    assert report.outcomes == {"answered": 0, "already_answered": 1, "dead_lettered": 0}
    first, again = [Guess.model_validate(b) for b in drain_queue(memory_app, EXPORT_QUEUE)]
    assert first == again


def test_an_invalid_turn_in_a_batch_is_dead_lettered_with_its_original_body(
    runtime: Runtime, memory_app: Celery
) -> None:
    good, bad = make_turn(), make_turn(("unknown",))
    report = serve_requests(runtime, [Request(good), Request(bad)])
    assert report.dead_letters == {"invalid_turn": 1}
    [letter] = [DeadLetter.model_validate(b) for b in drain_queue(memory_app, DEAD_LETTER_QUEUE)]
    assert json.loads(letter.body)[0][0]["turn_id"] == str(bad.turn_id)
    assert memory_app.AsyncResult(str(bad.turn_id)).state == "FAILURE"
    assert memory_app.AsyncResult(str(good.turn_id)).state == "SUCCESS"


def test_a_batch_that_cannot_be_delivered_reports_so(runtime: Runtime) -> None:
    def down(*_: Any) -> None:
        raise ConnectionError("backend down")

    runtime.outbox.deliver = down  # type: ignore[method-assign]
    assert not serve_requests(runtime, [Request(make_turn())]).delivered


class FakePool:
    """Runs nothing; keeps the callbacks so a test can play the pool's part."""

    def apply_async(self, target: Any, args: Any, **callbacks: Any) -> None:
        self.callbacks = callbacks


class FakeRequest:
    """A worker request: records whether it was acknowledged or requeued."""

    def __init__(self, turn: Turn) -> None:
        self.message = task_message(turn.model_dump(mode="json"))
        self.acked = False
        self.requeued = False

    def acknowledge(self) -> None:
        self.acked = True

    def reject(self, requeue: bool = False) -> None:
        self.requeued = requeue


def _flush(count: int, monkeypatch: pytest.MonkeyPatch) -> tuple[list[FakeRequest], Any]:
    # Real requests need a live consumer; the fakes go to the pool as they are.
    monkeypatch.setattr(task_module, "_carry", lambda request: request)
    task = TurnBatchTask()
    pool = FakePool()
    task._pool = pool  # type: ignore[assignment]
    requests = [FakeRequest(make_turn()) for _ in range(count)]
    task.flush(requests)
    return requests, pool.callbacks


def test_a_batch_is_acknowledged_only_after_it_was_delivered(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests, callbacks = _flush(3, monkeypatch)
    assert not any(request.acked for request in requests)
    callbacks["callback"](BatchReport(batch_size=3, delivered=True))
    assert all(request.acked for request in requests)
    assert runtime.metrics.batch_size._sum.get() == 3


def test_an_undelivered_or_lost_batch_goes_back_to_the_queue(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests, callbacks = _flush(2, monkeypatch)
    callbacks["callback"](BatchReport(batch_size=2, delivered=False))
    assert [(r.acked, r.requeued) for r in requests] == [(False, True)] * 2
    requests, callbacks = _flush(2, monkeypatch)
    callbacks["error_callback"](RuntimeError("worker lost"))
    assert [(r.acked, r.requeued) for r in requests] == [(False, True)] * 2


class RecordingPool:
    """Runs nothing; keeps every batch sent and its callbacks, in order."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[Any], dict[str, Any]]] = []

    def apply_async(self, target: Any, args: Any, **callbacks: Any) -> None:
        self.batches.append((list(args[1][0]), callbacks))


class FakeTimer:
    """Keeps the deadlines the task arms; the test fires them."""

    def __init__(self) -> None:
        self.armed: list[tuple[float, Any]] = []

    def call_after(self, seconds: float, callback: Any) -> object:
        self.armed.append((seconds, callback))
        return object()


def windowed_task(
    monkeypatch: pytest.MonkeyPatch, *, size: int, window_s: float, slots: int, clock: Any = None
) -> tuple[TurnBatchTask, RecordingPool, FakeTimer]:
    monkeypatch.setattr(task_module, "_carry", lambda request: request)
    task = TurnBatchTask()
    task.flush_every, task.batch_window_s, task.pool_slots = size, window_s, slots
    pool, timer = RecordingPool(), FakeTimer()
    task._pool = pool  # type: ignore[assignment]
    task.use_window(timer, clock or (lambda: 0.0))
    return task, pool, timer


def arrive(task: TurnBatchTask, count: int) -> list[FakeRequest]:
    requests = [FakeRequest(make_turn()) for _ in range(count)]
    for request in requests:
        task._buffer.put(request)  # type: ignore[arg-type]
        task._pump()
    return requests


def test_turns_arriving_while_the_pool_is_busy_go_out_together_when_it_frees(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    task, pool, _ = windowed_task(monkeypatch, size=8, window_s=0.0, slots=1)
    first = arrive(task, 1)
    assert [len(batch) for batch, _ in pool.batches] == [1]  # a free process: served at once
    waiting = arrive(task, 5)
    assert len(pool.batches) == 1, "started a batch with no free pool process"
    pool.batches[0][1]["callback"](BatchReport(batch_size=1, delivered=True))
    assert first[0].acked
    assert [len(batch) for batch, _ in pool.batches] == [1, 5]
    assert pool.batches[1][0] == waiting and not any(request.acked for request in waiting)


def test_a_lost_batch_frees_its_process_for_the_next_one(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    task, pool, _ = windowed_task(monkeypatch, size=8, window_s=0.0, slots=1)
    lost = arrive(task, 1)
    arrive(task, 2)
    pool.batches[0][1]["error_callback"](RuntimeError("worker lost"))
    assert lost[0].requeued and not lost[0].acked
    assert [len(batch) for batch, _ in pool.batches] == [1, 2]


def test_a_lone_turn_waits_for_its_window_then_goes_out(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    task, pool, timer = windowed_task(
        monkeypatch, size=8, window_s=0.5, slots=2, clock=lambda: now[0]
    )
    arrive(task, 1)
    assert pool.batches == [] and [seconds for seconds, _ in timer.armed] == [0.5]
    now[0] = 0.5
    timer.armed[0][1]()
    assert [len(batch) for batch, _ in pool.batches] == [1]
