"""Celery protocol-2 task messages for turns, built and read without Celery's machinery.

Both sides meet here: the ambassador's client builds the message a stock
``send_task`` would (same headers, properties and body, so a stock worker could
serve it and our worker serves a stock client's), and the worker reads the turn
out of a message body in one strict pass. The reply channel's names and record
shapes live here too.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import socket
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter, ValidationError

from producer.messages import TURN_TASK_NAME, Turn

CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "utf-8"
REPLY_PREFIX = "twentyq.reply."
_EMBED = '{"callbacks": null, "errbacks": null, "chain": null, "chord": null}'
_BODY: TypeAdapter[tuple[tuple[Turn], dict[str, Any], dict[str, Any] | None]] = TypeAdapter(
    tuple[tuple[Turn], dict[str, Any], dict[str, Any] | None]
)
_ORIGIN: list[str] = []

__all__ = [
    "CONTENT_ENCODING",
    "CONTENT_TYPE",
    "REPLY_PREFIX",
    "UNPARSED_CONTENT_TYPE",
    "InvalidBodyError",
    "TaskMessage",
    "decode_turn_body",
    "envelope_problem",
    "is_reply_channel",
    "task_message",
    "wrap_unparsed",
]


class InvalidBodyError(ValueError):
    """Raised when a task message body does not carry exactly one valid turn.

    ``undecodable`` is true when the body is not standard JSON at all.
    """

    def __init__(self, message: str, *, undecodable: bool = False) -> None:
        super().__init__(message)
        self.undecodable = undecodable


class TaskMessage:
    """One protocol-2 message: ``body`` (JSON text), ``headers`` and ``properties``."""

    __slots__ = ("body", "headers", "properties", "turn_id")

    def __init__(
        self, turn_id: str, body: str, headers: dict[str, Any], properties: dict[str, Any]
    ) -> None:
        self.turn_id = turn_id
        self.body = body
        self.headers = headers
        self.properties = properties


UNPARSED_CONTENT_TYPE = "application/x-twentyq-unparsed"


def wrap_unparsed(item: bytes, tag: str, queue: str) -> dict[str, Any]:
    """A kombu envelope carrying bytes that are not one, hex-encoded, for the consumer to refuse."""
    return {
        "body": item.hex(),
        "content-type": UNPARSED_CONTENT_TYPE,
        "content-encoding": "binary",
        "properties": {
            "delivery_tag": tag,
            "delivery_info": {"exchange": queue, "routing_key": queue},
            # Persistent: the consumer acknowledges it once refused (Pub/Sub reads the mode).
            "delivery_mode": 2,
        },
    }


def envelope_problem(message: Any, tag: str | None = None) -> str | None:
    """Why kombu could not build a Message from a parsed item (None: it can).

    ``tag``: the delivery tag the item must carry (Redis); None where the transport
    sets the tag itself (Pub/Sub).
    """
    if not isinstance(message, dict):
        return "not a kombu envelope (a JSON object)"
    properties = message.get("properties")
    if not isinstance(properties, dict) or (
        tag is not None and properties.get("delivery_tag") != tag
    ):
        return "no kombu properties with a delivery tag"
    if not isinstance(properties.get("delivery_info"), dict):
        return "no delivery_info in the properties"
    if not isinstance(message.get("headers") or {}, dict):
        return "the headers are not an object"
    return _body_problem(message.get("body"), properties.get("body_encoding"))


def _body_problem(body: Any, encoding: Any) -> str | None:
    if body is not None and not isinstance(body, str):
        return "the body is not a string"
    # kombu 5.7 (virtual Channel.decode_body): no encoding or "utf-8" in any case means
    # the body as it is, "base64" decodes it; anything else raises inside kombu.
    if not encoding or (isinstance(encoding, str) and encoding.lower() == "utf-8"):
        return None
    if encoding != "base64":
        return f"unknown body_encoding {encoding!r}"
    if body:
        try:
            base64.b64decode(body, validate=True)
        except binascii.Error as error:
            return f"the body is not base64 ({error})"
    return None


def _origin() -> str:
    # Celery's anon_nodename(): gen<pid>@<host>; the host name is looked up once.
    if not _ORIGIN:
        _ORIGIN.append(socket.gethostname())
    return f"gen{os.getpid()}@{_ORIGIN[0]}"


def task_message(turn: Turn, reply_to: str = "") -> TaskMessage:
    """The message ``send_task('twentyq.play_turn', args=[turn], task_id=turn_id)`` sends.

    The turn is serialised once, by pydantic; the header names the turn without
    repeating what the player typed (Celery would put a repr of the whole turn there).
    """
    turn_id = str(turn.turn_id)
    body = f"[[{turn.model_dump_json()}], {{}}, {_EMBED}]"
    headers: dict[str, Any] = {
        "lang": "py",
        "task": TURN_TASK_NAME,
        "id": turn_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": turn_id,
        "parent_id": None,
        "argsrepr": f"(turn {turn.turn} of game {turn.game_id},)",
        "kwargsrepr": "{}",
        "origin": _origin(),
        "ignore_result": False,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    properties = {"correlation_id": turn_id, "reply_to": reply_to}
    return TaskMessage(turn_id, body, headers, properties)


def is_reply_channel(reply_to: object) -> bool:
    """True for a twentyq client's reply list (stock Celery clients name other things)."""
    return isinstance(reply_to, str) and reply_to.startswith(REPLY_PREFIX)


def reply_channel_name(client_id: UUID) -> str:
    """The Redis list a client reads its guesses from."""
    return f"{REPLY_PREFIX}{client_id.hex}"


def decode_turn_body(body: bytes | str) -> Turn:
    """The turn in a protocol-2 body ``[[turn], {}, embed]`` (or ``[[], {"turn": turn}, embed]``).

    Strict: standard JSON only, no coercion (``"turn": "3"`` is refused), one pass
    over the bytes for the usual shape. Raises :class:`InvalidBodyError` saying why.
    """
    try:
        args, kwargs, _ = _BODY.validate_json(body, strict=True)
    except ValidationError as error:
        return _turn_from_other_shapes(body, error)
    if kwargs:
        raise InvalidBodyError(f"unexpected keyword arguments {sorted(kwargs)}: send only the turn")
    return args[0]


def _refuse_constant(name: str) -> Any:
    raise InvalidBodyError(f"{name} is not standard JSON; send finite numbers only")


def _turn_from_other_shapes(body: bytes | str, error: ValidationError) -> Turn:
    # The slow path: find out what the body is, to accept kwargs={"turn": ...} and to say
    # precisely what is wrong with anything else.
    try:
        payload = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as parse_error:
        raise InvalidBodyError(
            f"the body is not standard JSON: {parse_error}", undecodable=True
        ) from parse_error
    if not isinstance(payload, list) or len(payload) != 3:
        raise InvalidBodyError(
            "the body is not a Celery protocol-2 [args, kwargs, embed] list "
            f"(got {_shape(payload)})"
        ) from error
    args, kwargs, _ = payload
    if args == [] and isinstance(kwargs, dict) and set(kwargs) == {"turn"}:
        try:
            return Turn.model_validate_json(json.dumps(kwargs["turn"]), strict=True)
        except ValidationError as turn_error:
            raise InvalidBodyError(_describe(turn_error, prefix=("turn",))) from turn_error
    if not (isinstance(args, list) and len(args) == 1 and kwargs == {}):
        raise InvalidBodyError(
            "expected exactly one argument, the turn (args=[turn] or kwargs={turn})"
        ) from error
    raise InvalidBodyError(_describe(error, prefix=(0, 0))) from error


def _shape(payload: Any) -> str:
    if isinstance(payload, list):
        return f"a list of {len(payload)}"
    return f"a JSON {type(payload).__name__}"


def _describe(error: ValidationError, prefix: tuple[Any, ...]) -> str:
    clauses = []
    for item in error.errors():
        location = item["loc"]
        if location[: len(prefix)] == prefix:
            location = location[len(prefix) :]
        where = ".".join(str(part) for part in location) or "(the turn itself)"
        clauses.append(f"{where}: {item['msg']}")
    return "the turn breaks the wire contract: " + "; ".join(clauses)
