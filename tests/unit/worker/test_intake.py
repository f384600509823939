"""The intake: screen on arrival, batch by window onto free pool slots, ack after delivery."""

from __future__ import annotations

from typing import Any

from producer.messages import DEAD_LETTER_QUEUE
from tests.unit.worker.conftest import FakeMessage, drain_queue, make_turn, task_message
from worker.intake import TurnIntake
from worker.metrics import BatchReport
from worker.runtime import Runtime


class RecordingPool:
    """Runs nothing; keeps every batch sent and its callbacks, in order."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[Any], dict[str, Any]]] = []

    def apply_async(self, target: Any, args: Any, **callbacks: Any) -> None:
        self.batches.append((list(args[0]), callbacks))


class FakeTimer:
    """Keeps the deadlines the intake arms; the test fires them."""

    def __init__(self) -> None:
        self.armed: list[tuple[float, Any]] = []

    def call_after(self, seconds: float, callback: Any) -> object:
        self.armed.append((seconds, callback))
        return object()


def intake(
    *, size: int = 8, window_s: float = 0.0, slots: int = 1, clock: Any = None
) -> tuple[TurnIntake, RecordingPool, FakeTimer]:
    pool, timer = RecordingPool(), FakeTimer()
    made = TurnIntake(
        pool, timer, batch_size=size, window_s=window_s, slots=slots, clock=clock or (lambda: 0.0)
    )
    return made, pool, timer


def arrive(target: TurnIntake, count: int) -> list[FakeMessage]:
    messages = [task_message(make_turn().model_dump(mode="json")) for _ in range(count)]
    for message in messages:
        target.on_message(message)
    return messages


def test_a_batch_is_acknowledged_only_after_it_was_delivered(runtime: Runtime) -> None:
    target, pool, _ = intake(size=3, window_s=10.0)
    messages = arrive(target, 3)
    assert not any(message.acked for message in messages)
    pool.batches[0][1]["callback"](BatchReport(batch_size=3, delivered=True))
    assert all(message.acked for message in messages)
    assert runtime.metrics.batch_size._sum.get() == 3


def test_an_undelivered_or_lost_batch_goes_back_to_the_queue(runtime: Runtime) -> None:
    target, pool, _ = intake(size=2, window_s=10.0, slots=2)
    first, second = arrive(target, 2), arrive(target, 2)
    pool.batches[0][1]["callback"](BatchReport(batch_size=2, delivered=False))
    pool.batches[1][1]["error_callback"](RuntimeError("worker lost"))
    assert [(m.acked, m.requeued) for m in first + second] == [(False, True)] * 4


def test_turns_arriving_while_the_pool_is_busy_go_out_together_when_it_frees(
    runtime: Runtime,
) -> None:
    target, pool, _ = intake(size=8, slots=1)
    first = arrive(target, 1)
    assert [len(batch) for batch, _ in pool.batches] == [1]  # a free process: served at once
    waiting = arrive(target, 5)
    assert len(pool.batches) == 1, "started a batch with no free pool process"
    pool.batches[0][1]["callback"](BatchReport(batch_size=1, delivered=True))
    assert first[0].acked
    assert [len(batch) for batch, _ in pool.batches] == [1, 5]
    assert [payload.body for payload in pool.batches[1][0]] == [m.body for m in waiting]
    assert not any(message.acked for message in waiting)


def test_a_lost_batch_frees_its_process_for_the_next_one(runtime: Runtime) -> None:
    target, pool, _ = intake(size=8, slots=1)
    lost = arrive(target, 1)
    arrive(target, 2)
    pool.batches[0][1]["error_callback"](RuntimeError("worker lost"))
    assert lost[0].requeued and not lost[0].acked
    assert [len(batch) for batch, _ in pool.batches] == [1, 2]


def test_a_lone_turn_waits_for_its_window_then_goes_out(runtime: Runtime) -> None:
    now = [0.0]
    target, pool, timer = intake(size=8, window_s=0.5, slots=2, clock=lambda: now[0])
    arrive(target, 1)
    assert pool.batches == [] and [seconds for seconds, _ in timer.armed] == [0.5]
    now[0] = 0.5
    timer.armed[0][1]()
    assert [len(batch) for batch, _ in pool.batches] == [1]


def test_a_message_for_another_task_is_dead_lettered_and_acked_not_batched(
    runtime: Runtime, memory_app: Any
) -> None:
    target, pool, _ = intake()
    message = FakeMessage(b"[[], {}, {}]", {"task": "celery.backend_cleanup", "id": "x"})
    target.on_message(message)
    assert pool.batches == [] and message.acked
    [letter] = drain_queue(memory_app, DEAD_LETTER_QUEUE)
    assert letter["reason"] == "unknown_task"
