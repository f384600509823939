"""The reference Twenty Questions engine: a Bayesian posterior over nouns.

Every answer multiplies each noun's probability by the answer model's
likelihood (see :mod:`model.likelihood`); the next question is the one with
the largest expected information gain under the same model. All of it runs on
a whole batch of turns at once: the batch's posteriors are one matrix product
of answer counts with the log-likelihood table, and the information gain of
every candidate question for every turn is two more.

Game rules (``max_questions`` = 20, the classic count): every question asked
and every guess made uses one of the 20 turns. The engine guesses its best
noun when that noun's posterior reaches ``guess_threshold``, when no unasked
question is left, or on the last of the 20 turns; it gives up once the 20 turns
are used (or every noun has been rejected).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from model.errors import ModelPermanentError
from model.likelihood import ANSWER_CLASSES, CLASS_INDEX, answer_likelihood

__all__ = [
    "ANSWER_CLASSES",
    "Decision",
    "Engine",
    "EngineConfig",
    "EngineTurn",
    "KnowledgeTable",
    "UnknownAnswerError",
    "UnknownQuestionError",
]

Action = Literal["ask", "guess", "give_up"]
FloatArray = NDArray[np.float64]


class UnknownQuestionError(ModelPermanentError, ValueError):
    """Raised when a turn answers a question id the knowledge base does not have."""


class UnknownAnswerError(ModelPermanentError, ValueError):
    """Raised when a turn's answer is not one of the five answer classes."""


class KnowledgeTable(Protocol):
    """What the engine reads from a knowledge base (``model.knowledge_base.KnowledgeBase``)."""

    @property
    def nouns(self) -> Sequence[str]:
        """The nouns, one per row of ``p_yes``."""

    @property
    def question_ids(self) -> Sequence[str]:
        """The question ids, one per column of ``p_yes``."""

    @property
    def p_yes(self) -> NDArray[np.floating]:
        """Share of people answering "yes", shape ``[n_nouns, n_questions]``."""


@dataclass(frozen=True)
class EngineConfig:
    """How the engine plays.

    ``noise`` is the flip rate the engine assumes of players; ``floor`` the
    share of answers it treats as uniformly random; ``top_k`` how many ranked
    guesses each decision carries; ``blas_threads`` caps the BLAS threads
    during a call (None leaves them alone): the matrices are small, and one
    thread is faster and steadier than several on them.
    """

    noise: float = 0.08
    guess_threshold: float = 0.8
    max_questions: int = 20
    top_k: int = 5
    floor: float = 0.03
    blas_threads: int | None = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.noise < 0.5:
            raise ValueError(f"noise must be in [0, 0.5), got {self.noise}")
        if not 0.0 < self.guess_threshold <= 1.0:
            raise ValueError(f"guess_threshold must be in (0, 1], got {self.guess_threshold}")
        if not 0.0 < self.floor < 1.0:
            raise ValueError(f"floor must be in (0, 1), got {self.floor}")
        if self.max_questions < 1 or self.top_k < 1:
            raise ValueError("max_questions and top_k must be at least 1")
        if self.blas_threads is not None and self.blas_threads < 1:
            raise ValueError(f"blas_threads must be at least 1 or None, got {self.blas_threads}")


@dataclass(frozen=True)
class EngineTurn:
    """A game state: the answered questions and the guesses the player rejected."""

    answers: tuple[tuple[str, str], ...] = ()
    rejected_guesses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """What the engine does on a turn, with its top-k ranked nouns (best first)."""

    action: Action
    question_id: str | None
    guesses: tuple[tuple[str, float], ...]


class Engine:
    """Decides the next move for a batch of turns; pure and thread-safe after construction."""

    def __init__(self, kb: KnowledgeTable, config: EngineConfig | None = None) -> None:
        self.config = config if config is not None else EngineConfig()
        self.nouns: tuple[str, ...] = tuple(kb.nouns)
        self.question_ids: tuple[str, ...] = tuple(kb.question_ids)
        self._noun_index = {noun: index for index, noun in enumerate(self.nouns)}
        self._question_index = {qid: index for index, qid in enumerate(self.question_ids)}
        p_yes = np.asarray(kb.p_yes, dtype=np.float64)
        expected_shape = (len(self.nouns), len(self.question_ids))
        if p_yes.shape != expected_shape:
            raise ValueError(f"p_yes has shape {p_yes.shape}; the table needs {expected_shape}")
        likelihood = answer_likelihood(p_yes, self.config.noise, self.config.floor)
        n_nouns, n_questions = expected_shape
        # [question*class, noun]: answer counts @ this = each noun's log-likelihood.
        self._log_likelihood = np.ascontiguousarray(
            np.log(likelihood).transpose(1, 2, 0).reshape(n_questions * 5, n_nouns)
        )
        # [noun, question*class]: posterior @ this = predictive answer distribution.
        self._likelihood = np.ascontiguousarray(likelihood.reshape(n_nouns, n_questions * 5))
        # [noun, question]: entropy of the answer when the noun is known.
        self._answer_entropy = -(likelihood * np.log(likelihood)).sum(axis=2)
        self._blas_controller = _blas_controller() if self.config.blas_threads else None

    def validate(self, turn: EngineTurn) -> str | None:
        """Return what is wrong with ``turn`` for this knowledge base, or None when it is fine."""
        problem = self._problem(turn)
        return None if problem is None else str(problem)

    def check(self, turn: EngineTurn) -> None:
        """Raise :class:`UnknownQuestionError` or :class:`UnknownAnswerError` for a bad turn."""
        problem = self._problem(turn)
        if problem is not None:
            raise problem

    def _problem(self, turn: EngineTurn) -> ValueError | None:
        for question_id, answer in turn.answers:
            if question_id not in self._question_index:
                return UnknownQuestionError(
                    f"unknown question id {question_id!r}: this model has "
                    f"{len(self.question_ids)} questions; ask only the ids it sends"
                )
            if answer not in CLASS_INDEX:
                return UnknownAnswerError(
                    f"unknown answer {answer!r} to question {question_id!r}: "
                    f"use one of {', '.join(ANSWER_CLASSES)}"
                )
        return None

    def posterior(self, turns: Sequence[EngineTurn]) -> FloatArray:
        """Return P(noun | turn) for each turn, shape ``[len(turns), n_nouns]``.

        Rows of turns that rejected every noun are all zero.
        """
        with self._blas_limit():
            return self._posterior_and_asked(turns)[0]

    def decide(self, turns: Sequence[EngineTurn]) -> list[Decision]:
        """Return the next move for each turn of the batch, in order."""
        if not turns:
            return []
        with self._blas_limit():
            posterior, asked = self._posterior_and_asked(turns)
            gain = self.information_gain(posterior)
        gain[asked] = -np.inf
        best_question = gain.argmax(axis=1)
        questions_left = asked.sum(axis=1) < asked.shape[1]
        top_k = min(self.config.top_k, len(self.nouns))
        ranked = np.argsort(-posterior, axis=1, kind="stable")[:, :top_k]
        decisions = []
        for row, turn in enumerate(turns):
            guesses = tuple(
                (self.nouns[index], float(posterior[row, index]))
                for index in ranked[row]
                if posterior[row, index] > 0.0
            )
            action = self._choose_action(turn, guesses, bool(questions_left[row]))
            question_id = self.question_ids[best_question[row]] if action == "ask" else None
            decisions.append(Decision(action, question_id, guesses))
        return decisions

    def information_gain(self, posterior: FloatArray) -> FloatArray:
        """Return the expected entropy reduction (nats) of every question, ``[batch, n_questions]``.

        The mutual information between the noun and the answer: the entropy of
        the predicted answer minus the expected entropy of the answer given the noun.
        """
        predicted = (posterior @ self._likelihood).reshape(len(posterior), -1, 5)
        answer_entropy = -(predicted * np.log(np.maximum(predicted, 1e-300))).sum(axis=2)
        gain: FloatArray = answer_entropy - posterior @ self._answer_entropy
        return gain

    def _blas_limit(self) -> AbstractContextManager[object]:
        if self._blas_controller is None:
            return nullcontext()
        limit: AbstractContextManager[object] = self._blas_controller.limit(
            limits=self.config.blas_threads, user_api="blas"
        )
        return limit

    def _choose_action(
        self, turn: EngineTurn, guesses: tuple[tuple[str, float], ...], questions_left: bool
    ) -> Action:
        turns_used = len(turn.answers) + len(turn.rejected_guesses)
        if not guesses or turns_used >= self.config.max_questions:
            return "give_up"
        last_turn = turns_used == self.config.max_questions - 1
        if guesses[0][1] >= self.config.guess_threshold or last_turn or not questions_left:
            return "guess"
        return "ask"

    def _posterior_and_asked(
        self, turns: Sequence[EngineTurn]
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        n_questions = len(self.question_ids)
        counts = np.zeros((len(turns), n_questions * 5))
        rejected = np.zeros((len(turns), len(self.nouns)), dtype=bool)
        for row, turn in enumerate(turns):
            self.check(turn)
            for question_id, answer in turn.answers:
                counts[row, self._question_index[question_id] * 5 + CLASS_INDEX[answer]] += 1.0
            for noun in turn.rejected_guesses:
                index = self._noun_index.get(noun)
                if index is not None:
                    rejected[row, index] = True
        log_posterior = counts @ self._log_likelihood
        log_posterior[rejected] = -np.inf
        peak = log_posterior.max(axis=1, keepdims=True)
        peak = np.where(np.isfinite(peak), peak, 0.0)
        weights = np.exp(log_posterior - peak)
        totals = weights.sum(axis=1, keepdims=True)
        posterior = np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)
        asked = counts.reshape(len(turns), n_questions, 5).sum(axis=2) > 0
        return posterior, asked


def _blas_controller() -> Any:
    """Return a threadpoolctl controller, or None where threadpoolctl is not installed."""
    try:
        from threadpoolctl import ThreadpoolController  # noqa: PLC0415 (optional dependency)
    except ImportError:
        return None
    return ThreadpoolController()
