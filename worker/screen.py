"""Screen a raw message before anything parses its body: the envelope, headers, size.

The first of the intake's two screens (docs/worker.md, "Screening"): what the
transport delivered is checked here, in the worker's main process, from the
kombu message's raw fields; the body itself is decoded once, strictly, by
:func:`producer.envelope.decode_turn_body` in the pool process that serves it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from producer.envelope import CONTENT_TYPE, UNPARSED_CONTENT_TYPE
from producer.messages import TURN_TASK_NAME, DeadLetter, DeadLetterReason
from worker.dead_letter import build_dead_letter, task_id_of

_JSON_ENCODINGS = ("utf-8", "utf8")


class TurnPayload(NamedTuple):
    """What a pool process needs of one screened message (pickled once per batch)."""

    body: bytes
    task_id: str
    reply_to: str
    content_type: str
    content_encoding: str


def _unparsed_body(message: Any) -> bytes:
    # The transport hex-encoded bytes that were not a kombu envelope (see redis_transport).
    try:
        return bytes.fromhex(bytes(message.body).decode("ascii"))
    except (ValueError, TypeError):
        return bytes(message.body or b"")


def _problem(message: Any, max_message_bytes: int) -> tuple[DeadLetterReason, str] | None:
    return _header_problem(message.headers) or _content_problem(message, max_message_bytes)


def _header_problem(headers: Any) -> tuple[DeadLetterReason, str] | None:
    if not isinstance(headers, dict) or "task" not in headers:
        return (
            DeadLetterReason.UNKNOWN_TASK,
            "not a Celery protocol-2 task message (no task header)",
        )
    if headers["task"] != TURN_TASK_NAME:
        return (
            DeadLetterReason.UNKNOWN_TASK,
            f"unknown task {headers['task']!r}: this worker serves only {TURN_TASK_NAME}",
        )
    if task_id_of(headers) is None:
        return DeadLetterReason.INVALID_ENVELOPE, "the task message has no string 'id' header"
    return None


def _content_problem(message: Any, max_message_bytes: int) -> tuple[DeadLetterReason, str] | None:
    if message.content_type != CONTENT_TYPE:
        return (
            DeadLetterReason.REFUSED_CONTENT_TYPE,
            f"content type {message.content_type!r} is refused: twentyq accepts JSON only",
        )
    if str(message.content_encoding).lower() not in _JSON_ENCODINGS:
        return (
            DeadLetterReason.REFUSED_CONTENT_TYPE,
            f"content encoding {message.content_encoding!r} is refused: send UTF-8 JSON",
        )
    size_bytes = len(message.body or b"")
    if size_bytes > max_message_bytes:
        return (
            DeadLetterReason.INVALID_TURN,
            f"the message body is {size_bytes} bytes; the limit is {max_message_bytes} "
            "(WORKER_MAX_MESSAGE_BYTES)",
        )
    return None


def screen_message(message: Any, max_message_bytes: int) -> TurnPayload | DeadLetter:
    """The payload to batch, or the dead letter of a message that must not reach a batch."""
    if message.content_type == UNPARSED_CONTENT_TYPE:
        return build_dead_letter(
            reason=DeadLetterReason.MALFORMED_ENVELOPE,
            error="the bytes on the queue are not a kombu message envelope",
            body=_unparsed_body(message),
            attempts=1,
        )
    problem = _problem(message, max_message_bytes)
    if problem is not None:
        reason, error = problem
        return build_dead_letter(
            reason=reason,
            error=error,
            body=message.body,
            attempts=1,
            task_id=task_id_of(message.headers),
            content_type=message.content_type,
            content_encoding=message.content_encoding,
        )
    body = message.body
    reply_to = (message.properties or {}).get("reply_to") or ""
    return TurnPayload(
        body=body if isinstance(body, bytes) else str(body).encode(),
        task_id=message.headers["id"],
        reply_to=reply_to if isinstance(reply_to, str) else "",
        content_type=message.content_type,
        content_encoding=message.content_encoding,
    )
