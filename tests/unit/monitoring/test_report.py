"""The HTML report is self-contained: every plot is an embedded, decodable PNG."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring.alert import alert_message
from monitoring.evaluation import evaluate_version, window_bounds
from monitoring.reference import Reference
from monitoring.report import render_report
from monitoring.settings import MonitoringSettings
from tests.unit.monitoring.synthetic import (
    MODEL_NAME,
    REFERENCE,
    SHIFTS,
    VOCABULARY,
    synthetic_records,
)

END = datetime(2026, 6, 1, tzinfo=UTC)
WEEK = timedelta(days=7)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def drifted() -> object:
    rng = np.random.default_rng(9)
    settings = MonitoringSettings(windows_compared=3)
    reference = Reference(
        MODEL_NAME,
        "1",
        "run-1",
        synthetic_records(rng, 800, REFERENCE, END - 10 * WEEK, END - 9 * WEEK),
        frozenset(VOCABULARY),
    )
    slang = SHIFTS["oov_rate"]
    records = pd.concat(
        [
            synthetic_records(rng, 300, REFERENCE, END - 3 * WEEK, END - 2 * WEEK),
            synthetic_records(rng, 300, slang, END - 2 * WEEK, END - WEEK),
            synthetic_records(rng, 300, slang, END - WEEK, END),
        ]
    )
    bounds = window_bounds(END, WEEK, 3)
    return evaluate_version(records, reference, bounds, settings, model_version="1")


@pytest.fixture(scope="module")
def page(drifted: object) -> str:
    return render_report([drifted], END)  # type: ignore[list-item]


def test_the_report_embeds_every_plot_as_a_png(page: str) -> None:
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    # One trend per metric (8), the noun bars, and up to three answer bars.
    assert len(images) >= 9
    assert all(base64.b64decode(image).startswith(PNG_MAGIC) for image in images)
    assert "http" not in page.lower().replace("twentyq", ""), "the report links outside itself"


def test_the_report_highlights_the_new_tokens_and_the_alert(page: str) -> None:
    assert "ALERT: oov_rate" in page
    assert "<td>bruh</td>" in page
    assert "BREACH" in page


def test_the_alert_message_names_metric_values_version_and_report(drifted: object) -> None:
    alerts = drifted.alerts  # type: ignore[attr-defined]
    assert [alert.metric for alert in alerts] == ["oov_rate"]
    message = alert_message(alerts, "https://reports.example/drift-1.html")
    assert "oov_rate" in message["text"]
    assert f"{MODEL_NAME} version 1" in message["text"]
    assert "https://reports.example/drift-1.html" in message["text"]
    assert f"{alerts[0].current_value:.4g}" in message["text"]
    assert message["blocks"][0]["type"] == "header"
