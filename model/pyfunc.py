"""The MLflow pyfunc: the reference model packaged with everything inference needs.

A logged version carries, as artifacts, its knowledge base, its answer
interpreter (encoder weights and tokenizer, head weights), its configuration
and its reference data, and, as ``code_paths``, a copy of this ``model``
package; it is logged "from code" (``model/pyfunc_model.py``), so loading it
unpickles nothing and needs only the worker's dependencies, from any cwd.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from mlflow.pyfunc.model import PythonModel

import mlflow
from model.engine import Engine, EngineConfig
from model.errors import ModelPermanentError
from model.interpreter import AnswerInterpreter, load_interpreter
from model.knowledge_base import KnowledgeBase, load_knowledge_base, save_knowledge_base
from model.predictor import Predictor

PACKAGE_FOLDER = Path(__file__).resolve().parent
ENTRY_SCRIPT = PACKAGE_FOLDER / "pyfunc_model.py"
MODEL_ARTIFACT_PATH = "model"
CONFIG_FILE = "model_config.json"
# What a loaded version imports; the worker installs these (the `worker` extra).
SERVING_PACKAGES = ("mlflow", "torch", "transformers", "safetensors", "numpy", "pandas")


@dataclass(frozen=True)
class ServingConfig:
    """How the served model plays and runs; logged as ``model_config.json``."""

    engine: dict[str, Any] = field(default_factory=dict)
    torch_threads: int = 1
    interpreter_kind: str = "minilm"


class TwentyQuestionsModel(PythonModel):
    """``predict(list_of_turn_dicts) -> list_of_result_dicts`` (docs/model-contract.md)."""

    predictor: Predictor | None = None

    def load_context(self, context: Any) -> None:
        """Load knowledge base, interpreter and engine from the version's artifacts, once."""
        self.predictor = load_predictor(
            Path(context.artifacts["knowledge_base"]),
            Path(context.artifacts["interpreter"]),
            Path(context.artifacts["config"]),
        )

    def predict(
        self, context: Any, model_input: list[dict[str, Any]], params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Serve a whole batch of turns in one call; results keep the batch's order."""
        if self.predictor is None:
            raise ModelPermanentError("the model was not loaded; use mlflow.pyfunc.load_model")
        return self.predictor.predict(model_input)


def load_predictor(kb_folder: Path, interpreter_folder: Path, config_path: Path) -> Predictor:
    """Build the :class:`Predictor` a version's artifacts describe, warmed up."""
    config = ServingConfig(**json.loads(config_path.read_text()))
    # Workers scale by process; a fixed small thread count keeps them from oversubscribing cores.
    torch.set_num_threads(config.torch_threads)
    kb = load_knowledge_base(kb_folder)
    interpreter = load_interpreter(interpreter_folder)
    # The first forward pass allocates; pay for it at load time, not on a player's turn.
    interpreter.probabilities(["warm up"])
    return Predictor(Engine(kb, EngineConfig(**config.engine)), kb, interpreter)


def stage_artifacts(
    folder: Path,
    kb: KnowledgeBase,
    interpreter: AnswerInterpreter,
    config: ServingConfig,
    reference_folder: Path | None = None,
) -> dict[str, str]:
    """Write a version's artifacts into ``folder``; returns the ``artifacts=`` mapping."""
    save_knowledge_base(kb, folder / "knowledge_base")
    interpreter.save(folder / "interpreter")
    (folder / CONFIG_FILE).write_text(json.dumps(asdict(config), indent=2) + "\n")
    artifacts = {
        "knowledge_base": str(folder / "knowledge_base"),
        "interpreter": str(folder / "interpreter"),
        "config": str(folder / CONFIG_FILE),
    }
    if reference_folder is not None:
        artifacts["reference"] = str(reference_folder)
    return artifacts


def stage_code(folder: Path) -> Path:
    """Copy this package's Python modules (no data, no caches) into ``folder/model``."""
    target = folder / "model"
    shutil.copytree(
        PACKAGE_FOLDER, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "data")
    )
    return target


def log_pyfunc(artifacts: dict[str, str], staging_folder: Path) -> Any:
    """Log the pyfunc into the active run (from code, carrying ``model/``); returns ModelInfo."""
    code_folder = stage_code(staging_folder / "code")
    return mlflow.pyfunc.log_model(
        name=MODEL_ARTIFACT_PATH,
        python_model=str(ENTRY_SCRIPT),
        artifacts=artifacts,
        code_paths=[str(code_folder)],
        pip_requirements=serving_requirements(),
    )


def serving_requirements() -> list[str]:
    """Pinned requirements of a loaded version: the installed versions of the serving packages."""
    requirements = []
    for package in SERVING_PACKAGES:
        try:
            requirements.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            requirements.append(package)
    return requirements
