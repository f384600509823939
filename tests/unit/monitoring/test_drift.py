"""Drift metrics on seeded synthetic windows: few false alarms, planted shifts found."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitoring import drift
from monitoring.evaluation import VersionDrift, WindowResult, find_alerts
from monitoring.settings import MonitoringSettings
from tests.unit.monitoring.synthetic import (
    REFERENCE,
    SHIFTS,
    VOCABULARY,
    Scenario,
    synthetic_records,
)

WINDOW_GAMES = 400
REFERENCE_GAMES = 1000
NULL_WINDOWS = 100
SHIFTED_WINDOWS = 20
START = datetime(2026, 1, 1, tzinfo=UTC)
WEEK = timedelta(days=7)


METRICS: dict[
    str, Callable[[pd.DataFrame, pd.DataFrame, MonitoringSettings], drift.MetricResult]
] = {
    "noun_distribution": drift.noun_distribution,
    "top_confidence": drift.top_confidence,
    "questions_to_guess": drift.questions_to_guess,
    "question_limit_share": drift.question_limit_share,
    "answer_distribution": drift.answer_distribution,
    "oov_rate": lambda ref, cur, s: drift.out_of_vocabulary_rate(ref, cur, set(VOCABULARY), s),
    "win_rate": drift.win_rate,
    "reveal_rate": drift.reveal_rate,
}


@pytest.fixture(scope="module")
def settings() -> MonitoringSettings:
    return MonitoringSettings()


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return synthetic_records(
        np.random.default_rng(2026), REFERENCE_GAMES, REFERENCE, START - WEEK, START
    )


def _windows(seed: int, scenario: Scenario, count: int) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    return [
        synthetic_records(rng, WINDOW_GAMES, scenario, START + WEEK * k, START + WEEK * (k + 1))
        for k in range(count)
    ]


@pytest.fixture(scope="module")
def null_results(
    reference: pd.DataFrame, settings: MonitoringSettings
) -> list[list[drift.MetricResult]]:
    return [
        drift.evaluate_window(reference, window, set(VOCABULARY), settings)
        for window in _windows(11, REFERENCE, NULL_WINDOWS)
    ]


def test_no_drift_breaches_at_most_five_percent_of_windows_per_metric(
    null_results: list[list[drift.MetricResult]],
) -> None:
    names = [metric.name for metric in null_results[0]]
    assert sorted(names) == sorted(METRICS)
    for index, name in enumerate(names):
        breaches = sum(window[index].breach for window in null_results)
        assert breaches / NULL_WINDOWS <= 0.05, f"{name} breached {breaches} of {NULL_WINDOWS}"


def test_no_drift_alerts_in_at_most_five_percent_of_windows(
    null_results: list[list[drift.MetricResult]], settings: MonitoringSettings
) -> None:
    windows = [WindowResult(START, START + WEEK, metrics) for metrics in null_results]
    alerting = 0
    for end in range(settings.alert_after_windows, NULL_WINDOWS + 1):
        history = VersionDrift("m", "1", "run", "pinned", windows[:end])
        alerting += bool(find_alerts(history, settings.alert_after_windows))
    assert alerting / NULL_WINDOWS <= 0.05


@pytest.mark.parametrize("metric_name", sorted(SHIFTS))
def test_a_planted_shift_is_detected_in_at_least_95_percent_of_windows(
    metric_name: str, reference: pd.DataFrame, settings: MonitoringSettings
) -> None:
    seed = sorted(SHIFTS).index(metric_name) + 100
    metric = METRICS[metric_name]
    detected = sum(
        metric(reference, window, settings).breach
        for window in _windows(seed, SHIFTS[metric_name], SHIFTED_WINDOWS)
    )
    assert detected / SHIFTED_WINDOWS >= 0.95, f"{metric_name}: {detected}/{SHIFTED_WINDOWS}"


def test_noun_metric_agrees_with_scipy_on_the_same_data(
    reference: pd.DataFrame, settings: MonitoringSettings
) -> None:
    current = _windows(5, SHIFTS["noun_distribution"], 1)[0]
    result = drift.noun_distribution(reference, current, settings)
    ref_nouns = reference.loc[reference["action"] == "guess", "top_noun"].value_counts()
    cur_nouns = current.loc[current["action"] == "guess", "top_noun"].value_counts()
    table = pd.concat([ref_nouns, cur_nouns], axis=1).fillna(0).T.to_numpy()
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    rare = expected.min(axis=0) < settings.min_expected_count
    pooled = np.column_stack([table[:, ~rare], table[:, rare].sum(axis=1)])
    assert result.p_value == pytest.approx(stats.chi2_contingency(pooled, correction=False).pvalue)
    raw_js = jensenshannon(pooled[0] / pooled[0].sum(), pooled[1] / pooled[1].sum(), base=2)
    chance_bits = (
        (pooled.shape[1] - 1) * (1 / pooled[0].sum() + 1 / pooled[1].sum()) / (8 * np.log(2))
    )
    assert result.details["js_distance"] == pytest.approx(raw_js)
    assert result.value == pytest.approx(np.sqrt(raw_js**2 - chance_bits))
    assert set(result.details["new_nouns"]) == set(cur_nouns.index) - set(ref_nouns.index)
    assert result.breach


def test_confidence_metric_agrees_with_scipy(
    reference: pd.DataFrame, settings: MonitoringSettings
) -> None:
    current = _windows(6, SHIFTS["top_confidence"], 1)[0]
    result = drift.top_confidence(reference, current, settings)
    ref = reference.loc[reference["action"] == "guess", "top_probability"].to_numpy(float)
    cur = current.loc[current["action"] == "guess", "top_probability"].to_numpy(float)
    assert result.value == pytest.approx(stats.wasserstein_distance(ref, cur) / np.std(ref))
    assert result.p_value == pytest.approx(stats.ks_2samp(ref, cur).pvalue)
    assert result.details["ks_statistic"] == pytest.approx(stats.ks_2samp(ref, cur).statistic)


def test_answer_metric_adjusts_per_question_p_values_with_benjamini_hochberg(
    reference: pd.DataFrame, settings: MonitoringSettings
) -> None:
    current = _windows(7, SHIFTS["answer_distribution"], 1)[0]
    result = drift.answer_distribution(reference, current, settings)
    rows = result.details["questions"]
    p_values = [row["p_value"] for row in rows]
    assert [row["q_value"] for row in rows] == pytest.approx(
        list(stats.false_discovery_control(p_values, method="bh"))
    )
    # The synthetic scenario shifts the answers to q00, q01 and q02 only.
    assert sorted(result.details["drifting"]) == ["q00", "q01", "q02"]


def test_free_text_drift_names_the_new_tokens_with_example_games(
    reference: pd.DataFrame, settings: MonitoringSettings
) -> None:
    current = _windows(8, SHIFTS["oov_rate"], 1)[0]
    result = drift.out_of_vocabulary_rate(reference, current, set(VOCABULARY), settings)
    tokens = {row["token"]: row for row in result.details["new_tokens"]}
    assert {"bruh", "lowkey", "cap", "yeet", "bussin"} <= set(tokens)
    example = tokens["bruh"]["examples"][0]
    assert "bruh" in example["text"]
    assert example["game_id"] in set(current["game_id"])
    assert result.breach


def test_no_breach_below_the_minimum_sample_however_large_the_shift(
    reference: pd.DataFrame, settings: MonitoringSettings
) -> None:
    few = synthetic_records(
        np.random.default_rng(3), 60, SHIFTS["top_confidence"], START, START + WEEK
    )
    result = drift.top_confidence(reference, few, settings)
    assert result.p_value < settings.significance_level
    assert result.value >= result.threshold
    assert not result.breach


def test_no_breach_when_significant_but_the_effect_is_too_small(
    settings: MonitoringSettings,
) -> None:
    rng = np.random.default_rng(4)

    def guesses(confidence: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"kind": "guess", "action": "guess", "top_probability": confidence})

    big_reference = guesses(rng.beta(6.0, 3.0, 20000))
    big_current = guesses(rng.beta(6.0, 3.15, 20000))
    result = drift.top_confidence(big_reference, big_current, settings)
    assert result.p_value < settings.significance_level
    assert result.value < result.threshold
    assert not result.breach


def test_an_alert_needs_the_configured_number_of_consecutive_breaches(
    settings: MonitoringSettings,
) -> None:
    def window(breach: bool) -> WindowResult:
        metric = drift.MetricResult("win_rate", 0.2, 0.05, 0.001, 500, 500, breach=breach)
        return WindowResult(START, START + WEEK, [metric])

    assert not find_alerts(VersionDrift("m", "1", "r", "", [window(True), window(False)]), 2)
    assert not find_alerts(VersionDrift("m", "1", "r", "", [window(True)]), 2)
    alerts = find_alerts(
        VersionDrift("m", "1", "r", "", [window(False), window(True), window(True)]), 2
    )
    assert [(a.metric, a.model_version, a.consecutive) for a in alerts] == [("win_rate", "1", 2)]


@pytest.mark.parametrize(
    ("value", "n_current", "verdict"),
    [
        (0.95, 500, "BREACH"),
        (0.01, 500, "ok"),
        # A large, significant shift on 20 games cannot breach: the window says so.
        (0.95, 20, "too little data"),
        (float("nan"), 500, "too little data"),
    ],
)
def test_a_window_too_small_to_judge_says_so_instead_of_ok(
    value: float, n_current: int, verdict: str
) -> None:
    metric = drift.MetricResult("questions_to_guess", value, 0.1, 1e-8, 1000, n_current)
    assert metric.judge(MonitoringSettings(min_samples=200)).verdict == verdict
