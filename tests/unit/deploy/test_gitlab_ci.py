"""The GitLab pipeline is valid and does test -> image with the pinned model -> gitops MR."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.tooling import REPO_ROOT

PIPELINE = REPO_ROOT / ".gitlab-ci.yml"


def _check_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.gitlab-ci",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def pipeline() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(PIPELINE.read_text())
    return loaded


def _script(job: dict[str, Any]) -> str:
    return "\n".join(job.get("before_script", []) + job["script"])


def test_pipeline_matches_the_gitlab_ci_schema() -> None:
    result = _check_schema(PIPELINE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_pipeline(tmp_path: Path) -> None:
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(PIPELINE.read_text().replace("  script:\n", "  scripts:\n", 1))
    assert _check_schema(broken).returncode != 0


def test_test_job_publishes_the_reports_the_makefile_writes(pipeline: dict[str, Any]) -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    junit_files = set(re.findall(r"--junitxml=(\S+)", makefile))
    assert "--cov-report=xml" in makefile
    job = pipeline["test"]
    assert "make test" in job["script"]
    reports = job["artifacts"]["reports"]
    assert set(reports["junit"]) == junit_files
    assert reports["coverage_report"] == {"coverage_format": "cobertura", "path": "coverage.xml"}
    assert job["artifacts"]["when"] == "always", "reports of a failing run matter most"


def test_image_is_built_from_the_pin_and_tagged_with_its_version(pipeline: dict[str, Any]) -> None:
    job = pipeline["build-image"]
    script = _script(job)
    assert "jq -r .version mlflow/model_version.json" in script
    for argument in (
        "TORCH_INDEX_URL",
        "MLFLOW_TRACKING_URI",
        "MODEL_NAME",
        "MODEL_VERSION",
        "MODEL_RUN_ID",
    ):
        assert f'--build-arg {argument}="${argument}"' in script
    assert '--tag "$CI_REGISTRY_IMAGE:$IMAGE_TAG"' in script
    assert 'IMAGE_TAG="${CI_COMMIT_SHORT_SHA}-model-v${MODEL_VERSION}"' in script
    assert job["artifacts"]["reports"]["dotenv"] == "build.env"


def test_gitops_step_opens_a_merge_request_moving_image_and_pin_together(
    pipeline: dict[str, Any],
) -> None:
    job = pipeline["gitops-merge-request"]
    assert job["needs"] == [{"job": "build-image", "artifacts": True}]
    script = _script(job)
    assert 'kustomize edit set image "twentyq=${CI_REGISTRY_IMAGE}:${IMAGE_TAG}"' in script
    assert "> model_version.json" in script
    assert "git add kustomization.yaml model_version.json" in script
    assert "merge_request.create" in script
    # The tag the CI writes ends as the overlays' tests require: ...model-v<version>.
    staging = (REPO_ROOT / "deploy/kubernetes/overlays/staging/kustomization.yaml").read_text()
    assert re.search(r"newTag: \S*model-v\d+", staging)
