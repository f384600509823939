"""The model contract (docs/model-contract.md) served by the Predictor behind the pyfunc."""

from __future__ import annotations

from typing import Any

import pytest

from model.engine import Engine, EngineConfig
from model.interpreter import AnswerInterpreter
from model.predictor import Predictor
from tests.unit.model.tiny_model import tiny_interpreter, tiny_knowledge_base


@pytest.fixture()
def predictor() -> Predictor:
    kb = tiny_knowledge_base()
    trained = tiny_interpreter()
    interpreter = AnswerInterpreter(trained.encoder, trained.head, trained.config)
    return Predictor(Engine(kb, EngineConfig()), kb, interpreter)


def turn(*entries: dict[str, Any], rejected: list[str] | None = None) -> dict[str, Any]:
    return {"history": list(entries), "rejected_guesses": rejected or []}


def test_a_batch_comes_back_in_order_with_errors_in_place(predictor: Predictor) -> None:
    batch = [
        turn({"question_id": "q1", "answer": "yes"}),
        turn({"question_id": "not-a-question", "answer": "yes"}),
        turn(),
        turn({"question_id": "q2", "answer": "sometimes?"}),
        "not a turn",
    ]

    results = predictor.predict(batch)

    assert len(results) == len(batch)
    assert "action" in results[0] and "action" in results[2]
    assert "unknown question id 'not-a-question'" in results[1]["error"]
    assert "unknown answer 'sometimes?'" in results[3]["error"]
    assert "must be a dict" in results[4]["error"]


def test_the_order_follows_the_batch_not_the_validity(predictor: Predictor) -> None:
    first = predictor.predict([turn({"question_id": "q3", "answer": "no"})])[0]
    second = predictor.predict([turn({"question_id": "q5", "answer": "yes"})])[0]

    both = predictor.predict(
        [turn({"question_id": "q5", "answer": "yes"}), turn({"question_id": "q3", "answer": "no"})]
    )

    assert both == [second, first]


def test_a_prediction_has_the_contract_shape(predictor: Predictor) -> None:
    result = predictor.predict([turn({"question_id": "q1", "answer": "probably"})])[0]

    assert set(result) == {"action", "question", "guesses", "interpreted_answers"}
    assert result["action"] == "ask"
    assert result["question"]["id"] != "q1"
    assert result["question"]["text"].startswith("Is it like thing")
    probabilities = [guess["probability"] for guess in result["guesses"]]
    assert 1 <= len(probabilities) <= 10
    assert probabilities == sorted(probabilities, reverse=True)
    assert result["interpreted_answers"] == []


def test_free_text_is_interpreted_and_reported(predictor: Predictor) -> None:
    batch = [
        turn({"question_id": "q1", "answer": "no", "answer_text": "yep"}),
        turn({"question_id": "q1", "answer_text": "nope"}, {"question_id": "q2", "answer": "yes"}),
    ]

    results = predictor.predict(batch)

    assert results[0]["interpreted_answers"] == [
        {"question_id": "q1", "text": "yep", "answer": "yes"}
    ]
    assert results[1]["interpreted_answers"] == [
        {"question_id": "q1", "text": "nope", "answer": "no"}
    ]
    # answer_text wins over answer: "yep" to q1 reads as yes, not the button's no.
    assert results[0] == predictor.predict([turn({"question_id": "q1", "answer": "yes"})])[0] | {
        "interpreted_answers": results[0]["interpreted_answers"]
    }


def test_a_whole_batch_of_free_text_costs_one_interpreter_pass(predictor: Predictor) -> None:
    batch = [
        turn({"question_id": f"q{index}", "answer_text": f"nope {index}"}) for index in range(8)
    ]

    predictor.predict(batch)

    assert predictor.interpreter.transformer_calls == 1


def test_an_entry_without_any_answer_is_an_error_item(predictor: Predictor) -> None:
    results = predictor.predict([turn({"question_id": "q1"}), turn({"answer": "yes"})])

    assert "needs an answer or an answer_text" in results[0]["error"]
    assert "needs a question_id" in results[1]["error"]


def test_rejected_guesses_leave_the_ranking(predictor: Predictor) -> None:
    history = [{"question_id": f"q{index}", "answer": "yes"} for index in range(6)]
    best = predictor.predict([turn(*history)])[0]["guesses"][0]["noun"]

    after = predictor.predict([turn(*history, rejected=[best])])[0]

    assert best not in [guess["noun"] for guess in after["guesses"]]


def test_a_long_game_ends_in_a_guess_or_give_up(predictor: Predictor) -> None:
    history = [{"question_id": f"q{index}", "answer": "unknown"} for index in range(16)]

    result = predictor.predict([turn(*history, rejected=["noun1", "noun2", "noun3", "noun4"])])[0]

    assert result["action"] in {"guess", "give_up"}
    assert result["question"] is None


def test_input_that_is_not_a_list_is_a_caller_bug(predictor: Predictor) -> None:
    with pytest.raises(TypeError, match="list of turn dicts"):
        predictor.predict({"history": []})  # type: ignore[arg-type]


def test_an_empty_batch_gives_an_empty_list(predictor: Predictor) -> None:
    assert predictor.predict([]) == []


def test_concurrent_batches_get_the_same_answers_as_sequential_ones(predictor: Predictor) -> None:
    from concurrent.futures import ThreadPoolExecutor

    batches = [
        [turn({"question_id": f"q{index}", "answer_text": text}) for index in range(4)]
        for text in ("yep", "nah", "kinda", "no clue", "rarely", "for sure")
    ]
    expected = [predictor.predict(batch) for batch in batches]
    fresh = Predictor(predictor.engine, predictor.kb, AnswerInterpreter(
        predictor.interpreter.encoder, predictor.interpreter.head, predictor.interpreter.config
    ))  # fmt: skip

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(fresh.predict, batches * 3))

    assert results == expected * 3
