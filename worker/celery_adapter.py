"""The one module where the worker leans on Celery's and kombu's undocumented behaviour.

Read from celery 5.6.3 and kombu 5.7.0; tests/unit/worker/test_celery_adapter.py runs
each piece through the Celery code it depends on, so an upgrade that moves one fails there.

- Celery logs the broker (banner, ``Connected to``, ``Cannot connect to``) with
  ``kombu.Connection.as_uri()``, which rebuilds the URL from its parts: with
  ``broker_transport`` a class path, that path becomes the scheme, and a password
  that does not exist is shown as ``**``. :class:`BrokerConnection` says the URL it
  was given, its password masked when it has one.
- Celery's consumer (re)connects with ``Connection.ensure_connection`` and kombu's
  default intervals: 2 s, growing by 2 s per attempt up to 30 s. :class:`BrokerConnection`
  caps them, so a worker follows its broker back within the cap.
- ``Celery.worker_main`` drops the worker's exit status; :func:`run_worker` reads it
  off the worker (``WorkController.exitcode``), as ``celery worker`` itself does.
- Without a retry limit Celery counts attempts as ``(7/None)``; a log filter words it.
- Celery has no public API for a result's stored meta without storing it:
  :func:`encoded_meta` mirrors ``KeyValueStoreBackend._store_result`` and
  :func:`success_meta` builds the same from a result that is already JSON
  (tests/unit/worker/test_outbox.py compares both with what Celery stores).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from celery import Celery, signals
from celery.backends.base import BaseKeyValueStoreBackend
from kombu import Connection  # type: ignore[attr-defined]
from kombu.exceptions import OperationalError

from producer.broker import masked_url

CELERY_VERSION_READ = "5.6.3"
KOMBU_VERSION_READ = "5.7.0"
# The logger of celery.worker.consumer.consumer, which logs every failed broker attempt.
CONSUMER_LOGGER = "celery.worker.consumer.consumer"

logger = logging.getLogger(__name__)

_UNLIMITED_COUNT = re.compile(r"\((\d+)/None\)")


class BrokerConnection(Connection):  # type: ignore[misc]
    """A kombu connection that logs its URL as given and reconnects at a capped interval."""

    #: Longest sleep between two connection attempts; set per app by :func:`install`.
    reconnect_interval_max_s: ClassVar[float] = 30.0
    #: The URL to show for connections built from parts (kombu's ``clone()``).
    broker_url: ClassVar[str | None] = None

    def __init__(self, hostname: Any = "localhost", *args: Any, **kwargs: Any) -> None:
        super().__init__(hostname, *args, **kwargs)
        given = hostname if isinstance(hostname, str) and "://" in hostname else None
        self._given_url = given or self.broker_url

    def as_uri(self, include_password: bool = False, mask: str = "**", *args: Any) -> str:
        """The URL this connection was given, its password masked unless asked for."""
        if self._given_url is None:
            return str(super().as_uri(include_password, mask, *args))
        return self._given_url if include_password else masked_url(self._given_url, mask)

    def ensure_connection(  # noqa: PLR0917 - kombu's signature; Celery passes it positionally
        self,
        errback: Callable[..., Any] | None = None,
        max_retries: int | None = None,
        interval_start: float = 2,
        interval_step: float = 2,
        interval_max: float = 30,
        callback: Callable[[], Any] | None = None,
        reraise_as_library_errors: bool = True,
        timeout: float | None = None,
    ) -> BrokerConnection:
        """kombu's ``ensure_connection`` with every interval at most the cap."""
        cap_s = self.reconnect_interval_max_s
        try:
            super().ensure_connection(
                errback,
                max_retries,
                min(interval_start, cap_s),
                min(interval_step, cap_s),
                min(interval_max, cap_s),
                callback,
                reraise_as_library_errors,
                timeout,
            )
        except OperationalError:
            if max_retries is not None:
                logger.critical(
                    "gave up on the broker at %s after %d retries "
                    "(WORKER_BROKER_RECONNECT_MAX_RETRIES): stopping the worker",
                    self.as_uri(),
                    max_retries,
                )
            raise
        return self


class _UnlimitedRetriesWording(logging.Filter):
    # Celery formats "Trying again in 1.00 second... (7/None)": the args are (url, error, step).
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args and isinstance(args[-1], str):
            step = _UNLIMITED_COUNT.sub(r"(attempt \1, no limit)", args[-1])
            record.args = (*args[:-1], step)
        return True


_RETRY_WORDING = _UnlimitedRetriesWording()


def connection_class(broker_url: str, reconnect_interval_max_s: float) -> type[BrokerConnection]:
    """A :class:`BrokerConnection` for one app: its URL and its reconnect cap."""
    attributes = {"broker_url": broker_url, "reconnect_interval_max_s": reconnect_interval_max_s}
    return type("BrokerConnection", (BrokerConnection,), attributes)


def install(app: Celery, reconnect_interval_max_s: float) -> None:
    """Make ``app``'s broker connections log the configured URL and reconnect within the cap.

    Call before the worker starts: Celery builds every connection through
    ``app.amqp.Connection``.
    """
    app.amqp.Connection = connection_class(app.conf.broker_url, reconnect_interval_max_s)
    logging.getLogger(CONSUMER_LOGGER).addFilter(_RETRY_WORDING)


def run_worker(app: Celery, argv: Sequence[str]) -> int:
    """Run ``celery worker ARGV`` on ``app``; return its exit status (1 on an unrecoverable error).

    A non-zero status is also said on stderr, so that a supervisor's log shows why
    the worker is being restarted.
    """
    workers: list[Any] = []

    def remember(sender: Any, **_: Any) -> None:
        workers.append(sender)

    signals.worker_init.connect(remember, weak=False)
    try:
        app.worker_main(["worker", *argv])
    finally:
        signals.worker_init.disconnect(remember)
    status = workers[-1].exitcode if workers else None
    exit_code = status if isinstance(status, int) else int(bool(status))
    if exit_code:
        print(
            f"twentyq worker: stopped with exit status {exit_code}; the CRITICAL lines above "
            "say why",
            file=sys.stderr,
            flush=True,
        )
    return exit_code


def encoded_meta(backend: BaseKeyValueStoreBackend, task_id: str, result: Any, state: str) -> str:
    """The stored form of any result, byte for byte what ``backend.store_result`` writes."""
    meta = backend._get_result_meta(
        result=backend.encode_result(result, state), state=state, traceback=None, request=None
    )
    meta["task_id"] = task_id
    encoded: str = backend.encode(meta)
    return encoded


def success_meta(task_id: str, result_json: str, date_done: str) -> str:
    """The stored form of a SUCCESS whose result is already JSON, without parsing it again.

    Equal, once decoded, to :func:`encoded_meta` of the parsed result (the same keys
    and values; only the key order and spacing of the text may differ).
    """
    return (
        f'{{"status": "SUCCESS", "result": {result_json}, "traceback": null, "children": null, '
        f'"date_done": {json.dumps(date_done)}, "task_id": {json.dumps(task_id)}}}'
    )
