"""Drive the Celery pipeline: turns go out through ``producer.client.submit_turn``.

One client thread does everything, so its cost is easy to see and nothing in
it contends for the GIL: it sends each turn when it is due (or when a slot of
the closed loop frees up) with :func:`~producer.client.submit_turn`, exactly as
an ambassador does, and between sends it drains the producer's own result
consumer (the result backend's pub/sub channel that ``handle.get()`` waits
on), noting when each guess arrived and checking it against the contract.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from celery import Celery, states
from pydantic import ValidationError

from producer.client import GuessHandle, submit_turn
from producer.messages import Guess
from producer.settings import ProducerSettings
from twentyq.benchmark.corpus import CorpusTurn, fresh_turn
from twentyq.benchmark.interruption import raise_if_stopped
from twentyq.benchmark.measurement import RunResult
from twentyq.benchmark.schedule import ClosedLoop, OpenLoop, Plan

LONGEST_WAIT_S = 0.05


class CeleryDriver:
    """Sends corpus turns to ``twentyq.turns`` and collects their guesses from the backend."""

    def __init__(
        self,
        app: Celery,
        settings: ProducerSettings,
        corpus: Sequence[CorpusTurn],
        *,
        answer_timeout_s: float = 30.0,
    ) -> None:
        self.app = app
        self.settings = settings
        self.corpus = corpus
        self.answer_timeout_s = answer_timeout_s
        self._next_index = 0
        self._arrivals: list[tuple[dict[str, Any], float]] = []

    def _send(self, pending: dict[str, tuple[float, GuessHandle]], origin_s: float) -> None:
        template = self.corpus[self._next_index % len(self.corpus)]
        self._next_index += 1
        handle = submit_turn(fresh_turn(template), app=self.app, settings=self.settings)
        # Keep the handle: a collected AsyncResult unsubscribes from its result channel.
        pending[handle.turn_id] = (origin_s, handle)

    def run(self, plan: Plan) -> RunResult:
        """Run one plan; every answer's latency, the client's CPU time, what never came back."""
        result = RunResult(plan.mode, plan.offered_per_s, plan.duration_s, plan.warmup_s)
        pending: dict[str, tuple[float, GuessHandle]] = {}
        started_s, cpu_started_s = time.perf_counter(), time.process_time()
        consumer = None
        index = 0
        while True:
            raise_if_stopped()
            now_s = time.perf_counter() - started_s
            index = self._send_due(plan, index, now_s, pending, result)
            if consumer is None:
                consumer = self.app.backend.result_consumer
                consumer.on_message = self._note_arrival
            done_sending = (
                index >= len(plan.offsets_s)
                if isinstance(plan, OpenLoop)
                else now_s >= plan.duration_s
            )
            if done_sending and not pending:
                break
            if now_s > plan.duration_s + self.answer_timeout_s:
                result.lost = len(pending)
                break
            consumer.drain_events(timeout=self._wait_s(plan, index, now_s))
            self._take_arrivals(pending, started_s, result)
        result.wall_s = time.perf_counter() - started_s
        result.client_cpu_s = time.process_time() - cpu_started_s
        return result

    def _send_due(
        self,
        plan: Plan,
        index: int,
        now_s: float,
        pending: dict[str, tuple[float, GuessHandle]],
        result: RunResult,
    ) -> int:
        if isinstance(plan, OpenLoop):
            while index < len(plan.offsets_s) and plan.offsets_s[index] <= now_s:
                self._send(pending, plan.offsets_s[index])
                index += 1
                result.sent += 1
        elif isinstance(plan, ClosedLoop):
            while now_s < plan.duration_s and len(pending) < plan.concurrency:
                self._send(pending, now_s)
                result.sent += 1
        return index

    @staticmethod
    def _wait_s(plan: Plan, index: int, now_s: float) -> float:
        if isinstance(plan, OpenLoop) and index < len(plan.offsets_s):
            return min(max(plan.offsets_s[index] - now_s, 0.0), LONGEST_WAIT_S)
        return LONGEST_WAIT_S

    def _note_arrival(self, meta: dict[str, Any]) -> None:
        self._arrivals.append((meta, time.perf_counter()))

    def _take_arrivals(
        self, pending: dict[str, tuple[float, GuessHandle]], started_s: float, result: RunResult
    ) -> None:
        for meta, arrived_s in self._arrivals:
            if meta.get("status") not in states.READY_STATES:
                continue
            sent = pending.pop(str(meta.get("task_id")), None)
            if sent is None:
                continue
            origin_s = sent[0]
            done_s = arrived_s - started_s
            if meta["status"] != states.SUCCESS:
                result.fail(f"{meta['status']}: {meta.get('result')}")
                continue
            try:
                guess = Guess.model_validate(meta["result"])
            except ValidationError as error:
                result.fail(f"the guess breaks the contract: {error}")
                continue
            result.record((done_s - origin_s) * 1000.0, done_s)
            result.queue_ms.append(guess.timing.queue_ms)
            result.inference_ms.append(guess.timing.inference_ms)
        self._arrivals.clear()


def measure_send_rate(
    app: Celery, settings: ProducerSettings, corpus: Sequence[CorpusTurn], count: int
) -> dict[str, float]:
    """How fast this client can submit turns when nothing consumes them (its own ceiling).

    Point ``app`` at a scratch Redis database: the turns stay there unanswered.
    """
    if count < 1:
        raise ValueError("send at least one turn")
    submit_turn(fresh_turn(corpus[0]), app=app, settings=settings)  # connect first
    started_s, cpu_started_s = time.perf_counter(), time.process_time()
    for index in range(count):
        raise_if_stopped()
        submit_turn(fresh_turn(corpus[index % len(corpus)]), app=app, settings=settings)
    wall_s = time.perf_counter() - started_s
    cpu_s = time.process_time() - cpu_started_s
    return {
        "turns": count,
        "send_rate_per_s": round(count / wall_s, 1),
        "cpu_ms_per_send": round(cpu_s * 1000.0 / count, 3),
    }
