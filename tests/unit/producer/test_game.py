"""The Game helper: turn building, applying guesses, the end of a game."""

from __future__ import annotations

import pytest

from producer.errors import InvalidTurnError
from producer.game import Game, GameStateError
from producer.messages import MAX_QUESTIONS, MAX_REJECTED_GUESSES, Answer
from tests.unit.producer.factories import ask, give_up, guess_noun


def test_first_turn_is_empty_and_numbered_zero() -> None:
    game = Game(game_id="g-1", metadata={"player": "ann"})
    turn = game.next_turn()
    assert (turn.game_id, turn.turn, turn.history, turn.rejected_guesses) == ("g-1", 0, [], [])
    assert turn.metadata == {"player": "ann"}


def test_each_turn_gets_a_new_turn_id_and_the_next_number() -> None:
    game = Game()
    first = game.next_turn()
    game.apply(ask(first, "is_alive"))
    game.answer(Answer.YES)
    second = game.next_turn()
    assert second.turn_id != first.turn_id
    assert second.turn == 1


def test_answers_accumulate_in_history_with_free_text() -> None:
    game = Game()
    game.apply(ask(game.next_turn(), "is_alive"))
    game.answer(Answer.YES)
    game.apply(ask(game.next_turn(), "has_legs"))
    game.answer(text="I think so")
    history = game.next_turn().history
    assert [(h.question_id, h.answer, h.answer_text) for h in history] == [
        ("is_alive", Answer.YES, None),
        ("has_legs", None, "I think so"),
    ]


def test_a_confirmed_guess_wins_the_game() -> None:
    game = Game()
    game.apply(guess_noun(game.next_turn(), "cat"))
    assert game.pending_noun == "cat"
    game.confirm_guess(True)
    assert game.over and game.won and game.turns == 1


def test_a_rejected_guess_is_remembered_and_play_goes_on() -> None:
    game = Game()
    game.apply(guess_noun(game.next_turn(), "cat"))
    game.confirm_guess(False)
    assert not game.over
    turn = game.next_turn()
    assert turn.rejected_guesses == ["cat"]
    assert turn.turn == 1


def test_giving_up_ends_the_game_lost() -> None:
    game = Game()
    game.apply(give_up(game.next_turn()))
    assert game.over and not game.won and game.gave_up


def test_a_finished_game_refuses_another_turn() -> None:
    game = Game()
    game.apply(give_up(game.next_turn()))
    with pytest.raises(GameStateError, match="over"):
        game.next_turn()


def test_a_pending_question_must_be_answered_before_the_next_turn() -> None:
    game = Game()
    game.apply(ask(game.next_turn(), "is_alive"))
    with pytest.raises(GameStateError, match="answer the pending question"):
        game.next_turn()


def test_answering_without_a_question_is_refused() -> None:
    with pytest.raises(GameStateError, match="no question"):
        Game().answer(Answer.YES)


def test_a_guess_for_another_game_is_refused() -> None:
    other = Game(game_id="other")
    with pytest.raises(GameStateError, match="other"):
        Game(game_id="mine").apply(ask(other.next_turn(), "is_alive"))


def test_an_oversized_free_text_answer_names_the_field() -> None:
    game = Game()
    game.apply(ask(game.next_turn(), "is_alive"))
    with pytest.raises(InvalidTurnError, match="answer_text"):
        game.answer(text="x" * 500)
    assert game.pending_question is not None


def test_a_question_beyond_the_limit_ends_the_game() -> None:
    game = Game()
    for number in range(MAX_QUESTIONS):
        game.apply(ask(game.next_turn(), f"q{number}"))
        game.answer(Answer.NO)
    game.apply(ask(game.next_turn(), "one_too_many"))
    assert game.over and not game.won
    assert game.questions_asked == MAX_QUESTIONS


def test_too_many_rejected_guesses_end_the_game() -> None:
    game = Game()
    for number in range(MAX_REJECTED_GUESSES):
        game.apply(guess_noun(game.next_turn(), f"noun{number}"))
        game.confirm_guess(False)
    assert game.over and not game.won
