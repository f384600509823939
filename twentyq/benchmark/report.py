"""Targets, and the run written out: ``bench.json``, ``bench.md`` and ``bench.png``.

Everything here is a pure function of the report dictionary ``twentyq bench``
assembles, so the tables and the target verdicts can be checked without a run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCENARIO_TITLES = {
    "limit": "in-process predict (the limit)",
    "batched": "Celery pipeline, batching on",
    "unbatched": "Celery pipeline, one turn per task",
    "stock_celery": "stock Celery app, send_task",
    "mlflow_serve": "mlflow models serve",
}
SERVED = ("batched", "unbatched", "stock_celery", "mlflow_serve")


@dataclass(frozen=True)
class Target:
    """One target of the issue, its measured value and whether the run met it."""

    name: str
    value: float | None
    threshold: float
    at_least: bool
    unit: str = ""

    @property
    def met(self) -> bool | None:
        """True or False once measured; None when the run did not measure it."""
        if self.value is None:
            return None
        return self.value >= self.threshold if self.at_least else self.value <= self.threshold

    def to_dict(self) -> dict[str, Any]:
        """The target and its verdict, JSON-ready."""
        value = None if self.value is None else round(self.value, 3)
        return {**asdict(self), "value": value, "met": self.met}


def _saturation(scenarios: dict[str, Any], name: str) -> float | None:
    scenario = scenarios.get(name)
    if not scenario:
        return None
    value = scenario.get("saturation_per_s", scenario.get("throughput_per_s"))
    return float(value) if value else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def latency_at(scenario: dict[str, Any] | None, fraction: float, key: str) -> float | None:
    """A latency figure (``p50_ms`` ...) of the open-loop run at ``fraction`` of saturation."""
    for load in (scenario or {}).get("loads", []):
        if abs(load["fraction"] - fraction) < 1e-9 and load.get("latency_ms"):
            return float(load["latency_ms"][key])
    return None


def evaluate_targets(scenarios: dict[str, Any]) -> list[Target]:
    """The issue's targets against one run's scenarios."""
    batched = _saturation(scenarios, "batched")
    cold_start = (scenarios.get("batched") or {}).get("cold_start_s")
    return [
        Target(
            "batched / one-turn-per-task throughput",
            _ratio(batched, _saturation(scenarios, "unbatched")),
            3.0,
            True,
            "x",
        ),
        Target(
            "batched / stock Celery throughput",
            _ratio(batched, _saturation(scenarios, "stock_celery")),
            3.0,
            True,
            "x",
        ),
        Target(
            "batched / mlflow models serve throughput",
            _ratio(batched, _saturation(scenarios, "mlflow_serve")),
            2.0,
            True,
            "x",
        ),
        Target(
            "batched / in-process limit throughput",
            _ratio(batched, _saturation(scenarios, "limit")),
            0.25,
            True,
            "x",
        ),
        Target(
            "batched CPU per turn at saturation (client + worker + Redis)",
            cpu_ms_per_turn(scenarios.get("batched")),
            0.6,
            False,
            "ms",
        ),
        Target(
            "batched p50 enqueue→guess at 50% load",
            latency_at(scenarios.get("batched"), 0.5, "p50_ms"),
            5.0,
            False,
            "ms",
        ),
        Target(
            "batched p99 enqueue→guess at 50% load",
            latency_at(scenarios.get("batched"), 0.5, "p99_ms"),
            30.0,
            False,
            "ms",
        ),
        Target(
            "worker cold start to first guess",
            None if cold_start is None else float(cold_start),
            10.0,
            False,
            "s",
        ),
    ]


def cpu_ms_per_turn(scenario: dict[str, Any] | None) -> float | None:
    """CPU ms per turn at saturation, every process of the scenario added up."""
    by_process = (scenario or {}).get("cpu_ms_per_turn") or {}
    return round(sum(by_process.values()), 3) if by_process else None


def _cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def load_table(scenarios: dict[str, Any]) -> list[str]:
    """Markdown rows: every served scenario at saturation and at each offered load."""
    lines = [
        "| scenario | load | offered /s | answered /s | p50 ms | p95 ms | p99 ms | lost "
        "| mean batch | client CPU ms/turn | client busy |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in SERVED:
        scenario = scenarios.get(name)
        if not scenario:
            continue
        runs = [("saturation", scenario["saturation"])]
        runs += [(f"{load['fraction']:.0%}", load) for load in scenario["loads"]]
        for label, run in runs:
            latency = run.get("latency_ms") or {}
            lines.append(
                f"| {SCENARIO_TITLES[name]} | {label} | {_cell(run['offered_per_s'], 0)} "
                f"| {_cell(run['throughput_per_s'], 0)} | {_cell(latency.get('p50_ms'))} "
                f"| {_cell(latency.get('p95_ms'))} | {_cell(latency.get('p99_ms'))} "
                f"| {run['lost']} | {_cell(run.get('mean_batch_size'))} "
                f"| {_cell(run['client_cpu_ms_per_request'], 2)} "
                f"| {run['client_busy_fraction']:.0%} |"
            )
    return lines


def summary_table(scenarios: dict[str, Any]) -> list[str]:
    """Markdown rows: saturation, cold start and memory of each scenario."""
    lines = [
        "| scenario | saturation turns/s | cold start s | processes | RSS MiB (sum) "
        "| PSS MiB (sum) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, title in SCENARIO_TITLES.items():
        scenario = scenarios.get(name)
        if not scenario:
            continue
        memory = scenario.get("memory", [])
        rss = sum(row.get("rss_mib", 0.0) for row in memory) if memory else None
        pss = sum(row.get("pss_mib", 0.0) for row in memory) if memory else None
        lines.append(
            f"| {title} | {_cell(_saturation(scenarios, name), 0)} "
            f"| {_cell(scenario.get('cold_start_s'))} | {len(memory) or '–'} "
            f"| {_cell(rss, 0)} | {_cell(pss, 0)} |"
        )
    return lines


def target_table(targets: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: each target, its threshold, the value measured, the verdict."""
    lines = ["| target | wanted | measured | verdict |", "|---|---|---:|---|"]
    for target in targets:
        sign = "≥" if target["at_least"] else "≤"
        lines.append(
            f"| {target['name']} | {sign} {target['threshold']:g} {target['unit']} "
            f"| {_cell(target['value'], 2)} {target['unit']} | {_verdict(target['met'])} |"
        )
    return lines


def memory_table(scenarios: dict[str, Any]) -> list[str]:
    """Markdown rows: RSS and PSS of every server process, parent first."""
    lines = ["| scenario | pid | process | RSS MiB | PSS MiB |", "|---|---:|---|---:|---:|"]
    for name in SERVED:
        for row in (scenarios.get(name) or {}).get("memory", []):
            lines.append(
                f"| {SCENARIO_TITLES[name]} | {row['pid']} | `{row['command'][:60]}` "
                f"| {_cell(row.get('rss_mib'))} | {_cell(row.get('pss_mib'))} |"
            )
    return lines


def cpu_table(scenarios: dict[str, Any]) -> list[str]:
    """Markdown rows: CPU milliseconds per answered turn, by process, at saturation."""
    lines = ["| scenario | where | CPU ms per turn |", "|---|---|---:|"]
    for name, title in SCENARIO_TITLES.items():
        figures = (scenarios.get(name) or {}).get("cpu_ms_per_turn", {})
        lines += [f"| {title} | {role} | {value:.3f} |" for role, value in figures.items()]
        if figures:
            lines.append(f"| {title} | **total** | **{sum(figures.values()):.3f}** |")
    return lines


# Which client check bounds which scenario: (report key, scenario, how the text names it).
CLIENT_CHECKS = (
    ("celery_send", "batched", "the batched pipeline"),
    ("stock_celery_send", "stock_celery", "the stock Celery app"),
)


def client_headroom(client: dict[str, Any], scenarios: dict[str, Any]) -> list[str]:
    """One line per client check: its send rate and how far above its scenario's saturation."""
    lines = []
    for check, name, called in CLIENT_CHECKS:
        figures = client.get(check)
        if not figures:
            continue
        ratio = _ratio(figures.get("send_rate_per_s"), _saturation(scenarios, name))
        headroom = "" if ratio is None else f" — {ratio:.1f}× {called}'s saturation"
        lines.append(f"Client alone ({check}, nothing consuming): {figures}{headroom}  ")
    return lines


def limit_line(limit: dict[str, Any]) -> str:
    """The limit's shape and batch-size curve, or that the run did not measure it."""
    if not limit:
        return "The limit: not measured in this run."
    curve = ", ".join(
        f"N={size}: {figures['throughput_per_s']:.0f}"
        for size, figures in limit.get("batch_curve", {}).items()
    )
    return (
        f"The limit: {limit.get('processes')} process(es) × batches of {limit.get('batch_size')} "
        f"turns; batch-size curve (one process, turns/s): {curve}"
    )


def render_markdown(report: dict[str, Any]) -> str:
    """The human-readable report: conditions, the tables, the targets."""
    machine, scenarios = report["machine"], report["scenarios"]
    limit = scenarios.get("limit") or {}
    client = report.get("client", {})
    lines = [
        f"# twentyq bench — {report['started_at']}",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {machine['cpus']} CPUs; load average {machine['load_average_before']} before, "
        f"{machine['load_average_after']} after; Python {machine['python']}  ",
        f"Model: {report['model']['name']} version {report['model']['version']}; "
        f"corpus: {report['corpus']['turns']} turns from {report['corpus']['games']} games "
        f"(history length mean {report['corpus']['history_length']['mean']}, "
        f"free text {report['corpus']['free_text_share']:.0%} of answers)",
        "",
        "## Summary",
        "",
        *summary_table(scenarios),
        "",
        limit_line(limit),
        "",
        "## Throughput and enqueue→guess latency",
        "",
        *load_table(scenarios),
        "",
        f"Client: {client.get('how', '')}  ",
        *client_headroom(client, scenarios),
        "Client against `GET /ping` of mlflow serve: "
        f"{(scenarios.get('mlflow_serve') or {}).get('client_ping', {})}",
        "",
        "## Where a turn's CPU goes (saturation run)",
        "",
        *cpu_table(scenarios),
        "",
        "## Targets",
        "",
        *target_table(report["targets"]),
        "",
        "## Memory per process",
        "",
        *memory_table(scenarios),
        "",
    ]
    return "\n".join(lines)


def plot_report(report: dict[str, Any], path: Path) -> None:
    """Saturation throughput per scenario, and latency against offered load (PNG)."""
    import matplotlib  # noqa: PLC0415 - heavy; only when writing the report

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    scenarios = report["scenarios"]
    figure, (bars, curves) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [name for name in SCENARIO_TITLES if scenarios.get(name)]
    bars.barh(
        [SCENARIO_TITLES[name] for name in names],
        [_saturation(scenarios, name) or 0.0 for name in names],
    )
    bars.set_xlabel("turns/s at saturation")
    bars.invert_yaxis()
    for name in SERVED:
        loads = [
            load for load in (scenarios.get(name) or {}).get("loads", []) if load["latency_ms"]
        ]
        if not loads:
            continue
        offered = [load["offered_per_s"] for load in loads]
        for key, style in (("p50_ms", "-o"), ("p99_ms", "--x")):
            values = [load["latency_ms"][key] for load in loads]
            curves.plot(offered, values, style, label=f"{SCENARIO_TITLES[name]} {key[:3]}")
    curves.set_xlabel("offered load, turns/s (25/50/90% of each one's saturation)")
    curves.set_ylabel("enqueue→answer latency, ms")
    curves.set_yscale("log")
    curves.legend(fontsize=7)
    figure.suptitle(f"twentyq bench {report['started_at']}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_report(report: dict[str, Any], output_dir: Path) -> dict[str, Path]:
    """Write bench.json, bench.md and bench.png into ``output_dir``; their paths."""
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": output_dir / "bench.json",
        "markdown": output_dir / "bench.md",
        "plot": output_dir / "bench.png",
    }
    paths["json"].write_text(json.dumps(report, indent=2, default=str) + "\n")
    paths["markdown"].write_text(render_markdown(report))
    plot_report(report, paths["plot"])
    return paths
