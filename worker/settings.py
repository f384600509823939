"""The worker's settings (``WORKER_`` prefix), built once at start-up and passed down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from producer.broker import BrokerSettings
from producer.errors import ConfigurationError
from producer.pin import default_pin_path_of
from producer.settings import load_settings

DEFAULT_TRACKING_URI = "sqlite:///.twentyq/mlflow.db"


class WorkerSettings(BaseSettings):
    """Everything a worker deployable is configured with, besides the broker."""

    model_config = SettingsConfigDict(env_prefix="WORKER_", extra="ignore", populate_by_name=True)

    tracking_uri: str = Field(
        default=DEFAULT_TRACKING_URI,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "WORKER_TRACKING_URI"),
        description="MLflow tracking/registry URI the pin is resolved against",
    )
    # After tracking_uri: the default pin is the store's own (see producer.pin).
    pin_path: Path = Field(
        default_factory=default_pin_path_of,
        validation_alias=AliasChoices("TWENTYQ_PIN_PATH", "WORKER_PIN_PATH"),
        description="The model pin file (registered name + version + run id)",
    )
    model_path: Path | None = Field(
        default=None,
        description="Local copy of the pinned version; loaded instead of the registry",
    )
    batch_size: int = Field(default=32, ge=1, le=512, description="Most turns per predict call")
    batch_window_ms: int = Field(
        default=0,
        ge=0,
        le=60_000,
        description="Longest wait for more turns once a pool process is free (0: none)",
    )
    max_retries: int = Field(default=3, ge=0, le=10, description="Retries of a failing predict")
    retry_backoff_s: float = Field(
        default=0.5, ge=0.0, le=60.0, description="First retry delay; doubles per retry"
    )
    max_message_bytes: int = Field(
        default=65_536, ge=1024, description="Larger turn messages are dead-lettered"
    )
    idempotent: bool = Field(default=True, description="Return stored results, do not recompute")
    concurrency: int = Field(default=1, ge=1, le=64, description="Pool processes/threads")
    pool: Literal["prefork", "solo", "threads"] = Field(default="prefork")
    torch_threads: int | None = Field(
        default=None, ge=1, description="torch intra-op threads per process (default cores/N)"
    )
    numpy_threads: int | None = Field(
        default=None, ge=1, description="BLAS/OpenMP threads per process (default cores/N)"
    )
    stall_s: float = Field(
        default=120.0,
        gt=0,
        description="Not ready when held turns see no acknowledgement for this long",
    )
    metrics_port: int = Field(default=9100, ge=0, le=65535, description="0 turns metrics off")
    broker_reconnect_interval_max_s: float = Field(
        default=1.0,
        ge=0.1,
        le=30.0,
        description="Longest wait between two attempts to reach a lost broker again",
    )
    broker_reconnect_max_retries: int | None = Field(
        default=None,
        ge=1,
        description="Failed attempts in a row before the worker exits 1 (unset: retry for ever)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    @model_validator(mode="after")
    def _model_path_exists(self) -> WorkerSettings:
        if self.model_path is not None and not (self.model_path / "MLmodel").is_file():
            raise ValueError(
                f"WORKER_MODEL_PATH={self.model_path} holds no MLmodel file: point it at a "
                "downloaded model version directory, or unset it to load from the registry"
            )
        return self

    @property
    def pool_slots(self) -> int:
        """Batches that may run at once: one per pool process or thread (solo: one)."""
        return 1 if self.pool == "solo" else self.concurrency

    @property
    def threads_per_process(self) -> int:
        """Default torch/BLAS threads: the machine's cores shared among the pool processes."""
        cores = os.cpu_count() or 1
        per_process = self.concurrency if self.pool == "prefork" else 1
        return max(1, cores // per_process)

    def thread_environment(self) -> dict[str, str]:
        """OpenMP/BLAS thread variables; they act only if set before numpy or torch load."""
        count = str(self.numpy_threads or self.threads_per_process)
        return {
            name: count for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        }

    def longest_batch_s(self) -> float:
        """Upper bound of retry back-off time a batch may spend, plus its window."""
        backoff_s = sum(self.retry_backoff_s * 2.0**attempt for attempt in range(self.max_retries))
        return self.batch_window_ms / 1000.0 + backoff_s

    @classmethod
    def from_env(cls) -> WorkerSettings:
        """Build settings from the environment or raise a :class:`ConfigurationError`."""
        return load_settings(cls)


def load_broker_settings(worker: WorkerSettings) -> BrokerSettings:
    """Broker settings (``TWENTYQ_`` prefix), checked against the worker's longest batch."""
    broker = load_settings(BrokerSettings)
    if broker.visibility_timeout_s <= worker.longest_batch_s():
        raise ConfigurationError(
            f"TWENTYQ_VISIBILITY_TIMEOUT_S={broker.visibility_timeout_s} is not above the "
            f"longest batch ({worker.longest_batch_s():.1f} s of window and retry back-off): "
            "raise it, or lower WORKER_MAX_RETRIES / WORKER_RETRY_BACKOFF_S"
        )
    return broker
