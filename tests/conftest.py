"""Fixtures every suite may use. Suite-specific fixtures live beside their tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.services import running_redis_server


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """URL of a real redis-server private to this test session."""
    with running_redis_server() as url:
        yield url


@pytest.fixture()
def redis_url(redis_server_url: str) -> Iterator[str]:
    """URL of the session's real Redis, flushed before each test."""
    import redis

    client = redis.Redis.from_url(redis_server_url)
    client.flushall()
    yield redis_server_url
    client.close()
