"""kombu's SQS transport, made to hand kombu only messages it can build.

kombu 5.7's SQS channel wraps a body that is not JSON into an envelope of its
own, but takes any JSON object with a ``properties`` key as a kombu envelope:
one whose properties, headers or body encoding have the wrong type (a body
encoding that is a list, say) raises inside kombu's receive callback and stops
the worker with an unrecoverable error, and the message comes back to stop
the next one. Here everything that is no well-formed envelope is wrapped
(its bytes hex-encoded, :data:`~producer.envelope.UNPARSED_CONTENT_TYPE`) for
the worker to dead-letter, as on Redis and Pub/Sub.

Selected by :func:`producer.broker.transport_class` for ``sqs://`` URLs;
imported only then, so ambassadors on other brokers need no boto3.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import SQS
from kombu.utils.json import loads

from producer.envelope import envelope_problem, wrap_unparsed


class Channel(SQS.Channel):  # type: ignore[misc]
    """kombu's SQS channel with the envelope screen of :func:`envelope_problem`."""

    def _prepare_json_payload(self, text: str) -> dict[str, Any]:
        """kombu 5.7's parse of a message body, wrapping what is no kombu envelope."""
        try:
            payload = loads(text)
        except (ValueError, TypeError):
            payload = None
        if isinstance(payload, dict) and envelope_problem(payload) is None:
            return payload
        raw = text.encode() if isinstance(text, str) else bytes(text)
        return wrap_unparsed(raw, "unparsed", "")


class Transport(SQS.Transport):  # type: ignore[misc]
    """The SQS transport with :class:`Channel`; same URL, options and driver type."""

    Channel = Channel
