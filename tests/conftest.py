"""Fixtures every suite may use. Suite-specific fixtures live beside their tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hypothesis  # noqa: F401 - see below
import pytest

from tests.support.services import running_redis_server

# hypothesis' pytest plugin imports hypothesis lazily, in the terminal summary; pytest then
# rewrites it from a deep stack, where CPython 3.11.7's ast.parse fails ("AST constructor
# recursion depth mismatch") and the run ends in an internal error. Imported here, early.


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


_REPO_PIN = Path(__file__).resolve().parents[1] / "mlflow" / "model_version.json"


@pytest.fixture(scope="session", autouse=True)
def _isolated_from_the_repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep tests away from the developer's MLflow store and the committed pin.

    Every test runs with a throwaway default tracking store, and the session fails if
    anything rewrote ``mlflow/model_version.json``.
    """
    pin_before = _REPO_PIN.read_bytes() if _REPO_PIN.exists() else None
    store = tmp_path_factory.mktemp("mlflow-default")
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
    patch.delenv("TWENTYQ_BROKER_URL", raising=False)
    yield
    patch.undo()
    pin_after = _REPO_PIN.read_bytes() if _REPO_PIN.exists() else None
    assert pin_after == pin_before, "a test rewrote the committed pin mlflow/model_version.json"
