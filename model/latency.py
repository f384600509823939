"""Predict latency through a loaded pyfunc, on realistic batches (the issue's targets).

Turns are mid-game states (:func:`model.benchmark.sample_turns`); every other
answer is sent as free text, a phrasing the interpreter has already seen, so
the figures are those of canonical or cached answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from model.benchmark import sample_turns
from model.engine import KnowledgeTable

MAX_BATCH64_MS = 50.0
MAX_SINGLE_MS = 10.0
Predict = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def contract_turns(
    kb: KnowledgeTable, count: int, seed: int, phrasings: Mapping[str, Sequence[str]]
) -> list[dict[str, Any]]:
    """Return ``count`` contract turns; every other answer is typed as one of ``phrasings``."""
    turns = []
    for turn in sample_turns(kb, count, seed):
        history: list[dict[str, Any]] = []
        for position, (question_id, answer) in enumerate(turn.answers):
            entry: dict[str, Any] = {"question_id": question_id, "answer": answer}
            options = phrasings.get(answer)
            if position % 2 and options:
                entry["answer_text"] = options[position % len(options)]
            history.append(entry)
        turns.append({"history": history, "rejected_guesses": list(turn.rejected_guesses)})
    return turns


def measure_predict_ms(predict: Predict, batch: list[dict[str, Any]], repeats: int) -> list[float]:
    """Milliseconds of ``repeats`` calls of ``predict(batch)`` after one warm-up call."""
    predict(batch)  # fills the interpreter cache and warms the engine
    times_ms = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict(batch)
        times_ms.append((time.perf_counter() - started) * 1000.0)
    return times_ms


def measure_latency(
    predict: Predict,
    kb: KnowledgeTable,
    phrasings: Mapping[str, Sequence[str]],
    repeats: int = 50,
    seed: int = 0,
) -> dict[str, float]:
    """Median and p95 ms of a batch of 64 turns and of one (long) turn, through ``predict``."""
    batch = contract_turns(kb, 64, seed, phrasings)
    figures: dict[str, float] = {}
    longest = max(batch, key=lambda turn: len(turn["history"]))
    for name, turns in (("batch64", batch), ("single", [longest])):
        times_ms = measure_predict_ms(predict, turns, repeats)
        figures[f"predict_{name}_median_ms"] = float(np.median(times_ms))
        figures[f"predict_{name}_p95_ms"] = float(np.percentile(times_ms, 95))
    return figures
