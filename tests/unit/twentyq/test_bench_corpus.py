"""`twentyq bench`: the corpus of replayed game states, the limit's batches, the HTTP format."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from producer.messages import ModelRef
from producer.player import AnswerTable
from twentyq.benchmark.corpus import describe_corpus, fresh_turn, replay_games
from twentyq.benchmark.errors import BenchError
from twentyq.benchmark.http_driver import check_invocation_answer, invocation_body
from twentyq.benchmark.limit import model_inputs

QUESTIONS = tuple(f"q{index}" for index in range(6))
TABLE = AnswerTable(
    nouns=("cat", "dog", "car"),
    question_ids=QUESTIONS,
    p_yes={
        "cat": dict.fromkeys(QUESTIONS, 0.9),
        "dog": dict.fromkeys(QUESTIONS, 0.1),
        "car": dict.fromkeys(QUESTIONS, 0.5),
    },
)
REF = ModelRef(name="stub", version="1", run_id="r")


def stub_predict(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Asks the questions in order, then guesses cat, dog, car; gives up after that."""
    results = []
    for turn in turns:
        asked = len(turn["history"])
        if asked < 4:
            question = {"id": QUESTIONS[asked], "text": f"Question {asked}?"}
            results.append({"action": "ask", "question": question, "guesses": []})
            continue
        left = [noun for noun in TABLE.nouns if noun not in turn["rejected_guesses"]]
        if left:
            results.append({"action": "guess", "guesses": [{"noun": left[0], "probability": 0.5}]})
        else:
            results.append({"action": "give_up"})
    return results


def test_replayed_games_hold_every_turn_of_every_game() -> None:
    corpus = replay_games(stub_predict, REF, TABLE, games=12, seed=1, free_text_rate=0.5)
    shape = describe_corpus(corpus)
    assert shape["games"] == 12
    lengths = {len(turn["history"]) for turn in corpus}
    assert lengths == {0, 1, 2, 3, 4}  # every stage of a game, not only openings
    assert shape["with_rejected_guesses"] > 0
    assert 0.2 < shape["free_text_share"] < 0.8
    assert all("turn_id" not in turn and "sent_at" not in turn for turn in corpus)
    assert corpus == replay_games(stub_predict, REF, TABLE, games=12, seed=1, free_text_rate=0.5)


def test_a_rejected_turn_ends_its_game() -> None:
    def refuse(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"error": "no"} for _ in turns]

    assert replay_games(refuse, REF, TABLE, games=3) == []
    with pytest.raises(ValueError, match="empty"):
        describe_corpus([])


def test_fresh_turns_get_new_ids() -> None:
    template = {"game_id": "g", "turn": 0, "history": [], "rejected_guesses": []}
    first, second = fresh_turn(template), fresh_turn(template)
    assert first["turn_id"] != second["turn_id"]
    assert uuid.UUID(first["turn_id"]) and "turn_id" not in template


def test_limit_batches_cycle_through_the_corpus() -> None:
    corpus = [
        {"history": [{"question_id": f"q{i}"}], "rejected_guesses": [], "game_id": "g"}
        for i in range(5)
    ]
    batches = model_inputs(corpus, 3, 4)
    assert [len(batch) for batch in batches] == [3, 3, 3, 3]
    assert batches[1][0] == {"history": [{"question_id": "q3"}], "rejected_guesses": []}
    with pytest.raises(ValueError):
        model_inputs([], 3, 1)


def test_invocation_body_is_mlflow_inputs_of_one_turn() -> None:
    turn = {
        "game_id": "g",
        "turn": 2,
        "history": [{"question_id": "q0", "answer": "yes"}],
        "rejected_guesses": ["cat"],
        "metadata": {"a": 1},
    }
    assert json.loads(invocation_body(turn)) == {
        "inputs": [
            {"history": [{"question_id": "q0", "answer": "yes"}], "rejected_guesses": ["cat"]}
        ]
    }


def test_invocation_answers_are_checked_against_the_contract() -> None:
    good = {
        "predictions": [{"action": "ask", "question": {"id": "q1", "text": "Q?"}, "guesses": []}]
    }
    assert check_invocation_answer(json.dumps(good).encode()).question is not None
    for bad in (
        {"predictions": [{"action": "ask"}]},
        {"predictions": []},
        {"outputs": []},
    ):
        with pytest.raises(BenchError):
            check_invocation_answer(json.dumps(bad).encode())
    with pytest.raises(BenchError):
        check_invocation_answer(b"<html>")
