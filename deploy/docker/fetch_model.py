"""Build step: resolve the model pin against the registry and copy that version locally.

Run by the Dockerfile's ``model`` stage so the image serves the pinned version
without a registry at run time. It writes the model version into ``--dest``
(the worker's ``WORKER_MODEL_PATH``) and the pin, completed with the run id the
registry reports, into ``--pin-out`` (the image's ``TWENTYQ_PIN_PATH``): a pin
with a run id lets the worker check its local copy without asking the registry.

Exit status: 0 on success, 2 when the pin, the expected name/version (the
image labels) and the registry disagree, 3 when the registry cannot serve the
version. Standard library and MLflow only: it runs before ``twentyq`` is
importable in some builds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pin", type=Path, required=True, help="mlflow/model_version.json")
    parser.add_argument("--dest", type=Path, required=True, help="directory to copy the model to")
    parser.add_argument("--pin-out", type=Path, required=True, help="where to write the full pin")
    parser.add_argument("--expect-name", default="", help="model name the image is labelled with")
    parser.add_argument("--expect-version", default="", help="version the image is labelled with")
    parser.add_argument("--expect-run-id", default="", help="run id the image is labelled with")
    parser.add_argument(
        "--secrets-dir",
        type=Path,
        default=Path("/run/secrets"),
        help="BuildKit secrets, one file per variable (MLFLOW_TRACKING_USERNAME, ...)",
    )
    return parser.parse_args(argv)


# Credentials arrive as BuildKit secrets (files), never as build args: build args are
# recorded in the image history and the build cache.
SECRET_VARIABLES = (
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)


# Build args with an empty default arrive as empty variables; MLflow would take an empty
# S3 endpoint literally instead of falling back to AWS.
OPTIONAL_VARIABLES = ("MLFLOW_S3_ENDPOINT_URL",)


def drop_empty_variables(environ: MutableMapping[str, str]) -> None:
    """Remove optional variables that are set but empty."""
    for variable in OPTIONAL_VARIABLES:
        if not environ.get(variable, "").strip():
            environ.pop(variable, None)


def load_secrets(secrets_dir: Path, environ: MutableMapping[str, str]) -> list[str]:
    """Copy each secret file present in ``secrets_dir`` into ``environ``; return their names."""
    loaded = []
    for variable in SECRET_VARIABLES:
        path = secrets_dir / variable
        if path.is_file() and path.read_text().strip():
            environ[variable] = path.read_text().strip()
            loaded.append(variable)
    return loaded


def read_pin(path: Path) -> dict[str, Any]:
    """The pin as a dict with ``name``, ``version`` and ``run_id`` (possibly empty)."""
    pin = json.loads(path.read_text())
    if not isinstance(pin, dict) or not pin.get("name") or not str(pin.get("version", "")):
        raise ValueError(f"{path} needs a non-empty 'name' and 'version'")
    return {
        "name": str(pin["name"]),
        "version": str(pin["version"]),
        "run_id": pin.get("run_id", ""),
    }


def check_expected(pin: dict[str, Any], expected: dict[str, str]) -> None:
    """Refuse to build an image whose labels would name another model than its pin.

    ``expected`` maps ``name``/``version``/``run_id`` to the label values (empty: unchecked).
    """
    for field, value in expected.items():
        if value and value != pin[field]:
            raise ValueError(
                f"the build args say model {field} {value!r}, the pin resolves to "
                f"{pin[field]!r}: pass MODEL_NAME, MODEL_VERSION and MODEL_RUN_ID read from "
                "mlflow/model_version.json and the registry"
            )


def resolve_run_id(pin: dict[str, Any]) -> str:
    """The run id the registry holds for the pinned version, checked against the pin's."""
    # MLflow is imported where needed: parsing the pin and the arguments stays instant.
    from mlflow import MlflowClient  # noqa: PLC0415

    version = MlflowClient().get_model_version(pin["name"], pin["version"])
    run_id = str(version.run_id or "")
    if pin["run_id"] and pin["run_id"] != run_id:
        raise ValueError(
            f"the registry says {pin['name']} version {pin['version']} came from run {run_id}, "
            f"the pin says {pin['run_id']}: the version was replaced; re-pin it"
        )
    return run_id


def fetch(pin: dict[str, Any], dest: Path) -> None:
    """Copy ``models:/NAME/VERSION`` into ``dest`` (which must not exist or be empty)."""
    import mlflow  # noqa: PLC0415

    dest.mkdir(parents=True, exist_ok=True)
    uri = f"models:/{pin['name']}/{pin['version']}"
    mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest))
    if not (dest / "MLmodel").is_file():
        raise RuntimeError(f"{uri} downloaded to {dest} but holds no MLmodel file")


def main(argv: list[str] | None = None) -> int:
    """Resolve, check and copy the pinned version; print what was baked."""
    args = _parse_args(argv)
    drop_empty_variables(os.environ)
    loaded = load_secrets(args.secrets_dir, os.environ)
    print(f"fetch_model: credentials from build secrets: {', '.join(loaded) or 'none'}")
    try:
        pin = read_pin(args.pin)
        check_expected(pin, {"name": args.expect_name, "version": args.expect_version})
    except (OSError, ValueError) as error:
        print(f"fetch_model: {error}", file=sys.stderr)
        return 2
    try:
        pin["run_id"] = resolve_run_id(pin)
        check_expected(pin, {"run_id": args.expect_run_id})
    except ValueError as error:
        print(f"fetch_model: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # MLflow raises many types; all mean "registry cannot serve it"
        print(
            f"fetch_model: cannot resolve {pin['name']} version {pin['version']} against "
            f"the registry ({type(error).__name__}: {error}); check MLFLOW_TRACKING_URI and "
            "the credentials passed as build secrets",
            file=sys.stderr,
        )
        return 3
    try:
        fetch(pin, args.dest)
    except Exception as error:  # as above: any failure here means the copy is unusable
        print(f"fetch_model: download failed ({type(error).__name__}: {error})", file=sys.stderr)
        return 3
    args.pin_out.parent.mkdir(parents=True, exist_ok=True)
    args.pin_out.write_text(json.dumps(pin, indent=2) + "\n")
    print(f"fetch_model: baked {pin['name']} version {pin['version']} (run {pin['run_id']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
