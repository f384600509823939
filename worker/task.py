"""The ``twentyq.play_turn`` task: micro-batched with celery-batches, thin.

Screening happens as a message arrives (in the consumer); a batch validates,
calls :func:`worker.inference.serve_batch`, hands everything to the outbox and
only then lets its messages be acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any

from celery import Celery, states
from celery_batches import Batches, SimpleRequest
from celery_batches.trace import apply_batches_task

from producer.messages import DeadLetter, Guess, Turn
from worker.dead_letter import build_dead_letter
from worker.inference import RetryPolicy, serve_batch
from worker.metrics import BatchReport
from worker.runtime import Runtime, current_runtime
from worker.screen import screen_message

logger = logging.getLogger(__name__)


class TurnBatchTask(Batches):
    """A Batches task that screens each message on arrival and acks only after delivery."""

    acks_late = True
    reject_on_worker_lost = True

    def Strategy(self, task: Batches, app: Celery, consumer: Any) -> Callable[..., None]:
        """Dead-letter bad messages at once; buffer the good ones for the next batch."""
        buffer_message = super().Strategy(task, app, consumer)

        def screen_then_buffer(message: Any, body: Any, ack: Any, reject: Any, *args: Any) -> None:
            runtime = current_runtime()
            letter = screen_message(message, runtime.settings.max_message_bytes)
            if letter is None:
                buffer_message(message, body, ack, reject, *args)
                return
            runtime.dead_letter_message(letter, message)

        return screen_then_buffer

    def flush(self, requests: Collection[Any]) -> Any:
        """Run the batch in the pool; ack after it delivered, requeue when it could not."""
        carried = [_carry(request) for request in requests]

        def on_return(report: BatchReport | None) -> None:
            if report is None or not report.delivered:
                for request in requests:
                    request.reject(requeue=True)
                return
            for request in requests:
                request.acknowledge()
            current_runtime().metrics.record_batch(report)

        def on_lost(*_: Any) -> None:
            # The pool process died mid-batch: hand the turns back to the queue now.
            for request in requests:
                request.reject(requeue=True)

        return self._pool.apply_async(
            apply_batches_task,
            (self, (carried,), 0, None),
            callback=on_return,
            error_callback=on_lost,
        )


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
    by_id = {str(_turn_of(request).turn_id): request for request in requests}
    turns = {turn_id: _turn_of(request) for turn_id, request in by_id.items()}
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
