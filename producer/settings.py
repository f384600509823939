"""The ambassador's settings (``PRODUCER_`` prefix), built once at start-up and passed down.

The broker itself is configured by :class:`producer.broker.BrokerSettings`
(``TWENTYQ_BROKER_URL`` ...), shared with the worker and the sidecar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

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


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def describe_settings_error(error: ValidationError, prefix: str) -> str:
    """One line per bad setting, naming the environment variable to fix (values not echoed)."""
    lines = []
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] else ""
        variable = field if field.isupper() else f"{prefix}{field.upper()}"
        lines.append(f"  {variable}: {problem['msg']}")
    return "\n".join(lines)


def load_settings(settings_class: type[SettingsT], **overrides: Any) -> SettingsT:
    """Build a settings class from the environment, or raise a :class:`ConfigurationError`
    naming each variable to fix."""
    try:
        return settings_class(**overrides)
    except ValidationError as error:
        prefix = str(settings_class.model_config.get("env_prefix", ""))
        raise ConfigurationError(
            f"invalid configuration ({prefix}*):\n{describe_settings_error(error, prefix)}"
        ) from error


def load_producer_settings(**overrides: Any) -> ProducerSettings:
    """Build :class:`ProducerSettings` from the environment, or say which variable is wrong."""
    return load_settings(ProducerSettings, **overrides)


def load_broker_settings(**overrides: Any) -> BrokerSettings:
    """Build :class:`BrokerSettings` (``TWENTYQ_*``), or say which variable is wrong."""
    return load_settings(BrokerSettings, **overrides)
