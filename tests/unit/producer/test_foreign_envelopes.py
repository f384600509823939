"""The Pub/Sub and SQS transports hand kombu only what it can build a message from."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from producer.envelope import UNPARSED_CONTENT_TYPE, envelope_problem
from producer.pubsub_transport import Channel, ScreeningSubscriber

ENVELOPE = {
    "body": "e30=",
    "content-type": "application/json",
    "content-encoding": "utf-8",
    "headers": {"task": "twentyq.play_turn", "id": "t"},
    "properties": {"body_encoding": "base64", "delivery_info": {"exchange": "x"}},
}


_values = st.none() | st.booleans() | st.integers() | st.text(max_size=6) | st.lists(st.integers())


def _envelopes() -> st.SearchStrategy[bytes]:
    """Envelope-shaped JSON documents with any of kombu's fields missing or of another type."""
    properties = st.fixed_dictionaries(
        {},
        optional={
            "delivery_info": st.fixed_dictionaries({}, optional={"exchange": _values}) | _values,
            "delivery_mode": _values,
            "body_encoding": st.sampled_from(["base64", "utf-8"]) | _values,
        },
    )
    document = st.fixed_dictionaries(
        {},
        optional={"body": _values, "headers": _values, "properties": properties | _values},
    )
    return document.map(lambda value: json.dumps(value).encode())


class FakeSubscriber:
    """Answers every pull with the given data, as Pub/Sub's response objects hold it."""

    def __init__(self, *datas: bytes) -> None:
        self.datas = datas

    def pull(self, *_: Any, **__: Any) -> Any:
        messages = [
            SimpleNamespace(
                ack_id=f"ack-{index}", message=SimpleNamespace(data=data, message_id=index)
            )
            for index, data in enumerate(self.datas)
        ]
        return SimpleNamespace(received_messages=messages)


def pulled_by_kombu(*datas: bytes) -> list[Any]:
    """What kombu's own gcpubsub ``_get_bulk`` makes of one pull of ``datas`` (no emulator)."""
    channel = object.__new__(Channel)  # the pull needs no connection
    settings = {"queue_name_prefix": "", "retry_timeout_seconds": 1, "wait_time_seconds": 1}
    settings["bulk_max_messages"] = len(datas)
    channel.__dict__.update(settings, subscriber=ScreeningSubscriber(FakeSubscriber(*datas)))  # type: ignore[arg-type]
    channel._queue_cache = {"q": SimpleNamespace(subscription_path="s", unacked_ids=[])}
    channel._fanout_exchanges = set()
    channel._qos = SimpleNamespace(can_consume_max_estimate=lambda: len(datas))
    _, payloads = channel._get_bulk("q", 1)
    return list(payloads)


PUBSUB_ENVELOPE = {
    **ENVELOPE,
    "properties": {**ENVELOPE["properties"], "delivery_mode": 2},
}


def test_foreign_data_is_wrapped_and_envelopes_pass_untouched() -> None:
    good = json.dumps(PUBSUB_ENVELOPE).encode()
    first, *wrapped = pulled_by_kombu(good, b"garbage{", b"[1, 2]", b"\xff{")
    assert first["body"] == PUBSUB_ENVELOPE["body"] and first["headers"] == ENVELOPE["headers"]
    assert [w["content-type"] for w in wrapped] == [UNPARSED_CONTENT_TYPE] * 3
    assert [bytes.fromhex(w["body"]) for w in wrapped] == [b"garbage{", b"[1, 2]", b"\xff{"]


def test_an_envelope_kombu_would_choke_on_in_the_pull_is_wrapped() -> None:
    # Each of these raised inside kombu's background pull, which dropped the whole pull
    # unacknowledged: Pub/Sub redelivered it for ever and nothing was served.
    chokes = [
        ENVELOPE,  # no delivery_mode
        {**PUBSUB_ENVELOPE, "properties": {"delivery_mode": 2, "delivery_info": {}}},
        {**PUBSUB_ENVELOPE, "properties": {"delivery_mode": 2, "delivery_info": {"exchange": []}}},
        {"__type__": "nothing kombu knows", "__value__": 1},
    ]
    payloads = pulled_by_kombu(*(json.dumps(choke).encode() for choke in chokes))
    assert [p["content-type"] for p in payloads] == [UNPARSED_CONTENT_TYPE] * len(chokes)


@settings(max_examples=300, deadline=None)
@given(datas=st.lists(st.binary(max_size=64) | _envelopes(), min_size=1, max_size=4))
def test_kombu_consumes_every_pulled_message_whatever_its_data(datas: list[bytes]) -> None:
    assert len(pulled_by_kombu(*datas)) == len(datas)


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
