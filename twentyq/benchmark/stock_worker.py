"""The ``stock_celery`` scenario's worker: what a user would write without twentyq.

A plain Celery app with one ``@app.task`` that calls the pinned pyfunc on one
turn and returns its prediction: the stock kombu Redis transport (no transport
override, no atomic take, no batching), JSON, the Redis result backend.
``twentyq bench`` starts it as::

    CELERY_BROKER_URL=redis://... CELERY_RESULT_BACKEND=redis://... \\
        celery -A twentyq.benchmark.stock_worker worker -Q twentyq.stock.turns -c 2

Celery itself reads the two variables when it first connects, so importing
this module does no I/O. Its task name and queue are its own, apart from the
real worker's ``twentyq.play_turn`` on ``twentyq.turns``. Each pool process
loads the model once, when it starts (``worker_process_init``), as a user
following Celery's documentation would.
"""

from __future__ import annotations

import functools
from typing import Any

from celery import Celery, signals

from worker.model_loader import LoadedModel, load_pinned_model, set_thread_counts
from worker.settings import WorkerSettings

STOCK_TASK_NAME = "twentyq.stock.play_turn"
STOCK_QUEUE = "twentyq.stock.turns"


def create_stock_app(broker_url: str | None = None) -> Celery:
    """The stock app, for the worker and its client alike.

    With no ``broker_url`` Celery takes ``CELERY_BROKER_URL`` and
    ``CELERY_RESULT_BACKEND`` from the environment; with one, it is the broker
    and the result backend both.
    """
    app = Celery("twentyq-stock", broker=broker_url, backend=broker_url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=STOCK_QUEUE,
    )
    return app


def predict_one(model: LoadedModel, turn: dict[str, Any]) -> dict[str, Any]:
    """The model's prediction for one model-contract turn, as the pyfunc returns it."""
    predictions = model.predict([turn])
    prediction: dict[str, Any] = predictions[0]
    return prediction


@functools.cache
def loaded_model() -> LoadedModel:
    """This process's model: the pinned version, loaded on first use, then kept."""
    settings = WorkerSettings()
    # The same thread counts as twentyq's workers: the scenarios differ in serving only.
    set_thread_counts(settings)
    return load_pinned_model(settings)


app = create_stock_app()


@signals.worker_process_init.connect
def _load_model_in_pool_process(**_: Any) -> None:
    loaded_model()


@app.task(name=STOCK_TASK_NAME)
def play_turn(turn: dict[str, Any]) -> dict[str, Any]:
    """One turn in, the model's prediction out."""
    return predict_one(loaded_model(), turn)
