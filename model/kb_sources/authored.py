"""The authored source tables under ``model/data/sources``.

- ``questions.csv``: ``id,text,source,rule``. ``rule`` says how WordNet or the
  authored size answers the question (see :mod:`model.knowledge_base_build`);
  empty means the answer comes only from the noun's and its kind's tags.
- ``kinds.csv``: ``kind,tags``: tags every noun of the kind starts with.
- ``nouns.csv``: ``noun,kind,synset,size,tags``. ``synset`` names the WordNet
  sense (``bat.n.01``; empty means ``<noun>.n.01``), ``size`` places the noun on
  the size scale (1 coin, 2 hand, 3 shoebox, 4 microwave, 5 person, 6 car,
  7 house, 8+ bigger), ``tags`` is a space-separated list of ``question_id``
  (P(yes) = 1) or ``question_id:0.7`` entries.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from model.errors import ModelPermanentError

SOURCES_DIRECTORY = Path(__file__).resolve().parent.parent / "data" / "sources"


class SourceTableError(ModelPermanentError):
    """Raised when an authored source table is malformed; the message names file and row."""


@dataclass(frozen=True)
class QuestionSource:
    """One question as authored: id, English text, where its answers come from, rule."""

    question_id: str
    text: str
    source: str
    rule: str


@dataclass(frozen=True)
class NounSource:
    """One noun as authored: kind, WordNet sense, size on the size scale, tags."""

    noun: str
    kind: str
    synset: str
    size: float
    tags: dict[str, float]


@dataclass(frozen=True)
class Sources:
    """Everything authored: questions, per-kind default tags and nouns."""

    questions: tuple[QuestionSource, ...]
    kind_tags: dict[str, dict[str, float]]
    nouns: tuple[NounSource, ...]


def parse_tags(text: str, where: str) -> dict[str, float]:
    """Parse ``"is_pet is_brown:0.5"`` into ``{"is_pet": 1.0, "is_brown": 0.5}``."""
    tags: dict[str, float] = {}
    for entry in text.split():
        name, _, value = entry.partition(":")
        try:
            probability = float(value) if value else 1.0
        except ValueError as error:
            raise SourceTableError(
                f"{where}: tag {entry!r} has a value that is no number"
            ) from error
        if not 0.0 <= probability <= 1.0 or name in tags:
            raise SourceTableError(f"{where}: tag {entry!r} is out of [0, 1] or repeated")
        tags[name] = probability
    return tags


def _read_rows(path: Path, header: list[str]) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != header:
            raise SourceTableError(f"{path}: expected the header {','.join(header)}")
        return list(reader)


def read_sources(directory: Path = SOURCES_DIRECTORY) -> Sources:
    """Read and check the three source tables; every tag must name a known question."""
    questions = tuple(
        QuestionSource(row["id"], row["text"], row["source"], row["rule"])
        for row in _read_rows(directory / "questions.csv", ["id", "text", "source", "rule"])
    )
    kind_tags = {
        row["kind"]: parse_tags(row["tags"], f"kinds.csv kind {row['kind']!r}")
        for row in _read_rows(directory / "kinds.csv", ["kind", "tags"])
    }
    nouns: list[NounSource] = []
    for line, row in enumerate(
        _read_rows(directory / "nouns.csv", ["noun", "kind", "synset", "size", "tags"]), start=2
    ):
        where = f"nouns.csv line {line} ({row['noun']!r})"
        if row["kind"] not in kind_tags:
            raise SourceTableError(f"{where}: kind {row['kind']!r} is not in kinds.csv")
        try:
            size = float(row["size"])
        except ValueError as error:
            raise SourceTableError(f"{where}: size {row['size']!r} is no number") from error
        synset = row["synset"] or f"{row['noun'].replace(' ', '_')}.n.01"
        nouns.append(
            NounSource(row["noun"], row["kind"], synset, size, parse_tags(row["tags"], where))
        )
    _check_tag_names(questions, kind_tags, nouns)
    return Sources(questions, kind_tags, tuple(nouns))


def _check_tag_names(
    questions: tuple[QuestionSource, ...],
    kind_tags: dict[str, dict[str, float]],
    nouns: list[NounSource],
) -> None:
    known = {question.question_id for question in questions}
    tagged = [(f"kind {kind!r}", tags) for kind, tags in kind_tags.items()]
    tagged += [(f"noun {noun.noun!r}", noun.tags) for noun in nouns]
    for owner, tags in tagged:
        unknown = sorted(set(tags) - known)
        if unknown:
            raise SourceTableError(
                f"{owner} has tags {unknown} that are no question id in questions.csv"
            )
