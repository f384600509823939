"""The issue's targets over one model version, and their printed summary."""

from __future__ import annotations

from typing import Any

from model.evaluation import EvaluationReport, evaluate
from model.latency import MAX_BATCH64_MS, MAX_SINGLE_MS
from model.phrasing import Phrasings
from model.predictor import Predictor

MIN_INTERPRETER_ACCURACY = 0.90


def check_targets(
    report: EvaluationReport, heldout_accuracy: float, latency: dict[str, float]
) -> list[dict[str, Any]]:
    """Every target as ``{name, value, bound, comparison, passed}``: games, interpreter, latency."""
    checks = [check.to_dict() for check in report.targets()]
    checks.append(
        _check("interpreter held-out accuracy", heldout_accuracy, MIN_INTERPRETER_ACCURACY, ">=")
    )
    checks.append(
        _check("predict batch of 64 (median ms)", latency.get("predict_batch64_median_ms"),
               MAX_BATCH64_MS, "<=")
    )  # fmt: skip
    checks.append(
        _check("predict one turn (median ms)", latency.get("predict_single_median_ms"),
               MAX_SINGLE_MS, "<=")
    )  # fmt: skip
    return checks


def format_summary(title: str, summary: dict[str, Any]) -> str:
    """Human-readable lines: scenarios, interpreter, latency, then each target PASS/FAIL."""
    lines = [title, ""]
    for name, scenario in summary["evaluation"]["scenarios"].items():
        median = scenario["questions_to_win_median"]
        lines.append(
            f"  {name:<11} games {scenario['games']:>4}  win rate {scenario['win_rate']:6.1%}  "
            f"median questions to win {'-' if median is None else f'{median:g}'}"
        )
    lines.append(f"  interpreter held-out accuracy {summary['interpreter_heldout_accuracy']:.1%}")
    latency = summary["latency"]
    lines.append(
        f"  predict: batch of 64 {latency['predict_batch64_median_ms']:.1f} ms median "
        f"(p95 {latency['predict_batch64_p95_ms']:.1f}), one turn "
        f"{latency['predict_single_median_ms']:.2f} ms median "
        f"(p95 {latency['predict_single_p95_ms']:.2f})"
    )
    lines += ["", "targets:"]
    for check in summary["targets"]:
        value = "missing" if check["value"] is None else f"{check['value']:.4g}"
        verdict = "PASS" if check["passed"] else "FAIL"
        lines.append(
            f"  [{verdict}] {check['name']}: {value} {check['comparison']} {check['bound']:g}"
        )
    return "\n".join(lines)


def _check(name: str, value: float | None, bound: float, comparison: str) -> dict[str, Any]:
    passed = value is not None and (value >= bound if comparison == ">=" else value <= bound)
    return {
        "name": name,
        "value": value,
        "bound": bound,
        "comparison": comparison,
        "passed": passed,
    }


def evaluate_predictor(
    predictor: Predictor, heldout: Phrasings, games: int | None, seed: int, progress: bool
) -> tuple[EvaluationReport, float]:
    """Play the evaluation games with the predictor's engine and interpreter.

    Returns the report and the interpreter's held-out accuracy. ``games``
    games per scenario on random nouns, or every noun once when None.
    """
    accuracy = predictor.interpreter.accuracy(heldout.texts, heldout.answers)
    report = evaluate(
        predictor.engine,
        predictor.kb,
        n_games=games,
        seed=seed,
        interpret=predictor.interpreter.interpret,
        phrasings=heldout.by_answer(),
        progress=progress,
    )
    return report, accuracy


def summarise(
    report: EvaluationReport, heldout_accuracy: float, latency: dict[str, float]
) -> dict[str, Any]:
    """The JSON summary `train --json` and `evaluate --json` print."""
    targets = check_targets(report, heldout_accuracy, latency)
    return {
        "evaluation": report.to_dict(),
        "interpreter_heldout_accuracy": heldout_accuracy,
        "latency": latency,
        "targets": targets,
        "passed": all(check["passed"] for check in targets),
    }


def flat_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The summary's numbers as MLflow metrics (``noise_free_win_rate``, ...)."""
    metrics = {"interpreter_heldout_accuracy": float(summary["interpreter_heldout_accuracy"])}
    metrics.update({name: float(value) for name, value in summary["latency"].items()})
    for name, scenario in summary["evaluation"]["scenarios"].items():
        for key in ("win_rate", "questions_to_win_median", "questions_to_win_p90", "games"):
            if scenario.get(key) is not None:
                metrics[f"{name}_{key}"] = float(scenario[key])
    return metrics
