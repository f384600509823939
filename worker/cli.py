"""``twentyq worker [CELERY WORKER OPTIONS]``: a thin wrapper of ``celery worker``."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from producer.errors import ConfigurationError
from producer.messages import TURNS_QUEUE
from producer.pin import describe_pin_of
from worker.settings import WorkerSettings


def _export_thread_environment(settings: WorkerSettings) -> None:
    # BLAS and OpenMP read these once, when numpy/torch load: set them before importing
    # the app (which imports MLflow, hence numpy). WORKER_NUMPY_THREADS wins over the
    # variables; without it, values the operator exported are kept.
    for name, value in settings.thread_environment().items():
        if settings.numpy_threads is not None:
            os.environ[name] = value
        else:
            os.environ.setdefault(name, value)


def main(argv: Sequence[str]) -> int:
    """Run a worker serving the pinned model; extra arguments go to ``celery worker``."""
    try:
        settings = WorkerSettings.from_env()
    except ConfigurationError as error:
        print(f"twentyq worker: {error}", file=sys.stderr)
        return 2
    print(f"twentyq worker: {describe_pin_of(settings)}", file=sys.stderr, flush=True)
    _export_thread_environment(settings)
    from worker import celery_adapter  # noqa: PLC0415 - after the thread environment
    from worker.app import create_app_from_env  # noqa: PLC0415 - after the thread environment

    app = create_app_from_env()
    queues = [] if {"-Q", "--queues"} & set(argv) else ["--queues", TURNS_QUEUE]
    return celery_adapter.run_worker(app, ["--without-gossip", "--without-mingle", *queues, *argv])
