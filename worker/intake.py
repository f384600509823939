"""The worker's intake: raw messages in, batches out to the pool, acknowledgements in bulk.

Celery's consumer hands every message of ``twentyq.turns`` here undecoded
(:class:`worker.consumer.TurnConsumer` makes this the task handler), so no
Celery ``Request``, strategy or per-message pickle is built. Each message is
screened from its raw fields (:mod:`worker.screen`); what cannot be served is
dead-lettered and acknowledged at once. The rest wait in a
:class:`~worker.batching.BatchWindow`; a batch starts when N wait, or when the
oldest has waited T, and only onto a free pool slot. The pool gets the batch's
raw bodies in one call (:func:`worker.serving.play_turns`) and the main process
acknowledges the batch, in one round trip where the transport can, only after
the pool reported it delivered; a batch that was not delivered, or whose pool
process died, goes back to the queue at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from producer.messages import DeadLetter, DeadLetterReason
from producer.redis_transport import QoS as BulkAckQoS
from worker.batching import BatchWindow
from worker.dead_letter import build_dead_letter
from worker.metrics import BatchReport
from worker.runtime import current_runtime
from worker.screen import TurnPayload, screen_message
from worker.serving import play_turns

logger = logging.getLogger(__name__)

Waiting = tuple[Any, TurnPayload]


class TurnIntake:
    """Screens, batches and acknowledges the turn messages of one consumer."""

    def __init__(
        self,
        pool: Any,
        timer: Any,
        *,
        batch_size: int,
        window_s: float,
        slots: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.timer = timer
        self.window: BatchWindow[Waiting] = BatchWindow(batch_size, window_s, slots, clock)
        self._deadline: Any = None
        self._lock = threading.Lock()

    def on_message(self, message: Any) -> None:
        """Celery's task handler: one raw kombu message of ``twentyq.turns``; never raises."""
        runtime = current_runtime()
        try:
            screened = screen_message(message, runtime.settings.max_message_bytes)
        except Exception as error:  # a message the screens did not foresee: refuse it too
            logger.exception("could not screen a message; dead-lettering it")
            screened = build_dead_letter(
                reason=DeadLetterReason.INVALID_ENVELOPE,
                error=f"the worker could not read this message ({type(error).__name__}: {error})",
                body=getattr(message, "body", b"") or b"",
                attempts=1,
            )
        if isinstance(screened, DeadLetter):
            runtime.dead_letter_message(screened, message)
            return
        runtime.health.held(1)
        with self._lock:
            self.window.add((message, screened))
        self.pump()

    def pump(self) -> None:
        """Start every batch that is ready, and arm the deadline of the oldest waiting turn."""
        with self._lock:
            batches = self.window.start_ready()
            wait_s = self.window.seconds_to_deadline()
            if wait_s and self._deadline is None:
                self._deadline = self.timer.call_after(wait_s, self._on_deadline)
        for batch in batches:
            self._start(batch)

    def _on_deadline(self) -> None:
        self._deadline = None
        self.pump()

    def _finished(self) -> None:
        with self._lock:
            self.window.finished()
        self.pump()

    def _start(self, batch: Sequence[Waiting]) -> None:
        messages = [message for message, _ in batch]

        def on_return(report: Any) -> None:
            runtime = current_runtime()
            if isinstance(report, BatchReport) and report.delivered:
                acknowledge_all(messages)
                runtime.metrics.record_batch(report)
            else:
                requeue_all(messages)
            runtime.health.settled(len(messages))
            self._finished()

        def on_lost(*_: Any) -> None:
            # The pool process died mid-batch: hand the turns back to the queue now.
            requeue_all(messages)
            current_runtime().health.settled(len(messages))
            self._finished()

        self.pool.apply_async(
            play_turns,
            ([payload for _, payload in batch],),
            callback=on_return,
            error_callback=on_lost,
        )


def acknowledge_all(messages: Sequence[Any]) -> None:
    """Acknowledge a batch's messages, in one broker round trip where the transport can.

    If that round trip fails the messages stay held: the broker redelivers them
    after the visibility timeout and the worker answers them from the stored results.
    """
    qos = getattr(getattr(messages[0], "channel", None), "qos", None) if messages else None
    try:
        if isinstance(qos, BulkAckQoS):
            with qos.acks_in_one_round_trip():
                for message in messages:
                    message.ack()
            return
        for message in messages:
            message.ack()
    except Exception:  # the broker is down: redelivered after the visibility timeout
        logger.exception("could not acknowledge a batch of %d turns", len(messages))


def requeue_all(messages: Sequence[Any]) -> None:
    """Hand a batch's messages back to the queue (they keep their place at its head)."""
    for message in messages:
        try:
            message.reject(requeue=True)
        except Exception:  # the broker is down: redelivered after the visibility timeout
            logger.exception("could not requeue a turn; the broker redelivers it later")
