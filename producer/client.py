"""Send a turn to the workers and wait for its guess: :func:`submit_turn`.

Turns travel as JSON by task name only (``twentyq.play_turn``), so the
ambassador never imports the worker. The Celery task id is the turn id,
which makes a resend of the same turn idempotent on the worker's side.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from kombu.exceptions import OperationalError
from pydantic import ValidationError

from producer.broker import BrokerSettings, create_celery_app
from producer.errors import BrokerUnavailableError, GuessTimeoutError, TurnFailedError
from producer.messages import TURN_TASK_NAME, TURNS_QUEUE, Guess, Turn
from producer.settings import ProducerSettings, load_broker_settings, load_producer_settings
from producer.validation import describe_validation_error, validate_turn

_default_app: Celery | None = None
_default_app_lock = threading.Lock()

# Errors seen when the broker or result backend is unreachable: kombu wraps the
# broker's in OperationalError; Celery's Redis result consumer raises
# RuntimeError once its reconnect retries are spent.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    ConnectionError,
    OSError,
    RuntimeError,
)
try:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    _CONNECTION_ERRORS += (RedisConnectionError, RedisTimeoutError)
except ImportError:  # pragma: no cover - redis is a dependency, kept optional for other brokers
    pass


def create_producer_app(
    broker_settings: BrokerSettings | None = None, settings: ProducerSettings | None = None
) -> Celery:
    """A Celery app for sending turns, configured like the workers' (JSON only).

    The result backend gets the producer's bounded retry policy: Celery's
    default retries a lost backend twenty times, which a caller sees as a hang.
    """
    settings = settings or load_producer_settings()
    app = create_celery_app("twentyq-producer", broker_settings or load_broker_settings())
    backend_options = dict(app.conf.result_backend_transport_options or {})
    backend_options["retry_policy"] = settings.retry_policy()
    app.conf.result_backend_transport_options = backend_options
    return app


def default_app() -> Celery:
    """The process-wide producer app, built on first use from the environment (never at import)."""
    global _default_app  # noqa: PLW0603
    with _default_app_lock:
        if _default_app is None:
            _default_app = create_producer_app()
        return _default_app


@dataclass
class GuessHandle:
    """A submitted turn; :meth:`get` waits for the worker's :class:`Guess`.

    Call :meth:`get` from the thread that submitted the turn: Celery's result
    backend connections are per thread.
    """

    turn: Turn
    result: AsyncResult
    default_timeout_s: float
    submitted_at_s: float = field(default_factory=time.monotonic)

    @property
    def turn_id(self) -> str:
        """The turn's id, also its Celery task id."""
        return str(self.turn.turn_id)

    def get(self, timeout_s: float | None = None) -> Guess:
        """Wait for the guess; raise :class:`GuessTimeoutError` or :class:`TurnFailedError`."""
        wait_s = self.default_timeout_s if timeout_s is None else timeout_s
        try:
            value = self.result.get(timeout=wait_s, propagate=False)
        except CeleryTimeoutError as error:
            raise GuessTimeoutError(
                f"no guess for turn {self.turn_id} (game {self.turn.game_id}) within "
                f"{wait_s:g} s: no worker may be running, or the {TURNS_QUEUE} queue is "
                "backed up; start `twentyq worker` or raise PRODUCER_GUESS_TIMEOUT_S"
            ) from error
        except _CONNECTION_ERRORS as error:
            raise BrokerUnavailableError(
                f"lost the result backend while waiting for turn {self.turn_id}: "
                f"{_one_line(error)}; "
                "check that the broker / result backend is running"
            ) from error
        if self.result.state == "FAILURE" or isinstance(value, BaseException):
            raise TurnFailedError(
                f"the worker could not serve turn {self.turn_id} (game {self.turn.game_id}) "
                f"and dead-lettered it: {value}; fix the turn, it will not be retried"
            )
        try:
            return Guess.model_validate(value)
        except ValidationError as error:
            raise TurnFailedError(
                f"the worker's answer to turn {self.turn_id} breaks the wire contract: "
                f"{describe_validation_error(error)}; check the worker's version"
            ) from error

    def elapsed_s(self) -> float:
        """Seconds since the turn was submitted."""
        return time.monotonic() - self.submitted_at_s


def submit_turn(
    turn: Turn | Mapping[str, Any],
    *,
    app: Celery | None = None,
    settings: ProducerSettings | None = None,
) -> GuessHandle:
    """Validate a turn and enqueue it on ``twentyq.turns``; return a handle to its guess.

    Raises :class:`InvalidTurnError` (before anything is sent) when the turn
    breaks the contract, and :class:`BrokerUnavailableError` when the broker
    stays unreachable after the configured retries.

    >>> handle = submit_turn(game.next_turn())            # doctest: +SKIP
    >>> guess = handle.get(timeout_s=10)                  # doctest: +SKIP
    """
    valid_turn = validate_turn(turn)
    settings = settings or load_producer_settings()
    app = app or default_app()
    submitted_at_s = time.monotonic()
    try:
        result = app.send_task(
            TURN_TASK_NAME,
            args=[valid_turn.model_dump(mode="json")],
            task_id=str(valid_turn.turn_id),
            # Celery would otherwise put a repr of the whole turn (the player's typed
            # answers included) in every message header and worker log line.
            argsrepr=f"(turn {valid_turn.turn} of game {valid_turn.game_id},)",
            kwargsrepr="{}",
            queue=TURNS_QUEUE,
            routing_key=TURNS_QUEUE,
            serializer="json",
            retry=True,
            retry_policy=settings.retry_policy(),
        )
    except _CONNECTION_ERRORS as error:
        raise BrokerUnavailableError(
            f"could not send turn {valid_turn.turn_id} after {settings.send_max_retries} "
            f"retries: the broker at {_safe_url(app.conf.broker_url)} is unreachable "
            f"({_one_line(error)}); "
            "start it or set TWENTYQ_BROKER_URL"
        ) from error
    return GuessHandle(
        turn=valid_turn,
        result=result,
        default_timeout_s=settings.guess_timeout_s,
        submitted_at_s=submitted_at_s,
    )


def _safe_url(url: object) -> str:
    # Never echo a password embedded in the broker URL.
    text = str(url)
    scheme, _, rest = text.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}://{rest}" if rest else text


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
