"""Build dead letters from raw messages; the original body is kept untouched."""

from __future__ import annotations

import base64
from typing import Any

from producer.messages import DeadLetter, DeadLetterReason


def encode_body(body: bytes | str | Any) -> tuple[str, str]:
    """The body as text when it is UTF-8, else base64; returns ``(text, encoding)``."""
    if isinstance(body, str):
        return body, "utf-8"
    if isinstance(body, bytes | bytearray | memoryview):
        raw = bytes(body)
        try:
            return raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii"), "base64"
    # kombu hands some transports' bodies over already decoded; keep their exact repr
    return repr(body), "utf-8"


def build_dead_letter(
    *,
    reason: DeadLetterReason,
    error: str,
    body: bytes | str | Any,
    attempts: int,
    task_id: str | None = None,
    content_type: str | None = None,
    content_encoding: str | None = None,
) -> DeadLetter:
    """A :class:`DeadLetter` for a message the worker will not serve."""
    text, encoding = encode_body(body)
    return DeadLetter(
        reason=reason,
        error=error,
        attempts=attempts,
        task_id=task_id if isinstance(task_id, str) else None,
        content_type=_text_or_repr(content_type),
        content_encoding=_text_or_repr(content_encoding),
        body=text,
        body_encoding="utf-8" if encoding == "utf-8" else "base64",
    )


def _text_or_repr(value: Any) -> str | None:
    # A broken envelope can carry any JSON here; the dead letter keeps what it said.
    return value if value is None or isinstance(value, str) else repr(value)


def task_id_of(headers: Any) -> str | None:
    """The Celery task id from protocol-2 headers, when there is one."""
    if isinstance(headers, dict) and isinstance(headers.get("id"), str):
        return str(headers["id"])
    return None
