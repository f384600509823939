"""Send turns to the workers and wait for their guesses: :func:`submit_turn`, :class:`TurnClient`.

Turns travel as Celery protocol-2 JSON messages by task name only
(``twentyq.play_turn``), so the ambassador never imports the worker. The
Celery task id is the turn id, which makes a resend of the same turn
idempotent on the worker's side. Many turns go out in one broker round trip
and their guesses come back on one reply channel per client
(:mod:`producer.reply`); a stock Celery client's ``send_task`` +
``AsyncResult.get()`` keeps working against the same workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery
from celery.backends.redis import RedisBackend
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from kombu.exceptions import OperationalError
from pydantic import ValidationError

from producer.broker import BrokerSettings, create_celery_app, masked_url, publish_encoded
from producer.envelope import task_message
from producer.errors import BrokerUnavailableError, GuessTimeoutError, TurnFailedError
from producer.messages import TURNS_QUEUE, Guess, Turn, TurnFailure
from producer.reply import PendingReply, ReplyChannel
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


class GuessHandle:
    """A submitted turn; :meth:`get` waits for the worker's :class:`Guess`.

    With a Redis result backend the guess arrives on the client's reply channel
    (any thread may wait); otherwise it is read from the result backend, from
    the thread that submitted the turn (Celery's backend connections are per thread).
    """

    def __init__(
        self,
        turn: Turn,
        app: Celery,
        default_timeout_s: float,
        *,
        pending: PendingReply | None = None,
        replies: ReplyChannel | None = None,
        submitted_at_s: float | None = None,
    ) -> None:
        self.turn = turn
        self.app = app
        self.default_timeout_s = default_timeout_s
        self.pending = pending
        self._replies = replies
        self.submitted_at_s = time.monotonic() if submitted_at_s is None else submitted_at_s
        self._result: AsyncResult | None = None

    @property
    def turn_id(self) -> str:
        """The turn's id, also its Celery task id."""
        return str(self.turn.turn_id)

    @property
    def result(self) -> AsyncResult:
        """The turn's Celery result (what a stock client reads)."""
        if self._result is None:
            self._result = self.app.AsyncResult(self.turn_id)
        return self._result

    def get(self, timeout_s: float | None = None) -> Guess:
        """Wait for the guess; raise :class:`GuessTimeoutError` or :class:`TurnFailedError`."""
        wait_s = self.default_timeout_s if timeout_s is None else timeout_s
        if self.pending is None:
            return self._get_from_backend(wait_s)
        reply = self.pending.wait(wait_s)
        if reply is not None:
            return self.guess_of(reply)
        error = self._replies.last_error if self._replies is not None else None
        if error is not None:
            raise BrokerUnavailableError(self._lost_backend(error))
        # A reply missed (pruned, or pushed before this client existed) is still stored.
        try:
            stored = self.result.ready()
        except _CONNECTION_ERRORS as lost:
            raise BrokerUnavailableError(self._lost_backend(lost)) from lost
        if stored:
            return self._get_from_backend(wait_s)
        raise GuessTimeoutError(self._timed_out(wait_s))

    def guess_of(self, reply: Guess | TurnFailure) -> Guess:
        """The guess of a reply, or :class:`TurnFailedError` for a dead-lettered turn."""
        if isinstance(reply, TurnFailure):
            raise TurnFailedError(self._failed(f"{reply.reason.value}: {reply.error}"))
        return reply

    def _get_from_backend(self, wait_s: float) -> Guess:
        try:
            value = self.result.get(timeout=wait_s, propagate=False)
        except CeleryTimeoutError as error:
            raise GuessTimeoutError(self._timed_out(wait_s)) from error
        except _CONNECTION_ERRORS as error:
            raise BrokerUnavailableError(self._lost_backend(error)) from error
        if self.result.state == "FAILURE" or isinstance(value, BaseException):
            raise TurnFailedError(self._failed(str(value)))
        try:
            return Guess.model_validate(value)
        except ValidationError as error:
            raise TurnFailedError(
                f"the worker's answer to turn {self.turn_id} breaks the wire contract: "
                f"{describe_validation_error(error)}; check the worker's version"
            ) from error

    def _timed_out(self, wait_s: float) -> str:
        return (
            f"no guess for turn {self.turn_id} (game {self.turn.game_id}) within "
            f"{wait_s:g} s: no worker may be running, or the {TURNS_QUEUE} queue is "
            "backed up; start `twentyq worker` or raise PRODUCER_GUESS_TIMEOUT_S"
        )

    def _lost_backend(self, error: BaseException) -> str:
        url = masked_url(self.app.conf.result_backend)
        return (
            f"the result backend at {url} is unreachable while waiting for turn "
            f"{self.turn_id} ({_one_line(error)}); the turn stays queued and is answered "
            "once it is back: retry get() later, nothing needs restarting"
        )

    def _failed(self, why: str) -> str:
        return (
            f"the worker could not serve turn {self.turn_id} (game {self.turn.game_id}) "
            f"and dead-lettered it: {why}; fix the turn, it will not be retried"
        )

    def elapsed_s(self) -> float:
        """Seconds since the turn was submitted."""
        return time.monotonic() - self.submitted_at_s


class TurnClient:
    """Sends many turns per broker round trip and reads their guesses from one reply channel.

    One per process and app (:func:`client_for`); thread-safe. The messages are
    the protocol-2 messages a stock ``send_task`` sends, built directly
    (:func:`producer.envelope.task_message`); a Redis broker takes a whole batch
    in one ``LPUSH``.
    """

    def __init__(self, app: Celery, settings: ProducerSettings) -> None:
        self.app = app
        self.settings = settings
        backend = app.backend
        self.replies = ReplyChannel(backend.client) if isinstance(backend, RedisBackend) else None

    def submit_many(self, turns: Sequence[Turn | Mapping[str, Any]]) -> list[GuessHandle]:
        """Validate turns and enqueue them together; one handle per turn, in order.

        Raises :class:`InvalidTurnError` (before anything is sent) when a turn
        breaks the contract, and :class:`BrokerUnavailableError` when the broker
        stays unreachable after the configured retries.
        """
        valid = [validate_turn(turn) for turn in turns]
        if not valid:
            return []
        submitted_at_s = time.monotonic()
        reply_to = self.replies.name if self.replies is not None else ""
        messages = [task_message(turn, reply_to) for turn in valid]
        ids = [message.turn_id for message in messages]
        pending = self.replies.expect(ids) if self.replies is not None else [None] * len(ids)
        try:
            with self.app.pool.acquire(block=True) as connection:
                publish_encoded(
                    connection,
                    TURNS_QUEUE,
                    [message.body for message in messages],
                    headers=[message.headers for message in messages],
                    properties=[message.properties for message in messages],
                    max_retries=self.settings.send_max_retries,
                )
        except _CONNECTION_ERRORS as error:
            if self.replies is not None:
                for turn_id in ids:
                    self.replies.forget(turn_id)
            raise BrokerUnavailableError(
                f"could not send {len(valid)} turn(s) (first {ids[0]}): the broker at "
                f"{masked_url(self.app.conf.broker_url)} is unreachable ({_one_line(error)}) "
                f"after {self.settings.send_max_retries} retries; nothing was queued: send "
                "again once it is back (or check TWENTYQ_BROKER_URL)"
            ) from error
        return [
            GuessHandle(
                turn,
                self.app,
                self.settings.guess_timeout_s,
                pending=slot,
                replies=self.replies,
                submitted_at_s=submitted_at_s,
            )
            for turn, slot in zip(valid, pending, strict=True)
        ]

    def close(self) -> None:
        """Stop reading replies."""
        if self.replies is not None:
            self.replies.close()


_clients: dict[int, TurnClient] = {}


def client_for(app: Celery, settings: ProducerSettings | None = None) -> TurnClient:
    """The process's :class:`TurnClient` for ``app`` (built on first use)."""
    with _default_app_lock:
        client = _clients.get(id(app))
        if client is None or client.app is not app:
            client = TurnClient(app, settings or load_producer_settings())
            _clients[id(app)] = client
        return client


def close_client(app: Celery) -> None:
    """Stop ``app``'s client reading replies (before its broker goes away), if it has one."""
    with _default_app_lock:
        client = _clients.pop(id(app), None)
    if client is not None:
        client.close()


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
    return client_for(app or default_app(), settings).submit_many([turn])[0]


def submit_turns(
    turns: Sequence[Turn | Mapping[str, Any]],
    *,
    app: Celery | None = None,
    settings: ProducerSettings | None = None,
) -> list[GuessHandle]:
    """Enqueue many turns in one broker round trip; a handle per turn, in order."""
    return client_for(app or default_app(), settings).submit_many(turns)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
