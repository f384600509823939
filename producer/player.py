"""Simulated players who answer from the knowledge base table, for ``twentyq simulate``.

The table is the model's CSV (``noun,kind,<question ids...>``, values P(yes));
the ambassador reads it as a plain file and never imports the model.

How a player answers question ``q`` about its secret noun with ``p = P(yes)``:

==============  ===============
p               answer
==============  ===============
p ≥ 0.85        yes
0.6 ≤ p < 0.85  probably
0.4 < p < 0.6   unknown
0.15 < p ≤ 0.4  probably_not
p ≤ 0.15        no
==============  ===============

With probability ``noise`` an answer is flipped (yes↔no, probably↔probably_not;
unknown stays). With probability ``free_text_rate`` the answer is typed as
free text, a phrasing of its class, and the model must interpret it. A
question missing from the table is answered "unknown".
"""

from __future__ import annotations

import csv
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from producer.errors import ConfigurationError
from producer.messages import Answer

FLIPPED: Mapping[Answer, Answer] = {
    Answer.YES: Answer.NO,
    Answer.NO: Answer.YES,
    Answer.PROBABLY: Answer.PROBABLY_NOT,
    Answer.PROBABLY_NOT: Answer.PROBABLY,
    Answer.UNKNOWN: Answer.UNKNOWN,
}

PHRASINGS: Mapping[Answer, tuple[str, ...]] = {
    Answer.YES: ("yep", "yes it is", "definitely", "absolutely", "of course", "sure thing"),
    Answer.PROBABLY: ("I think so", "probably", "most likely", "usually", "kind of"),
    Answer.UNKNOWN: ("no idea", "not sure", "dunno", "hard to say", "it depends"),
    Answer.PROBABLY_NOT: ("I don't think so", "probably not", "not really", "unlikely"),
    Answer.NO: ("nope", "no way", "definitely not", "not at all", "absolutely not"),
}


@dataclass(frozen=True)
class AnswerTable:
    """P(yes) per noun and question, as the simulated players know it."""

    nouns: tuple[str, ...]
    question_ids: tuple[str, ...]
    p_yes: Mapping[str, Mapping[str, float]]

    def probability(self, noun: str, question_id: str) -> float | None:
        """P(yes) for the noun and question, or None when the table lacks either."""
        return self.p_yes.get(noun, {}).get(question_id)


def load_answer_table(path: Path) -> AnswerTable:
    """Read ``noun,kind,<question ids...>``; :class:`ConfigurationError` says what is wrong."""
    try:
        with Path(path).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError as error:
        raise ConfigurationError(
            f"no knowledge base table at {path}: pass --knowledge-base PATH "
            "or set PRODUCER_KNOWLEDGE_BASE_PATH"
        ) from error
    if not rows or "noun" not in rows[0]:
        raise ConfigurationError(f"{path} is not a knowledge base table: it needs a 'noun' column")
    question_ids = tuple(name for name in rows[0] if name not in {"noun", "kind"})
    try:
        p_yes = {row["noun"]: {q: float(row[q]) for q in question_ids} for row in rows}
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"{path} holds a value that is not a probability: {error}; fix the table"
        ) from error
    return AnswerTable(nouns=tuple(p_yes), question_ids=question_ids, p_yes=p_yes)


def answer_class(p_yes: float) -> Answer:
    """The answer a truthful player gives for P(yes) (see the module's table)."""
    if p_yes >= 0.85:
        return Answer.YES
    if p_yes >= 0.6:
        return Answer.PROBABLY
    if p_yes > 0.4:
        return Answer.UNKNOWN
    if p_yes > 0.15:
        return Answer.PROBABLY_NOT
    return Answer.NO


@dataclass(frozen=True)
class PlayerAnswer:
    """What a player says: a button answer, or free text (``text``) of that class."""

    answer: Answer
    text: str | None = None
    flipped: bool = False


class SimulatedPlayer:
    """Thinks of a secret noun and answers questions about it from the table."""

    def __init__(
        self,
        table: AnswerTable,
        secret_noun: str,
        *,
        noise: float = 0.0,
        free_text_rate: float = 0.0,
        rng: random.Random | None = None,
        phrasings: Mapping[Answer, Sequence[str]] = PHRASINGS,
    ) -> None:
        if not 0.0 <= noise <= 1.0 or not 0.0 <= free_text_rate <= 1.0:
            raise ConfigurationError("noise and free_text_rate are rates: give values in [0, 1]")
        self.table = table
        self.secret_noun = secret_noun
        self.noise = noise
        self.free_text_rate = free_text_rate
        self.rng = rng or random.Random()
        self.phrasings = phrasings

    def answer(self, question_id: str) -> PlayerAnswer:
        """Answer a question about the secret noun, with noise and maybe in free text."""
        p_yes = self.table.probability(self.secret_noun, question_id)
        truthful = Answer.UNKNOWN if p_yes is None else answer_class(p_yes)
        flipped = self.rng.random() < self.noise
        answer = FLIPPED[truthful] if flipped else truthful
        if self.rng.random() < self.free_text_rate:
            return PlayerAnswer(answer, self.rng.choice(list(self.phrasings[answer])), flipped)
        return PlayerAnswer(answer, None, flipped)

    def confirms(self, noun: str) -> bool:
        """Whether the guessed noun is the secret one (players never lie about that)."""
        return noun.strip().lower() == self.secret_noun.strip().lower()
