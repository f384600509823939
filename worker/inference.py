"""The pure part of serving: ``(model, turns) -> guesses or rejections``, with retries.

Nothing here touches a broker or a backend; unit tests call it directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from producer.messages import DeadLetterReason, Guess, ModelRef, Timing, Turn, utc_now
from worker.errors import ModelFailedError
from worker.model_loader import PredictFunction


@dataclass(frozen=True)
class Rejection:
    """A turn the worker will not answer: it goes to the dead-letter queue with the reason."""

    turn: Turn
    reason: DeadLetterReason
    error: str
    attempts: int


Outcome = Guess | Rejection


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of a failing ``predict``: delay ``backoff_s * 2**n`` before retry n+1."""

    max_retries: int = 3
    backoff_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep


def _milliseconds(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds() * 1000.0, 0.0)


def _to_outcome(
    turn: Turn,
    item: Any,
    *,
    model: ModelRef,
    worker: str,
    started_at: datetime,
    inference_ms: float,
) -> Outcome:
    if isinstance(item, dict) and set(item) == {"error"}:
        return Rejection(turn, DeadLetterReason.INVALID_TURN, str(item["error"]), attempts=1)
    if not isinstance(item, dict):
        message = f"the model broke the contract for this turn: {type(item).__name__} is no result"
        return Rejection(turn, DeadLetterReason.MODEL_ERROR, message, attempts=1)
    finished_at = utc_now()
    try:
        # One validation builds the Guess from the model's result and the turn's fields.
        return Guess.model_validate(
            {
                **item,
                "turn_id": turn.turn_id,
                "game_id": turn.game_id,
                "turn": turn.turn,
                "answered": turn.history[-1] if turn.history else None,
                "questions_asked": len(turn.history),
                "model": model,
                "timing": Timing(
                    sent_at=turn.sent_at,
                    started_at=started_at,
                    finished_at=finished_at,
                    queue_ms=_milliseconds(turn.sent_at, started_at),
                    inference_ms=inference_ms,
                ),
                "worker": worker,
                "metadata": turn.metadata,
            }
        )
    except ValidationError as error:
        message = f"the model broke the contract for this turn: {error}"
        return Rejection(turn, DeadLetterReason.MODEL_ERROR, message, attempts=1)


def infer_batch(
    predict: PredictFunction, turns: Sequence[Turn], model: ModelRef, worker: str
) -> list[Outcome]:
    """One ``predict`` call for the whole batch; one outcome per turn, in order.

    Raises :class:`ModelFailedError` when ``predict`` raises or returns the wrong shape.
    """
    started_at = utc_now()
    started_s = time.perf_counter()
    try:
        raw = predict([turn.model_input() for turn in turns])
    except Exception as error:  # any exception from the model is the model failing
        raise ModelFailedError(f"predict raised {type(error).__name__}: {error}") from error
    inference_ms = (time.perf_counter() - started_s) * 1000.0
    if not isinstance(raw, list) or len(raw) != len(turns):
        size = len(raw) if isinstance(raw, list) else type(raw).__name__
        raise ModelFailedError(f"predict returned {size} results for {len(turns)} turns")
    return [
        _to_outcome(
            turn,
            item,
            model=model,
            worker=worker,
            started_at=started_at,
            inference_ms=inference_ms,
        )
        for turn, item in zip(turns, raw, strict=True)
    ]


def serve_batch(
    predict: PredictFunction,
    turns: Sequence[Turn],
    model: ModelRef,
    worker: str,
    policy: RetryPolicy,
) -> list[Outcome]:
    """Serve a batch: retry a failing ``predict``, then isolate the turns that still fail."""
    if not turns:
        return []
    last_error: ModelFailedError | None = None
    for attempt in range(policy.max_retries + 1):
        if attempt:
            policy.sleep(policy.backoff_s * 2 ** (attempt - 1))
        try:
            return infer_batch(predict, turns, model, worker)
        except ModelFailedError as error:
            last_error = error
    attempts = policy.max_retries + 1
    if len(turns) == 1:
        return [Rejection(turns[0], DeadLetterReason.MODEL_ERROR, str(last_error), attempts)]
    return [_serve_alone(predict, turn, model, worker, attempts) for turn in turns]


def _serve_alone(
    predict: PredictFunction, turn: Turn, model: ModelRef, worker: str, attempts: int
) -> Outcome:
    # After the batch exhausted its retries, one more try per turn finds the poison turn(s)
    # so the rest of the batch is still answered.
    try:
        return infer_batch(predict, [turn], model, worker)[0]
    except ModelFailedError as error:
        return Rejection(turn, DeadLetterReason.MODEL_ERROR, str(error), attempts + 1)
