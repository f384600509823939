"""The knowledge base: the committed table, loading, saving and the integrity checks."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

import model.knowledge_base as knowledge_base_module
from model.knowledge_base import (
    DEFAULT_DATA_DIRECTORY,
    KnowledgeBase,
    KnowledgeBaseError,
    check_integrity,
    close_pairs,
    constant_questions,
    duplicate_rows,
    format_probability,
    from_rows,
    load_knowledge_base,
    save_knowledge_base,
)

QUESTIONS = [
    ("is_animal", "Is it an animal?"),
    ("can_eat", "Can you eat it?"),
    ("has_wheels", "Does it have wheels?"),
    ("is_red", "Is it usually red?"),
]


def _tiny(rows: list[tuple[str, str, list[float]]]) -> KnowledgeBase:
    return from_rows(QUESTIONS, rows, ["wordnet", "authored", "wordnet", "authored"])


@pytest.fixture(scope="module")
def committed() -> KnowledgeBase:
    return load_knowledge_base()


def test_committed_table_is_big_enough(committed: KnowledgeBase) -> None:
    assert len(committed.nouns) >= 300
    assert len(set(committed.kinds)) >= 10
    assert len(committed.question_ids) >= 100
    assert {"wordnet", "authored"} <= set(committed.question_sources)


def test_committed_table_passes_every_integrity_check(committed: KnowledgeBase) -> None:
    assert check_integrity(committed) == []


def test_committed_table_answers_like_a_person_would(committed: KnowledgeBase) -> None:
    def p(noun: str, question_id: str) -> float:
        return float(
            committed.p_yes[committed.noun_index(noun), committed.question_index(question_id)]
        )

    assert p("apple", "can_eat") == 1.0 and p("dog", "can_eat") == 0.0
    assert p("car", "has_wheels") == 1.0 and p("dog", "has_wheels") == 0.0
    assert p("dog", "is_animal") == 1.0 and p("hammer", "is_animal") == 0.0
    # A dog is about the size of a microwave: a real player hesitates.
    assert 0.0 < p("dog", "bigger_than_microwave") < 1.0
    assert p("elephant", "bigger_than_microwave") == 1.0


def test_table_is_float32_read_only_and_shaped_nouns_by_questions(committed: KnowledgeBase) -> None:
    assert committed.p_yes.dtype == np.float32
    assert committed.p_yes.shape == (len(committed.nouns), len(committed.question_ids))
    with pytest.raises(ValueError):
        committed.p_yes[0, 0] = 0.5


def test_table_stays_read_only_when_sent_to_another_process(committed: KnowledgeBase) -> None:
    copied = pickle.loads(pickle.dumps(committed))
    assert copied.noun_index("dog") == committed.noun_index("dog")
    np.testing.assert_array_equal(copied.p_yes, committed.p_yes)
    with pytest.raises(ValueError):
        copied.p_yes[0, 0] = 0.5


def test_indexes_find_nouns_and_questions_and_name_unknown_ones(committed: KnowledgeBase) -> None:
    assert committed.nouns[committed.noun_index("teddy bear")] == "teddy bear"
    assert committed.question_ids[committed.question_index("has_wheels")] == "has_wheels"
    with pytest.raises(KeyError, match="unicorn"):
        committed.noun_index("unicorn")
    with pytest.raises(KeyError, match="is_magic"):
        committed.question_index("is_magic")


def test_default_directory_is_found_next_to_the_module() -> None:
    assert Path(knowledge_base_module.__file__).resolve().parent / "data" == DEFAULT_DATA_DIRECTORY


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    kb = _tiny([("dog", "animal", [1, 0, 0, 0.2]), ("teddy bear", "toy", [0, 0, 0, 0.35])])
    save_knowledge_base(kb, tmp_path)
    loaded = load_knowledge_base(tmp_path)
    assert loaded.nouns == kb.nouns and loaded.kinds == kb.kinds
    assert loaded.question_ids == kb.question_ids and loaded.question_texts == kb.question_texts
    assert loaded.question_sources == kb.question_sources
    np.testing.assert_array_equal(loaded.p_yes, kb.p_yes)
    assert (tmp_path / "knowledge_base.csv").read_text().splitlines()[1] == "dog,animal,1,0,0,0.2"


def test_committed_files_round_trip_byte_for_byte(tmp_path: Path, committed: KnowledgeBase) -> None:
    save_knowledge_base(committed, tmp_path)
    for name in ("questions.csv", "knowledge_base.csv"):
        assert (tmp_path / name).read_bytes() == (DEFAULT_DATA_DIRECTORY / name).read_bytes()


def test_loading_a_missing_table_says_how_to_regenerate_it(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match="knowledge_base_build"):
        load_knowledge_base(tmp_path)


def test_loading_rejects_a_table_whose_columns_do_not_match_the_questions(tmp_path: Path) -> None:
    shutil.copy(DEFAULT_DATA_DIRECTORY / "knowledge_base.csv", tmp_path)
    (tmp_path / "questions.csv").write_text("id,text,source\nis_animal,Is it an animal?,wordnet\n")
    with pytest.raises(KnowledgeBaseError, match="do not match"):
        load_knowledge_base(tmp_path)


def test_close_pairs_reports_nouns_told_apart_by_too_few_questions() -> None:
    kb = _tiny(
        [
            ("apple", "food", [0, 1, 0, 1]),
            ("cherry", "food", [0, 1, 0, 0.6]),
            ("car", "vehicle", [0, 0, 1, 0.6]),
        ]
    )
    # apple/cherry differ nowhere by >= 0.5; apple/car differ on can_eat and has_wheels only.
    assert close_pairs(kb) == [("apple", "cherry", 0), ("apple", "car", 2), ("cherry", "car", 2)]
    assert close_pairs(kb, min_differences=1) == [("apple", "cherry", 0)]


def test_duplicate_rows_and_constant_questions_are_caught() -> None:
    kb = _tiny(
        [
            ("dog", "animal", [1, 0, 0, 0]),
            ("wolf", "animal", [1, 0, 0, 0]),
            ("car", "vehicle", [0, 0, 1, 0.3]),
        ]
    )
    assert duplicate_rows(kb) == [("dog", "wolf")]
    # can_eat never varies and is_red varies by less than 0.5: neither tells two nouns apart.
    assert constant_questions(kb) == ["can_eat", "is_red"]
    problems = check_integrity(kb)
    assert any("identical rows" in line and "dog" in line for line in problems)
    assert any("'can_eat' tells no two nouns apart" in line for line in problems)


def test_check_integrity_reports_bad_values_names_and_repeats() -> None:
    kb = from_rows(
        [("Is Red", "Is it red?"), ("Is Red", "Is it red?")],
        [("Dog", "animal", [1.5, 0.333]), ("Dog", "animal", [0, 0])],
        ["wordnet", "guessed"],
    )
    problems = "\n".join(check_integrity(kb))
    for expected in (
        "not a slug",
        "source 'guessed'",
        "question id 'Is Red' appears twice",
        "noun 'Dog' appears twice",
        "not lower-case",
        "outside [0, 1]",
    ):
        assert expected in problems
    three_decimals = _tiny([("dog", "animal", [1, 0.333, 0, 0]), ("car", "vehicle", [0, 1, 1, 1])])
    assert "more than 2 decimals" in "\n".join(check_integrity(three_decimals))


def test_a_sound_tiny_table_has_no_problems() -> None:
    kb = _tiny(
        [
            ("dog", "animal", [1, 0, 0, 0.2]),
            ("apple", "food", [0, 1, 0, 0.7]),
            ("car", "vehicle", [0, 0, 1, 0.5]),
            ("fire engine", "vehicle", [0, 0, 1, 1]),
        ]
    )
    assert close_pairs(kb, min_differences=1) == []
    assert check_integrity(kb, min_differences=1) == []


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(KnowledgeBaseError, match="shape"):
        KnowledgeBase(
            ("dog",),
            ("animal",),
            ("is_animal",),
            ("Is it an animal?",),
            np.zeros((1, 2), dtype=np.float32),
        )


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1"), (0.0, "0"), (0.5, "0.5"), (0.25, "0.25"), (np.float32(0.7), "0.7")],
)
def test_probabilities_are_written_compactly(value: float, text: str) -> None:
    assert format_probability(value) == text


def test_every_question_and_noun_fits_the_wire_contract(committed: KnowledgeBase) -> None:
    # A question or guess the contract rejects would dead-letter every turn that carries it.
    from producer.messages import Question, RankedNoun

    for question_id, text in zip(committed.question_ids, committed.question_texts, strict=True):
        Question(id=question_id, text=text)
    for noun in committed.nouns:
        RankedNoun(noun=noun, probability=0.5)
