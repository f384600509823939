"""Time ``Engine.decide`` on realistic turns: ``python -m model.benchmark``.

Turns are mid-game states of simulated truthful players (0-19 answered
questions, up to two rejected guesses), so the batch looks like production's.
Prints, for a batch and for one turn, the wall-clock median and 95th
percentile per call and the mean CPU time per call.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import numpy as np

from model.engine import Engine, EngineConfig, EngineTurn, KnowledgeTable
from model.likelihood import ANSWER_CLASSES
from model.simulation import sample_answers


def sample_turns(kb: KnowledgeTable, count: int, seed: int) -> list[EngineTurn]:
    """Return ``count`` random mid-game turns answered truthfully about random secrets."""
    rng = np.random.default_rng(seed)
    p_yes = np.asarray(kb.p_yes)
    n_nouns, n_questions = p_yes.shape
    turns = []
    for _ in range(count):
        secret = int(rng.integers(n_nouns))
        asked = rng.choice(n_questions, size=min(int(rng.integers(20)), n_questions), replace=False)
        classes = sample_answers(p_yes[secret, asked], 0.0, rng)
        answers = tuple(
            (kb.question_ids[int(q)], ANSWER_CLASSES[int(k)])
            for q, k in zip(asked, classes, strict=True)
        )
        rejected = tuple(kb.nouns[int(i)] for i in rng.choice(n_nouns, size=int(rng.integers(3))))
        turns.append(EngineTurn(answers, rejected))
    return turns


def time_decide(
    engine: Engine, batches: Sequence[Sequence[EngineTurn]], repeats: int
) -> dict[str, float]:
    """Return wall-clock median and p95 and mean CPU milliseconds of ``engine.decide`` calls.

    The calls cycle through ``batches``.
    """
    engine.decide(batches[0])  # warm caches before timing
    times_ms = []
    cpu_started = time.process_time()
    for repeat in range(repeats):
        batch = batches[repeat % len(batches)]
        started = time.perf_counter()
        engine.decide(batch)
        times_ms.append((time.perf_counter() - started) * 1000.0)
    # CPU time is what a call costs on an idle machine; wall time includes waiting for a core.
    cpu_ms = (time.process_time() - cpu_started) * 1000.0 / repeats
    return {
        "median_ms": float(np.median(times_ms)),
        "p95_ms": float(np.percentile(times_ms, 95)),
        "cpu_mean_ms": cpu_ms,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Measure ``decide`` on the packaged knowledge base and print JSON figures."""
    parser = argparse.ArgumentParser(prog="python -m model.benchmark", description=__doc__)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--blas-threads", type=int, default=1, help="BLAS threads per call; 0 leaves them alone"
    )
    args = parser.parse_args(argv)
    from model.knowledge_base import load_knowledge_base  # noqa: PLC0415 (heavy, only here)

    kb = load_knowledge_base()
    engine = Engine(kb, EngineConfig(blas_threads=args.blas_threads or None))
    turns = sample_turns(kb, args.batch_size, args.seed)
    figures = {
        "nouns": len(kb.nouns),
        "questions": len(kb.question_ids),
        "blas_threads": args.blas_threads or None,
        f"batch_{args.batch_size}": time_decide(engine, [turns], args.repeats),
        "single_turn": time_decide(engine, [[turn] for turn in turns], args.repeats),
    }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
