"""The protocol-2 message the lean client builds is the one a stock ``send_task`` sends."""

from __future__ import annotations

import json
import uuid

import pytest
from celery import Celery

from producer.envelope import InvalidBodyError, decode_turn_body, task_message
from producer.messages import TURN_TASK_NAME, Answer, HistoryEntry, Turn


def a_turn() -> Turn:
    return Turn(
        turn_id=uuid.uuid4(),
        game_id="g-1",
        turn=1,
        history=[HistoryEntry(question_id="is_alive", answer=Answer.YES)],
        metadata={"player": "p"},
    )


def test_headers_properties_and_body_match_celerys_own() -> None:
    turn = a_turn()
    turn_id = str(turn.turn_id)
    ours = task_message(turn, reply_to="twentyq.reply.x")
    stock = Celery("stock").amqp.as_task_v2(
        turn_id,
        TURN_TASK_NAME,
        args=[turn.model_dump(mode="json")],
        argsrepr=ours.headers["argsrepr"],
        kwargsrepr="{}",
        reply_to="twentyq.reply.x",
    )
    assert set(ours.headers) == set(stock.headers)
    for name in ("lang", "task", "id", "root_id", "retries", "timelimit", "kwargsrepr"):
        assert ours.headers[name] == stock.headers[name], name
    assert ours.properties == stock.properties
    assert json.loads(ours.body) == json.loads(json.dumps(list(stock.body)))


def test_the_body_decodes_back_to_the_same_turn_in_one_strict_pass() -> None:
    turn = a_turn()
    assert decode_turn_body(task_message(turn).body) == turn


def test_the_keyword_form_a_stock_client_may_send_is_served_too() -> None:
    turn = a_turn()
    body = json.dumps([[], {"turn": turn.model_dump(mode="json")}, {}])
    assert decode_turn_body(body) == turn


def test_unexpected_keyword_arguments_are_refused() -> None:
    body = f'[[{a_turn().model_dump_json()}], {{"extra": 1}}, {{}}]'
    with pytest.raises(InvalidBodyError, match="unexpected keyword arguments"):
        decode_turn_body(body)
