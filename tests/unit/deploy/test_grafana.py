"""The Grafana dashboard charts metrics the worker and the sidecar really export."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from monitoring.metric import ExportMetrics
from tests.unit.deploy.tooling import REPO_ROOT
from worker.metrics import WorkerMetrics

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "twentyq-dashboard.json"


def _exported_series() -> set[str]:
    """Every series name the two registries expose (counters as _total, histograms _bucket)."""
    registries: list[CollectorRegistry] = [WorkerMetrics().registry, ExportMetrics().registry]
    names: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            names.add(family.name)
            names |= {sample.name for sample in family.samples}
            if family.type == "counter":
                names.add(f"{family.name}_total")
            if family.type == "histogram":
                names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count")}
    return names


def _labels(expression: str) -> set[str]:
    return set(re.findall(r"by \(([^)]*)\)", expression))


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _expressions(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_every_queried_metric_is_exported(dashboard: dict[str, Any]) -> None:
    exported = _exported_series()
    queried = {
        word
        for expression in _expressions(dashboard)
        for word in re.findall(r"\b(twentyq_[a-z_]+)\b", expression)
    }
    assert queried, "the dashboard queries twentyq metrics"
    assert queried <= exported, f"not exported: {sorted(queried - exported)}"
    worker_families = {name for name in exported if name.startswith("twentyq_worker_")}
    export_families = {name for name in exported if name.startswith("twentyq_export_")}
    assert queried & worker_families and queried & export_families


def test_grouping_labels_exist_on_the_metrics(dashboard: dict[str, Any]) -> None:
    label_names = {"le"}
    # Labelled families expose samples only once a child exists: create one of each.
    worker = WorkerMetrics()
    worker.turns.labels("answered").inc()
    worker.dead_letters.labels("invalid_turn").inc()
    worker.model_info.labels("m", "1", "r").set(1)
    export = ExportMetrics()
    export.records.labels("guess").inc()
    for registry in (worker.registry, export.registry):
        for family in registry.collect():
            for sample in family.samples:
                label_names |= set(sample.labels)
    for expression in _expressions(dashboard):
        for group in _labels(expression):
            used = {label.strip() for label in group.split(",")}
            assert used <= label_names, f"{expression}: unknown labels {used - label_names}"


def test_panels_are_well_formed(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert {"datasource", "namespace"} <= variables
    occupied: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"panel {panel['title']!r} overlaps another"
        occupied |= cells
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
            assert 'namespace=~"$namespace"' in target["expr"]
