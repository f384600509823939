"""`twentyq model train`: train the interpreter, evaluate, log to MLflow, register, pin.

One MLflow run holds everything: parameters, the evaluation's metrics, the
reference data (``reference/reference.parquet``, ``reference/vocabulary.json``)
as run artifacts, and the pyfunc (``model``), which carries the knowledge
base, the interpreter and the same reference data inside it.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

import mlflow
from model.embedding import build_tiny_encoder, count_parameters, find_minilm_folder, load_encoder
from model.engine import Engine, EngineConfig
from model.evaluation import EvaluationReport, reference_frame
from model.interpreter import AnswerInterpreter, InterpreterConfig, train_interpreter
from model.knowledge_base import KnowledgeBase, load_knowledge_base
from model.latency import measure_latency
from model.phrasing import (
    HELDOUT_PHRASINGS_PATH,
    TRAIN_PHRASINGS_PATH,
    Phrasings,
    load_phrasings,
    vocabulary_tokens,
)
from model.predictor import Predictor
from model.pyfunc import ServingConfig, log_pyfunc, stage_artifacts
from model.registry import Pin, configure_tracking, register_run, write_pin
from model.scorecard import evaluate_predictor, flat_metrics, summarise
from model.settings import ModelSettings

INTERPRETER_KINDS = ("minilm", "tiny")


@dataclass(frozen=True)
class InterpreterRecipe:
    """How one kind of interpreter is built and trained."""

    config: InterpreterConfig
    epochs: int
    fine_tune_encoder: bool


RECIPES: dict[str, InterpreterRecipe] = {
    # Frozen MiniLM: one embedding pass, then a cheap full-batch head fit.
    "minilm": InterpreterRecipe(InterpreterConfig("minilm", hidden_size=256), 500, False),
    # A from-scratch encoder means nothing until trained, so it is trained with the head.
    "tiny": InterpreterRecipe(
        InterpreterConfig("tiny", hidden_size=32, learning_rate=3e-3), 40, True
    ),
}


@dataclass(frozen=True)
class TrainingOptions:
    """What `twentyq model train` was asked to do."""

    interpreter_kind: str = "minilm"
    register: bool = True
    pin: bool = False
    games: int | None = None
    progress: bool = True
    engine: EngineConfig = field(default_factory=EngineConfig)


@dataclass(frozen=True)
class TrainingResult:
    """The run, the registered version (if any) and the figures."""

    run_id: str
    pin: Pin | None
    pinned: bool
    summary: dict[str, Any]
    training_time_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for `--json`."""
        return {
            "run_id": self.run_id,
            "registered": None if self.pin is None else asdict(self.pin),
            "pinned": self.pinned,
            "training_time_s": self.training_time_s,
            **self.summary,
        }


def build_interpreter(
    kind: str, train: Phrasings, folder: Path, seed: int
) -> tuple[AnswerInterpreter, InterpreterRecipe]:
    """Build the encoder of ``kind`` and train the interpreter's head on ``train``."""
    if kind not in RECIPES:
        raise ValueError(f"unknown interpreter {kind!r}; use one of {INTERPRETER_KINDS}")
    recipe = RECIPES[kind]
    if kind == "minilm":
        encoder = load_encoder(find_minilm_folder(), recipe.config.max_length_tokens)
    else:
        encoder = build_tiny_encoder(
            train.texts, folder / "tiny_encoder", seed=seed, hidden_size=64
        )
    interpreter = train_interpreter(
        encoder,
        train,
        recipe.config,
        epochs=recipe.epochs,
        fine_tune_encoder=recipe.fine_tune_encoder,
        seed=seed,
    )
    return interpreter, recipe


def train_model(
    settings: ModelSettings, options: TrainingOptions, kb: KnowledgeBase | None = None
) -> TrainingResult:
    """Train, evaluate and log one run; register and pin it as the options say."""
    started = time.perf_counter()
    # Small matrices: more threads only add synchronisation (and the served model uses these).
    torch.set_num_threads(settings.torch_threads)
    kb = load_knowledge_base() if kb is None else kb
    train = load_phrasings(TRAIN_PHRASINGS_PATH)
    heldout = load_phrasings(HELDOUT_PHRASINGS_PATH)
    configure_tracking(settings)
    with tempfile.TemporaryDirectory(prefix="twentyq-train-") as staging, mlflow.start_run() as run:
        folder = Path(staging)
        interpreter, recipe = build_interpreter(
            options.interpreter_kind, train, folder, settings.seed
        )
        mlflow.log_params(
            _params(
                options=options,
                recipe=recipe,
                interpreter=interpreter,
                kb=kb,
                train=train,
                heldout=heldout,
                settings=settings,
            )
        )
        predictor = Predictor(Engine(kb, options.engine), kb, interpreter)
        report, accuracy = evaluate_predictor(
            predictor, heldout, options.games, settings.seed, options.progress
        )
        model_uri = _log_version(
            folder,
            predictor=predictor,
            report=report,
            train=train,
            settings=settings,
            options=options,
        )
        loaded = mlflow.pyfunc.load_model(model_uri)
        latency = measure_latency(loaded.predict, kb, train.by_answer(), seed=settings.seed)
        summary = summarise(report, accuracy, latency)
        summary["interpreter_train_accuracy"] = interpreter.accuracy(train.texts, train.answers)
        mlflow.log_dict(summary, "evaluation/summary.json")
        mlflow.log_metrics(flat_metrics(summary))
        mlflow.log_metric("interpreter_train_accuracy", summary["interpreter_train_accuracy"])
        run_id = run.info.run_id
        training_time_s = time.perf_counter() - started
        mlflow.log_metric("training_time_s", training_time_s)
    pin = register_run(settings, run_id, model_uri) if options.register else None
    if pin is not None and options.pin:
        write_pin(pin, settings.pin_path)
    return TrainingResult(run_id, pin, pin is not None and options.pin, summary, training_time_s)


def _log_version(
    folder: Path,
    *,
    predictor: Predictor,
    report: EvaluationReport,
    train: Phrasings,
    settings: ModelSettings,
    options: TrainingOptions,
) -> str:
    """Log the reference data (run artifacts) and the pyfunc carrying it; returns its URI."""
    run = mlflow.active_run()
    run_id = run.info.run_id if run is not None else ""
    reference_folder = _write_reference(folder / "reference", report, train, settings, run_id)
    mlflow.log_artifacts(str(reference_folder), "reference")
    config = ServingConfig(
        engine=options.engine.__dict__,
        torch_threads=settings.torch_threads,
        interpreter_kind=options.interpreter_kind,
    )
    artifacts = stage_artifacts(
        folder / "artifacts", predictor.kb, predictor.interpreter, config, reference_folder
    )
    model_uri: str = log_pyfunc(artifacts, folder).model_uri
    return model_uri


def _write_reference(
    folder: Path, report: EvaluationReport, train: Phrasings, settings: ModelSettings, run_id: str
) -> Path:
    """Write reference.parquet and vocabulary.json (docs/records.md) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = reference_frame(report, model_name=settings.registered_model_name, run_id=run_id)
    frame.to_parquet(folder / "reference.parquet", index=False)
    tokens = vocabulary_tokens(train.texts)
    (folder / "vocabulary.json").write_text(json.dumps({"tokens": tokens}) + "\n")
    return folder


def _params(
    *,
    options: TrainingOptions,
    recipe: InterpreterRecipe,
    interpreter: AnswerInterpreter,
    kb: KnowledgeBase,
    train: Phrasings,
    heldout: Phrasings,
    settings: ModelSettings,
) -> dict[str, Any]:
    return {
        "interpreter_kind": options.interpreter_kind,
        "encoder_parameters": count_parameters(interpreter.encoder),
        "head_hidden_size": recipe.config.hidden_size,
        "head_epochs": recipe.epochs,
        "fine_tune_encoder": recipe.fine_tune_encoder,
        "train_phrasings": len(train),
        "heldout_phrasings": len(heldout),
        "nouns": len(kb.nouns),
        "questions": len(kb.question_ids),
        "evaluation_games": options.games if options.games is not None else "every noun",
        "seed": settings.seed,
        "torch_threads": settings.torch_threads,
        **{f"engine_{name}": value for name, value in options.engine.__dict__.items()},
    }
