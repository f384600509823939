"""The engine's maths on a hand-made table, and its game rules."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from model.engine import (
    Engine,
    EngineConfig,
    EngineTurn,
    UnknownAnswerError,
    UnknownQuestionError,
)
from model.likelihood import ANSWER_CLASSES, answer_likelihood, answer_profile


@dataclass(frozen=True)
class Table:
    """A knowledge table small enough to reason about by hand."""

    nouns: tuple[str, ...]
    question_ids: tuple[str, ...]
    p_yes: np.ndarray


def animals() -> Table:
    """Four nouns, three questions, every cell certain."""
    return Table(
        nouns=("cat", "dog", "car", "tree"),
        question_ids=("alive", "barks", "pet"),
        p_yes=np.array(
            [
                [1.0, 0.0, 1.0],  # cat
                [1.0, 1.0, 1.0],  # dog
                [0.0, 0.0, 0.0],  # car
                [1.0, 0.0, 0.0],  # tree
            ],
            dtype=np.float32,
        ),
    )


def random_table(n_nouns: int, n_questions: int, seed: int) -> Table:
    """A table of mostly-certain cells, like the real knowledge base."""
    rng = np.random.default_rng(seed)
    certain = np.where(rng.random((n_nouns, n_questions)) < 0.4, 0.97, 0.03)
    p_yes = np.where(rng.random((n_nouns, n_questions)) < 0.1, 0.5, certain)
    return Table(
        tuple(f"noun{i}" for i in range(n_nouns)),
        tuple(f"q{j}" for j in range(n_questions)),
        p_yes.astype(np.float32),
    )


# With noise 0.1 and floor 0.05, for a cell with p_yes = 1 (truthful profile
# yes 0.95, probably 0.05): each class is 0.95 * (0.9 * truthful + 0.1 * flipped) + 0.01.
CONFIG = EngineConfig(noise=0.1, floor=0.05, guess_threshold=0.9)
L_TRUE = (
    0.95 * (0.9 * 0.95) + 0.01,  # yes      0.82225
    0.95 * (0.9 * 0.05) + 0.01,  # probably 0.05275
    0.01,  # unknown
    0.95 * (0.1 * 0.05) + 0.01,  # probably_not 0.01475
    0.95 * (0.1 * 0.95) + 0.01,  # no       0.10025
)
L_FALSE = tuple(reversed(L_TRUE))


def entropy(probabilities: tuple[float, ...]) -> float:
    return -sum(p * math.log(p) for p in probabilities)


def test_likelihood_of_a_certain_cell_matches_the_table_by_hand() -> None:
    likelihood = answer_likelihood(np.array([1.0, 0.0]), noise=0.1, floor=0.05)
    assert likelihood[0] == pytest.approx(L_TRUE)
    assert likelihood[1] == pytest.approx(L_FALSE)


def test_every_p_yes_gives_a_distribution_and_half_means_mostly_unknown() -> None:
    grid = np.linspace(0.0, 1.0, 41)
    assert answer_profile(grid).sum(axis=1) == pytest.approx(np.ones(41))
    assert answer_likelihood(grid, 0.1, 0.02).min() > 0.0
    half = answer_profile(np.array(0.5))
    assert ANSWER_CLASSES[int(half.argmax())] == "unknown"
    assert answer_profile(np.array(0.9))[0] > 0.5  # p >= 0.85 answers mostly "yes"


def test_posterior_after_one_answer_is_the_normalised_likelihood() -> None:
    engine = Engine(animals(), CONFIG)
    [posterior] = engine.posterior([EngineTurn(answers=(("alive", "yes"),))])
    # cat, dog, tree are alive (L_TRUE["yes"]); the car is not (L_FALSE["yes"]).
    total = 3 * L_TRUE[0] + L_FALSE[0]
    yes_alive, yes_not_alive = L_TRUE[0] / total, L_FALSE[0] / total
    assert posterior == pytest.approx([yes_alive, yes_alive, yes_not_alive, yes_alive])


def test_posterior_multiplies_independent_answers() -> None:
    engine = Engine(animals(), CONFIG)
    turn = EngineTurn(answers=(("alive", "yes"), ("pet", "probably_not")))
    [posterior] = engine.posterior([turn])
    yes_true, yes_false = L_TRUE[0], L_FALSE[0]
    pn_true, pn_false = L_TRUE[3], L_FALSE[3]
    weights = [yes_true * pn_true, yes_true * pn_true, yes_false * pn_false, yes_true * pn_false]
    assert posterior == pytest.approx([w / sum(weights) for w in weights])
    assert engine.nouns[int(posterior.argmax())] == "tree"


def test_information_gain_matches_the_hand_computed_mutual_information() -> None:
    engine = Engine(animals(), CONFIG)
    [gain] = engine.information_gain(np.full((1, 4), 0.25))

    def mutual_information(n_true: int) -> float:
        predicted = tuple(
            (n_true * t + (4 - n_true) * f) / 4 for t, f in zip(L_TRUE, L_FALSE, strict=True)
        )
        return entropy(predicted) - entropy(L_TRUE)  # every noun's answer entropy is the same

    assert gain == pytest.approx(
        [mutual_information(3), mutual_information(1), mutual_information(2)]
    )
    [decision] = engine.decide([EngineTurn()])
    assert decision.action == "ask"
    assert decision.question_id == "pet"  # the 2/2 split is worth most


def test_decide_never_asks_a_question_twice() -> None:
    engine = Engine(animals(), EngineConfig(guess_threshold=1.0))
    [decision] = engine.decide([EngineTurn(answers=(("pet", "unknown"),))])
    assert decision.action == "ask"
    assert decision.question_id in {"alive", "barks"}


def test_batch_decisions_equal_one_turn_at_a_time() -> None:
    table = random_table(60, 40, seed=3)
    engine = Engine(table)
    rng = np.random.default_rng(4)
    turns = []
    for size in range(0, 20, 2):
        questions = rng.choice(table.question_ids, size=size, replace=False)
        answers = tuple((str(q), ANSWER_CLASSES[int(rng.integers(5))]) for q in questions)
        rejected = tuple(str(n) for n in rng.choice(table.nouns, size=size % 3))
        turns.append(EngineTurn(answers, rejected))
    batch = engine.decide(turns)
    one_by_one = [engine.decide([turn])[0] for turn in turns]
    for together, alone in zip(batch, one_by_one, strict=True):
        assert (together.action, together.question_id) == (alone.action, alone.question_id)
        assert [noun for noun, _ in together.guesses] == [noun for noun, _ in alone.guesses]
        assert [p for _, p in together.guesses] == pytest.approx([p for _, p in alone.guesses])
    assert {decision.action for decision in batch} == {"ask", "guess"}
    singles = np.vstack([engine.posterior([turn]) for turn in turns])
    assert engine.posterior(turns) == pytest.approx(singles)


def test_a_rejected_guess_removes_the_noun_and_play_goes_on() -> None:
    engine = Engine(animals(), CONFIG)
    answers = (("alive", "yes"), ("barks", "yes"), ("pet", "yes"))
    [first] = engine.decide([EngineTurn(answers)])
    assert first.action == "guess"
    assert first.guesses[0][0] == "dog"
    [after] = engine.decide([EngineTurn(answers, rejected_guesses=("dog",))])
    assert "dog" not in [noun for noun, _ in after.guesses]
    assert after.action == "guess"  # no question left: it guesses the next best
    assert sum(p for _, p in after.guesses) == pytest.approx(1.0)


def test_a_rejected_noun_missing_from_the_table_is_ignored() -> None:
    engine = Engine(animals(), CONFIG)
    turn = EngineTurn((("alive", "yes"),))
    with_unknown = EngineTurn((("alive", "yes"),), rejected_guesses=("unicorn",))
    assert engine.posterior([with_unknown]) == pytest.approx(engine.posterior([turn]))


def test_guesses_when_the_top_noun_passes_the_threshold_else_asks() -> None:
    table = random_table(50, 30, seed=1)
    truthful = {0.97: "yes", 0.5: "unknown", 0.03: "no"}
    strong = EngineTurn(
        tuple(
            (q, truthful[round(float(table.p_yes[7, j]), 2)])
            for j, q in enumerate(table.question_ids[:15])
        )
    )
    [guess] = Engine(table, EngineConfig(guess_threshold=0.9)).decide([strong])
    assert guess.action == "guess"
    assert guess.guesses[0] == ("noun7", pytest.approx(guess.guesses[0][1]))
    assert guess.guesses[0][1] >= 0.9
    assert guess.question_id is None
    [ask] = Engine(table, EngineConfig(guess_threshold=1.0)).decide([strong])
    assert ask.action == "ask"
    assert ask.question_id is not None


def test_guesses_on_the_last_turn_and_gives_up_after_twenty() -> None:
    table = random_table(40, 30, seed=2)
    engine = Engine(table, EngineConfig(guess_threshold=1.0))
    answers = tuple((q, "unknown") for q in table.question_ids)
    # 18 questions + 1 rejected guess = 19 turns used: the 20th must be a guess.
    [last] = engine.decide([EngineTurn(answers[:18], ("noun0",))])
    assert last.action == "guess"
    [asking] = engine.decide([EngineTurn(answers[:18])])
    assert asking.action == "ask"
    [done] = engine.decide([EngineTurn(answers[:19], ("noun0",))])
    assert done.action == "give_up"
    assert done.question_id is None
    [done_by_questions] = engine.decide([EngineTurn(answers[:20])])
    assert done_by_questions.action == "give_up"


def test_gives_up_when_every_noun_was_rejected() -> None:
    engine = Engine(animals(), CONFIG)
    [decision] = engine.decide([EngineTurn(rejected_guesses=("cat", "dog", "car", "tree"))])
    assert decision.action == "give_up"
    assert decision.guesses == ()
    assert engine.posterior([EngineTurn(rejected_guesses=animals().nouns)]).sum() == 0.0


def test_guesses_are_top_k_best_first() -> None:
    engine = Engine(random_table(30, 20, seed=5), EngineConfig(top_k=4))
    [decision] = engine.decide([EngineTurn((("q0", "yes"), ("q1", "no")))])
    probabilities = [p for _, p in decision.guesses]
    assert len(probabilities) == 4
    assert probabilities == sorted(probabilities, reverse=True)


def test_validate_names_the_unknown_question_and_answer() -> None:
    engine = Engine(animals(), CONFIG)
    assert engine.validate(EngineTurn((("alive", "yes"),))) is None
    problem = engine.validate(EngineTurn((("alive", "yes"), ("flies", "no"))))
    assert problem is not None
    assert "'flies'" in problem
    answer_problem = engine.validate(EngineTurn((("alive", "maybe"),)))
    assert answer_problem is not None
    assert "'maybe'" in answer_problem
    with pytest.raises(UnknownQuestionError, match="flies"):
        engine.decide([EngineTurn((("flies", "no"),))])
    with pytest.raises(UnknownAnswerError, match="maybe"):
        engine.posterior([EngineTurn((("alive", "maybe"),))])


def test_empty_batch_and_bad_config_and_table() -> None:
    engine = Engine(animals(), CONFIG)
    assert engine.decide([]) == []
    with pytest.raises(ValueError, match="noise"):
        EngineConfig(noise=0.5)
    with pytest.raises(ValueError, match="guess_threshold"):
        EngineConfig(guess_threshold=0.0)
    bad = Table(("a",), ("q",), np.zeros((2, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        Engine(bad)


def test_blas_limit_off_gives_the_same_decisions() -> None:
    table = random_table(30, 20, seed=6)
    turn = EngineTurn((("q0", "yes"), ("q3", "probably")))
    limited = Engine(table).decide([turn])
    unlimited = Engine(table, EngineConfig(blas_threads=None)).decide([turn])
    assert limited == unlimited
