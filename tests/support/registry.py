"""Register the stub model in a (temporary) MLflow registry and pin it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from producer.pin import ModelPin, write_pin

STUB_MODEL_NAME = "twentyq-stub"
STUB_MODEL_FILE = Path(__file__).with_name("stub_model.py")


def register_stub_model(
    tracking_uri: str, pin_path: Path, *, name: str = STUB_MODEL_NAME, **options: Any
) -> ModelPin:
    """Log the stub model with ``options`` as its model config, register it, write the pin."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        with mlflow.start_run() as run:
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(STUB_MODEL_FILE),
                model_config=dict(options),
                registered_model_name=name,
            )
    finally:
        mlflow.set_tracking_uri(None)
    version = str(info.registered_model_version)
    pin = ModelPin(name=name, version=version, run_id=run.info.run_id)
    write_pin(pin, pin_path)
    return pin
