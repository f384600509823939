"""Every kind of bad message lands in ``twentyq.turns.dead`` with its reason; the worker serves on.

The messages are published raw with kombu, as a careless or hostile
ambassador could, bypassing the producer library's validation.
"""

from __future__ import annotations

import json
import pickle
import uuid
from base64 import b64decode
from typing import Any

import pytest
from celery.result import AsyncResult
from kombu import Exchange  # type: ignore[attr-defined]

from producer.client import submit_turn
from producer.errors import TurnFailedError
from producer.messages import (
    DEAD_LETTER_QUEUE,
    TURN_TASK_NAME,
    TURNS_QUEUE,
    DeadLetter,
    DeadLetterReason,
    Turn,
)
from tests.integration.conftest import BrokerUnderTest, drain
from tests.integration.test_pipeline import make_turn

pytestmark = pytest.mark.integration


def headers_for(task_id: str, task: str = TURN_TASK_NAME) -> dict[str, Any]:
    """Celery protocol-2 headers for a task message."""
    return {"lang": "py", "task": task, "id": task_id, "root_id": task_id, "retries": 0}


def celery_body(turn: dict[str, Any]) -> bytes:
    """A protocol-2 body: ``[args, kwargs, embed]``."""
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return json.dumps([[turn], {}, embed]).encode()


def valid_turn_json(**changes: Any) -> dict[str, Any]:
    turn = make_turn(0, 1).model_dump(mode="json")
    turn.update(changes)
    return turn


def oversize_body() -> tuple[str, bytes]:
    turn = valid_turn_json()
    turn["padding"] = "x" * 70_000
    return turn["turn_id"], celery_body(turn)


def unknown_question_body() -> tuple[str, bytes]:
    turn = valid_turn_json(history=[{"question_id": "is_it_a_unicorn", "answer": "yes"}])
    return turn["turn_id"], celery_body(turn)


def schema_body() -> tuple[str, bytes]:
    task_id = str(uuid.uuid4())
    return task_id, celery_body(valid_turn_json(turn_id=task_id, turn="seventeen"))


# kind -> (build (task id, body), content type, task name, expected reason)
CASES: dict[str, tuple[Any, str, str | None, DeadLetterReason]] = {
    "bad_json": (
        lambda: (str(uuid.uuid4()), b'[[{"turn_id": '),
        "application/json",
        TURN_TASK_NAME,
        DeadLetterReason.UNDECODABLE,
    ),
    "wrong_schema": (
        schema_body,
        "application/json",
        TURN_TASK_NAME,
        DeadLetterReason.INVALID_TURN,
    ),
    "oversize": (oversize_body, "application/json", TURN_TASK_NAME, DeadLetterReason.INVALID_TURN),
    "unknown_question": (
        unknown_question_body,
        "application/json",
        TURN_TASK_NAME,
        DeadLetterReason.INVALID_TURN,
    ),
    "pickle": (
        lambda: (str(uuid.uuid4()), pickle.dumps([[{"turn_id": "x"}], {}, {}])),
        "application/x-python-serialize",
        TURN_TASK_NAME,
        DeadLetterReason.REFUSED_CONTENT_TYPE,
    ),
    "unknown_task": (
        lambda: (str(uuid.uuid4()), celery_body(valid_turn_json())),
        "application/json",
        "twentyq.no_such_task",
        DeadLetterReason.UNKNOWN_TASK,
    ),
    "not_a_task": (
        lambda: (None, b'{"hello": "world"}'),
        "application/json",
        None,
        DeadLetterReason.UNKNOWN_TASK,
    ),
}


def publish_raw(
    broker: BrokerUnderTest, body: bytes, content_type: str, headers: dict[str, Any]
) -> None:
    exchange = Exchange(TURNS_QUEUE, type="direct")
    with broker.connection() as connection:
        connection.Producer().publish(
            body,
            exchange=exchange,
            routing_key=TURNS_QUEUE,
            content_type=content_type,
            content_encoding="binary" if content_type.endswith("serialize") else "utf-8",
            headers=headers,
            declare=[q for q in broker.client_app().conf.task_queues if q.name == TURNS_QUEUE],
        )


def test_each_bad_message_is_dead_lettered_and_the_worker_serves_on(
    broker: BrokerUnderTest, start_worker: Any
) -> None:
    app = broker.client_app()
    with start_worker() as worker:
        for kind, (build, content_type, task, reason) in CASES.items():
            task_id, body = build()
            headers = headers_for(task_id, task) if task and task_id else {}
            publish_raw(broker, body, content_type, headers)
            with broker.connection() as connection:
                letters = [
                    DeadLetter.model_validate(m) for m in drain(connection, DEAD_LETTER_QUEUE, 1)
                ]
            assert len(letters) == 1, f"{kind}: no dead letter\n{worker.log()[-3000:]}"
            letter = letters[0]
            assert letter.reason is reason, kind
            assert letter.error, kind
            kept = (
                letter.body.encode() if letter.body_encoding == "utf-8" else b64decode(letter.body)
            )
            assert kept == body, f"{kind}: the original body was not kept untouched"
            assert letter.task_id == task_id, kind
            if task_id is not None:
                # The producer waiting on this turn hears of it at once instead of timing out.
                result = AsyncResult(task_id, app=app)
                result.get(timeout=10, propagate=False)
                assert result.state == "FAILURE", kind
                assert reason.value in str(result.result), kind
            good = make_turn(1, 2)
            assert submit_turn(good, app=app).get(timeout_s=30).turn_id == good.turn_id, kind
        assert worker.process.poll() is None


def test_a_failing_model_is_retried_then_dead_lettered_and_the_batch_is_served(
    broker: BrokerUnderTest, start_worker: Any
) -> None:
    poison = Turn(
        turn_id=uuid.uuid4(),
        game_id="poison",
        turn=1,
        history=[{"question_id": "is_big", "answer": "yes"}],
    )
    good = [make_turn(game, 1) for game in range(3)]
    app = broker.client_app()
    with start_worker(
        {"fail_question_id": "is_big"}, batch_size="4", batch_window_ms="500", max_retries="2"
    ) as worker:
        handles = [submit_turn(turn, app=app) for turn in [*good[:2], poison, good[2]]]
        answered = [handles[i].get(timeout_s=30).turn_id for i in (0, 1, 3)]
        with pytest.raises(TurnFailedError, match="model_error"):
            handles[2].get(timeout_s=30)
        with broker.connection() as connection:
            letters = [
                DeadLetter.model_validate(m) for m in drain(connection, DEAD_LETTER_QUEUE, 1)
            ]
        assert worker.process.poll() is None
    assert answered == [turn.turn_id for turn in good]
    assert [letter.reason for letter in letters] == [DeadLetterReason.MODEL_ERROR]
    assert letters[0].task_id == str(poison.turn_id)
    # two retries of the batch, then one try of the poison turn alone
    assert letters[0].attempts == 4
    assert json.loads(letters[0].body)[0][0]["turn_id"] == str(poison.turn_id)
