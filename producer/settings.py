"""The ambassador's settings (``PRODUCER_`` prefix), built once at start-up and passed down.

The broker itself is configured by :class:`producer.broker.BrokerSettings`
(``TWENTYQ_BROKER_URL`` ...), shared with the worker and the sidecar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from producer.broker import BrokerSettings
from producer.errors import ConfigurationError


class ProducerSettings(BaseSettings):
    """How the ambassador sends turns, waits for guesses and reports outcomes."""

    model_config = SettingsConfigDict(env_prefix="PRODUCER_", extra="ignore", populate_by_name=True)

    guess_timeout_s: float = Field(
        default=30.0, gt=0, description="Seconds to wait for a guess before giving up on a turn"
    )
    send_max_retries: int = Field(
        default=3, ge=0, description="Retries when the broker refuses a send, before failing"
    )
    send_retry_start_s: float = Field(
        default=0.2, ge=0, description="Wait before the first send retry"
    )
    send_retry_step_s: float = Field(
        default=0.5, ge=0, description="How much longer each further send retry waits"
    )
    send_retry_max_s: float = Field(
        default=2.0, ge=0, description="Longest wait between two send retries"
    )
    knowledge_base_path: Path = Field(
        default=Path("model/data/knowledge_base.csv"),
        description="Table the simulated players answer from (noun,kind,<question ids>)",
    )

    def retry_policy(self) -> dict[str, Any]:
        """The kombu retry policy for sends: bounded retries with a growing backoff."""
        return {
            "max_retries": self.send_max_retries,
            "interval_start": self.send_retry_start_s,
            "interval_step": self.send_retry_step_s,
            "interval_max": self.send_retry_max_s,
        }


def load_producer_settings(**overrides: Any) -> ProducerSettings:
    """Build :class:`ProducerSettings` from the environment, or say which variable is wrong."""
    try:
        return ProducerSettings(**overrides)
    except ValidationError as error:
        raise ConfigurationError(
            f"invalid producer settings ({_describe(error, 'PRODUCER_')}): fix them"
        ) from error


def load_broker_settings(**overrides: Any) -> BrokerSettings:
    """Build :class:`BrokerSettings` (``TWENTYQ_*``), or say which variable is wrong."""
    try:
        return BrokerSettings(**overrides)
    except ValidationError as error:
        raise ConfigurationError(
            f"invalid broker settings ({_describe(error, 'TWENTYQ_')}): fix them"
        ) from error


def _describe(error: ValidationError, prefix: str) -> str:
    return "; ".join(
        f"{prefix}{'_'.join(str(part) for part in item['loc']).upper()}: {item['msg']}"
        for item in error.errors()
    )
