"""The limit: ``predict`` on batches of the pinned model, in process, no queue.

The pool has the worker's shape: ``processes`` forked children (as the
prefork pool forks after loading the model), each with the worker's thread
counts, each calling ``predict`` back to back on batches of corpus turns.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Sequence
from typing import Any

from producer.stats import LatencySummary
from twentyq.benchmark.corpus import CorpusTurn, model_input
from worker.model_loader import PredictFunction, set_thread_counts
from worker.settings import WorkerSettings

# Set before forking: children inherit the warm model instead of pickling it.
_shared: dict[str, Any] = {}


def model_inputs(corpus: Sequence[CorpusTurn], batch_size: int, batches: int) -> list[list[Any]]:
    """``batches`` batches of ``batch_size`` model-contract turns, cycling through the corpus."""
    if batch_size < 1 or batches < 1 or not corpus:
        raise ValueError("need a non-empty corpus, batch_size >= 1 and batches >= 1")
    turns = [model_input(turn) for turn in corpus]
    return [
        [turns[(start * batch_size + offset) % len(turns)] for offset in range(batch_size)]
        for start in range(batches)
    ]


def time_predict(
    predict: PredictFunction, batches: Sequence[list[Any]], duration_s: float
) -> tuple[int, float, list[float]]:
    """Call ``predict`` back to back for ``duration_s``: (turns served, seconds, ms per call)."""
    predict(batches[0])
    calls_ms: list[float] = []
    served = 0
    started_s = time.perf_counter()
    while (now_s := time.perf_counter()) - started_s < duration_s:
        batch = batches[len(calls_ms) % len(batches)]
        predict(batch)
        calls_ms.append((time.perf_counter() - now_s) * 1000.0)
        served += len(batch)
    return served, time.perf_counter() - started_s, calls_ms


def _child(duration_s: float) -> tuple[int, float, list[float], float]:
    # The bench turns SIGTERM into KeyboardInterrupt; a pool child must simply end on it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_thread_counts(_shared["settings"])
    cpu_started_s = time.process_time()
    served, seconds, calls_ms = time_predict(_shared["predict"], _shared["batches"], duration_s)
    return served, seconds, calls_ms, time.process_time() - cpu_started_s


def measure_limit(
    predict: PredictFunction,
    corpus: Sequence[CorpusTurn],
    settings: WorkerSettings,
    duration_s: float,
) -> dict[str, Any]:
    """Throughput of ``settings.concurrency`` processes predicting batches of ``batch_size``."""
    _shared.update(
        predict=predict, settings=settings, batches=model_inputs(corpus, settings.batch_size, 64)
    )
    processes = settings.concurrency
    context = multiprocessing.get_context("fork")
    with context.Pool(processes) as pool:
        outcomes = pool.map(_child, [duration_s] * processes)
    served = sum(outcome[0] for outcome in outcomes)
    seconds = max(outcome[1] for outcome in outcomes)
    calls_ms = [ms for outcome in outcomes for ms in outcome[2]]
    cpu_s = sum(outcome[3] for outcome in outcomes)
    summary = LatencySummary.of(calls_ms)
    return {
        "throughput_per_s": round(served / seconds, 1),
        "batch_size": settings.batch_size,
        "processes": processes,
        "threads_per_process": settings.torch_threads or settings.threads_per_process,
        "predict_ms": summary.to_dict() if summary else None,
        "cpu_ms_per_turn": {"predict": round(cpu_s * 1000.0 / max(served, 1), 3)},
    }


def measure_batch_sizes(
    predict: PredictFunction, corpus: Sequence[CorpusTurn], sizes: Sequence[int], duration_s: float
) -> dict[str, dict[str, float]]:
    """One process: turns/s and ms per call of ``predict`` at each batch size (the curve)."""
    curve = {}
    for size in sizes:
        served, seconds, calls_ms = time_predict(
            predict, model_inputs(corpus, size, 16), duration_s
        )
        summary = LatencySummary.of(calls_ms)
        curve[str(size)] = {
            "throughput_per_s": round(served / seconds, 1),
            "p50_ms": round(summary.p50_ms, 3) if summary else 0.0,
            "p99_ms": round(summary.p99_ms, 3) if summary else 0.0,
        }
    return curve
