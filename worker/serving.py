"""Serve one batch of screened messages in a pool process: decode, predict, deliver.

This is the task's body. It runs where the pool runs it (a prefork child, a
thread, or inline with ``--pool solo``), gets the raw bodies of a whole batch
in one call, decodes each once, runs one ``predict`` and hands everything to
the :class:`~worker.outbox.Outbox`; the main process acknowledges the batch
only after this returned a report that says it was delivered.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from celery import states

from producer.envelope import InvalidBodyError, decode_turn_body
from producer.messages import DeadLetter, DeadLetterReason, Turn
from worker.dead_letter import build_dead_letter
from worker.inference import Rejection, RetryPolicy, serve_batch
from worker.metrics import BatchReport
from worker.outbox import Delivery
from worker.runtime import Runtime, current_runtime
from worker.screen import TurnPayload

logger = logging.getLogger(__name__)


def _letter(
    payload: TurnPayload, reason: DeadLetterReason, error: str, attempts: int
) -> DeadLetter:
    return build_dead_letter(
        reason=reason,
        error=error,
        body=payload.body,
        attempts=attempts,
        task_id=payload.task_id,
        content_type=payload.content_type,
        content_encoding=payload.content_encoding,
    )


def decode_batch(
    payloads: Sequence[TurnPayload],
) -> tuple[dict[str, tuple[Turn, TurnPayload]], list[tuple[DeadLetter, str]]]:
    """Turns by id (the first of duplicates), and dead letters for bodies that are no turn."""
    turns: dict[str, tuple[Turn, TurnPayload]] = {}
    letters: list[tuple[DeadLetter, str]] = []
    for payload in payloads:
        try:
            turn = decode_turn_body(payload.body)
        except InvalidBodyError as error:
            reason = (
                DeadLetterReason.UNDECODABLE if error.undecodable else DeadLetterReason.INVALID_TURN
            )
            letter = _letter(payload, reason, str(error), 1)
            letters.append((letter, payload.reply_to))
            continue
        if str(turn.turn_id) != payload.task_id:
            error_text = (
                f"the Celery task id {payload.task_id} differs from turn_id {turn.turn_id}; "
                "send it as both"
            )
            letter = _letter(payload, DeadLetterReason.INVALID_TURN, error_text, 1)
            letters.append((letter, payload.reply_to))
            continue
        turns.setdefault(payload.task_id, (turn, payload))
    return turns, letters


def serve_payloads(runtime: Runtime, payloads: Sequence[TurnPayload]) -> BatchReport:
    """Serve one batch end to end; the report says whether everything was delivered."""
    model = runtime.require_model()
    turns, letters = decode_batch(payloads)
    stored = runtime.outbox.stored_results(list(turns)) if runtime.settings.idempotent else {}
    delivery = Delivery(letters=letters)
    for task_id, meta in stored.items():
        if meta.get("status") == states.SUCCESS:
            # Rare (a redelivery): the stored result is parsed, so it is serialised again.
            stored_json = json.dumps(meta["result"], allow_nan=False)
            delivery.republished.append((stored_json, turns[task_id][1].reply_to))
    fresh = [turn for task_id, (turn, _) in turns.items() if task_id not in stored]
    policy = RetryPolicy(runtime.settings.max_retries, runtime.settings.retry_backoff_s)
    outcomes = serve_batch(model.predict, fresh, model.ref, runtime.worker_name, policy)
    latencies_s: list[float] = []
    inference_s: float | None = None
    for outcome in outcomes:
        task_id = (
            str(outcome.turn.turn_id) if isinstance(outcome, Rejection) else str(outcome.turn_id)
        )
        payload = turns[task_id][1]
        if isinstance(outcome, Rejection):
            letter = _letter(payload, outcome.reason, outcome.error, outcome.attempts)
            delivery.letters.append((letter, payload.reply_to))
            continue
        delivery.answered.append((task_id, outcome.model_dump_json(), payload.reply_to))
        latencies_s.append(outcome.timing.queue_ms / 1000.0)
        inference_s = outcome.timing.inference_ms / 1000.0
    report = BatchReport(
        batch_size=len(payloads), inference_s=inference_s, queue_latencies_s=latencies_s
    )
    report.outcomes = {
        "answered": len(delivery.answered),
        "already_answered": len(stored),
        "dead_lettered": len(delivery.letters),
    }
    for letter, _ in delivery.letters:
        report.dead_letters[letter.reason.value] = (
            report.dead_letters.get(letter.reason.value, 0) + 1
        )
    try:
        runtime.outbox.deliver(delivery)
    except Exception:  # the backend or broker is down: requeue the batch, never ack it
        logger.exception("could not deliver a batch of %d turns; requeueing it", len(payloads))
        return report
    report.delivered = True
    return report


def play_turns(payloads: list[TurnPayload]) -> BatchReport:
    """What the pool runs: one batch of ``twentyq.play_turn`` messages; never raises.

    Anything unexpected is logged and reported undelivered, so the batch goes back
    to the queue (at-least-once) and the pool process lives on.
    """
    try:
        return serve_payloads(current_runtime(), payloads)
    except Exception:
        logger.exception("a batch of %d turns failed; requeueing it", len(payloads))
        return BatchReport(batch_size=len(payloads))
