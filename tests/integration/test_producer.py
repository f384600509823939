"""The producer library against a real broker and a worker subprocess serving the stub model."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest

from producer.broker import BrokerSettings
from producer.client import create_producer_app, submit_turn
from producer.errors import BrokerUnavailableError, GuessTimeoutError, TurnFailedError
from producer.game import Game
from producer.messages import EXPORT_QUEUE, Action, Answer, GameOutcome, Turn
from producer.outcome import report_outcome
from producer.settings import ProducerSettings
from tests.integration.conftest import BrokerUnderTest, drain
from tests.support.services import free_port
from tests.support.worker_process import WorkerProcess

pytestmark = pytest.mark.integration

StartWorker = Callable[..., AbstractContextManager[WorkerProcess]]
FAST = ProducerSettings(send_max_retries=2, send_retry_start_s=0.05, send_retry_step_s=0.05)


def test_a_turn_goes_round_trip(broker: BrokerUnderTest, start_worker: StartWorker) -> None:
    app = broker.client_app()
    game = Game(metadata={"client": "integration", "n": 7})
    with start_worker():
        turn = game.next_turn()
        guess = submit_turn(turn, app=app).get(timeout_s=30)
        assert (guess.turn_id, guess.game_id, guess.turn) == (turn.turn_id, game.game_id, 0)
        assert guess.action is Action.ASK and guess.question is not None
        assert guess.metadata == {"client": "integration", "n": 7}
        assert guess.model.version == "1"
        game.apply(guess)
        game.answer(Answer.YES)
        second = submit_turn(game.next_turn(), app=app).get(timeout_s=30)
    assert second.answered is not None
    assert (second.answered.question_id, second.answered.answer) == (guess.question.id, Answer.YES)
    assert second.question is not None and second.question.id != guess.question.id


def test_a_dead_lettered_turn_fails_promptly_with_the_reason(
    broker: BrokerUnderTest, start_worker: StartWorker
) -> None:
    app = broker.client_app()
    turn = Turn(
        turn_id=uuid.uuid4(),
        game_id="g-dead",
        turn=1,
        history=[{"question_id": "is_purple", "answer": "yes"}],
    )
    with start_worker():
        started_s = time.monotonic()
        with pytest.raises(TurnFailedError) as caught:
            submit_turn(turn, app=app).get(timeout_s=30)
        elapsed_s = time.monotonic() - started_s
    assert "is_purple" in str(caught.value)
    assert str(turn.turn_id) in str(caught.value)
    assert elapsed_s < 20, "the failure should arrive long before the timeout"


def test_no_worker_means_a_timeout_that_says_so(broker: BrokerUnderTest) -> None:
    handle = submit_turn(Game().next_turn(), app=broker.client_app())
    started_s = time.monotonic()
    with pytest.raises(GuessTimeoutError) as caught:
        handle.get(timeout_s=1.0)
    assert 0.9 < time.monotonic() - started_s < 10
    assert handle.turn_id in str(caught.value)
    assert "no worker may be running" in str(caught.value)


def _unreachable_app() -> Any:
    port = free_port()  # nothing listens there
    url = f"redis://:hunter2@127.0.0.1:{port}/0"
    return create_producer_app(BrokerSettings(broker_url=url), FAST)


def test_a_down_broker_fails_once_with_a_clear_error() -> None:
    app = _unreachable_app()
    started_s = time.monotonic()
    with pytest.raises(BrokerUnavailableError) as caught:
        submit_turn(Game().next_turn(), app=app, settings=FAST)
    assert time.monotonic() - started_s < 15
    assert "unreachable" in str(caught.value) and "TWENTYQ_BROKER_URL" in str(caught.value)
    assert "hunter2" not in str(caught.value), "the broker password must not be echoed"
    app.close()


def test_a_down_broker_fails_an_outcome_report_clearly() -> None:
    app = _unreachable_app()
    outcome = GameOutcome(game_id="g-lost", won=False, turns=3)
    with pytest.raises(BrokerUnavailableError, match="g-lost"):
        report_outcome(outcome, app=app, settings=FAST)
    app.close()


def test_an_outcome_reaches_the_export_queue(broker: BrokerUnderTest) -> None:
    sent = report_outcome(
        GameOutcome(game_id="g-out", won=True, turns=9, revealed_noun="cat"),
        app=broker.client_app(),
    )
    with broker.connection() as connection:
        received = drain(connection, EXPORT_QUEUE, 1)
    assert [GameOutcome.model_validate(body) for body in received] == [sent]
