"""Simulated players answer from the table, with the documented flip and free-text rates."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from producer.errors import ConfigurationError
from producer.messages import Answer
from producer.player import PHRASINGS, SimulatedPlayer, answer_class, load_answer_table

TABLE_CSV = """noun,kind,is_alive,has_wheels,is_big,is_soft
cat,animal,1.0,0.0,0.3,0.7
car,vehicle,0.0,1.0,0.9,0.5
"""


@pytest.fixture()
def table_path(tmp_path: Path) -> Path:
    path = tmp_path / "knowledge_base.csv"
    path.write_text(TABLE_CSV)
    return path


def test_the_table_loads_nouns_and_question_ids(table_path: Path) -> None:
    table = load_answer_table(table_path)
    assert table.nouns == ("cat", "car")
    assert table.question_ids == ("is_alive", "has_wheels", "is_big", "is_soft")
    assert table.probability("car", "is_big") == 0.9
    assert table.probability("car", "unknown_question") is None


@pytest.mark.parametrize(
    ("p_yes", "expected"),
    [
        (1.0, Answer.YES),
        (0.85, Answer.YES),
        (0.7, Answer.PROBABLY),
        (0.5, Answer.UNKNOWN),
        (0.3, Answer.PROBABLY_NOT),
        (0.15, Answer.NO),
        (0.0, Answer.NO),
    ],
)
def test_answer_class_follows_the_documented_bands(p_yes: float, expected: Answer) -> None:
    assert answer_class(p_yes) is expected


def test_a_noise_free_player_answers_truthfully(table_path: Path) -> None:
    player = SimulatedPlayer(load_answer_table(table_path), "cat", rng=random.Random(1))
    answers = [player.answer(q).answer for q in ("is_alive", "has_wheels", "is_big", "is_soft")]
    assert answers == [Answer.YES, Answer.NO, Answer.PROBABLY_NOT, Answer.PROBABLY]


def test_an_unknown_question_is_answered_unknown(table_path: Path) -> None:
    player = SimulatedPlayer(load_answer_table(table_path), "cat", rng=random.Random(1))
    assert player.answer("is_purple").answer is Answer.UNKNOWN


def test_noise_flips_about_that_share_of_answers(table_path: Path) -> None:
    player = SimulatedPlayer(load_answer_table(table_path), "cat", noise=0.1, rng=random.Random(7))
    answers = Counter(player.answer("is_alive").answer for _ in range(10_000))
    assert set(answers) == {Answer.YES, Answer.NO}
    # 10,000 draws at p=0.1: the standard deviation is 0.3 points; allow four.
    assert 0.088 <= answers[Answer.NO] / 10_000 <= 0.112


def test_probably_flips_to_probably_not(table_path: Path) -> None:
    player = SimulatedPlayer(load_answer_table(table_path), "cat", noise=1.0)
    assert player.answer("is_soft").answer is Answer.PROBABLY_NOT


def test_free_text_answers_are_phrasings_of_the_answer_class(table_path: Path) -> None:
    player = SimulatedPlayer(
        load_answer_table(table_path), "car", free_text_rate=0.5, rng=random.Random(3)
    )
    said = [player.answer("has_wheels") for _ in range(2_000)]
    typed = [answer for answer in said if answer.text is not None]
    assert 0.45 <= len(typed) / len(said) <= 0.55
    assert all(answer.text in PHRASINGS[Answer.YES] for answer in typed)


def test_the_player_confirms_only_its_secret(table_path: Path) -> None:
    player = SimulatedPlayer(load_answer_table(table_path), "cat")
    assert player.confirms("Cat ")
    assert not player.confirms("car")


def test_same_seed_same_answers(table_path: Path) -> None:
    table = load_answer_table(table_path)

    def play(seed: int) -> list[Answer]:
        player = SimulatedPlayer(table, "cat", noise=0.3, rng=random.Random(seed))
        return [player.answer("is_alive").answer for _ in range(50)]

    assert play(5) == play(5)


def test_a_missing_table_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="--knowledge-base"):
        load_answer_table(tmp_path / "nope.csv")


def test_a_table_without_nouns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("name,x\ncat,1\n")
    with pytest.raises(ConfigurationError, match="'noun' column"):
        load_answer_table(path)


def test_a_value_that_is_not_a_number_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("noun,kind,q\ncat,animal,high\n")
    with pytest.raises(ConfigurationError, match="not a probability"):
        load_answer_table(path)


def test_rates_outside_zero_to_one_are_refused(table_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"\[0, 1\]"):
        SimulatedPlayer(load_answer_table(table_path), "cat", noise=1.5)
