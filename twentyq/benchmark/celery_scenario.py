"""The Celery scenarios: a worker through the bench's private Redis, measured, stopped.

``batched`` and ``unbatched`` run ``twentyq worker`` (N turns per batch, or
one) driven by twentyq's client; ``stock_celery`` runs the stock Celery app
of :mod:`twentyq.benchmark.stock_worker` driven by a stock client. All three
go through :func:`~twentyq.benchmark.scenario.measure_loads` with the same
load loop, so their figures compare. Each client's own ceiling is checked
against a scratch database with nothing consuming.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from typing import Any

import redis
from celery import Celery

from producer.client import close_client, create_producer_app
from producer.messages import EXPORT_QUEUE
from producer.settings import load_broker_settings, load_producer_settings
from twentyq.benchmark.celery_driver import CeleryDriver, ResultBackendDriver, StockCeleryDriver
from twentyq.benchmark.corpus import CorpusTurn, model_input
from twentyq.benchmark.scenario import BatchCounter, LoadOptions, Say, measure_loads
from twentyq.benchmark.service import (
    WorkerShape,
    memory_of_tree,
    process_tree,
    read_batch_counter,
    start_stock_worker,
    start_worker,
    stock_worker_environment,
    worker_environment,
)
from twentyq.benchmark.stock_worker import STOCK_QUEUE, STOCK_TASK_NAME, create_stock_app
from twentyq.supervisor import Child, Supervisor

SCRATCH_DB = 15


def run_celery_scenario(
    supervisor: Supervisor,
    name: str,
    shape: WorkerShape,
    *,
    broker_url: str,
    redis_pid: int,
    tracking_uri: str,
    corpus: Sequence[CorpusTurn],
    options: LoadOptions,
    say: Say,
) -> dict[str, Any]:
    """Start a ``twentyq worker`` of ``shape``, drive it through Redis, measure it, stop it."""
    settings = load_producer_settings(guess_timeout_s=options.answer_timeout_s)
    app = create_producer_app(load_broker_settings(broker_url=broker_url), settings)
    env = worker_environment(os.environ, broker_url, tracking_uri, shape)
    try:
        say(
            f"starting the worker (N={shape.batch_size}, T={shape.batch_window_ms} ms, "
            f"{shape.concurrency} processes)"
        )
        child, cold_start_s = start_worker(
            supervisor, name, env, app=app, settings=settings, timeout_s=options.ready_timeout_s
        )
        say(f"  process start to first guess: {cold_start_s:.1f} s")
        driver = CeleryDriver(app, settings, corpus, answer_timeout_s=options.answer_timeout_s)
        port = int(env["WORKER_METRICS_PORT"])
        figures = _measure_worker(
            supervisor,
            child,
            driver,
            redis_pid=redis_pid,
            options=options,
            say=say,
            batch_counter=lambda: read_batch_counter(port),
        )
    finally:
        close_client(app)
        app.close()
        _forget_exports(broker_url)
    return {
        "worker": {
            "batch_size": shape.batch_size,
            "batch_window_ms": shape.batch_window_ms,
            "concurrency": shape.concurrency,
            "log_level": shape.log_level,
        },
        "cold_start_s": round(cold_start_s, 2),
        **figures,
    }


def run_stock_celery_scenario(
    supervisor: Supervisor,
    name: str,
    shape: WorkerShape,
    *,
    broker_url: str,
    redis_pid: int,
    tracking_uri: str,
    corpus: Sequence[CorpusTurn],
    options: LoadOptions,
    say: Say,
) -> dict[str, Any]:
    """Start the stock Celery worker, drive it with ``send_task`` and ``AsyncResult``."""
    app = _stock_client_app(broker_url)
    env = stock_worker_environment(os.environ, broker_url, tracking_uri, shape.concurrency)
    try:
        say(f"starting the stock Celery worker ({shape.concurrency} processes, a turn per task)")
        child, cold_start_s = start_stock_worker(
            supervisor,
            name,
            env,
            app=app,
            shape=shape,
            probe_turn=model_input(corpus[0]),
            timeout_s=options.ready_timeout_s,
        )
        say(f"  process start to first answer: {cold_start_s:.1f} s")
        driver = StockCeleryDriver(app, corpus, answer_timeout_s=options.answer_timeout_s)
        figures = _measure_worker(
            supervisor, child, driver, redis_pid=redis_pid, options=options, say=say
        )
    finally:
        _close_stock_client(app)
    return {
        "worker": {
            "app": "twentyq.benchmark.stock_worker",
            "task": STOCK_TASK_NAME,
            "queue": STOCK_QUEUE,
            "concurrency": shape.concurrency,
            "log_level": shape.log_level,
        },
        "cold_start_s": round(cold_start_s, 2),
        **figures,
    }


def _measure_worker(
    supervisor: Supervisor,
    child: Child,
    driver: ResultBackendDriver[Any],
    *,
    redis_pid: int,
    options: LoadOptions,
    say: Say,
    batch_counter: BatchCounter | None = None,
) -> dict[str, Any]:
    tree = process_tree(child.process.pid)
    watched = {"worker main process": tree[:1], "worker pool": tree[1:], "redis": [redis_pid]}
    figures = measure_loads(driver, options, say, watched, batch_counter)
    memory = memory_of_tree(child.process.pid)
    supervisor.stop(child)
    return {"memory": memory, **figures}


def check_celery_client(
    broker_url: str, corpus: Sequence[CorpusTurn], count: int, say: Say
) -> dict[str, Any]:
    """twentyq's client alone: submit ``count`` turns to a scratch Redis database, unconsumed."""
    scratch_url = _scratch_url(broker_url)
    settings = load_producer_settings()
    app = create_producer_app(load_broker_settings(broker_url=scratch_url), settings)
    driver = CeleryDriver(app, settings, corpus)
    return _check_client("client alone", driver, scratch_url, count, say)


def check_stock_client(
    broker_url: str, corpus: Sequence[CorpusTurn], count: int, say: Say
) -> dict[str, Any]:
    """The stock client alone: ``send_task`` ``count`` turns to a scratch database, unconsumed."""
    scratch_url = _scratch_url(broker_url)
    driver = StockCeleryDriver(_stock_client_app(scratch_url), corpus)
    return _check_client("stock client alone", driver, scratch_url, count, say)


def _check_client(
    label: str, driver: ResultBackendDriver[Any], scratch_url: str, count: int, say: Say
) -> dict[str, Any]:
    try:
        figures = driver.measure_send_rate(count)
    finally:
        close_client(driver.app)
        _close_stock_client(driver.app)
        client = redis.Redis.from_url(scratch_url)
        client.flushdb()
        client.close()
    say(
        f"{label}: {figures['send_rate_per_s']:.0f} turns/s submitted, "
        f"{figures['cpu_ms_per_send']:.2f} ms CPU per turn (nothing consuming)"
    )
    return figures


def _stock_client_app(broker_url: str) -> Celery:
    # Stock in every message it sends; bounded reconnects only, as twentyq's client has:
    # with Celery's twenty, each AsyncResult collected after Redis stopped hangs the exit.
    app = create_stock_app(broker_url)
    retry_policy = load_producer_settings().retry_policy()
    app.conf.result_backend_transport_options = {"retry_policy": retry_policy}
    return app


def _close_stock_client(app: Celery) -> None:
    # A read AsyncResult sits in a reference cycle (its fulfilled promise holds it):
    # collect them while Redis still answers their UNSUBSCRIBE, not at exit.
    gc.collect()
    app.close()


def _scratch_url(broker_url: str) -> str:
    return f"{broker_url.rsplit('/', 1)[0]}/{SCRATCH_DB}"


def _forget_exports(broker_url: str) -> None:
    # Nobody consumes the export events during a bench; drop them so Redis stays small.
    client = redis.Redis.from_url(broker_url)
    client.delete(EXPORT_QUEUE)
    client.close()
