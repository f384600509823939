"""Regenerate the knowledge base from WordNet 3.0 and the authored source tables.

``python -m model.knowledge_base_build`` (or ``twentyq model build-kb``) reads
``model/data/sources``, answers the ``wordnet`` questions from WordNet's
taxonomy (``is_a:``) and parts (``has_part:``), the size questions from the
authored size (``size_above:`` / ``size_below:``), lets authored tags override
both, checks the result and writes ``model/data/questions.csv``,
``model/data/knowledge_base.csv`` and ``model/data/WORDNET_LICENSE``.
The same inputs always give the same bytes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from model.kb_sources.authored import (
    SOURCES_DIRECTORY,
    NounSource,
    QuestionSource,
    Sources,
    SourceTableError,
    read_sources,
)
from model.kb_sources.wordnet import (
    DEFAULT_WORDNET_DIRECTORY,
    WordNet,
    WordNetError,
    load_wordnet,
    read_licence,
)
from model.knowledge_base import (
    DEFAULT_DATA_DIRECTORY,
    QUESTIONS_FILE,
    TABLE_FILE,
    KnowledgeBase,
    check_integrity,
    differences,
    save_knowledge_base,
)

LICENCE_FILE = "WORDNET_LICENSE"
_LICENCE_PREFACE = (
    "The columns of knowledge_base.csv whose question has source `wordnet` in\n"
    "questions.csv were derived from WordNet 3.0 (Debian package wordnet-base)\n"
    "by model/knowledge_base_build.py. WordNet is distributed under this licence:\n\n"
)
# Half the width of the band where a size question is uncertain: a noun whose
# size is exactly on the threshold gets 0.5, one a full step away 0 or 1.
_SIZE_SOFTNESS = 1.0


def _size_answer(size: float, threshold: float) -> float:
    return float(np.clip(0.5 + (size - threshold) / _SIZE_SOFTNESS, 0.0, 1.0))


def _term_answer(wordnet: WordNet, noun_offset: int, size: float, term: str) -> float:
    operator, _, argument = term.partition(":")
    rules: dict[str, Callable[[], float]] = {
        "is_a": lambda: float(wordnet.is_a(noun_offset, wordnet.synset(argument).offset)),
        "has_part": lambda: float(wordnet.has_part(noun_offset, wordnet.synset(argument).offset)),
        "size_above": lambda: _size_answer(size, float(argument)),
        "size_below": lambda: 1.0 - _size_answer(size, float(argument)),
    }
    if operator not in rules:
        raise SourceTableError(f"questions.csv: unknown rule {term!r}; use one of {sorted(rules)}")
    return rules[operator]()


def answer(wordnet: WordNet, sources: Sources, noun: NounSource, question: QuestionSource) -> float:
    """Return P(yes): the noun's tag, else its kind's tag, else the rule (terms OR-ed), else 0."""
    for tags in (noun.tags, sources.kind_tags[noun.kind]):
        if question.question_id in tags:
            return tags[question.question_id]
    terms = question.rule.split()
    if not terms:
        return 0.0
    offset = wordnet.synset(noun.synset).offset
    return max(_term_answer(wordnet, offset, noun.size, term) for term in terms)


def build_knowledge_base(wordnet: WordNet, sources: Sources) -> KnowledgeBase:
    """Compute the whole table from WordNet and the authored sources, rounded to 2 decimals."""
    table = np.array(
        [
            [answer(wordnet, sources, noun, question) for question in sources.questions]
            for noun in sources.nouns
        ],
        dtype=np.float64,
    )
    return KnowledgeBase(
        nouns=tuple(noun.noun for noun in sources.nouns),
        kinds=tuple(noun.kind for noun in sources.nouns),
        question_ids=tuple(question.question_id for question in sources.questions),
        question_texts=tuple(question.text for question in sources.questions),
        p_yes=np.round(table, 2).astype(np.float32),
        question_sources=tuple(question.source for question in sources.questions),
    )


def write_outputs(kb: KnowledgeBase, licence: str, directory: Path) -> None:
    """Write the two CSV files and the WordNet licence notice into ``directory``."""
    save_knowledge_base(kb, directory)
    (directory / LICENCE_FILE).write_text(_LICENCE_PREFACE + licence, encoding="utf-8")


def summarise(kb: KnowledgeBase, closest_count: int = 10) -> list[str]:
    """Return a short report: counts per kind and the pairs of nouns hardest to tell apart."""
    kinds = sorted(set(kb.kinds))
    lines = [
        f"{len(kb.nouns)} nouns, {len(kinds)} kinds, {len(kb.question_ids)} questions "
        f"({kb.question_sources.count('wordnet')} from WordNet)",
        "nouns per kind: " + ", ".join(f"{kind} {kb.kinds.count(kind)}" for kind in kinds),
    ]
    counts = differences(kb).astype(np.float64)
    counts[np.tril_indices(len(kb.nouns))] = np.inf  # each pair once, never a noun with itself
    pair_count = len(kb.nouns) * (len(kb.nouns) - 1) // 2
    order = np.argsort(counts, axis=None, kind="stable")[: min(closest_count, pair_count)]
    seen = [
        f"{kb.nouns[a]} / {kb.nouns[b]} ({int(counts[a, b])})"
        for a, b in (divmod(flat, len(kb.nouns)) for flat in order.tolist())
    ]
    lines.append("closest pairs (questions telling them apart): " + "; ".join(seen))
    return lines


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="twentyq model build-kb",
        description="Regenerate model/data/{questions,knowledge_base}.csv from WordNet 3.0 "
        "and the authored tables in model/data/sources.",
    )
    parser.add_argument(
        "--wordnet-dir",
        type=Path,
        default=DEFAULT_WORDNET_DIRECTORY,
        help="folder holding WordNet's data.noun and index.noun "
        "(default: %(default)s, from the Debian package wordnet-base)",
    )
    parser.add_argument(
        "--sources-dir",
        type=Path,
        default=SOURCES_DIRECTORY,
        help="folder of the authored tables (default: model/data/sources)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_DATA_DIRECTORY,
        help="where to write the table (default: model/data)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when the committed files differ from a rebuild",
    )
    parser.add_argument(
        "--allow-problems",
        action="store_true",
        help="write the table even when integrity checks fail (for editing)",
    )
    return parser.parse_args(argv)


def _differing_files(kb: KnowledgeBase, licence: str, directory: Path) -> list[str]:
    with tempfile.TemporaryDirectory() as scratch:
        write_outputs(kb, licence, Path(scratch))
        return [
            name
            for name in (QUESTIONS_FILE, TABLE_FILE, LICENCE_FILE)
            if not (directory / name).is_file()
            or (directory / name).read_bytes() != (Path(scratch) / name).read_bytes()
        ]


def main(argv: Sequence[str] | None = None) -> int:
    """Build the table, report on it and write it (or with --check, compare); return exit code."""
    arguments = _parse_arguments(argv)
    try:
        wordnet = load_wordnet(arguments.wordnet_dir)
        licence = read_licence(arguments.wordnet_dir)
        kb = build_knowledge_base(wordnet, read_sources(arguments.sources_dir))
    except (WordNetError, SourceTableError) as error:
        print(f"build-kb: {error}", file=sys.stderr)
        return 2
    print("\n".join(summarise(kb)))
    problems = check_integrity(kb)
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if arguments.check:
        stale = _differing_files(kb, licence, arguments.output_dir)
        if stale:
            print(
                f"build-kb: {', '.join(stale)} in {arguments.output_dir} differ from a rebuild; "
                "run `python -m model.knowledge_base_build` and commit the result",
                file=sys.stderr,
            )
        return 1 if stale or problems else 0
    if problems and not arguments.allow_problems:
        print(
            f"build-kb: {len(problems)} problem(s); nothing written. Fix the tables in "
            f"{arguments.sources_dir} (or pass --allow-problems while editing)",
            file=sys.stderr,
        )
        return 1
    write_outputs(kb, licence, arguments.output_dir)
    print(f"wrote {QUESTIONS_FILE}, {TABLE_FILE} and {LICENCE_FILE} to {arguments.output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
