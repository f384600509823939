"""Drive a Celery worker through Redis: send each turn, collect its answer from the backend.

One client thread does everything, so its cost is easy to see and nothing in
it contends for the GIL: it sends each turn when it is due (or when a slot of
the closed loop frees up) and between sends it drains the Redis result
backend's pub/sub consumer (the channel ``AsyncResult.get()`` waits on),
noting when each answer arrived and checking it against the contract.

Two clients share that loop and differ only in how a turn goes out and how
its answer is read:

- :class:`CeleryDriver`, twentyq's ambassador: :func:`~producer.client.submit_turn`
  to ``twentyq.turns``, each answer a :class:`~producer.messages.Guess`;
- :class:`StockCeleryDriver`, what a user writes without twentyq:
  ``app.send_task`` to the stock worker, each answer read through its
  ``AsyncResult`` (the model's bare :class:`~producer.messages.Prediction`).

``AsyncResult.get()`` itself waits for one result at a time: it drains the
consumer once even when its own result is in hand, and hides what it drains
from everyone else, so one thread with 64 turns in flight cannot call it.
The stock client reads ``AsyncResult.result`` once the result message has
arrived instead: the same GET that ``get()`` starts with, and the same
UNSUBSCRIBE it ends with, so Redis sees a stock client's commands per turn.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from celery import Celery, states
from celery.result import AsyncResult
from pydantic import ValidationError

from producer.client import GuessHandle, submit_turn
from producer.messages import Guess, Prediction
from producer.settings import ProducerSettings
from twentyq.benchmark.corpus import CorpusTurn, fresh_turn, model_input
from twentyq.benchmark.interruption import raise_if_stopped
from twentyq.benchmark.measurement import RunResult
from twentyq.benchmark.schedule import ClosedLoop, OpenLoop, Plan
from twentyq.benchmark.stock_worker import STOCK_TASK_NAME

LONGEST_WAIT_S = 0.05

HandleT = TypeVar("HandleT")


class ResultBackendDriver(ABC, Generic[HandleT]):
    """The load loop over Celery's Redis result backend; subclasses send and read answers."""

    def __init__(
        self, app: Celery, corpus: Sequence[CorpusTurn], *, answer_timeout_s: float = 30.0
    ) -> None:
        self.app = app
        self.corpus = corpus
        self.answer_timeout_s = answer_timeout_s
        self._next_index = 0
        self._arrivals: list[tuple[dict[str, Any], float]] = []

    @abstractmethod
    def submit(self, template: CorpusTurn) -> tuple[str, HandleT]:
        """Send a turn made from ``template``; (its task id, what to keep until it is answered)."""

    @abstractmethod
    def read(self, meta: dict[str, Any], handle: HandleT) -> Prediction:
        """The answer of a turn that succeeded; ValidationError when it breaks the contract."""

    def note(self, result: RunResult, answer: Prediction) -> None:
        """Anything else an answer tells about the run (nothing, unless a subclass says)."""

    def run(self, plan: Plan) -> RunResult:
        """Run one plan; every answer's latency, the client's CPU time, what never came back."""
        result = RunResult(plan.mode, plan.offered_per_s, plan.duration_s, plan.warmup_s)
        # Keep the handles: a collected AsyncResult unsubscribes from its result channel.
        pending: dict[str, tuple[float, HandleT]] = {}
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

    def measure_send_rate(self, count: int) -> dict[str, float]:
        """How fast this client can submit turns when nothing consumes them (its own ceiling).

        Build the driver on an app pointed at a scratch Redis database: the turns
        stay there unanswered.
        """
        if count < 1:
            raise ValueError("send at least one turn")
        self.submit(self.corpus[0])  # connect first
        started_s, cpu_started_s = time.perf_counter(), time.process_time()
        for index in range(count):
            raise_if_stopped()
            self.submit(self.corpus[index % len(self.corpus)])
        wall_s = time.perf_counter() - started_s
        cpu_s = time.process_time() - cpu_started_s
        return {
            "turns": count,
            "send_rate_per_s": round(count / wall_s, 1),
            "cpu_ms_per_send": round(cpu_s * 1000.0 / count, 3),
        }

    def _send(self, pending: dict[str, tuple[float, HandleT]], origin_s: float) -> None:
        template = self.corpus[self._next_index % len(self.corpus)]
        self._next_index += 1
        task_id, handle = self.submit(template)
        pending[task_id] = (origin_s, handle)

    def _send_due(
        self,
        plan: Plan,
        index: int,
        now_s: float,
        pending: dict[str, tuple[float, HandleT]],
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
        self, pending: dict[str, tuple[float, HandleT]], started_s: float, result: RunResult
    ) -> None:
        for meta, arrived_s in self._arrivals:
            if meta.get("status") not in states.READY_STATES:
                continue
            sent = pending.pop(str(meta.get("task_id")), None)
            if sent is None:
                continue
            origin_s, handle = sent
            done_s = arrived_s - started_s
            if meta["status"] != states.SUCCESS:
                result.fail(f"{meta['status']}: {meta.get('result')}")
                continue
            try:
                answer = self.read(meta, handle)
            except ValidationError as error:
                result.fail(f"the answer breaks the contract: {error}")
                continue
            result.record((done_s - origin_s) * 1000.0, done_s)
            self.note(result, answer)
        self._arrivals.clear()


class CeleryDriver(ResultBackendDriver[GuessHandle]):
    """twentyq's client: each corpus turn, with a fresh id, through ``submit_turn``."""

    def __init__(
        self,
        app: Celery,
        settings: ProducerSettings,
        corpus: Sequence[CorpusTurn],
        *,
        answer_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(app, corpus, answer_timeout_s=answer_timeout_s)
        self.settings = settings

    def submit(self, template: CorpusTurn) -> tuple[str, GuessHandle]:
        """Submit a fresh copy of the turn as an ambassador does."""
        handle = submit_turn(fresh_turn(template), app=self.app, settings=self.settings)
        return handle.turn_id, handle

    def read(self, meta: dict[str, Any], handle: GuessHandle) -> Prediction:
        """The worker's :class:`Guess`, read from the result the backend published."""
        return Guess.model_validate(meta["result"])

    def note(self, result: RunResult, answer: Prediction) -> None:
        """The worker's own view of the turn's time (``Guess.timing``)."""
        if isinstance(answer, Guess):
            result.queue_ms.append(answer.timing.queue_ms)
            result.inference_ms.append(answer.timing.inference_ms)


class StockCeleryDriver(ResultBackendDriver[AsyncResult]):
    """A stock client: ``send_task`` with the model-contract turn, then its ``AsyncResult``."""

    def submit(self, template: CorpusTurn) -> tuple[str, AsyncResult]:
        """``app.send_task`` to the stock worker's task."""
        handle = self.app.send_task(STOCK_TASK_NAME, args=[model_input(template)])
        return str(handle.id), handle

    def read(self, meta: dict[str, Any], handle: AsyncResult) -> Prediction:
        """The prediction as ``AsyncResult.result`` reads it from the backend."""
        return Prediction.model_validate(handle.result)
