"""Tell the monitoring sidecar how a game ended: :func:`report_outcome`.

The outcome goes to ``twentyq.export`` beside the workers' guess events; the
drift job reads win and reveal rates from it.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError
from pydantic import ValidationError

from producer.broker import publish_json
from producer.client import default_app
from producer.errors import BrokerUnavailableError, InvalidTurnError
from producer.game import Game
from producer.messages import EXPORT_QUEUE, GameOutcome
from producer.settings import ProducerSettings, load_producer_settings
from producer.validation import describe_validation_error


def outcome_of(game: Game, *, revealed_noun: str | None = None) -> GameOutcome:
    """The :class:`GameOutcome` of a finished (or abandoned) game.

    When the game was won, the noun guessed last is the revealed noun unless
    one is given. The game's metadata is copied, plus the model version that
    played it (the sidecar attributes the outcome to that version).
    """
    if revealed_noun is None and game.won and game.last_guess and game.last_guess.guesses:
        revealed_noun = game.last_guess.guesses[0].noun
    metadata = dict(game.metadata)
    if game.last_guess is not None:
        metadata.setdefault("model_name", game.last_guess.model.name)
        metadata.setdefault("model_version", game.last_guess.model.version)
    return build_outcome(
        game_id=game.game_id,
        won=game.won,
        turns=game.turns,
        revealed_noun=revealed_noun,
        metadata=metadata,
    )


def build_outcome(**fields: Any) -> GameOutcome:
    """A validated :class:`GameOutcome`; :class:`InvalidTurnError` names a bad field."""
    try:
        return GameOutcome(**fields)
    except ValidationError as error:
        raise InvalidTurnError(
            f"the game outcome was not sent: {describe_validation_error(error)}; fix these fields"
        ) from error


def report_outcome(
    source: Game | GameOutcome,
    *,
    revealed_noun: str | None = None,
    app: Celery | None = None,
    settings: ProducerSettings | None = None,
) -> GameOutcome:
    """Publish a game's outcome to ``twentyq.export``; return what was sent.

    ``source`` is a :class:`Game` (its outcome is built with :func:`outcome_of`)
    or a ready :class:`GameOutcome`. Raises :class:`BrokerUnavailableError`
    when the broker stays unreachable after the configured retries.
    """
    settings = settings or load_producer_settings()
    outcome = (
        source
        if isinstance(source, GameOutcome)
        else outcome_of(source, revealed_noun=revealed_noun)
    )
    try:
        with (app or default_app()).connection_for_write() as connection:
            publish_json(
                connection,
                EXPORT_QUEUE,
                outcome.model_dump(mode="json"),
                max_retries=settings.send_max_retries,
            )
    except (OperationalError, ConnectionError, OSError) as error:
        raise BrokerUnavailableError(
            f"could not report the outcome of game {outcome.game_id}: the broker is "
            f"unreachable ({error}); start it or set TWENTYQ_BROKER_URL"
        ) from error
    return outcome
