"""The model contract (docs/model-contract.md) as a plain function over a batch of turns.

:class:`Predictor` reads contract turns (``{"history", "rejected_guesses"}``),
interprets every free-text answer of the batch in one interpreter call, asks
the engine for every valid turn in one ``decide`` call and returns one result
per turn, in order: a prediction, or ``{"error": ...}`` for a turn this model
cannot serve. The MLflow wrapper (:mod:`model.pyfunc`) only delegates here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from model.engine import Decision, Engine, EngineTurn
from model.errors import ModelPermanentError
from model.interpreter import AnswerInterpreter
from model.knowledge_base import KnowledgeBase

Result = dict[str, Any]


class InvalidTurn(ModelPermanentError):
    """Raised inside :class:`Predictor` when one turn breaks the contract; becomes an error item."""


@dataclass(frozen=True)
class _ParsedTurn:
    question_ids: tuple[str, ...]
    answers: tuple[str | None, ...]
    texts: tuple[str | None, ...]
    rejected_guesses: tuple[str, ...]


class Predictor:
    """Serves the model contract with an engine, its knowledge base and an answer interpreter."""

    def __init__(self, engine: Engine, kb: KnowledgeBase, interpreter: AnswerInterpreter):
        self.engine = engine
        self.kb = kb
        self.interpreter = interpreter
        self._question_texts = dict(zip(kb.question_ids, kb.question_texts, strict=True))

    def predict(self, turns: Sequence[Any]) -> list[Result]:
        """Return one result per turn, in order (see docs/model-contract.md)."""
        if not isinstance(turns, list | tuple):
            raise TypeError(
                f"predict takes a list of turn dicts, got {type(turns).__name__}; "
                "pass [turn.model_input(), ...]"
            )
        parsed: list[_ParsedTurn | str] = [_parse_or_explain(turn) for turn in turns]
        texts = [
            text for item in parsed if not isinstance(item, str) for text in item.texts if text
        ]
        classes = iter(self.interpreter.interpret(texts))
        results: list[Result | None] = []
        ready: list[tuple[int, EngineTurn, list[Result]]] = []
        for position, item in enumerate(parsed):
            if isinstance(item, str):
                results.append({"error": item})
                continue
            engine_turn, interpreted = _resolve(item, classes)
            problem = self.engine.validate(engine_turn)
            results.append({"error": problem} if problem else None)
            if problem is None:
                ready.append((position, engine_turn, interpreted))
        decisions = self.engine.decide([engine_turn for _, engine_turn, _ in ready])
        for (position, _, interpreted), decision in zip(ready, decisions, strict=True):
            results[position] = self._format(decision, interpreted)
        return [result for result in results if result is not None]

    def _format(self, decision: Decision, interpreted: list[Result]) -> Result:
        question = None
        if decision.action == "ask" and decision.question_id is not None:
            question = {
                "id": decision.question_id,
                "text": self._question_texts[decision.question_id],
            }
        return {
            "action": decision.action,
            "question": question,
            "guesses": [
                {"noun": noun, "probability": probability} for noun, probability in decision.guesses
            ],
            "interpreted_answers": interpreted,
        }


def _resolve(item: _ParsedTurn, classes: Iterator[str]) -> tuple[EngineTurn, list[Result]]:
    """Pair each entry with its class: the interpreted text where there is one, else the answer."""
    answers: list[tuple[str, str]] = []
    interpreted: list[Result] = []
    for question_id, given, text in zip(item.question_ids, item.answers, item.texts, strict=True):
        answer = given or ""
        if text:
            answer = next(classes)
            interpreted.append({"question_id": question_id, "text": text, "answer": answer})
        answers.append((question_id, answer))
    return EngineTurn(tuple(answers), item.rejected_guesses), interpreted


def _parse_or_explain(turn: Any) -> _ParsedTurn | str:
    try:
        return _parse(turn)
    except InvalidTurn as error:
        return str(error)


def _parse(turn: Any) -> _ParsedTurn:
    if not isinstance(turn, dict):
        raise InvalidTurn(f"a turn must be a dict with history and rejected_guesses, got {turn!r}")
    history = turn.get("history") or []
    rejected = turn.get("rejected_guesses") or []
    if not isinstance(history, list) or not isinstance(rejected, list):
        raise InvalidTurn("history and rejected_guesses must be lists")
    if not all(isinstance(noun, str) for noun in rejected):
        raise InvalidTurn("rejected_guesses must be a list of nouns (strings)")
    question_ids, answers, texts = [], [], []
    for entry in history:
        if not isinstance(entry, dict) or not isinstance(entry.get("question_id"), str):
            raise InvalidTurn(f"each history entry needs a question_id string, got {entry!r}")
        answer, text = entry.get("answer"), entry.get("answer_text")
        if not (isinstance(answer, str) or (isinstance(text, str) and text.strip())):
            raise InvalidTurn(
                f"history entry for {entry['question_id']!r} needs an answer or an answer_text"
            )
        question_ids.append(entry["question_id"])
        answers.append(answer if isinstance(answer, str) else None)
        texts.append(text.strip() if isinstance(text, str) and text.strip() else None)
    return _ParsedTurn(tuple(question_ids), tuple(answers), tuple(texts), tuple(rejected))
