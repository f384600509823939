"""Labelled answer phrasings: the interpreter's training and held-out sets.

``model/data/phrasings_train.csv`` trains the interpreter's head;
``model/data/phrasings_heldout.csv`` holds different phrasings, never used in
training, that measure its accuracy. Both have the columns ``text,answer``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from model.errors import ModelPermanentError
from model.likelihood import ANSWER_CLASSES

DATA_FOLDER = Path(__file__).resolve().parent / "data"
TRAIN_PHRASINGS_PATH = DATA_FOLDER / "phrasings_train.csv"
HELDOUT_PHRASINGS_PATH = DATA_FOLDER / "phrasings_heldout.csv"
_VOCABULARY_TOKEN = re.compile(r"[a-z']+")


@dataclass(frozen=True)
class Phrasings:
    """Texts and their answer classes, index-aligned."""

    texts: tuple[str, ...]
    answers: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def by_answer(self) -> dict[str, list[str]]:
        """The texts grouped by answer class (every class present, possibly empty)."""
        grouped: dict[str, list[str]] = {answer: [] for answer in ANSWER_CLASSES}
        for text, answer in zip(self.texts, self.answers, strict=True):
            grouped[answer].append(text)
        return grouped


def load_phrasings(path: Path) -> Phrasings:
    """Read a ``text,answer`` CSV; every answer must be one of :data:`ANSWER_CLASSES`."""
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError as error:
        raise ModelPermanentError(
            f"no phrasings file at {path}; restore it from version control"
        ) from error
    for line_number, row in enumerate(rows, start=2):
        if row.get("answer") not in ANSWER_CLASSES or not row.get("text"):
            raise ModelPermanentError(
                f"{path}:{line_number}: needs a text and an answer in {ANSWER_CLASSES}, "
                f"got {row!r}; fix the row"
            )
    return Phrasings(
        texts=tuple(row["text"] for row in rows), answers=tuple(row["answer"] for row in rows)
    )


def vocabulary_tokens(texts: Iterable[str]) -> list[str]:
    """Sorted distinct lower-cased word tokens (regex ``[a-z']+``), as the drift job expects."""
    tokens: set[str] = set()
    for text in texts:
        tokens.update(_VOCABULARY_TOKEN.findall(text.lower()))
    return sorted(tokens)
