"""The served scenarios: start the server, measure saturation and offered loads, stop it.

Each served scenario runs the same phases with the same client: a closed loop
(``in_flight`` requests outstanding) for saturation throughput, then open
loops at fixed fractions of it for latency, then the memory of every server
process while it is still warm.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from twentyq.benchmark.corpus import CorpusTurn
from twentyq.benchmark.http_driver import HttpDriver, invocation_body
from twentyq.benchmark.measurement import RunResult
from twentyq.benchmark.schedule import ClosedLoop, OpenLoop, offered_rates_per_s
from twentyq.benchmark.service import (
    cpu_seconds,
    mean_batch_size,
    memory_of_tree,
    process_tree,
    start_mlflow_serve,
)
from twentyq.supervisor import Supervisor

Say = Callable[[str], None]
BatchCounter = Callable[[], tuple[float, float] | None]


class Driver(Protocol):
    """Anything that runs a load plan against a target."""

    def run(self, plan: ClosedLoop | OpenLoop) -> RunResult:
        """Run the plan; the raw result."""


@dataclass(frozen=True)
class LoadOptions:
    """How long and how hard each served scenario is driven."""

    duration_s: float
    in_flight: int
    fractions: Sequence[float]
    answer_timeout_s: float = 30.0
    ready_timeout_s: float = 300.0
    seed: int = 0


def measure_loads(
    driver: Driver,
    options: LoadOptions,
    say: Say,
    watched: Mapping[str, Sequence[int]],
    batch_counter: BatchCounter | None = None,
) -> dict[str, Any]:
    """Saturation throughput (closed loop), then latency at each offered load (open loop).

    ``watched`` names the server's processes (role -> pids); their CPU time during
    the saturation run, per answered turn, shows where a turn's cost goes.
    ``batch_counter`` reads the worker's batch-size histogram (turns, batches).
    """
    warmup_s = min(1.0, options.duration_s / 4)
    before_s = {role: cpu_seconds(pids) for role, pids in watched.items()}
    saturation, batch_size = _run(
        driver, ClosedLoop(options.in_flight, options.duration_s, warmup_s), batch_counter
    )
    answered = max(len(saturation.latencies_ms), 1)
    cpu_ms_per_turn = {
        role: round((cpu_seconds(pids) - before_s[role]) * 1000.0 / answered, 3)
        for role, pids in watched.items()
    }
    cpu_ms_per_turn["client (this process)"] = round(saturation.client_cpu_s * 1000.0 / answered, 3)
    say(f"  CPU ms per turn at saturation: {cpu_ms_per_turn}")
    say(
        f"  saturation: {saturation.throughput_per_s:.0f} turns/s with {options.in_flight} "
        f"in flight (client CPU {saturation.client_cpu_ms_per_request:.2f} ms/turn, "
        f"mean batch {_show(batch_size)})"
    )
    loads = []
    rates = offered_rates_per_s(max(saturation.throughput_per_s, 1.0), options.fractions)
    for fraction, rate in zip(options.fractions, rates, strict=True):
        plan = OpenLoop(rate, options.duration_s, seed=options.seed)
        run, batch_size_at_load = _run(driver, plan, batch_counter)
        latency = run.to_dict()["latency_ms"] or {}
        say(
            f"  {fraction:.0%} load ({rate:.0f}/s offered): {run.throughput_per_s:.0f}/s answered, "
            f"p50 {latency.get('p50_ms', float('nan')):.1f} ms, "
            f"p99 {latency.get('p99_ms', float('nan')):.1f} ms, lost {run.lost}, "
            f"mean batch {_show(batch_size_at_load)}"
        )
        loads.append({"fraction": fraction, **run.to_dict(), "mean_batch_size": batch_size_at_load})
    return {
        "saturation_per_s": round(saturation.throughput_per_s, 1),
        "cpu_ms_per_turn": cpu_ms_per_turn,
        "saturation": {**saturation.to_dict(), "mean_batch_size": batch_size},
        "loads": loads,
    }


def _run(
    driver: Driver, plan: ClosedLoop | OpenLoop, batch_counter: BatchCounter | None
) -> tuple[RunResult, float | None]:
    before = batch_counter() if batch_counter else None
    run = driver.run(plan)
    after = batch_counter() if batch_counter else None
    size = mean_batch_size(before, after)
    return run, None if size is None else round(size, 2)


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def run_mlflow_scenario(
    supervisor: Supervisor,
    *,
    model_uri: str,
    tracking_uri: str,
    workers: int,
    corpus: Sequence[CorpusTurn],
    options: LoadOptions,
    say: Say,
) -> dict[str, Any]:
    """``mlflow models serve`` of the same version, driven over HTTP with the same concurrency."""
    say(f"starting mlflow models serve -m {model_uri} --env-manager local -w {workers}")
    child, port, cold_start_s = start_mlflow_serve(
        supervisor,
        model_uri,
        tracking_uri=tracking_uri,
        workers=workers,
        probe_body=invocation_body(corpus[0]),
        timeout_s=options.ready_timeout_s,
    )
    say(f"  process start to first answer: {cold_start_s:.1f} s")
    ping = HttpDriver("127.0.0.1", port, corpus, connections=options.in_flight, path="/ping").run(
        ClosedLoop(options.in_flight, 2.0, 0.5)
    )
    say(f"  client against GET /ping: {ping.throughput_per_s:.0f} requests/s")
    driver = HttpDriver(
        "127.0.0.1",
        port,
        corpus,
        connections=options.in_flight,
        answer_timeout_s=options.answer_timeout_s,
    )
    figures = measure_loads(driver, options, say, {"mlflow serve": process_tree(child.process.pid)})
    memory = memory_of_tree(child.process.pid)
    supervisor.stop(child)
    return {
        "server": {"workers": workers, "model_uri": model_uri},
        "cold_start_s": round(cold_start_s, 2),
        "memory": memory,
        "client_ping": {
            "requests_per_s": round(ping.throughput_per_s, 1),
            "client_cpu_ms_per_request": round(ping.client_cpu_ms_per_request, 3),
        },
        **figures,
    }
