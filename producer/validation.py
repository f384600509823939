"""Check messages against the wire contract before they leave, naming the bad field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from producer.errors import InvalidTurnError
from producer.messages import Turn


def describe_validation_error(error: ValidationError) -> str:
    """One clause per problem, each naming the field by its dotted path."""
    clauses = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(the message itself)"
        clauses.append(f"{location}: {item['msg']}")
    return "; ".join(clauses)


def validate_turn(turn: Turn | Mapping[str, Any]) -> Turn:
    """Check a turn against the wire contract; raise :class:`InvalidTurnError` naming the field.

    A :class:`Turn` is re-validated too: ``Turn.model_construct`` skips validation.
    """
    data = turn.model_dump(mode="json") if isinstance(turn, Turn) else dict(turn)
    try:
        return Turn.model_validate(data)
    except ValidationError as error:
        raise InvalidTurnError(
            f"the turn was not sent because it breaks the wire contract: "
            f"{describe_validation_error(error)}; fix these fields and send it again"
        ) from error
