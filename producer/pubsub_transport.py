"""kombu's Pub/Sub transport, made to confirm every publish before it returns.

kombu's ``gcpubsub`` channel hands each message to google-cloud-pubsub's
batching publisher and never waits for the returned future. A process that
exits right after publishing (``twentyq play`` reporting an outcome, a script
sending one turn) loses what is still in the batch, and a failed publish is
never reported, so a worker could acknowledge a turn whose export event never
left. Here each publish waits for Pub/Sub's answer and raises when it fails:
the same at-least-once footing as Redis and SQS, whose sends are synchronous.
The transport also waits in short slices, so a Celery worker acknowledges
finished batches promptly (see :meth:`Transport.drain_events`).

Selected by :func:`producer.broker.transport_class` for ``gcpubsub://`` URLs;
imported only then, so ambassadors on other brokers need no Google libraries.
"""

from __future__ import annotations

from typing import Any

from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient, types
from kombu.transport import gcpubsub
from kombu.utils.json import dumps, loads
from kombu.utils.objects import cached_property

from producer.envelope import envelope_problem, wrap_unparsed

PUBLISH_TIMEOUT_S = 60.0
DRAIN_SLICE_S = 0.1


class ConfirmingPublisher:
    """A ``PublisherClient`` whose ``publish`` returns only once Pub/Sub has the message."""

    def __init__(self, client: PublisherClient, timeout_s: float = PUBLISH_TIMEOUT_S) -> None:
        self._client = client
        self._timeout_s = timeout_s

    def publish(self, topic: str, data: bytes, **attributes: Any) -> Any:
        """Publish and wait for the message id; raises the publish error, if any."""
        future = self._client.publish(topic, data, **attributes)
        future.result(timeout=self._timeout_s)
        return future

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class ScreeningSubscriber:
    """A ``SubscriberClient`` whose pulls hand kombu only what it can consume.

    kombu 5.7's gcpubsub channel parses every pulled message's data as a kombu
    envelope in a background pull (``Channel._get_bulk``), and reads
    ``properties.delivery_info.exchange`` and ``properties.delivery_mode`` from
    it. Data that is not such an envelope (bytes another client published, an
    envelope without ``delivery_mode``) raises inside that pull, and kombu drops
    the failed pull without a word: none of its messages is delivered or
    acknowledged, Pub/Sub redelivers them all after the ack deadline, for ever,
    and the worker looks healthy. Such data is replaced by a wrapped envelope
    (its bytes hex-encoded, :data:`~producer.envelope.UNPARSED_CONTENT_TYPE`)
    that the worker dead-letters and acknowledges like any refused message.
    """

    def __init__(self, client: SubscriberClient) -> None:
        self._client = client

    def pull(self, *args: Any, **kwargs: Any) -> Any:
        """Pull, then wrap what kombu's channel could not consume."""
        response = self._client.pull(*args, **kwargs)
        for received in response.received_messages:
            data = bytes(received.message.data)
            if pulled_problem(data) is not None:
                received.message.data = dumps(wrap_unparsed(data, "unparsed", "")).encode()
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def pulled_problem(data: bytes) -> str | None:
    """Why kombu's gcpubsub channel could not consume this message data (None: it can)."""
    try:
        # kombu's own parser: it also refuses {"__type__": ..., "__value__": ...} it cannot decode.
        message = loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, TypeError) as error:
        return f"not a JSON document ({type(error).__name__})"
    problem = envelope_problem(message)
    if problem is not None:
        return problem
    properties = message["properties"]
    if not isinstance(properties["delivery_info"].get("exchange"), str):
        return "no exchange in the delivery_info"
    if "delivery_mode" not in properties:
        return "no delivery_mode in the properties"
    return None


class Channel(gcpubsub.Channel):  # type: ignore[misc]
    """The gcpubsub channel with a confirming publisher and a screening subscriber."""

    @cached_property  # type: ignore[misc]
    def subscriber(self) -> ScreeningSubscriber:
        return ScreeningSubscriber(SubscriberClient())

    @cached_property  # type: ignore[misc]
    def publisher(self) -> ConfirmingPublisher:
        # One message per batch: the caller waits for each anyway, so batching
        # would only add its max latency to every publish.
        client = PublisherClient(batch_settings=types.BatchSettings(max_messages=1))
        return ConfirmingPublisher(client)


class Transport(gcpubsub.Transport):  # type: ignore[misc]
    """The gcpubsub transport with :class:`Channel`; same URL, options and driver type."""

    Channel = Channel

    def drain_events(self, connection: Any, timeout: float | None = None) -> None:  # type: ignore[override]
        """Wait for messages at most :data:`DRAIN_SLICE_S` when a timeout is given.

        Celery's worker has no event loop for this transport: its fallback loop
        calls ``drain_events(timeout=2.0)`` and sends the acknowledgements of
        finished tasks only between two calls. Once a batch fills the prefetch
        window nothing more arrives, so every batch waited 2 s for its acks (about
        4 turns/s at batch size 8). A shorter slice lets the loop come round
        quickly; callers loop on timeouts anyway, and the pulls themselves keep
        running in the background, so no extra requests are made.
        """
        if timeout is not None:
            timeout = min(timeout, DRAIN_SLICE_S)
        super().drain_events(connection, timeout=timeout)
