"""Dead letters for every reason: built from raw messages, published by the consumer hooks."""

from __future__ import annotations

import base64
import pickle
from typing import Any

import pytest
from celery import Celery
from kombu.exceptions import ContentDisallowed, DecodeError

from producer.messages import DEAD_LETTER_QUEUE, DeadLetter, DeadLetterReason
from tests.unit.worker.conftest import FakeMessage, drain_queue, make_turn, task_message
from worker.consumer import DeadLetteringConsumer
from worker.dead_letter import build_dead_letter
from worker.runtime import Runtime
from worker.screen import screen_message


def test_a_utf8_body_is_kept_as_text_and_a_binary_one_as_base64() -> None:
    text = build_dead_letter(
        reason=DeadLetterReason.UNDECODABLE, error="e", body=b"{oops", attempts=1
    )
    assert (text.body, text.body_encoding) == ("{oops", "utf-8")
    raw = pickle.dumps({"a": 1})
    binary = build_dead_letter(
        reason=DeadLetterReason.REFUSED_CONTENT_TYPE, error="e", body=raw, attempts=1
    )
    assert binary.body_encoding == "base64"
    assert base64.b64decode(binary.body) == raw


def test_a_valid_turn_passes_the_screen() -> None:
    turn = make_turn().model_dump(mode="json")
    assert screen_message(task_message(turn), max_message_bytes=65_536) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"turn": "seventeen"}, "wire contract"),
        ({"history": [{"question_id": "q"}]}, "answer"),
        ({"metadata": {"blob": "x" * 5000}}, "metadata"),
    ],
)
def test_a_turn_breaking_the_schema_is_an_invalid_turn(
    change: dict[str, Any], expected: str
) -> None:
    turn = {**make_turn().model_dump(mode="json"), **change}
    message = task_message(turn)
    letter = screen_message(message, max_message_bytes=65_536)
    assert letter is not None
    assert letter.reason is DeadLetterReason.INVALID_TURN
    assert expected in letter.error
    assert letter.body == message.body.decode()
    assert letter.task_id == turn["turn_id"]


def test_an_oversize_message_is_refused_before_decoding() -> None:
    message = task_message(make_turn().model_dump(mode="json"))
    letter = screen_message(message, max_message_bytes=100)
    assert letter is not None
    assert "WORKER_MAX_MESSAGE_BYTES" in letter.error


def test_a_task_id_other_than_the_turn_id_is_refused() -> None:
    message = task_message(make_turn().model_dump(mode="json"), task_id="other-id")
    letter = screen_message(message, max_message_bytes=65_536)
    assert letter is not None and "differs from turn_id" in letter.error


def test_undecodable_bodies_are_left_to_the_consumer_hooks() -> None:
    with pytest.raises(DecodeError):
        screen_message(FakeMessage(b"[[{", {"id": "x"}), max_message_bytes=65_536)
    pickled = FakeMessage(pickle.dumps([]), {"id": "x"}, "application/x-python-serialize", "binary")
    with pytest.raises(ContentDisallowed):
        screen_message(pickled, max_message_bytes=65_536)


def _consumer() -> DeadLetteringConsumer:
    # The hooks need no consumer state: skip Consumer.__init__ (it wants a running worker).
    return object.__new__(DeadLetteringConsumer)


def _hook_cases() -> list[tuple[str, Any, DeadLetterReason]]:
    return [
        (
            "decode",
            lambda c, m: c.on_decode_error(m, DecodeError("bad")),
            DeadLetterReason.UNDECODABLE,
        ),
        (
            "pickle",
            lambda c, m: c.on_invalid_task(None, m, ContentDisallowed("pickle")),
            DeadLetterReason.REFUSED_CONTENT_TYPE,
        ),
        (
            "unknown task",
            lambda c, m: c.on_unknown_task(None, m, KeyError("x")),
            DeadLetterReason.UNKNOWN_TASK,
        ),
        ("not a task", lambda c, m: c.on_unknown_message(None, m), DeadLetterReason.UNKNOWN_TASK),
    ]


@pytest.mark.parametrize(("name", "hook", "reason"), _hook_cases())
def test_each_consumer_hook_dead_letters_and_acks(
    name: str, hook: Any, reason: DeadLetterReason, runtime: Runtime, memory_app: Celery
) -> None:
    message = FakeMessage(b"\x80\x04junk", {"id": "task-1", "task": "nope"})
    hook(_consumer(), message)
    [letter] = [
        DeadLetter.model_validate(body) for body in drain_queue(memory_app, DEAD_LETTER_QUEUE)
    ]
    assert letter.reason is reason, name
    assert base64.b64decode(letter.body) == message.body
    assert letter.task_id == "task-1"
    assert message.acked
    failed = memory_app.AsyncResult("task-1")
    assert failed.state == "FAILURE" and reason.value in str(failed.result)


def test_a_dead_letter_that_cannot_be_published_requeues_the_message(runtime: Runtime) -> None:
    def broken(letter: DeadLetter) -> None:
        raise ConnectionError("broker down")

    runtime.outbox.dead_letter = broken  # type: ignore[method-assign]
    message = FakeMessage(b"{", {"id": "task-2"})
    _consumer().on_decode_error(message, DecodeError("bad"))
    assert (message.acked, message.requeued) == (False, True)
