"""Import the stand-alone build and container scripts under deploy/docker/ as modules."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.unit.deploy.tooling import REPO_ROOT


def load_script(name: str) -> ModuleType:
    """Load ``deploy/docker/<name>.py`` (not a package: it is copied into the image alone)."""
    path = REPO_ROOT / "deploy" / "docker" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"deploy_docker_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
