"""Drive a Celery worker through Redis: send each turn, collect its answer from the backend.

One client thread drives the load: it sends every turn that is due (or every
free slot of the closed loop) and, between sends, waits for answers, noting
when each arrived and checking it against the contract. The process's whole
CPU time is the client's cost, reply thread included.

Two clients share that loop and differ only in how turns go out and how
answers come back:

- :class:`CeleryDriver`, twentyq's ambassador: :class:`~producer.client.TurnClient`
  sends all the turns due at once in one round trip, and the answers (each a
  :class:`~producer.messages.Guess`) arrive on its reply channel;
- :class:`StockCeleryDriver`, what a user writes without twentyq:
  ``app.send_task`` to the stock worker, each answer read through its
  ``AsyncResult`` (the model's bare :class:`~producer.messages.Prediction`).

``AsyncResult.get()`` itself waits for one result at a time: it drains the
consumer once even when its own result is in hand, and hides what it drains
from everyone else, so one thread with many turns in flight cannot call it.
The stock client drains the result backend's pub/sub consumer and reads
``AsyncResult.result`` once the result message has arrived instead: the same
GET that ``get()`` starts with, and the same UNSUBSCRIBE it ends with, so
Redis sees a stock client's commands per turn.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from celery import Celery, states
from celery.result import AsyncResult
from pydantic import ValidationError

from producer.client import GuessHandle, client_for
from producer.messages import Guess, Prediction, TurnFailure
from producer.settings import ProducerSettings
from twentyq.benchmark.corpus import CorpusTurn, fresh_turn, model_input
from twentyq.benchmark.interruption import raise_if_stopped
from twentyq.benchmark.measurement import RunResult
from twentyq.benchmark.schedule import ClosedLoop, OpenLoop, Plan
from twentyq.benchmark.stock_worker import STOCK_TASK_NAME

LONGEST_WAIT_S = 0.05
# Turns submitted together when measuring the client alone (a stock client sends them singly).
SEND_CHUNK = 32

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
        self._consumer: Any = None
        # Appended from the client's reply thread too: a deque, taken with popleft.
        self._arrivals: deque[tuple[dict[str, Any], float]] = deque()

    @abstractmethod
    def submit(self, template: CorpusTurn) -> tuple[str, HandleT]:
        """Send a turn made from ``template``; (its task id, what to keep until it is answered)."""

    @abstractmethod
    def read(self, meta: dict[str, Any], handle: HandleT) -> Prediction:
        """The answer of a turn that succeeded; ValidationError when it breaks the contract."""

    def note(self, result: RunResult, answer: Prediction) -> None:
        """Anything else an answer tells about the run (nothing, unless a subclass says)."""

    def submit_many(self, templates: Sequence[CorpusTurn]) -> list[tuple[str, HandleT]]:
        """Send every turn due now; a stock client sends them one by one."""
        return [self.submit(template) for template in templates]

    def wait_for_answers(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for answers, noting each that arrives (``_note_arrival``).

        A stock client drains the Redis result backend's pub/sub consumer, the
        channel ``AsyncResult.get()`` waits on.
        """
        if self._consumer is None:
            self._consumer = self.app.backend.result_consumer
            self._consumer.on_message = self._note_arrival
        self._consumer.drain_events(timeout=timeout_s)

    def run(self, plan: Plan) -> RunResult:
        """Run one plan; every answer's latency, the client's CPU time, what never came back."""
        result = RunResult(plan.mode, plan.offered_per_s, plan.duration_s, plan.warmup_s)
        # Keep the handles: a collected AsyncResult unsubscribes from its result channel.
        pending: dict[str, tuple[float, HandleT]] = {}
        started_s, cpu_started_s = time.perf_counter(), time.process_time()
        index = 0
        while True:
            raise_if_stopped()
            now_s = time.perf_counter() - started_s
            index = self._send_due(plan, index, now_s, pending, result)
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
            self.wait_for_answers(self._wait_s(plan, index, now_s))
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
        for start in range(0, count, SEND_CHUNK):
            raise_if_stopped()
            chunk = range(start, min(start + SEND_CHUNK, count))
            self.submit_many([self.corpus[index % len(self.corpus)] for index in chunk])
        wall_s = time.perf_counter() - started_s
        cpu_s = time.process_time() - cpu_started_s
        return {
            "turns": count,
            "send_rate_per_s": round(count / wall_s, 1),
            "cpu_ms_per_send": round(cpu_s * 1000.0 / count, 3),
        }

    def _send(self, pending: dict[str, tuple[float, HandleT]], origins_s: Sequence[float]) -> None:
        templates = [
            self.corpus[(self._next_index + offset) % len(self.corpus)]
            for offset in range(len(origins_s))
        ]
        self._next_index += len(templates)
        for origin_s, (task_id, handle) in zip(origins_s, self.submit_many(templates), strict=True):
            pending[task_id] = (origin_s, handle)

    def _send_due(
        self,
        plan: Plan,
        index: int,
        now_s: float,
        pending: dict[str, tuple[float, HandleT]],
        result: RunResult,
    ) -> int:
        # Every turn due now goes out together (a bulk client sends them in one round trip).
        origins_s: list[float] = []
        if isinstance(plan, OpenLoop):
            while index < len(plan.offsets_s) and plan.offsets_s[index] <= now_s:
                origins_s.append(plan.offsets_s[index])
                index += 1
        elif isinstance(plan, ClosedLoop) and now_s < plan.duration_s:
            origins_s = [now_s] * max(plan.concurrency - len(pending), 0)
        if origins_s:
            self._send(pending, origins_s)
            result.sent += len(origins_s)
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
        while self._arrivals:
            meta, arrived_s = self._arrivals.popleft()
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


class CeleryDriver(ResultBackendDriver[GuessHandle]):
    """twentyq's client: fresh copies of the corpus turns through :class:`TurnClient`.

    Every turn due at once goes out in one ``submit_many`` (one ``LPUSH``), and the
    answers arrive on the client's reply channel, whose thread wakes this loop.
    """

    def __init__(
        self,
        app: Celery,
        settings: ProducerSettings,
        corpus: Sequence[CorpusTurn],
        *,
        answer_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(app, corpus, answer_timeout_s=answer_timeout_s)
        self.client = client_for(app, settings)
        self._woken = threading.Event()

    def submit(self, template: CorpusTurn) -> tuple[str, GuessHandle]:
        """Submit a fresh copy of the turn as an ambassador does."""
        return self.submit_many([template])[0]

    def submit_many(self, templates: Sequence[CorpusTurn]) -> list[tuple[str, GuessHandle]]:
        """Fresh copies of the turns, sent in one broker round trip."""
        handles = self.client.submit_many([fresh_turn(template) for template in templates])
        for handle in handles:
            if handle.pending is not None:
                handle.pending.add_callback(self._on_reply)
        return [(handle.turn_id, handle) for handle in handles]

    def _on_reply(self, reply: Guess | TurnFailure) -> None:
        # On the reply thread: note the arrival in the shape the loop reads.
        if isinstance(reply, TurnFailure):
            meta = {"status": states.FAILURE, "task_id": reply.turn_id, "result": reply.error}
        else:
            meta = {"status": states.SUCCESS, "task_id": str(reply.turn_id), "result": reply}
        self._note_arrival(meta)
        self._woken.set()

    def wait_for_answers(self, timeout_s: float) -> None:
        """Sleep until the reply thread brings an answer, or ``timeout_s``."""
        if self.client.replies is None:
            super().wait_for_answers(timeout_s)
            return
        self._woken.wait(timeout_s)
        self._woken.clear()

    def read(self, meta: dict[str, Any], handle: GuessHandle) -> Prediction:
        """The worker's :class:`Guess`, as the reply channel delivered it."""
        result = meta["result"]
        return result if isinstance(result, Guess) else Guess.model_validate(result)

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
