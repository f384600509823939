"""`twentyq drift` end to end: a real MLflow store, exported files, an alert, a rendered report."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlflow import MlflowClient
from monitoring.cli import drift_main
from monitoring.record import event_record
from monitoring.sink import LocalSink
from producer.pin import ModelPin, write_pin
from tests.support.http_sink import HttpSink, running_http_sink
from tests.unit.monitoring.synthetic import (
    MODEL_NAME,
    REFERENCE,
    SHIFTS,
    VOCABULARY,
    events_from_records,
    synthetic_records,
)

pytestmark = pytest.mark.integration

END = datetime(2026, 7, 1, tzinfo=UTC)
WEEK = timedelta(days=7)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A temporary MLflow store with a registered version carrying reference data, and a pin."""
    root = tmp_path_factory.mktemp("mlflow")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.create_experiment("training", artifact_location=(root / "art").as_uri())
    run_id = client.create_run(experiment).info.run_id
    reference = synthetic_records(
        np.random.default_rng(1), 1000, REFERENCE, END - 20 * WEEK, END - 19 * WEEK
    )
    reference.to_parquet(root / "reference.parquet")
    (root / "vocabulary.json").write_text(json.dumps({"tokens": VOCABULARY}))
    for name in ("reference.parquet", "vocabulary.json"):
        client.log_artifact(run_id, str(root / name), artifact_path="reference")
    client.set_terminated(run_id)
    client.create_registered_model(MODEL_NAME)
    version = client.create_model_version(
        MODEL_NAME, source=f"runs:/{run_id}/reference", run_id=run_id
    ).version
    pin_path = root / "model_version.json"
    write_pin(ModelPin(name=MODEL_NAME, version=str(version)), pin_path)
    return {"tracking_uri": tracking_uri, "pin_path": pin_path, "run_id": run_id}


def _export(sink: LocalSink, frame: pd.DataFrame) -> None:
    sink.write_records([event_record(event) for event in events_from_records(frame)])


@pytest.fixture()
def exported(tmp_path: Path) -> LocalSink:
    """Three weeks of exports: version 1 drifts in the last two, version 2 never does."""
    rng = np.random.default_rng(2)
    sink = LocalSink(tmp_path / "exports")
    slang = SHIFTS["oov_rate"]
    for week, scenario in ((3, REFERENCE), (2, slang), (1, slang)):
        start = END - week * WEEK
        _export(sink, synthetic_records(rng, 250, scenario, start, start + WEEK))
        version_2 = synthetic_records(rng, 250, REFERENCE, start, start + WEEK, model_version="2")
        _export(sink, version_2)
    return sink


@pytest.fixture()
def webhook() -> Iterator[HttpSink]:
    with running_http_sink() as sink:
        yield sink


@pytest.fixture()
def environment(
    store: dict[str, Any],
    exported: LocalSink,
    webhook: HttpSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    monkeypatch.chdir(tmp_path)  # MLflow puts new experiments' artifacts under ./mlruns
    report_dir = tmp_path / "reports"
    for name, value in {
        "MLFLOW_TRACKING_URI": store["tracking_uri"],
        "TWENTYQ_PIN_PATH": str(store["pin_path"]),
        "MONITORING_SINK_URL": f"file://{exported.root}",
        "MONITORING_WEBHOOK_URL": webhook.url,
        "MONITORING_REPORT_DIR": str(report_dir),
        "MONITORING_REPORT_BASE_URL": "https://reports.example/drift",
        "MONITORING_WINDOWS_COMPARED": "3",
    }.items():
        monkeypatch.setenv(name, value)
    return report_dir


def test_drift_alerts_logs_to_mlflow_and_writes_a_report(
    environment: Path,
    store: dict[str, Any],
    webhook: HttpSink,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = drift_main(["--window", "7d", "--json", "--end", END.isoformat()])
    output = json.loads(capsys.readouterr().out)
    assert code == 0
    versions = {v["model_version"]: v for v in output["versions"]}
    assert [a["metric"] for a in versions["1"]["alerts"]] == ["oov_rate"]
    assert versions["2"]["alerts"] == []
    assert versions["2"]["reference"].startswith("pinned version 1")
    assert versions["1"]["reference_run_id"] == store["run_id"]

    assert len(webhook.posts) == 1
    message = webhook.posts[0].json()
    assert "oov_rate" in message["text"]
    assert f"{MODEL_NAME} version 1" in message["text"]
    report = Path(output["report"])
    assert f"https://reports.example/drift/{report.name}" in message["text"]

    client = MlflowClient(tracking_uri=store["tracking_uri"])
    runs = {
        client.get_run(run_id).data.tags["model_version"]: run_id
        for run_id in output["mlflow_run_ids"]
    }
    run = client.get_run(runs["1"])
    assert run.data.tags["model_name"] == MODEL_NAME
    assert client.get_experiment(run.info.experiment_id).name == "twentyq-monitoring"
    history = client.get_metric_history(runs["1"], "oov_rate.value")
    assert len({point.step for point in history}) == 3, "one step per window"
    assert [p.value > 0.05 for p in sorted(history, key=lambda p: p.step)] == [False, True, True]
    assert [a.path for a in client.list_artifacts(runs["1"], "report")] == [f"report/{report.name}"]
    assert report.exists()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_report_renders_with_every_image_decoded(environment: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing in CI: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium); CI runs this test")
    assert drift_main(["--end", END.isoformat()]) == 0
    report = next(environment.glob("drift-*.html"))
    probe = report.with_name("probe.html")
    # Record each image's decoded width in the DOM once the page has loaded.
    script = (
        "<script>window.addEventListener('load', () => { document.body.setAttribute("
        "'data-widths', Array.from(document.images).map(i => i.naturalWidth).join(',')); });"
        "</script></body>"
    )
    probe.write_text(report.read_text().replace("</body>", script))
    with tempfile.TemporaryDirectory(prefix="twentyq-chromium-") as profile:
        result = subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                probe.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    match = re.search(r'data-widths="([0-9,]*)"', result.stdout)
    assert match, f"chromium did not render the report: {result.stderr[-2000:]}"
    widths = [int(width) for width in match.group(1).split(",")]
    assert len(widths) == report.read_text().count("<img")
    assert len(widths) >= 18, "expected the plots of both model versions"
    assert all(width > 100 for width in widths), widths
