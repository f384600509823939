"""When batches start: N turns, T after the oldest turn, and only onto a free pool slot."""

from __future__ import annotations

import pytest

from worker.batching import BatchWindow


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def window(size: int = 3, window_s: float = 0.5, slots: int = 2) -> tuple[BatchWindow[int], Clock]:
    clock = Clock()
    return BatchWindow(size=size, window_s=window_s, slots=slots, clock=clock), clock


def test_a_full_batch_starts_at_once_and_the_rest_waits_for_its_window() -> None:
    batches, clock = window(size=3)
    for item in range(4):
        batches.add(item)
    assert batches.start_ready() == [[0, 1, 2]]
    assert len(batches) == 1 and batches.seconds_to_deadline() == 0.5
    clock.now += 0.125
    assert batches.start_ready() == []
    assert batches.seconds_to_deadline() == 0.375
    clock.now += 0.375
    assert batches.start_ready() == [[3]]
    assert batches.running == 2 and batches.seconds_to_deadline() is None


def test_the_window_runs_from_the_oldest_waiting_turn_not_a_free_running_timer() -> None:
    batches, clock = window(size=10, window_s=0.5)
    batches.add(1)
    clock.now += 0.375
    batches.add(2)
    clock.now += 0.125  # the first turn's window closes; the second's has 375 ms left
    assert batches.start_ready() == [[1, 2]]


def test_turns_that_arrive_while_every_slot_is_busy_join_one_bigger_batch() -> None:
    batches, clock = window(size=8, window_s=0.0, slots=1)
    batches.add(1)
    assert batches.start_ready() == [[1]]
    for item in range(2, 7):
        batches.add(item)
    clock.now += 1.0
    assert batches.start_ready() == []  # the only slot is busy, however long they wait
    assert batches.seconds_to_deadline() == 0.0
    batches.finished()
    assert batches.start_ready() == [[2, 3, 4, 5, 6]]


def test_one_turn_and_no_window_is_one_turn_per_task() -> None:
    batches, _ = window(size=1, window_s=0.0, slots=2)
    for item in range(3):
        batches.add(item)
    assert batches.start_ready() == [[0], [1]]  # one per free slot
    batches.finished()
    assert batches.start_ready() == [[2]]


def test_a_lost_batch_frees_its_slot_only_once() -> None:
    batches, _ = window(slots=1)
    batches.finished()
    assert batches.running == 0
    batches.add(1)
    batches.add(2)
    batches.add(3)
    assert batches.start_ready() == [[1, 2, 3]]


@pytest.mark.parametrize(("size", "window_s", "slots"), [(0, 0.0, 1), (1, -0.001, 1), (1, 0.0, 0)])
def test_impossible_windows_are_refused(size: int, window_s: float, slots: int) -> None:
    with pytest.raises(ValueError, match="size >= 1"):
        BatchWindow(size=size, window_s=window_s, slots=slots)
