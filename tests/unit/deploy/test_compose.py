"""docker-compose.yml, parsed by real Compose implementations, starts the right things in order."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import compose_spec  # type: ignore[import-untyped]
import pytest

from tests.unit.deploy.setting_name import known_variables
from tests.unit.deploy.tooling import REPO_ROOT, run_compose

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
PROFILES = ("tracking", "serving", "monitoring")
TWENTYQ_SERVICES = {
    "worker": ["worker"],
    "export": ["export"],
    "drift": ["drift", "--window", "7d"],
}


def _required_variables() -> set[str]:
    return set(re.findall(r"\$\{(\w+)\?", COMPOSE_FILE.read_text()))


def _env_file_values(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


def _config(env_file: Path, *profiles: str) -> subprocess.CompletedProcess[str]:
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    return run_compose(["--env-file", str(env_file), *flags, "config", "--format", "json"])


@pytest.fixture(scope="module")
def full_config() -> dict[str, Any]:
    """The compose model with every profile on, as ``docker compose config`` resolves it."""
    result = _config(ENV_EXAMPLE, *PROFILES)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_raw_file_matches_the_compose_specification_schema() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_resolved_model_passes_a_second_compose_implementation(full_config: dict[str, Any]) -> None:
    model = compose_spec.PyCompose.from_json(json.dumps(full_config))
    model.validate()
    assert set(model.service_names()) == {
        "postgres",
        "minio",
        "minio-setup",
        "mlflow",
        "redis",
        *TWENTYQ_SERVICES,
    }
    broken = json.dumps(full_config).replace('"service_healthy"', '"service_happy"', 1)
    with pytest.raises(ValueError, match="service_happy"):
        compose_spec.PyCompose.from_json(broken)


def test_required_variables_are_in_the_example_and_enforced(tmp_path: Path) -> None:
    required = _required_variables()
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"} <= required
    example = _env_file_values(ENV_EXAMPLE)
    assert all(example.get(name) for name in required), "fill every required variable"
    for missing in sorted(required):
        env_file = tmp_path / f"without-{missing}.env"
        env_file.write_text(
            "".join(f"{key}={value}\n" for key, value in example.items() if key != missing)
        )
        result = _config(env_file, *PROFILES)
        assert result.returncode != 0
        assert missing in result.stderr and ".env.example" in result.stderr


def test_twentyq_services_run_the_one_image_with_their_command(full_config: dict[str, Any]) -> None:
    services = full_config["services"]
    images = {services[name]["image"] for name in TWENTYQ_SERVICES}
    assert images == {"twentyq:local"}
    for name, command in TWENTYQ_SERVICES.items():
        service = services[name]
        assert service["command"] == command
        assert service["build"]["context"] == str(REPO_ROOT)
        assert service["build"]["dockerfile"] == "Dockerfile"
        assert set(service["build"]["args"]) >= {"TORCH_INDEX_URL", "MLFLOW_TRACKING_URI"}


def test_twentyq_services_are_wired_to_the_stack(full_config: dict[str, Any]) -> None:
    services = full_config["services"]
    for name in ("worker", "export"):
        environment = services[name]["environment"]
        assert environment["TWENTYQ_BROKER_URL"].startswith("redis://redis:6379/")
        assert environment["TWENTYQ_RESULT_BACKEND"].startswith("redis://redis:6379/")
    for name in ("export", "drift"):
        environment = services[name]["environment"]
        assert environment["MONITORING_SINK_URL"].startswith("s3://")
        assert environment["MONITORING_S3_ENDPOINT_URL"] == "http://minio:9000"
        assert environment["AWS_ACCESS_KEY_ID"] == _env_file_values(ENV_EXAMPLE)["MINIO_ROOT_USER"]
    assert services["drift"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    mlflow_command = " ".join(services["mlflow"]["command"])
    assert "postgresql://" in mlflow_command and "--serve-artifacts" in mlflow_command


def test_twentyq_services_set_only_variables_the_deployables_read(
    full_config: dict[str, Any],
) -> None:
    for name in TWENTYQ_SERVICES:
        unknown = set(full_config["services"][name]["environment"]) - known_variables()
        assert not unknown, f"{name}: no settings class reads {sorted(unknown)}"


def test_dependencies_wait_for_health_or_completion(full_config: dict[str, Any]) -> None:
    services = full_config["services"]
    expected = {
        ("worker", "redis"): "service_healthy",
        ("export", "redis"): "service_healthy",
        ("export", "minio-setup"): "service_completed_successfully",
        ("drift", "mlflow"): "service_healthy",
        ("mlflow", "postgres"): "service_healthy",
        ("mlflow", "minio-setup"): "service_completed_successfully",
        ("minio-setup", "minio"): "service_healthy",
    }
    for (service, dependency), condition in expected.items():
        assert services[service]["depends_on"][dependency]["condition"] == condition
    for service in services.values():
        for dependency, rule in service.get("depends_on", {}).items():
            if rule["condition"] == "service_healthy":
                assert services[dependency].get("healthcheck", {}).get("test"), dependency


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_alone_starts_everything_it_depends_on(profile: str) -> None:
    result = _config(ENV_EXAMPLE, profile)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    for service in services.values():
        assert set(service.get("depends_on", {})) <= set(services)
    if profile == "serving":
        assert set(services) == {"redis", "worker"}
