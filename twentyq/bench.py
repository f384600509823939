"""``twentyq bench`` (``make bench``): throughput and latency of five ways to serve the model.

1. the limit: ``predict`` on batches in process, no queue;
2. the Celery pipeline through Redis with batching on;
3. the same pipeline with one turn per task (N=1, T=0);
4. a stock Celery app (a plain ``@app.task``, stock transport, ``send_task`` client);
5. ``mlflow models serve`` of the same registered version, over HTTP.

It starts a private redis-server, the workers and the MLflow server as
children, stops every one of them when it ends (also on Ctrl-C), and writes
``bench.json``, ``bench.md`` and ``bench.png`` under ``--output``.
docs/benchmarks.md explains the method and the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from producer.errors import TwentyQError
from producer.pin import describe_pin_of
from producer.player import load_answer_table
from producer.settings import load_producer_settings
from twentyq.benchmark.celery_scenario import (
    check_celery_client,
    check_stock_client,
    run_celery_scenario,
    run_stock_celery_scenario,
)
from twentyq.benchmark.corpus import CorpusTurn, describe_corpus, replay_games
from twentyq.benchmark.interruption import stop_on_signals
from twentyq.benchmark.limit import measure_batch_sizes, measure_limit
from twentyq.benchmark.report import evaluate_targets, write_report
from twentyq.benchmark.scenario import LoadOptions, run_mlflow_scenario
from twentyq.benchmark.service import WorkerShape, start_redis
from twentyq.demo import DemoOptions, ensure_pinned_model, knowledge_base_path
from twentyq.supervisor import Supervisor
from worker.app import freeze_heap
from worker.model_loader import LoadedModel, load_pinned_model, set_thread_counts
from worker.settings import WorkerSettings

SCENARIOS = ("limit", "batched", "unbatched", "stock_celery", "mlflow_serve")
CELERY_SCENARIOS = ("batched", "unbatched", "stock_celery")
CLIENT_HOW = (
    "the bench process itself, one load thread: batched and unbatched send every turn due "
    "at once through producer.client.TurnClient (one LPUSH) and read guesses from its reply "
    "channel (one reply thread, counted in the client's CPU); stock_celery sends each turn "
    "with a stock app.send_task, waits on the Redis result backend's pub/sub channel and "
    "reads each answer with AsyncResult.result (the GET that get() starts with); mlflow "
    "serve is driven by one asyncio loop over keep-alive HTTP/1.1 connections. Open-loop "
    "latency counts from the moment a turn was due."
)


@dataclass(frozen=True)
class BenchOptions:
    """What ``twentyq bench`` was asked to measure."""

    output_dir: Path = Path("bench-results")
    duration_s: float = 8.0
    batch_size: int = 32
    batch_window_ms: int = 0
    concurrency: int = 2
    in_flight: int = 256
    games: int = 150
    seed: int = 0
    scenarios: tuple[str, ...] = SCENARIOS
    client_check_turns: int = 2000
    ready_timeout_s: float = 300.0


def parse_args(argv: Sequence[str]) -> BenchOptions:
    """Options of ``twentyq bench``."""
    parser = argparse.ArgumentParser(prog="twentyq bench", description=__doc__.split("\n")[0])
    defaults = BenchOptions()
    parser.add_argument("--output", type=Path, default=defaults.output_dir, help="results folder")
    parser.add_argument("--duration-s", type=float, default=None, help="seconds per load run (8)")
    parser.add_argument("--quick", action="store_true", help="short runs (3 s), fewer games")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="N (32)")
    parser.add_argument(
        "--batch-window-ms", type=int, default=defaults.batch_window_ms, help="T (0)"
    )
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency, help="processes")
    parser.add_argument("--in-flight", type=int, default=defaults.in_flight, help="closed loop")
    parser.add_argument("--games", type=int, default=None, help="games replayed for the corpus")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset")
    args = parser.parse_args(list(argv))
    try:
        scenarios = parse_scenarios(args.scenarios)
    except ValueError as error:
        parser.error(str(error))
    if min(args.batch_size, args.concurrency, args.in_flight) < 1 or args.batch_window_ms < 0:
        parser.error("--batch-size, --concurrency and --in-flight must be at least 1")
    duration_s = args.duration_s or (3.0 if args.quick else defaults.duration_s)
    if duration_s < 1.0:
        parser.error("--duration-s must be at least 1")
    return BenchOptions(
        output_dir=args.output,
        duration_s=duration_s,
        batch_size=args.batch_size,
        batch_window_ms=args.batch_window_ms,
        concurrency=args.concurrency,
        in_flight=args.in_flight,
        games=args.games or (40 if args.quick else defaults.games),
        seed=args.seed,
        scenarios=scenarios,
        client_check_turns=500 if args.quick else defaults.client_check_turns,
    )


def parse_scenarios(text: str) -> tuple[str, ...]:
    """The scenarios named in a comma-separated list, in the order the bench runs them.

    Raises ValueError, saying which names exist, on an unknown name or an empty list.
    """
    named = {name.strip() for name in text.split(",") if name.strip()}
    unknown = sorted(named - set(SCENARIOS))
    if unknown or not named:
        raise ValueError(
            f"--scenarios takes names from {', '.join(SCENARIOS)} "
            f"(got {', '.join(unknown) or 'none'})"
        )
    return tuple(name for name in SCENARIOS if name in named)


def say(text: str) -> None:
    """A progress line."""
    print(f"==> {text}", flush=True)


def _load_model(options: BenchOptions) -> tuple[LoadedModel, WorkerSettings, float]:
    settings = WorkerSettings(batch_size=options.batch_size, concurrency=options.concurrency)
    say(f"loading the pinned model in process: {describe_pin_of(settings)}")
    started_s = time.monotonic()
    set_thread_counts(settings)
    model = load_pinned_model(settings)
    return model, settings, time.monotonic() - started_s


def use_a_resolving_pin(supervisor: Supervisor, environ: MutableMapping[str, str]) -> None:
    """Point this process and its children at a pin that resolves, training one if need be.

    As ``make demo`` does: the committed pin when it resolves in this MLflow store,
    else the private ``.twentyq/model_version.json``, trained and pinned on first use.
    A pin named by ``TWENTYQ_PIN_PATH`` or ``WORKER_PIN_PATH`` is the one used (and
    trained into when it does not resolve).
    """
    env = dict(environ)
    if "WORKER_PIN_PATH" in env and "TWENTYQ_PIN_PATH" not in env:
        env["TWENTYQ_PIN_PATH"] = env["WORKER_PIN_PATH"]
    env = ensure_pinned_model(supervisor, env, quick=False, state_dir=DemoOptions().state_dir)
    if "TWENTYQ_PIN_PATH" in env:
        environ["TWENTYQ_PIN_PATH"] = env["TWENTYQ_PIN_PATH"]


def run_bench(options: BenchOptions, supervisor: Supervisor, report: dict[str, Any]) -> None:
    """Every step; figures go into ``report`` as they come, so an interrupted run keeps them."""
    use_a_resolving_pin(supervisor, os.environ)
    model, settings, load_s = _load_model(options)
    report["model"] = {**model.ref.model_dump(), "in_process_load_s": round(load_s, 2)}
    say(f"model {model.ref.name} version {model.ref.version} loaded in {load_s:.1f} s")
    table = load_answer_table(knowledge_base_path(DemoOptions(), load_producer_settings()))
    corpus = replay_games(model.predict, model.ref, table, games=options.games, seed=options.seed)
    report["corpus"] = describe_corpus(corpus)
    # The bench holds a loaded model too: keep full collections of it out of the client's runs.
    freeze_heap()
    say(f"corpus: {report['corpus']}")
    load = LoadOptions(
        duration_s=options.duration_s,
        in_flight=options.in_flight,
        fractions=(0.25, 0.5, 0.9),
        ready_timeout_s=options.ready_timeout_s,
        seed=options.seed,
    )
    _measure_pipelines(
        options, supervisor, report, corpus, load=load, tracking_uri=settings.tracking_uri
    )
    if "mlflow_serve" in options.scenarios:
        say("scenario mlflow_serve")
        report["scenarios"]["mlflow_serve"] = run_mlflow_scenario(
            supervisor,
            model_uri=f"models:/{model.ref.name}/{model.ref.version}",
            tracking_uri=settings.tracking_uri,
            workers=options.concurrency,
            corpus=corpus,
            options=load,
            say=say,
        )
    # Last: its forked pool must not share the machine's state with the served runs.
    if "limit" in options.scenarios:
        report["scenarios"]["limit"] = _measure_limit(model, settings, corpus, options)


def _measure_limit(
    model: LoadedModel, settings: WorkerSettings, corpus: list[CorpusTurn], options: BenchOptions
) -> dict[str, Any]:
    say(
        f"the limit: predict on batches of {options.batch_size}, "
        f"{options.concurrency} forked process(es)"
    )
    limit = measure_limit(model.predict, corpus, settings, options.duration_s)
    sizes = sorted({1, options.batch_size, 64})
    limit["batch_curve"] = measure_batch_sizes(model.predict, corpus, sizes, 2.0)
    limit["saturation_per_s"] = limit["throughput_per_s"]
    say(f"  {limit['throughput_per_s']:.0f} turns/s; curve {limit['batch_curve']}")
    return limit


def _measure_pipelines(
    options: BenchOptions,
    supervisor: Supervisor,
    report: dict[str, Any],
    corpus: list[CorpusTurn],
    *,
    load: LoadOptions,
    tracking_uri: str,
) -> None:
    served = [name for name in CELERY_SCENARIOS if name in options.scenarios]
    if not served:
        return
    say("starting a private redis-server")
    broker_url, redis_pid = start_redis(supervisor, options.output_dir / "redis")
    if {"batched", "unbatched"} & set(served):
        report["client"]["celery_send"] = check_celery_client(
            broker_url, corpus, options.client_check_turns, say
        )
    if "stock_celery" in served:
        report["client"]["stock_celery_send"] = check_stock_client(
            broker_url, corpus, options.client_check_turns, say
        )
    shapes = {
        "batched": WorkerShape(options.batch_size, options.batch_window_ms, options.concurrency),
        "unbatched": WorkerShape(1, 0, options.concurrency),
        "stock_celery": WorkerShape(1, 0, options.concurrency),
    }
    for name in served:
        say(f"scenario {name}")
        run = run_stock_celery_scenario if name == "stock_celery" else run_celery_scenario
        report["scenarios"][name] = run(
            supervisor,
            f"worker-{name}",
            shapes[name],
            broker_url=broker_url,
            redis_pid=redis_pid,
            tracking_uri=tracking_uri,
            corpus=corpus,
            options=load,
            say=say,
        )


def new_report(options: BenchOptions, argv: Sequence[str]) -> dict[str, Any]:
    """The report skeleton: the conditions of the run."""
    return {
        "command": " ".join(["twentyq", "bench", *argv]),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": [round(value, 2) for value in os.getloadavg()],
            "load_average_after": None,
            "python": platform.python_version(),
        },
        "options": {
            **{key: str(value) for key, value in options.__dict__.items()},
        },
        "model": {"name": "?", "version": "?"},
        "corpus": {"turns": 0, "games": 0, "history_length": {"mean": 0}, "free_text_share": 0},
        "client": {"how": CLIENT_HOW},
        "scenarios": {},
        "targets": [],
    }


def finish_report(report: dict[str, Any], options: BenchOptions, started_s: float) -> None:
    """Targets, the after-run conditions, and the three files."""
    report["machine"]["load_average_after"] = [round(value, 2) for value in os.getloadavg()]
    report["elapsed_s"] = round(time.monotonic() - started_s, 1)
    report["targets"] = [target.to_dict() for target in evaluate_targets(report["scenarios"])]
    paths = write_report(report, options.output_dir)
    say(f"wrote {', '.join(str(path) for path in paths.values())}")
    for target in report["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
        say(f"  {target['name']}: {target['value']} ({verdict})")


def main(argv: Sequence[str]) -> int:
    """Run ``twentyq bench``: 0 when it measured, 1 when a step failed, 130 when interrupted."""
    options = parse_args(argv)
    options = replace(options, output_dir=options.output_dir.resolve())
    report = new_report(options, argv)
    started_s = time.monotonic()
    supervisor = Supervisor(options.output_dir / "logs")
    code = 0
    try:
        with stop_on_signals(), supervisor:
            run_bench(options, supervisor, report)
    except KeyboardInterrupt:
        print("\ntwentyq bench: interrupted; every process it started is stopped", file=sys.stderr)
        code = 130
    except TwentyQError as error:
        print(f"\ntwentyq bench: {error}", file=sys.stderr)
        code = 1
    if code != 130 and report["scenarios"]:
        finish_report(report, options, started_s)
    return code
