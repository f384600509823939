"""The lean client on a real Redis: one LPUSH for many turns, guesses back on one reply list.

The worker's part is played by the test (pop the messages, push guesses), so what is
checked is the client alone: the messages it queues and how it wakes its waiters,
from threads and from asyncio.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator

import pytest
import redis
from celery import Celery

from producer.async_client import AsyncTurnClient
from producer.broker import BrokerSettings
from producer.client import client_for, close_client, create_producer_app
from producer.envelope import is_reply_channel
from producer.errors import TurnFailedError
from producer.messages import (
    TURNS_QUEUE,
    DeadLetterReason,
    Guess,
    ModelRef,
    Timing,
    Turn,
    TurnFailure,
    utc_now,
)

pytestmark = pytest.mark.integration


@pytest.fixture()
def app(redis_url: str) -> Iterator[Celery]:
    made = create_producer_app(BrokerSettings(broker_url=redis_url))
    yield made
    close_client(made)
    made.close()


def turns(count: int) -> list[Turn]:
    return [Turn(turn_id=uuid.uuid4(), game_id=f"g{n}", turn=0) for n in range(count)]


def guess_for(turn: Turn) -> Guess:
    now = utc_now()
    return Guess(
        action="give_up",
        turn_id=turn.turn_id,
        game_id=turn.game_id,
        turn=turn.turn,
        model=ModelRef(name="m", version="1", run_id="r"),
        timing=Timing(sent_at=now, started_at=now, finished_at=now, queue_ms=0, inference_ms=0),
        worker="test/1",
    )


def answer_all(client: redis.Redis, reply: dict[str, Guess | TurnFailure]) -> list[dict]:
    """Play the worker: take every queued message, push each reply to its reply list."""
    envelopes = [json.loads(item) for item in client.lrange(TURNS_QUEUE, 0, -1)]
    client.delete(TURNS_QUEUE)
    for envelope in envelopes:
        reply_to = envelope["properties"]["reply_to"]
        assert is_reply_channel(reply_to)
        client.lpush(reply_to, reply[envelope["headers"]["id"]].model_dump_json())
    return envelopes


def test_many_turns_go_out_in_one_lpush_and_each_handle_gets_its_guess(
    app: Celery, redis_url: str
) -> None:
    server = redis.Redis.from_url(redis_url)
    sent = turns(20)
    before = server.info("commandstats").get("cmdstat_lpush", {}).get("calls", 0)
    handles = client_for(app).submit_many(sent)
    assert server.info("commandstats")["cmdstat_lpush"]["calls"] - before == 1
    replies: dict[str, Guess | TurnFailure] = {str(t.turn_id): guess_for(t) for t in sent}
    failed = sent[3]
    replies[str(failed.turn_id)] = TurnFailure(
        turn_id=str(failed.turn_id), reason=DeadLetterReason.INVALID_TURN, error="bad"
    )
    envelopes = answer_all(server, replies)
    # The stock protocol-2 shape: a base64 JSON body [[turn], {}, embed], id = turn_id.
    first = envelopes[-1]
    assert json.loads(base64.b64decode(first["body"]))[0][0]["turn_id"] == str(sent[0].turn_id)
    for turn, handle in zip(sent, handles, strict=True):
        if turn is failed:
            with pytest.raises(TurnFailedError, match="invalid_turn: bad"):
                handle.get(timeout_s=5)
        else:
            assert handle.get(timeout_s=5).turn_id == turn.turn_id
    server.close()


def test_asyncio_waiters_are_woken_from_the_one_reply_channel(app: Celery, redis_url: str) -> None:
    server = redis.Redis.from_url(redis_url)
    sent = turns(50)

    async def play() -> list[Guess]:
        client = AsyncTurnClient(app)
        handles = await client.submit_many(sent)
        waits = [asyncio.create_task(client.wait(handle, 10)) for handle in handles]
        await asyncio.to_thread(answer_all, server, {str(t.turn_id): guess_for(t) for t in sent})
        return list(await asyncio.gather(*waits))

    guesses = asyncio.run(play())
    assert [guess.turn_id for guess in guesses] == [turn.turn_id for turn in sent]
    server.close()
