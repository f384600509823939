"""The environment variable names the deployables really read, from their settings classes."""

from __future__ import annotations

from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from monitoring.settings import MonitoringSettings
from producer.broker import BrokerSettings
from worker.settings import WorkerSettings

SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    WorkerSettings,
    MonitoringSettings,
    BrokerSettings,
)

# Read by libraries, not by twentyq's settings classes: boto3 (S3 sink, SQS), MLflow's client.
LIBRARY_VARIABLES = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN",
    }
)


def environment_variables(settings_class: type[BaseSettings]) -> set[str]:
    """Every variable name ``settings_class`` reads: PREFIX_FIELD, or each alias choice."""
    prefix = str(settings_class.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in settings_class.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def known_variables() -> set[str]:
    """Every variable a twentyq deployable or its libraries read."""
    names = set(LIBRARY_VARIABLES)
    for settings_class in SETTINGS_CLASSES:
        names |= environment_variables(settings_class)
    return names
