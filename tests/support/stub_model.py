"""A stub pyfunc honouring the model contract, logged with MLflow's models-from-code.

It knows a fixed set of question ids and answers deterministically. The model
config given at registration time changes its behaviour for tests:

- ``sleep_s``: seconds to sleep in every ``predict`` call (one call per batch);
- ``fail_question_id``: ``predict`` raises when any turn's history holds this id;
- ``call_log``: a file to which every ``predict`` call appends its batch size.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlflow.pyfunc import PythonModel, PythonModelContext

import mlflow

QUESTIONS = {
    "is_alive": "Is it alive?",
    "is_animal": "Is it an animal?",
    "is_big": "Is it bigger than a breadbox?",
    "has_legs": "Does it have legs?",
    "is_food": "Can you eat it?",
}
NOUNS = ("cat", "dog", "elephant", "apple", "car")


class StubModel(PythonModel):  # type: ignore[misc]
    """Asks the known questions in order, then guesses; flags unknown question ids."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}

    def load_context(self, context: PythonModelContext) -> None:
        self.config = dict(context.model_config or {})

    def predict(self, context: Any, model_input: list[dict[str, Any]], params: Any = None) -> Any:
        if self.config.get("call_log"):
            with Path(self.config["call_log"]).open("a") as log:
                log.write(f"{len(model_input)}\n")
        if self.config.get("sleep_s"):
            time.sleep(float(self.config["sleep_s"]))
        fail_id = self.config.get("fail_question_id")
        if fail_id and any(
            entry["question_id"] == fail_id for turn in model_input for entry in turn["history"]
        ):
            raise RuntimeError(f"stub model told to fail on question {fail_id!r}")
        return [_answer(turn) for turn in model_input]


def _answer(turn: dict[str, Any]) -> dict[str, Any]:
    asked = [entry["question_id"] for entry in turn["history"]]
    unknown = [question_id for question_id in asked if question_id not in QUESTIONS]
    if unknown:
        return {"error": f"unknown question id {unknown[0]!r}"}
    interpreted = [
        {"question_id": entry["question_id"], "text": entry["answer_text"], "answer": "yes"}
        for entry in turn["history"]
        if "answer_text" in entry
    ]
    remaining = [noun for noun in NOUNS if noun not in turn["rejected_guesses"]]
    guesses = [{"noun": noun, "probability": 1.0 / len(NOUNS)} for noun in remaining[:3]]
    next_ids = [question_id for question_id in QUESTIONS if question_id not in asked]
    if next_ids:
        question = {"id": next_ids[0], "text": QUESTIONS[next_ids[0]]}
        action = "ask"
    else:
        question = None
        action = "guess" if remaining else "give_up"
    return {
        "action": action,
        "question": question,
        "guesses": guesses,
        "interpreted_answers": interpreted,
    }


mlflow.models.set_model(StubModel())
