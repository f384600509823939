"""A Celery consumer that dead-letters the messages kombu or Celery refuse to hand to a task.

Celery's own hooks log these and drop them; here each one becomes a
:class:`~producer.messages.DeadLetter` on ``twentyq.turns.dead`` (and a failed
result when the message carries a task id), and the worker keeps serving.
"""

from __future__ import annotations

from typing import Any

from celery.worker.consumer import Consumer
from kombu.exceptions import ContentDisallowed

from producer.messages import DeadLetterReason
from worker.dead_letter import build_dead_letter, task_id_of
from worker.runtime import current_runtime


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class DeadLetteringConsumer(Consumer):  # type: ignore[misc]
    """The consumer named by ``worker_consumer``; overrides Celery's refusal hooks."""

    def _dead_letter(self, message: Any, reason: DeadLetterReason, error: str) -> None:
        letter = build_dead_letter(
            reason=reason,
            error=error,
            body=message.body,
            attempts=1,
            task_id=task_id_of(message.headers),
            content_type=message.content_type,
            content_encoding=message.content_encoding,
        )
        current_runtime().dead_letter_message(letter, message)

    def on_decode_error(self, message: Any, exc: BaseException) -> None:
        """The body is not valid JSON (or not decodable at all)."""
        if isinstance(exc, ContentDisallowed):
            self._dead_letter(message, DeadLetterReason.REFUSED_CONTENT_TYPE, _describe(exc))
            return
        self._dead_letter(message, DeadLetterReason.UNDECODABLE, _describe(exc))

    def on_unknown_message(self, body: Any, message: Any) -> None:
        """A message with no task name: not a Celery task message at all."""
        self._dead_letter(
            message, DeadLetterReason.UNKNOWN_TASK, "not a Celery task message (no task header)"
        )

    def on_unknown_task(self, body: Any, message: Any, exc: BaseException) -> None:
        """A task name this worker does not serve."""
        name = message.headers.get("task") if isinstance(message.headers, dict) else None
        self._dead_letter(
            message,
            DeadLetterReason.UNKNOWN_TASK,
            f"unknown task {name!r}: this worker serves only twentyq.play_turn",
        )

    def on_invalid_task(self, body: Any, message: Any, exc: BaseException) -> None:
        """A refused content type (pickle, ...) or a malformed task message."""
        if isinstance(exc, ContentDisallowed):
            error = (
                f"content type {message.content_type!r} is refused: twentyq accepts JSON only "
                f"({_describe(exc)})"
            )
            self._dead_letter(message, DeadLetterReason.REFUSED_CONTENT_TYPE, error)
            return
        self._dead_letter(message, DeadLetterReason.INVALID_TURN, _describe(exc))
