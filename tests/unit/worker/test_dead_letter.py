"""Dead letters for every reason: built from raw messages by the screens and the consumer hook."""

from __future__ import annotations

import base64
import pickle
from typing import Any

import pytest
from celery import Celery
from kombu.exceptions import DecodeError

from producer.envelope import UNPARSED_CONTENT_TYPE
from producer.messages import DEAD_LETTER_QUEUE, DeadLetter, DeadLetterReason
from tests.unit.worker.conftest import FakeMessage, drain_queue, make_turn, task_message
from worker.consumer import TurnConsumer
from worker.dead_letter import build_dead_letter
from worker.runtime import Runtime
from worker.screen import TurnPayload, screen_message
from worker.serving import decode_batch


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


def test_a_valid_turn_passes_the_screen_untouched() -> None:
    turn = make_turn().model_dump(mode="json")
    message = task_message(turn)
    message.properties["reply_to"] = "twentyq.reply.abc"
    payload = screen_message(message, max_message_bytes=65_536)
    assert isinstance(payload, TurnPayload)
    assert (payload.body, payload.task_id, payload.reply_to) == (
        message.body,
        turn["turn_id"],
        "twentyq.reply.abc",
    )


def _payload(message: FakeMessage) -> TurnPayload:
    payload = screen_message(message, max_message_bytes=65_536)
    assert isinstance(payload, TurnPayload)
    return payload


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"turn": "seventeen"}, "turn: Input should be a valid integer"),
        ({"turn": "3"}, "turn: Input should be a valid integer"),
        ({"turn": True}, "turn: Input should be a valid integer"),
        ({"history": [{"question_id": "q"}]}, "answer"),
        ({"metadata": {"blob": "x" * 5000}}, "metadata"),
        ({"sent_at": "2999-01-01T00:00:00Z"}, "ahead of the worker's clock"),
    ],
)
def test_a_turn_breaking_the_strict_contract_is_an_invalid_turn(
    change: dict[str, Any], expected: str
) -> None:
    turn = {**make_turn().model_dump(mode="json"), **change}
    message = task_message(turn)
    turns, [(letter, _)] = decode_batch([_payload(message)])
    assert turns == {}
    assert letter.reason is DeadLetterReason.INVALID_TURN
    assert expected in letter.error
    assert letter.body == message.body.decode()
    assert letter.task_id == turn["turn_id"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[[{", "not standard JSON"),
        (b'[[{"a": NaN}], {}, {}]', "NaN is not standard JSON"),
        (b"[[]]", "protocol-2 [args, kwargs, embed] list (got a list of 1)"),
        (b'{"turn": 1}', "(got a JSON dict)"),
        (b"[[1, 2], {}, {}]", "exactly one argument"),
    ],
)
def test_a_body_that_is_no_protocol_2_turn_is_refused_saying_why(
    body: bytes, expected: str
) -> None:
    message = FakeMessage(body, {"task": "twentyq.play_turn", "id": "t-1"})
    _, [(letter, _)] = decode_batch([_payload(message)])
    not_json = "standard JSON" in expected
    assert letter.reason is (
        DeadLetterReason.UNDECODABLE if not_json else DeadLetterReason.INVALID_TURN
    )
    assert expected in letter.error


def test_non_finite_metadata_is_refused() -> None:
    turn = make_turn().model_dump(mode="json")
    body = task_message(turn).body.replace(b'"player": "p1"', b'"player": Infinity')
    message = FakeMessage(body, {"task": "twentyq.play_turn", "id": turn["turn_id"]})
    _, [(letter, _)] = decode_batch([_payload(message)])
    assert "Infinity is not standard JSON" in letter.error


def test_a_task_id_other_than_the_turn_id_is_refused() -> None:
    message = task_message(make_turn().model_dump(mode="json"), task_id="other-id")
    _, [(letter, _)] = decode_batch([_payload(message)])
    assert "differs from turn_id" in letter.error


@pytest.mark.parametrize(
    ("message", "reason", "expected"),
    [
        (FakeMessage(b"{}", {"id": "x"}), DeadLetterReason.UNKNOWN_TASK, "no task header"),
        (
            FakeMessage(b"{}", {"id": "x", "task": "celery.accumulate"}),
            DeadLetterReason.UNKNOWN_TASK,
            "unknown task 'celery.accumulate'",
        ),
        (
            FakeMessage(b"[[], {}, {}]", {"task": "twentyq.play_turn"}),
            DeadLetterReason.INVALID_ENVELOPE,
            "no string 'id' header",
        ),
        (
            FakeMessage(
                pickle.dumps([]),
                {"id": "x", "task": "twentyq.play_turn"},
                "application/x-python-serialize",
                "binary",
            ),
            DeadLetterReason.REFUSED_CONTENT_TYPE,
            "JSON only",
        ),
        (
            FakeMessage(b"[]", {"id": "x", "task": "twentyq.play_turn"}, content_encoding="utf-16"),
            DeadLetterReason.REFUSED_CONTENT_TYPE,
            "UTF-8",
        ),
        (
            FakeMessage(b"x" * 200, {"id": "x", "task": "twentyq.play_turn"}),
            DeadLetterReason.INVALID_TURN,
            "WORKER_MAX_MESSAGE_BYTES",
        ),
    ],
)
def test_the_envelope_screen_refuses_what_no_batch_may_see(
    message: FakeMessage, reason: DeadLetterReason, expected: str
) -> None:
    letter = screen_message(message, max_message_bytes=100)
    assert isinstance(letter, DeadLetter)
    assert letter.reason is reason
    assert expected in letter.error


def test_bytes_that_were_no_envelope_are_dead_lettered_as_they_were() -> None:
    raw = b"garbage{\xff"
    letter = screen_message(
        FakeMessage(raw.hex().encode(), {}, UNPARSED_CONTENT_TYPE, "binary"), 65_536
    )
    assert isinstance(letter, DeadLetter)
    assert letter.reason is DeadLetterReason.MALFORMED_ENVELOPE
    assert base64.b64decode(letter.body) == raw


def _consumer() -> TurnConsumer:
    # The hook needs no consumer state: skip Consumer.__init__ (it wants a running worker).
    return object.__new__(TurnConsumer)


def test_an_undecodable_message_is_dead_lettered_and_acked(
    runtime: Runtime, memory_app: Celery
) -> None:
    message = FakeMessage(b"\x80\x04junk", {"id": "task-1", "task": "nope"})
    _consumer().on_decode_error(message, DecodeError("bad"))
    [letter] = [
        DeadLetter.model_validate(body) for body in drain_queue(memory_app, DEAD_LETTER_QUEUE)
    ]
    assert letter.reason is DeadLetterReason.UNDECODABLE
    assert base64.b64decode(letter.body) == message.body
    assert letter.task_id == "task-1"
    assert message.acked
    failed = memory_app.AsyncResult("task-1")
    assert failed.state == "FAILURE" and "undecodable" in str(failed.result)


def test_a_dead_letter_that_cannot_be_published_requeues_the_message(runtime: Runtime) -> None:
    def broken(letter: DeadLetter, reply_to: str = "") -> None:
        raise ConnectionError("broker down")

    runtime.outbox.dead_letter = broken  # type: ignore[method-assign]
    message = FakeMessage(b"{", {"id": "task-2"})
    _consumer().on_decode_error(message, DecodeError("bad"))
    assert (message.acked, message.requeued) == (False, True)
