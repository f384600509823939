"""Windows per model version against the reference the model's evaluation writes."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from monitoring.drift import evaluate_window
from monitoring.errors import ReferenceUnavailableError
from monitoring.evaluation import evaluate_records, evaluate_version, window_bounds
from monitoring.reference import Reference
from monitoring.settings import MonitoringSettings
from tests.unit.monitoring.synthetic import (
    MODEL_NAME,
    REFERENCE,
    VOCABULARY,
    synthetic_records,
)

END = datetime(2026, 8, 1, tzinfo=UTC)
WEEK = timedelta(days=7)
NULLABLE = {"turn": "Int64", "questions_asked": "Int64", "turns": "Int64", "won": "boolean"}


def _as_model_writes_it(frame: pd.DataFrame) -> pd.DataFrame:
    """The nullable dtypes of model/reference.py: Arrow strings, Int64, boolean."""
    strings = frame.select_dtypes(include=["object", "string"]).columns.difference(list(NULLABLE))
    return frame.astype({**{c: pd.ArrowDtype(pa.string()) for c in strings}, **NULLABLE})


def test_a_reference_with_nullable_dtypes_gives_the_same_verdicts() -> None:
    rng = np.random.default_rng(5)
    reference = synthetic_records(rng, 600, REFERENCE, END - 2 * WEEK, END - WEEK)
    current = synthetic_records(rng, 300, replace(REFERENCE, mean_questions=15), END - WEEK, END)
    settings = MonitoringSettings()
    plain = evaluate_window(reference, current, set(VOCABULARY), settings)
    nullable = evaluate_window(_as_model_writes_it(reference), current, set(VOCABULARY), settings)
    for left, right in zip(plain, nullable, strict=True):
        assert left.name == right.name
        assert left.breach == right.breach
        assert (math.isnan(left.value) and math.isnan(right.value)) or left.value == pytest.approx(
            right.value
        )


def test_reveal_rate_uses_the_oldest_window_when_the_reference_reveals_every_noun() -> None:
    rng = np.random.default_rng(6)
    offline = synthetic_records(rng, 600, replace(REFERENCE, reveal_probability=1.0), END, END)
    reference = Reference(MODEL_NAME, "1", "run", offline, frozenset(VOCABULARY))
    records = pd.concat(
        [
            synthetic_records(rng, 400, REFERENCE, END - 3 * WEEK, END - 2 * WEEK),
            synthetic_records(rng, 400, REFERENCE, END - 2 * WEEK, END - WEEK),
            synthetic_records(
                rng, 400, replace(REFERENCE, reveal_probability=0.3), END - WEEK, END
            ),
        ]
    )
    drift = evaluate_version(
        records, reference, window_bounds(END, WEEK, 3), MonitoringSettings(), model_version="1"
    )
    verdicts = [window.metric("reveal_rate") for window in drift.windows]
    # Against the offline 100 %, every window would breach; against the oldest, only the last.
    assert [v.breach for v in verdicts] == [False, False, True]
    assert verdicts[-1].reference_value == pytest.approx(0.6, abs=0.08)
    assert "oldest window" in verdicts[-1].details["baseline"]


def test_each_model_version_is_evaluated_and_falls_back_to_the_pinned_reference() -> None:
    rng = np.random.default_rng(7)
    pinned = Reference(
        MODEL_NAME,
        "1",
        "run-1",
        synthetic_records(rng, 600, REFERENCE, END, END),
        frozenset(VOCABULARY),
    )
    records = pd.concat(
        [
            synthetic_records(rng, 50, REFERENCE, END - WEEK, END, model_version=version)
            for version in ("1", "2")
        ]
    )

    def no_reference(pin: object) -> Reference:
        raise ReferenceUnavailableError("version 2 has no reference")

    drifts = evaluate_records(
        records, pinned, window_bounds(END, WEEK, 1), MonitoringSettings(), no_reference
    )
    assert [(d.model_version, d.reference_note) for d in drifts] == [
        ("1", "pinned version 1"),
        ("2", "pinned version 1 (version 2 has none)"),
    ]
    assert drifts[1].windows[0].metric("win_rate").n_current == 50
