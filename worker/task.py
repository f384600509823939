"""The ``twentyq.play_turn`` task: micro-batched with celery-batches, thin.

Screening happens as a message arrives (in the consumer); a batch starts when
:class:`worker.batching.BatchWindow` says so, validates, calls
:func:`worker.inference.serve_batch`, hands everything to the outbox and only
then lets its messages be acknowledged (in one round trip on Redis).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from celery import Celery, states
from celery_batches import Batches, SimpleRequest, consume_queue
from celery_batches.trace import apply_batches_task

from producer.messages import DeadLetter, Guess, Turn
from producer.redis_transport import QoS as BulkAckQoS
from worker.batching import BatchWindow
from worker.dead_letter import build_dead_letter
from worker.inference import RetryPolicy, serve_batch
from worker.metrics import BatchReport
from worker.runtime import Runtime, current_runtime
from worker.screen import screen_message

logger = logging.getLogger(__name__)


class TurnBatchTask(Batches):
    """A Batches task that screens messages on arrival, batches by window, acks after delivery.

    A batch starts when N turns wait, or T after the oldest arrived, and only onto a
    free pool slot (:class:`worker.batching.BatchWindow`); celery-batches' own
    free-running flush timer is not used.
    """

    acks_late = True
    reject_on_worker_lost = True
    batch_window_s: float = 0.0  # T, set by worker.app.create_worker_app
    pool_slots: int = 1  # batches that may run at once: the pool's processes
    _window: BatchWindow[Any] | None = None

    def Strategy(self, task: Batches, app: Celery, consumer: Any) -> Callable[..., None]:
        """Dead-letter bad messages at once; batch the good ones."""
        buffer_message = super().Strategy(task, app, consumer)
        self.use_window(consumer.timer)

        def screen_then_buffer(message: Any, body: Any, ack: Any, reject: Any, *args: Any) -> None:
            runtime = current_runtime()
            letter = screen_message(message, runtime.settings.max_message_bytes)
            if letter is not None:
                runtime.dead_letter_message(letter, message)
                return
            buffer_message(message, body, ack, reject, *args)
            self._pump()

        return screen_then_buffer

    def use_window(self, timer: Any, clock: Callable[[], float] = time.monotonic) -> None:
        """Start batches by :class:`BatchWindow`, its deadlines armed on ``timer``."""
        # Non-None stops celery-batches from starting its free-running timer.
        self._tref = _NO_FREE_RUNNING_TIMER
        self._window = BatchWindow(self.flush_every, self.batch_window_s, self.pool_slots, clock)
        self._timer = timer
        self._deadline: Any = None
        self._lock = threading.Lock()

    def _do_flush(self) -> None:
        # celery-batches calls this every N-th message; the window decides instead.
        self._pump()

    def _pump(self) -> None:
        """Move arrived requests into the window, start every ready batch, arm the deadline."""
        window = self._window
        if window is None:
            return
        with self._lock:
            for request in consume_queue(self._buffer):
                window.add(request)
            batches = window.start_ready()
            wait_s = window.seconds_to_deadline()
            if wait_s and self._deadline is None:
                self._deadline = self._timer.call_after(wait_s, self._on_deadline)
        for batch in batches:
            self.flush(batch)

    def _on_deadline(self) -> None:
        self._deadline = None
        self._pump()

    def _batch_finished(self) -> None:
        if self._window is not None:
            with self._lock:
                self._window.finished()
            self._pump()

    def flush(self, requests: Collection[Any]) -> Any:
        """Run the batch in the pool; ack after it delivered, requeue when it could not."""
        carried = [_carry(request) for request in requests]

        def on_return(report: BatchReport | None) -> None:
            if report is None or not report.delivered:
                for request in requests:
                    request.reject(requeue=True)
            else:
                acknowledge_all(requests)
                current_runtime().metrics.record_batch(report)
            self._batch_finished()

        def on_lost(*_: Any) -> None:
            # The pool process died mid-batch: hand the turns back to the queue now.
            for request in requests:
                request.reject(requeue=True)
            self._batch_finished()

        return self._pool.apply_async(
            apply_batches_task,
            (self, (carried,), 0, None),
            callback=on_return,
            error_callback=on_lost,
        )


_NO_FREE_RUNNING_TIMER = object()


def acknowledge_all(requests: Collection[Any]) -> None:
    """Acknowledge a batch's messages, in one broker round trip where the transport can.

    Celery's ``request.acknowledge()`` only schedules each ack on the event loop, one
    round trip apiece; on the bulk-ack Redis transport the messages are acknowledged
    here, together, and the requests marked so Celery does not ack them again. If that
    round trip fails the messages stay held: kombu redelivers them after the visibility
    timeout and the worker answers them from the stored results.
    """
    channel = getattr(getattr(next(iter(requests), None), "message", None), "channel", None)
    qos = getattr(channel, "qos", None)
    if not isinstance(qos, BulkAckQoS):
        for request in requests:
            request.acknowledge()
        return
    try:
        with qos.acks_in_one_round_trip():
            for request in requests:
                if not request.acknowledged:
                    request.message.ack()
                    request.acknowledged = True
    except Exception:  # the broker is down: redelivered after the visibility timeout
        logger.exception("could not acknowledge a batch of %d turns", len(requests))


def _carry(request: Any) -> SimpleRequest:
    # The raw body travels with the request so a dead letter can keep it untouched.
    simple = SimpleRequest.from_request(request)
    simple.raw_body = request.message.body  # type: ignore[attr-defined]
    simple.content_type = request.message.content_type  # type: ignore[attr-defined]
    simple.content_encoding = request.message.content_encoding  # type: ignore[attr-defined]
    return simple


def _turn_of(request: SimpleRequest) -> Turn:
    argument = request.args[0] if request.args else request.kwargs["turn"]
    return Turn.model_validate(argument)


def _letter_for(rejection: Any, request: SimpleRequest) -> DeadLetter:
    return build_dead_letter(
        reason=rejection.reason,
        error=rejection.error,
        body=getattr(request, "raw_body", ""),
        attempts=rejection.attempts,
        task_id=str(rejection.turn.turn_id),
        content_type=getattr(request, "content_type", None),
        content_encoding=getattr(request, "content_encoding", None),
    )


def serve_requests(runtime: Runtime, requests: Sequence[SimpleRequest]) -> BatchReport:
    """Serve one batch of screened requests end to end; the report says if all was delivered."""
    model = runtime.require_model()
    parsed = [(_turn_of(request), request) for request in requests]
    by_id = {str(turn.turn_id): request for turn, request in parsed}
    turns = {str(turn.turn_id): turn for turn, _ in parsed}
    stored = runtime.outbox.stored_results(list(turns)) if runtime.settings.idempotent else {}
    republished = [
        Guess.model_validate(meta["result"])
        for meta in stored.values()
        if meta.get("status") == states.SUCCESS
    ]
    fresh = [turn for turn_id, turn in turns.items() if turn_id not in stored]
    policy = RetryPolicy(runtime.settings.max_retries, runtime.settings.retry_backoff_s)
    outcomes = serve_batch(model.predict, fresh, model.ref, runtime.worker_name, policy)
    guesses = [outcome for outcome in outcomes if isinstance(outcome, Guess)]
    letters = [
        _letter_for(outcome, by_id[str(outcome.turn.turn_id)])
        for outcome in outcomes
        if not isinstance(outcome, Guess)
    ]
    report = _report(len(requests), len(stored), guesses, letters)
    try:
        runtime.outbox.deliver(guesses, letters, republished)
    except Exception:  # the backend or broker is down: requeue the batch, never ack it
        logger.exception("could not deliver a batch of %d turns; requeueing it", len(requests))
        return report
    report.delivered = True
    for guess in guesses:
        logger.info(
            "answered turn",
            extra={"turn_id": str(guess.turn_id), "game_id": guess.game_id, "turn": guess.turn},
        )
    return report


def _report(
    size: int, already_answered: int, guesses: list[Guess], letters: list[DeadLetter]
) -> BatchReport:
    report = BatchReport(batch_size=size)
    if guesses:
        report.inference_s = guesses[0].timing.inference_ms / 1000.0
    report.queue_latencies_s = [guess.timing.queue_ms / 1000.0 for guess in guesses]
    report.outcomes = {
        "answered": len(guesses),
        "already_answered": already_answered,
        "dead_lettered": len(letters),
    }
    for letter in letters:
        report.dead_letters[letter.reason.value] = (
            report.dead_letters.get(letter.reason.value, 0) + 1
        )
    return report


def play_turns(requests: list[SimpleRequest]) -> BatchReport:
    """The task body: a batch of ``twentyq.play_turn`` requests."""
    return serve_requests(current_runtime(), requests)
