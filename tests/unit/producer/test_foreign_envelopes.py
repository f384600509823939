"""The Pub/Sub and SQS transports hand kombu only what it can build a message from."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from kombu.utils.json import loads

from producer.envelope import UNPARSED_CONTENT_TYPE, envelope_problem
from producer.pubsub_transport import ScreeningSubscriber

ENVELOPE = {
    "body": "e30=",
    "content-type": "application/json",
    "content-encoding": "utf-8",
    "headers": {"task": "twentyq.play_turn", "id": "t"},
    "properties": {"body_encoding": "base64", "delivery_info": {"exchange": "x"}},
}


class FakeSubscriber:
    """Answers every pull with the given data, as Pub/Sub's response objects hold it."""

    def __init__(self, *datas: bytes) -> None:
        self.datas = datas

    def pull(self, *_: Any, **__: Any) -> Any:
        messages = [SimpleNamespace(message=SimpleNamespace(data=data)) for data in self.datas]
        return SimpleNamespace(received_messages=messages)


def test_foreign_data_is_wrapped_and_envelopes_pass_untouched() -> None:
    good = json.dumps(ENVELOPE).encode()
    response = ScreeningSubscriber(FakeSubscriber(good, b"garbage{", b"[1, 2]")).pull()  # type: ignore[arg-type]
    first, *wrapped = [loads(m.message.data) for m in response.received_messages]
    assert first == ENVELOPE
    assert [w["content-type"] for w in wrapped] == [UNPARSED_CONTENT_TYPE] * 2
    assert [bytes.fromhex(w["body"]) for w in wrapped] == [b"garbage{", b"[1, 2]"]
    # kombu's gcpubsub channel sets the tag and reads delivery_info: both are there.
    assert all(isinstance(w["properties"]["delivery_info"], dict) for w in wrapped)


def test_sqs_bodies_kombu_cannot_build_a_message_from_are_wrapped() -> None:
    from producer.sqs_transport import Channel

    channel = object.__new__(Channel)  # the parse needs no connection
    good = json.dumps(ENVELOPE)
    assert channel._prepare_json_payload(good) == ENVELOPE
    bad_encoding = json.dumps(
        {**ENVELOPE, "properties": {"body_encoding": ["base64"], "delivery_info": {}}}
    )
    for text in ("garbage{", "[]", '{"properties": 1}', bad_encoding):
        wrapped = channel._prepare_json_payload(text)
        assert wrapped["content-type"] == UNPARSED_CONTENT_TYPE
        assert bytes.fromhex(wrapped["body"]).decode() == text


def test_envelopes_kombu_itself_accepts_pass_whatever_their_body_encoding() -> None:
    for encoding in (None, "", "utf-8", "UTF-8", "base64"):
        envelope = {**ENVELOPE, "properties": {**ENVELOPE["properties"], "body_encoding": encoding}}
        assert envelope_problem(envelope) is None, encoding
    for encoding in ("hex", ["base64"], 7):
        envelope = {**ENVELOPE, "properties": {**ENVELOPE["properties"], "body_encoding": encoding}}
        assert envelope_problem(envelope) is not None, encoding
