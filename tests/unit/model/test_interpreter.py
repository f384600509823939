"""The answer interpreter: canonical shortcut, cache, training, save/load, phrasing files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from model.errors import ModelPermanentError
from model.interpreter import AnswerInterpreter, load_interpreter, normalise_text
from model.likelihood import ANSWER_CLASSES
from model.phrasing import (
    HELDOUT_PHRASINGS_PATH,
    TRAIN_PHRASINGS_PATH,
    load_phrasings,
    vocabulary_tokens,
)
from tests.unit.model.tiny_model import tiny_interpreter


@pytest.fixture()
def interpreter() -> AnswerInterpreter:
    trained = tiny_interpreter()
    # A fresh cache and counter per test; the trained weights are shared.
    return AnswerInterpreter(trained.encoder, trained.head, trained.config)


def test_canonical_answers_never_reach_the_transformer(interpreter: AnswerInterpreter) -> None:
    texts = ["yes", " Probably not ", "probably_not", "UNKNOWN", "no", "probably"]

    answers = interpreter.interpret(texts)

    assert answers == ["yes", "probably_not", "probably_not", "unknown", "no", "probably"]
    assert interpreter.transformer_calls == 0


def test_a_batch_of_free_text_takes_one_transformer_call(interpreter: AnswerInterpreter) -> None:
    answers = interpreter.interpret(["nope", "yes", "definitely", "nope", "dunno"])

    assert answers == ["no", "yes", "yes", "no", "unknown"]
    assert interpreter.transformer_calls == 1


def test_interpreted_texts_are_cached(interpreter: AnswerInterpreter) -> None:
    first = interpreter.interpret(["not really"])
    second = interpreter.interpret(["Not  really", "not really"])

    assert first == ["probably_not"]
    assert second == ["probably_not", "probably_not"]
    assert interpreter.transformer_calls == 1


def test_the_cache_is_bounded_and_forgets_the_oldest_text(interpreter: AnswerInterpreter) -> None:
    texts = [f"nope {index}" for index in range(interpreter.config.cache_size + 5)]
    interpreter.interpret(texts)

    assert len(interpreter.cache) == interpreter.config.cache_size
    assert normalise_text(texts[0]) not in interpreter.cache
    assert normalise_text(texts[-1]) in interpreter.cache


def test_the_tiny_interpreter_learns_the_training_phrasings() -> None:
    train = load_phrasings(TRAIN_PHRASINGS_PATH)

    accuracy = tiny_interpreter().accuracy(train.texts, train.answers)

    assert accuracy >= 0.9


@pytest.mark.parametrize(
    ("text", "answer"),
    [("yep", "yes"), ("not at all", "no"), ("no idea", "unknown"), ("i think so", "probably"),
     ("not really", "probably_not"), ("kind of", "probably"), ("dunno", "unknown")],
)  # fmt: skip
def test_the_issue_examples_map_to_their_class(text: str, answer: str) -> None:
    assert tiny_interpreter().interpret([text]) == [answer]


def test_a_saved_interpreter_loads_and_answers_the_same(
    interpreter: AnswerInterpreter, tmp_path: Path
) -> None:
    texts = ["sort of", "hardly ever", "beats me", "yeah totally", "nah"]
    interpreter.save(tmp_path / "interpreter")

    loaded = load_interpreter(tmp_path / "interpreter")

    assert loaded.interpret(texts) == interpreter.interpret(texts)
    assert loaded.config == interpreter.config


def test_loading_from_an_empty_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelPermanentError, match="retrain"):
        load_interpreter(tmp_path)


def test_training_and_heldout_phrasings_are_separate_and_cover_every_class() -> None:
    train = load_phrasings(TRAIN_PHRASINGS_PATH)
    heldout = load_phrasings(HELDOUT_PHRASINGS_PATH)
    train_keys = {normalise_text(text) for text in train.texts}

    assert len(train) >= 300
    assert len(heldout) >= 100
    assert not train_keys & {normalise_text(text) for text in heldout.texts}
    for answer in ANSWER_CLASSES:
        assert len(heldout.by_answer()[answer]) >= 20
        assert len(train.by_answer()[answer]) >= 60


def test_a_bad_phrasing_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "phrasings.csv"
    path.write_text("text,answer\nyep,yes\nmeh,sort_of\n")

    with pytest.raises(ModelPermanentError, match=re.escape(f"{path}:3")):
        load_phrasings(path)


def test_vocabulary_tokens_are_lower_case_words() -> None:
    assert vocabulary_tokens(["Don't KNOW", "no, no!", "100% yes"]) == [
        "don't",
        "know",
        "no",
        "yes",
    ]
