"""The pure inference function and its retries, called directly."""

from __future__ import annotations

import pytest

from producer.messages import DeadLetterReason, Guess
from tests.unit.worker.conftest import MODEL, StubPredict, make_turn
from worker.errors import ModelFailedError
from worker.inference import Rejection, RetryPolicy, infer_batch, serve_batch


def test_one_predict_per_batch_and_one_guess_per_turn_in_order() -> None:
    predict = StubPredict()
    turns = [make_turn(("is_alive",)), make_turn(("is_alive", "has_legs"), game_id="g2")]
    outcomes = infer_batch(predict, turns, MODEL, "host/1")
    assert len(predict.calls) == 1
    assert predict.calls[0] == [turn.model_input() for turn in turns]
    assert all(isinstance(outcome, Guess) for outcome in outcomes)
    guesses = [outcome for outcome in outcomes if isinstance(outcome, Guess)]
    assert [g.turn_id for g in guesses] == [t.turn_id for t in turns]
    assert guesses[1].answered == turns[1].history[-1]
    assert [g.questions_asked for g in guesses] == [1, 2]
    assert guesses[1].game_id == "g2"
    assert guesses[0].model == MODEL
    assert guesses[0].metadata == {"player": "p1"}
    assert guesses[0].worker == "host/1"
    assert guesses[0].timing.queue_ms >= 0 and guesses[0].timing.inference_ms >= 0


def test_an_error_result_rejects_only_that_turn_as_invalid() -> None:
    turns = [make_turn(("is_alive",)), make_turn(("unknown",)), make_turn(())]
    outcomes = infer_batch(StubPredict(), turns, MODEL, "host/1")
    assert isinstance(outcomes[0], Guess) and isinstance(outcomes[2], Guess)
    rejection = outcomes[1]
    assert isinstance(rejection, Rejection)
    assert rejection.reason is DeadLetterReason.INVALID_TURN
    assert "unknown question id" in rejection.error
    assert outcomes[2].answered is None  # type: ignore[union-attr]


def test_a_prediction_breaking_the_contract_is_a_model_error() -> None:
    def predict(turns: list[dict[str, object]]) -> list[object]:
        return [{"action": "ask", "question": None}]

    [outcome] = infer_batch(predict, [make_turn()], MODEL, "host/1")
    assert isinstance(outcome, Rejection)
    assert outcome.reason is DeadLetterReason.MODEL_ERROR


@pytest.mark.parametrize("returned", [[], None, "nonsense"])
def test_a_wrong_number_of_results_fails_the_batch(returned: object) -> None:
    with pytest.raises(ModelFailedError, match="results for 1 turns"):
        infer_batch(lambda turns: returned, [make_turn()], MODEL, "host/1")


def test_a_transient_model_failure_is_retried_with_doubling_backoff() -> None:
    delays: list[float] = []
    predict = StubPredict(fail_times=2)
    policy = RetryPolicy(max_retries=3, backoff_s=0.5, sleep=delays.append)
    outcomes = serve_batch(predict, [make_turn(), make_turn()], MODEL, "h/1", policy)
    assert all(isinstance(outcome, Guess) for outcome in outcomes)
    assert delays == [0.5, 1.0]
    assert len(predict.calls) == 3


def test_a_poison_turn_is_isolated_after_the_retries_and_the_rest_is_served() -> None:
    delays: list[float] = []
    predict = StubPredict(poison="boom")
    turns = [make_turn(("is_alive",)), make_turn(("boom",)), make_turn(("has_legs",))]
    policy = RetryPolicy(max_retries=2, backoff_s=0.1, sleep=delays.append)
    outcomes = serve_batch(predict, turns, MODEL, "h/1", policy)
    assert isinstance(outcomes[0], Guess) and isinstance(outcomes[2], Guess)
    poisoned = outcomes[1]
    assert isinstance(poisoned, Rejection)
    assert poisoned.reason is DeadLetterReason.MODEL_ERROR
    assert poisoned.attempts == 4  # three tries of the batch, one alone
    assert "poisoned by boom" in poisoned.error
    assert delays == [0.1, 0.2]


def test_a_lone_turn_that_keeps_failing_is_dead_lettered_after_its_retries() -> None:
    predict = StubPredict(fail_times=10)
    policy = RetryPolicy(max_retries=1, backoff_s=0.0, sleep=lambda _: None)
    [outcome] = serve_batch(predict, [make_turn()], MODEL, "h/1", policy)
    assert isinstance(outcome, Rejection) and outcome.attempts == 2
    assert len(predict.calls) == 2


def test_an_empty_batch_calls_no_model() -> None:
    predict = StubPredict()
    assert serve_batch(predict, [], MODEL, "h/1", RetryPolicy()) == []
    assert predict.calls == []
