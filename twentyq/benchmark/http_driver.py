"""Drive ``mlflow models serve`` over HTTP/1.1 keep-alive, the way the pipeline is driven.

One asyncio loop in one thread holds ``connections`` keep-alive connections
(the same concurrency as the Celery client's closed loop). Each request is one
turn in MLflow's ``{"inputs": [turn]}`` format; each answer's
``predictions[0]`` is checked against the model contract
(:class:`producer.messages.Prediction`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from producer.messages import Prediction
from twentyq.benchmark.corpus import CorpusTurn, model_input
from twentyq.benchmark.errors import BenchError
from twentyq.benchmark.interruption import raise_if_stopped
from twentyq.benchmark.measurement import RunResult
from twentyq.benchmark.schedule import ClosedLoop, OpenLoop, Plan


def invocation_body(turn: CorpusTurn) -> bytes:
    """The ``/invocations`` request for one turn: the model contract's part of it."""
    return json.dumps({"inputs": [model_input(turn)]}).encode()


def check_invocation_answer(body: bytes) -> Prediction:
    """The prediction in an ``/invocations`` answer, or :class:`BenchError` saying what is wrong."""
    try:
        predictions = json.loads(body)["predictions"]
        if not isinstance(predictions, list) or len(predictions) != 1:
            raise BenchError(f"expected one prediction, got {predictions!r:.200}")
        return Prediction.model_validate(predictions[0])
    except (ValueError, KeyError, TypeError, ValidationError) as error:
        raise BenchError(f"the answer breaks the model contract: {error}") from error


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        if not status_line:
            self.close()
            raise BenchError("the server closed the connection")
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class HttpDriver:
    """Sends corpus turns to ``POST /invocations`` and checks every answer."""

    def __init__(
        self,
        host: str,
        port: int,
        corpus: Sequence[CorpusTurn],
        *,
        connections: int,
        answer_timeout_s: float = 30.0,
        path: str = "/invocations",
    ) -> None:
        self.host, self.port, self.path = host, port, path
        self.bodies = [invocation_body(turn) for turn in corpus]
        self.connections = connections
        self.answer_timeout_s = answer_timeout_s
        self._next_index = 0

    def run(self, plan: Plan) -> RunResult:
        """Run one plan against the server; same figures as the Celery driver's."""
        return asyncio.run(self._run(plan))

    async def _run(self, plan: Plan) -> RunResult:
        result = RunResult(plan.mode, plan.offered_per_s, plan.duration_s, plan.warmup_s)
        idle: asyncio.Queue[_Connection] = asyncio.Queue()
        for _ in range(self.connections):
            idle.put_nowait(_Connection(self.host, self.port))
        started_s, cpu_started_s = time.perf_counter(), time.process_time()

        async def one(origin_s: float) -> None:
            connection = await idle.get()
            result.sent += 1
            try:
                await self._invoke(connection)
            except (OSError, asyncio.IncompleteReadError, BenchError) as error:
                connection.close()
                result.fail(str(error))
                return
            finally:
                idle.put_nowait(connection)
            done_s = time.perf_counter() - started_s
            result.record((done_s - origin_s) * 1000.0, done_s)

        tasks = await self._start(plan, one, started_s)
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=self.answer_timeout_s)
        except TimeoutError:
            result.lost = sum(1 for task in tasks if not task.done())
        while not idle.empty():
            idle.get_nowait().close()
        result.wall_s = time.perf_counter() - started_s
        result.client_cpu_s = time.process_time() - cpu_started_s
        return result

    async def _start(self, plan: Plan, one: Any, started_s: float) -> list[asyncio.Task[None]]:
        if isinstance(plan, OpenLoop):
            tasks = []
            for offset_s in plan.offsets_s:
                raise_if_stopped()
                delay_s = offset_s - (time.perf_counter() - started_s)
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
                tasks.append(asyncio.create_task(one(offset_s)))
            return tasks
        assert isinstance(plan, ClosedLoop)

        async def keep_busy() -> None:
            while (now_s := time.perf_counter() - started_s) < plan.duration_s:
                raise_if_stopped()
                await one(now_s)

        return [asyncio.create_task(keep_busy()) for _ in range(plan.concurrency)]

    async def _invoke(self, connection: _Connection) -> None:
        if self.path != "/invocations":  # a no-op endpoint: only the round trip counts
            status, _ = await connection.request("GET", self.path)
        else:
            body = self.bodies[self._next_index % len(self.bodies)]
            self._next_index += 1
            status, answer = await connection.request("POST", self.path, body)
            if status == 200:
                check_invocation_answer(answer)
        if status != 200:
            raise BenchError(f"HTTP {status} from {self.path}")
