"""The worker's Celery app: ``celery -A worker.app worker`` or ``twentyq worker``.

``app`` is built on first access (module ``__getattr__``), not at import time,
so importing this module reads no environment.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

from celery import Celery, signals

from producer.broker import BrokerSettings, create_celery_app
from producer.errors import ConfigurationError
from worker import celery_adapter
from worker.errors import ModelLoadError
from worker.log import configure_logging
from worker.model_loader import load_pinned_model, set_thread_counts
from worker.outbox import Outbox
from worker.runtime import Runtime, current_runtime, install_runtime
from worker.settings import WorkerSettings, load_broker_settings


def worker_config(settings: WorkerSettings) -> dict[str, Any]:
    """Celery settings the worker adds to the shared broker configuration."""
    return {
        "worker_consumer": "worker.consumer:TurnConsumer",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # prefetch = multiplier x concurrency: per pool process, one batch running and
        # one filling, so a process never waits for turns to arrive after its batch.
        "worker_prefetch_multiplier": 2 * settings.batch_size,
        "worker_concurrency": settings.concurrency,
        "worker_pool": settings.pool,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "worker_send_task_events": False,
        "worker_enable_remote_control": False,
        # None: retry for ever, at the interval worker.celery_adapter caps (docs/operations.md).
        "broker_connection_max_retries": settings.broker_reconnect_max_retries,
    }


def create_worker_app(settings: WorkerSettings, broker: BrokerSettings) -> Celery:
    """A Celery app serving ``twentyq.play_turn`` with this worker's settings."""
    app = create_celery_app("twentyq-worker", broker)
    app.conf.update(worker_config(settings))
    # Also for `celery -A worker.app worker`: the URL as configured, reconnects capped.
    celery_adapter.install(app, settings.broker_reconnect_interval_max_s)
    install_runtime(Runtime(settings=settings, broker=broker, outbox=Outbox(app)))
    return app


def create_app_from_env() -> Celery:
    """Build settings from the environment and the app from them; exit 2 on bad settings."""
    try:
        settings = WorkerSettings.from_env()
        broker = load_broker_settings(settings)
    except ConfigurationError as error:
        print(f"twentyq worker: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    configure_logging(settings.log_level, settings.log_format)
    return create_worker_app(settings, broker)


@signals.setup_logging.connect
def _keep_our_logging(**_: Any) -> None:
    # Connected so Celery leaves the JSON logging configured at start-up alone.
    return None


@signals.worker_init.connect
def _load_model_before_work(**_: Any) -> None:
    # worker_init runs in the main process before the pool forks, so prefork children
    # inherit the warm model (copy-on-write) instead of each loading their own.
    runtime = current_runtime()
    set_thread_counts(runtime.settings)
    if runtime.model is None:
        try:
            runtime.model = load_pinned_model(runtime.settings)
        except ModelLoadError as error:
            print(f"twentyq worker: {error}", file=sys.stderr, flush=True)
            raise SystemExit(3) from error
    runtime.metrics.record_model(runtime.model.ref)
    freeze_heap()
    if runtime.settings.metrics_port:
        runtime.metrics.serve(runtime.settings.metrics_port, runtime.health.problems)


def freeze_heap() -> None:
    """Move every object alive now (the model, torch, MLflow) out of the garbage collector's sight.

    The loaded model leaves about a million long-lived objects; each full collection
    walked them all, a pause of a few hundred ms in the middle of serving (the p99 of
    the first bench of this intake). Frozen before the pool forks, the children also
    stop writing to those pages, so they stay shared (copy-on-write).
    """
    gc.collect()
    gc.freeze()


@signals.worker_process_init.connect
def _set_child_threads(**_: Any) -> None:
    set_thread_counts(current_runtime().settings)


_apps: list[Celery] = []


def __getattr__(name: str) -> Celery:
    if name in {"app", "celery"}:
        if not _apps:
            _apps.append(create_app_from_env())
        return _apps[0]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
