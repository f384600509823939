"""A self-contained HTML drift report: plots embedded as base64 PNG, no outside files."""

from __future__ import annotations

import base64
import html
import io
import math
from datetime import datetime
from pathlib import Path

# Figures are built without pyplot: no global backend state, and PNG output goes through
# Agg whatever backend the machine defaults to, so the job runs headless anywhere.
from matplotlib.figure import Figure

from monitoring.drift import MetricResult
from monitoring.evaluation import VersionDrift

TOP_BARS = 15
_STYLE = """body{font-family:sans-serif;margin:2em;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em}
.breach{color:#b00;font-weight:bold}.ok{color:#070}img{max-width:100%}"""


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img class="plot" alt="plot" src="data:image/png;base64,{data}">'


def _trend_plot(drift: VersionDrift, name: str) -> str:
    results = [window.metric(name) for window in drift.windows]
    ends = [window.end for window in drift.windows]
    figure = Figure(figsize=(6, 2.6))
    axes = figure.subplots()
    values = [r.value if math.isfinite(r.value) else float("nan") for r in results]
    axes.plot(ends, values, marker="o", label=name)  # type: ignore[arg-type]
    axes.axhline(results[-1].threshold, color="red", linestyle="--", label="threshold")
    breached = [
        (end, value) for end, value, r in zip(ends, values, results, strict=True) if r.breach
    ]
    if breached:
        axes.scatter(*zip(*breached, strict=True), color="red", zorder=3, label="breach")
    axes.set_title(f"{name} by window (end)")
    axes.legend(fontsize=7)
    figure.autofmt_xdate()
    return _png(figure)


def _bars_plot(title: str, reference: dict[str, int], current: dict[str, int]) -> str:
    ref_total, cur_total = sum(reference.values()) or 1, sum(current.values()) or 1
    labels = sorted(
        set(reference) | set(current),
        key=lambda k: -(reference.get(k, 0) / ref_total + current.get(k, 0) / cur_total),
    )[:TOP_BARS]
    positions = range(len(labels))
    figure = Figure(figsize=(7, 3))
    axes = figure.subplots()
    axes.bar(
        [p - 0.2 for p in positions],
        [reference.get(k, 0) / ref_total for k in labels],
        0.4,
        label="reference",
    )
    axes.bar(
        [p + 0.2 for p in positions],
        [current.get(k, 0) / cur_total for k in labels],
        0.4,
        label="current",
    )
    axes.set_xticks(list(positions), labels, rotation=45, ha="right", fontsize=7)
    axes.set_ylabel("share")
    axes.set_title(title)
    axes.legend(fontsize=7)
    return _png(figure)


def _metric_row(metric: MetricResult) -> str:
    verdict = f'<span class="{"breach" if metric.breach else "ok"}">{metric.verdict}</span>'
    cells = [
        metric.name,
        f"{metric.value:.4g}",
        f"{metric.threshold:.4g}",
        f"{metric.p_value:.3g}",
        f"{metric.n_reference} / {metric.n_current}",
        f"{metric.reference_value:.4g} → {metric.current_value:.4g}",
    ]
    return (
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + f"<td>{verdict}</td></tr>"
    )


def _tokens_table(metric: MetricResult) -> str:
    rows = metric.details.get("new_tokens", [])
    if not rows:
        return "<p>No tokens outside the vocabulary in the latest window.</p>"
    body = "".join(
        f"<tr><td>{html.escape(row['token'])}</td><td>{row['count']}</td><td>"
        + "<br>".join(html.escape(f"{ex['game_id']}: {ex['text']}") for ex in row["examples"])
        + "</td></tr>"
        for row in rows
    )
    header = "<tr><th>new token</th><th>count</th><th>example games</th></tr>"
    return f'<table class="tokens">{header}{body}</table>'


def _version_section(drift: VersionDrift) -> str:
    latest = drift.windows[-1]
    parts = [
        f"<h2>{html.escape(drift.model_name)} version {html.escape(drift.model_version)}</h2>",
        f"<p>Reference: {html.escape(drift.reference_note)} "
        f"(run {html.escape(drift.reference_run_id)}). "
        f"Latest window {latest.start:%Y-%m-%d %H:%M} to {latest.end:%Y-%m-%d %H:%M} UTC.</p>",
    ]
    if drift.alerts:
        parts.append(
            "<p class='breach'>ALERT: "
            + html.escape(", ".join(a.metric for a in drift.alerts))
            + "</p>"
        )
    parts.append(
        "<table><tr><th>metric</th><th>value (effect)</th><th>threshold</th><th>p / q</th>"
        "<th>n ref / cur</th><th>reference → current</th><th>verdict</th></tr>"
        + "".join(_metric_row(m) for m in latest.metrics)
        + "</table>"
    )
    parts += [_trend_plot(drift, m.name) for m in latest.metrics]
    nouns = latest.metric("noun_distribution").details
    parts.append(_bars_plot("guessed nouns", nouns["reference_counts"], nouns["current_counts"]))
    if nouns["new_nouns"]:
        parts.append(
            "<p>New nouns: "
            + html.escape(", ".join(f"{n} ({c})" for n, c in nouns["new_nouns"].items()))
            + "</p>"
        )
    questions = latest.metric("answer_distribution").details["questions"]
    for row in questions[:3]:
        parts.append(
            _bars_plot(
                f"answers to {row['question_id']} (q={row['q_value']:.3g})",
                row["reference_counts"],
                row["current_counts"],
            )
        )
    parts.append("<h3>Free-text tokens outside the vocabulary</h3>")
    parts.append(_tokens_table(latest.metric("oov_rate")))
    return "\n".join(parts)


def render_report(drifts: list[VersionDrift], generated_at: datetime) -> str:
    """The whole report as one HTML document."""
    sections = "\n".join(_version_section(drift) for drift in drifts)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>twentyq drift report</title>"
        f"<style>{_STYLE}</style></head><body><h1>twentyq drift report</h1>"
        f"<p>Generated {generated_at:%Y-%m-%d %H:%M:%S} UTC.</p>{sections}</body></html>"
    )


def write_report(drifts: list[VersionDrift], generated_at: datetime, path: Path) -> Path:
    """Write the report to ``path`` (creating its folder) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(drifts, generated_at), encoding="utf-8")
    return path
