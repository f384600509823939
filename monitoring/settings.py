"""The sidecar's and the drift job's settings (``MONITORING_`` prefix), built at start-up."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from producer.pin import default_pin_path_of

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """Parse ``30s``, ``15m``, ``12h``, ``7d`` or ``2w`` into a timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a duration: write a number and a unit, e.g. 90s, 15m, 12h, 7d, 2w"
        )
    return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])


class MonitoringSettings(BaseSettings):
    """Settings of the export sidecar and the drift job (env prefix ``MONITORING_``)."""

    model_config = SettingsConfigDict(
        env_prefix="MONITORING_", extra="ignore", populate_by_name=True
    )

    # Export sidecar
    sink_url: str = Field(
        default="file://./.twentyq/exports",
        description="Where export files go: file://PATH or s3://BUCKET/PREFIX",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3 endpoint override (MinIO, moto); unset means AWS"
    )
    batch_size: int = Field(default=500, ge=1, le=100_000, description="Records per file")
    max_batch_age_s: float = Field(
        default=60.0, gt=0, description="Flush a partial batch once its oldest record is this old"
    )
    poll_interval_s: float = Field(
        default=1.0, gt=0, description="Longest wait for the broker before checking age and stop"
    )
    write_retry_initial_s: float = Field(
        default=0.5, gt=0, description="First wait after a failed write"
    )
    write_retry_max_s: float = Field(
        default=30.0, gt=0, description="Longest wait between write attempts (backoff cap)"
    )
    metrics_port: int = Field(
        default=9101, ge=0, le=65535, description="Prometheus port; 0 turns metrics off"
    )

    # Drift job
    window: str = Field(default="7d", description="Length of one drift window")
    windows_compared: int = Field(
        default=8, ge=1, le=520, description="How many windows each run evaluates and plots"
    )
    alert_after_windows: int = Field(
        default=2, ge=1, description="Consecutive breaching windows before an alert fires"
    )
    significance_level: float = Field(
        default=0.01, gt=0, lt=1, description="p-value (or BH q-value) below which a test counts"
    )
    min_samples: int = Field(
        default=200, ge=1, description="Fewest observations on each side before a metric can breach"
    )
    min_answers_per_question: int = Field(
        default=50, ge=1, description="Fewest answers on each side to test one question"
    )
    min_expected_count: float = Field(
        default=5.0, gt=0, description="Nouns expected fewer times than this are pooled"
    )
    noun_js_threshold: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Debiased Jensen-Shannon distance (base 2) of guessed nouns",
    )
    confidence_wasserstein_threshold: float = Field(
        default=0.1, ge=0, description="Wasserstein distance of top-guess confidence / ref std"
    )
    questions_wasserstein_threshold: float = Field(
        default=0.1, ge=0, description="Wasserstein distance of questions-to-a-guess / ref std"
    )
    question_limit_share_threshold: float = Field(
        default=0.05, ge=0, le=1, description="Change in the share of games hitting the limit"
    )
    answer_js_threshold: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Debiased Jensen-Shannon distance of one question's answers",
    )
    oov_rate_threshold: float = Field(
        default=0.05, ge=0, le=1, description="Rise in the rate of out-of-vocabulary tokens"
    )
    win_rate_threshold: float = Field(
        default=0.05, ge=0, le=1, description="Change in the win rate"
    )
    reveal_rate_threshold: float = Field(
        default=0.05, ge=0, le=1, description="Change in the share of games with a revealed noun"
    )
    report_dir: Path = Field(
        default=Path(".twentyq/reports"), description="Where HTML drift reports are written"
    )
    report_base_url: str | None = Field(
        default=None, description="URL prefix under which report_dir is served, for the alert"
    )
    webhook_url: str | None = Field(
        default=None, description="Slack-compatible webhook for alerts; unset means no POST"
    )
    experiment_name: str = Field(
        default="twentyq-monitoring", description="MLflow experiment of the monitoring runs"
    )

    # Shared with the other deployables, under their own names
    tracking_uri: str = Field(
        default="sqlite:///.twentyq/mlflow.db",
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "MONITORING_TRACKING_URI"),
        description="MLflow tracking URI (env MLFLOW_TRACKING_URI)",
    )
    # After tracking_uri: the default pin is the store's own (see producer.pin).
    pin_path: Path = Field(
        default_factory=default_pin_path_of,
        validation_alias=AliasChoices("TWENTYQ_PIN_PATH", "MONITORING_PIN_PATH"),
        description="The model pin file (env TWENTYQ_PIN_PATH)",
    )

    @field_validator("window")
    @classmethod
    def _window_is_a_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("sink_url")
    @classmethod
    def _sink_scheme_known(cls, value: str) -> str:
        if not value.startswith(("file://", "s3://")):
            raise ValueError(
                f"MONITORING_SINK_URL={value!r} is not supported: use file://PATH or s3://BUCKET/PREFIX"
            )
        return value

    @property
    def window_length(self) -> timedelta:
        """The drift window as a timedelta."""
        return parse_duration(self.window)
