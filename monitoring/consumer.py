"""The export sidecar: consume ``twentyq.export``, write batches to the sink, then acknowledge.

A batch is acknowledged only after its file is written, so a crash at any
moment loses nothing: unacknowledged events return to the queue (on Redis,
after the broker's visibility timeout) and are written again; readers drop the
duplicates by ``event_id``. On Redis the queue is read through
:mod:`monitoring.redis_queue`, which closes kombu's gap between taking a
message and recording it as unacknowledged; other brokers go through kombu.
At most ``batch_size`` events are ever held (broker prefetch is bounded by
it). Undecodable events are not dropped: they are written, with the reason,
to the sink's ``_rejected/`` folder.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from kombu import Connection, Consumer, Message  # type: ignore[attr-defined]
from kombu.exceptions import ContentDisallowed, OperationalError, SerializationError
from pydantic import ValidationError

from monitoring.errors import SinkUnavailableError
from monitoring.metric import ExportMetrics
from monitoring.record import event_record
from monitoring.redis_queue import RedisExportQueue
from monitoring.settings import MonitoringSettings
from monitoring.sink import Sink
from producer.broker import REDIS_SCHEMES, redis_transport_class, task_queues
from producer.messages import EXPORT_QUEUE, export_event_adapter

logger = logging.getLogger(__name__)

# On shutdown the sink gets this many more tries; after that the batch stays unacknowledged
# and the broker hands it to the next sidecar instead.
FINAL_FLUSH_ATTEMPTS = 3
STOPPING_RETRY_S = 1.0


@dataclass
class _Held:
    message: Message
    record: dict[str, Any] | None = None
    rejection: dict[str, Any] | None = None


def _rejection(message: Message, error: Exception) -> dict[str, Any]:
    body = message.body
    text = body.decode("utf-8", errors="backslashreplace") if isinstance(body, bytes) else body
    return {
        "reason": type(error).__name__,
        "error": str(error)[:2000],
        "rejected_at": datetime.now(UTC).isoformat(),
        "content_type": message.content_type,
        "body": text,
    }


def _redis_queue_for(connection: Connection) -> RedisExportQueue | None:
    """On Redis, the atomic pop-and-hold queue (see :mod:`monitoring.redis_queue`)."""
    transport = connection.transport_cls
    if transport not in REDIS_SCHEMES and transport != redis_transport_class():
        return None
    # as_uri() names the transport where the scheme was: a redis:// URL needs the scheme.
    scheme = "rediss" if transport == "rediss" else "redis"
    address = connection.as_uri(include_password=True).split("://", 1)[1]
    timeout_s = float((connection.transport_options or {}).get("visibility_timeout", 3600))
    return RedisExportQueue.from_url(f"{scheme}://{address}", EXPORT_QUEUE, timeout_s)


class ExportConsumer:
    """Batches export events from the broker into the sink (see the module docstring)."""

    def __init__(
        self,
        connection: Connection,
        sink: Sink,
        settings: MonitoringSettings,
        metrics: ExportMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.redis_queue = _redis_queue_for(connection)
        self.sink = sink
        self.settings = settings
        self.metrics = metrics or ExportMetrics()
        self._clock = clock
        self._held: list[_Held] = []
        self._oldest_at: float | None = None
        self._stop = threading.Event()

    def request_stop(self) -> None:
        """Ask the loop to flush what it holds and return (safe from a signal handler)."""
        self._stop.set()

    @property
    def held_count(self) -> int:
        """Events received and not yet acknowledged."""
        return len(self._held)

    def handle_message(self, message: Message) -> None:
        """Decode one event into a record, or keep it aside to dead-letter; flush when full."""
        held = _Held(message)
        try:
            event = export_event_adapter.validate_python(message.decode())
            held.record = event_record(event)
        except (ValidationError, SerializationError, ContentDisallowed, ValueError) as error:
            # Anything else is a bug in the sidecar, worth crashing on: the event stays queued.
            logger.warning("dead-lettering an undecodable export event: %s", error)
            held.rejection = _rejection(message, error)
        self._held.append(held)
        self.metrics.buffered.set(len(self._held))
        if self._oldest_at is None:
            self._oldest_at = self._clock()
        if len(self._held) >= self.settings.batch_size:
            self.flush()

    def is_due(self) -> bool:
        """Whether the batch is full or its oldest event has waited ``max_batch_age_s``."""
        if not self._held or self._oldest_at is None:
            return False
        full = len(self._held) >= self.settings.batch_size
        return full or self._clock() - self._oldest_at >= self.settings.max_batch_age_s

    def _write(self) -> None:
        records = [held.record for held in self._held if held.record is not None]
        rejections = [held.rejection for held in self._held if held.rejection is not None]
        if records:
            self.sink.write_records(records)
        if rejections:
            self.sink.write_rejected(rejections)
        for held in self._held:
            held.message.ack()
        now = datetime.now(UTC)
        if records:
            oldest = min(record["event_time"] for record in records)
            self.metrics.lag_s.set(max(0.0, (now - oldest).total_seconds()))
        for record in records:
            self.metrics.records.labels(kind=record["kind"]).inc()
        self.metrics.rejected.inc(len(rejections))
        self.metrics.batches.inc()

    def flush(self) -> bool:
        """Write and acknowledge everything held, retrying with backoff; False if given up.

        While running it retries until the sink answers; once a stop is requested it tries
        :data:`FINAL_FLUSH_ATTEMPTS` more times and then leaves the batch unacknowledged.
        """
        delay_s = self.settings.write_retry_initial_s
        failures_after_stop = 0
        while self._held:
            try:
                self._write()
            except SinkUnavailableError as error:
                self.metrics.write_errors.inc()
                if self._stop.is_set():
                    failures_after_stop += 1
                    if failures_after_stop >= FINAL_FLUSH_ATTEMPTS:
                        logger.error("giving the batch back to the broker unwritten: %s", error)
                        return False
                logger.warning("writing a batch failed, retrying in %.1f s: %s", delay_s, error)
                if self._stop.is_set():
                    # Shutdown has a grace period (30 s on Kubernetes): short pauses only.
                    time.sleep(min(delay_s, STOPPING_RETRY_S))
                else:
                    self._stop.wait(delay_s)
                delay_s = min(delay_s * 2, self.settings.write_retry_max_s)
                continue
            self._held.clear()
            self._oldest_at = None
            self.metrics.buffered.set(0)
        return True

    def _consume(self) -> None:
        queue = next(q for q in task_queues() if q.name == EXPORT_QUEUE)
        channel = self.connection.channel()
        try:
            consumer = Consumer(
                channel,
                queues=[queue],
                on_message=self.handle_message,
                accept=["json"],
                prefetch_count=self.settings.batch_size,
            )
            with consumer:
                while not self._stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        self.connection.drain_events(timeout=self.settings.poll_interval_s)
                    if self.is_due():
                        self.flush()
                self.flush()
        finally:
            channel.close()

    def _consume_redis(self, queue: RedisExportQueue) -> None:
        restore_every_s = min(max(queue.visibility_timeout_s / 4, 1.0), 60.0)
        next_restore = self._clock()
        while not self._stop.is_set():
            if self._clock() >= next_restore:
                restored = queue.restore_stale()
                if restored:
                    logger.info("restored %d events held too long by a stopped sidecar", restored)
                next_restore = self._clock() + restore_every_s
            message = queue.pop()
            if message is None:
                self._stop.wait(self.settings.poll_interval_s)
            else:
                self.handle_message(message)  # type: ignore[arg-type]
            if self.is_due():
                self.flush()
        self.flush()

    def run(self) -> None:
        """Consume until :meth:`request_stop`; reconnect when the broker drops the connection."""
        while not self._stop.is_set():
            try:
                if self.redis_queue is not None:
                    self._consume_redis(self.redis_queue)
                    continue
                # Bounded retries, so a stop request is seen even while the broker is down.
                self.connection.ensure_connection(max_retries=3, interval_max=5)
                self._consume()
            except (
                OperationalError,
                redis.ConnectionError,
                redis.TimeoutError,
                *self.connection.recoverable_connection_errors,
            ) as error:
                # Held events were never acknowledged: the broker redelivers them.
                logger.warning("lost the broker connection, reconnecting: %s", error)
                self._held.clear()
                self._oldest_at = None
                self.connection = self.connection.clone()
                self._stop.wait(1.0)
