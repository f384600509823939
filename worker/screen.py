"""Screen a raw turn message before it joins a batch: size, schema, task id."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from producer.messages import DeadLetter, DeadLetterReason, Turn
from worker.dead_letter import build_dead_letter, task_id_of


def _first_argument(payload: Any) -> Any:
    # Celery protocol 2 body: [args, kwargs, embed]; the turn is the only argument.
    if not isinstance(payload, list | tuple) or not payload:
        raise ValueError("the body is not a Celery protocol-2 [args, kwargs, embed] list")
    args, kwargs = payload[0], (payload[1] if len(payload) > 1 else {})
    if isinstance(args, list | tuple) and len(args) == 1 and not kwargs:
        return args[0]
    if isinstance(kwargs, dict) and set(kwargs) == {"turn"} and not args:
        return kwargs["turn"]
    raise ValueError("expected exactly one argument, the turn (args=[turn] or kwargs={turn})")


def find_problem(payload: Any, task_id: str | None) -> str | None:
    """Why a decoded turn message cannot be served, or None when it can."""
    try:
        turn = Turn.model_validate(_first_argument(payload))
    except (ValueError, ValidationError) as error:
        return f"the turn breaks the wire contract: {error}"
    if task_id is not None and task_id != str(turn.turn_id):
        return f"the Celery task id {task_id} differs from turn_id {turn.turn_id}; send it as both"
    return None


def screen_message(message: Any, max_message_bytes: int) -> DeadLetter | None:
    """A dead letter for a message that must not join a batch, or None.

    Decoding errors propagate (``DecodeError``, ``ContentDisallowed``): the
    consumer's hooks dead-letter those.
    """
    task_id = task_id_of(message.headers)
    size_bytes = len(message.body or b"")
    if size_bytes > max_message_bytes:
        problem: str | None = (
            f"the message body is {size_bytes} bytes; the limit is {max_message_bytes} "
            "(WORKER_MAX_MESSAGE_BYTES)"
        )
    else:
        problem = find_problem(message.decode(), task_id)
    if problem is None:
        return None
    return build_dead_letter(
        reason=DeadLetterReason.INVALID_TURN,
        error=problem,
        body=message.body,
        attempts=1,
        task_id=task_id,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
    )
