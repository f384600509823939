"""SQS against a local moto server: broker settings, a boto3 client, queue inspection.

Start the server with :func:`tests.support.moto_server.running_moto_server`;
give each test a queue name prefix of its own so queues never carry over.
"""

from __future__ import annotations

from typing import Any

import boto3

from producer.broker import QUEUE_NAMES
from tests.support.moto_server import MOTO_ENVIRONMENT

REGION = MOTO_ENVIRONMENT["AWS_DEFAULT_REGION"]
ACCESS_KEY_ID = MOTO_ENVIRONMENT["AWS_ACCESS_KEY_ID"]
SECRET_ACCESS_KEY = MOTO_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"]


def sqs_environment(endpoint_url: str, queue_name_prefix: str) -> dict[str, str]:
    """``TWENTYQ_*`` variables that point a worker, producer or sidecar at moto's SQS."""
    return {
        "TWENTYQ_BROKER_URL": f"sqs://{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}@",
        "TWENTYQ_SQS_ENDPOINT_URL": endpoint_url,
        "TWENTYQ_SQS_REGION": REGION,
        "TWENTYQ_SQS_QUEUE_NAME_PREFIX": queue_name_prefix,
        # Short polls keep the tests quick; production keeps the 10 s long poll.
        "TWENTYQ_SQS_WAIT_TIME_S": "1",
        "TWENTYQ_POLLING_INTERVAL_S": "0.1",
        **MOTO_ENVIRONMENT,
    }


def sqs_client(endpoint_url: str) -> Any:
    """A boto3 SQS client for the moto server."""
    return boto3.client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


def queue_urls(client: Any, queue_name_prefix: str) -> dict[str, str]:
    """SQS queue name -> URL for the queues whose names start with the prefix."""
    response = client.list_queues(QueueNamePrefix=queue_name_prefix)
    return {url.rsplit("/", 1)[-1]: url for url in response.get("QueueUrls", [])}


def message_counts(client: Any, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) message counts of one queue."""
    attributes = client.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def provision_queues(client: Any, name_prefix: str) -> dict[str, str]:
    """Create the three queues out of band, as Terraform would; twentyq queue name -> URL.

    Their names deliberately differ from the ones kombu would pick, so a test
    shows that only the URLs in ``TWENTYQ_SQS_PREDEFINED_QUEUES`` are used.
    """
    return {
        name: client.create_queue(QueueName=f"{name_prefix}provisioned-{index}")["QueueUrl"]
        for index, name in enumerate(QUEUE_NAMES)
    }
