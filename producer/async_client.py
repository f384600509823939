"""The asyncio face of :class:`producer.client.TurnClient`, for an HTTP gateway.

One client per process: sends run on a worker thread (one broker round trip
per batch of turns), and every waiting coroutine is woken from the client's
single reply channel, so a thousand waiting requests hold no thread and no
connection of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery

from producer.client import GuessHandle, TurnClient, client_for
from producer.errors import GuessTimeoutError
from producer.messages import Guess, Turn, TurnFailure
from producer.settings import ProducerSettings


class AsyncTurnClient:
    """``await client.submit_many(turns)``, then ``await client.wait(handle)``."""

    def __init__(self, app: Celery, settings: ProducerSettings | None = None) -> None:
        self.client: TurnClient = client_for(app, settings)

    async def submit_many(self, turns: Sequence[Turn | Mapping[str, Any]]) -> list[GuessHandle]:
        """Validate and enqueue turns in one round trip, off the event loop."""
        return await asyncio.to_thread(self.client.submit_many, turns)

    async def wait(self, handle: GuessHandle, timeout_s: float | None = None) -> Guess:
        """The turn's guess; raises like :meth:`GuessHandle.get`."""
        wait_s = handle.default_timeout_s if timeout_s is None else timeout_s
        if handle.pending is None:  # no reply channel (not a Redis backend): poll off-loop
            return await asyncio.to_thread(handle.get, wait_s)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Guess | TurnFailure] = loop.create_future()

        def wake(reply: Guess | TurnFailure) -> None:
            loop.call_soon_threadsafe(_settle, future, reply)

        handle.pending.add_callback(wake)
        try:
            reply = await asyncio.wait_for(future, wait_s)
        except TimeoutError:
            return await asyncio.to_thread(handle.get, 0)  # raises the timeout it stands for
        return handle.guess_of(reply)

    async def play(self, turn: Turn | Mapping[str, Any], timeout_s: float | None = None) -> Guess:
        """Send one turn and wait for its guess."""
        [handle] = await self.submit_many([turn])
        return await self.wait(handle, timeout_s)


def _settle(future: asyncio.Future[Guess | TurnFailure], reply: Guess | TurnFailure) -> None:
    if not future.done():
        future.set_result(reply)


__all__ = ["AsyncTurnClient", "GuessTimeoutError"]
