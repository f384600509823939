"""The drift statistics agree with scipy computed independently here."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitoring.statistic import (
    POOLED_LABEL,
    benjamini_hochberg,
    chi_square,
    debiased_js_distance,
    kolmogorov_smirnov,
    normalised_wasserstein,
    pool_rare,
    two_proportions,
)


def test_chi_square_pools_rare_categories_and_matches_scipy() -> None:
    reference = {"cat": 300, "dog": 250, "owl": 3, "emu": 1}
    current = {"cat": 90, "dog": 130, "emu": 2, "yak": 1}
    result = chi_square(reference, current, min_expected=5.0)
    # Independently: owl, emu and yak each have a cell expected below 5, so they pool.
    table = np.array([[300, 250, 3 + 1 + 0], [90, 130, 0 + 2 + 1]])
    expected = stats.chi2_contingency(table, correction=False)
    assert result.labels == ("cat", "dog", POOLED_LABEL)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.dof == expected.dof == 2


def test_pooling_keeps_categories_with_enough_expected_counts() -> None:
    labels, table = pool_rare({"a": 50, "b": 50}, {"a": 40, "b": 60}, min_expected=5.0)
    assert labels == ["a", "b"]
    assert table.tolist() == [[50, 50], [40, 60]]


def test_chi_square_with_one_category_left_reports_no_evidence() -> None:
    assert chi_square({"cat": 100}, {"cat": 80}).p_value == 1.0
    assert chi_square({"cat": 100}, {}).p_value == 1.0


def test_js_distance_matches_scipy_on_the_pooled_table_and_removes_sampling_bias() -> None:
    reference, current = {"a": 100, "b": 300, "c": 600}, {"a": 90, "b": 150, "c": 160, "d": 2}
    raw, debiased = debiased_js_distance(reference, current, min_expected=5.0)
    # "d" is expected under 5 times in the reference row, so it pools alone.
    table = np.array([[100, 300, 600, 0], [90, 150, 160, 2]], dtype=float)
    expected_raw = jensenshannon(table[0] / 1000, table[1] / 402, base=2)
    chance_bits = 3 * (1 / 1000 + 1 / 402) / (8 * np.log(2))
    assert raw == pytest.approx(expected_raw)
    assert debiased == pytest.approx(np.sqrt(expected_raw**2 - chance_bits))


def test_debiased_js_distance_is_near_zero_for_two_samples_of_one_distribution() -> None:
    rng = np.random.default_rng(3)
    weights = 1 / np.arange(1, 41)
    labels = [f"n{i}" for i in range(40)]

    def sample(size: int) -> dict[str, int]:
        drawn = rng.choice(40, size=size, p=weights / weights.sum())
        return {
            labels[i]: int(c) for i, c in zip(*np.unique(drawn, return_counts=True), strict=True)
        }

    raws, debiased = zip(
        *(debiased_js_distance(sample(1000), sample(300)) for _ in range(50)), strict=True
    )
    assert np.mean(raws) > 0.08, "the raw distance of equal distributions is far from 0"
    assert np.mean(debiased) < 0.05
    assert debiased_js_distance({"a": 1}, {}) == (pytest.approx(float("nan"), nan_ok=True),) * 2


def test_wasserstein_is_normalised_by_the_reference_spread_and_ks_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    reference, current = rng.beta(6, 3, 500), rng.beta(4, 4, 300)
    expected = stats.wasserstein_distance(reference, current) / np.std(reference)
    assert normalised_wasserstein(list(reference), list(current)) == pytest.approx(expected)
    ks = stats.ks_2samp(reference, current)
    assert kolmogorov_smirnov(list(reference), list(current)) == pytest.approx(
        (ks.statistic, ks.pvalue)
    )


def test_benjamini_hochberg_matches_scipy() -> None:
    p_values = [0.001, 0.04, 0.03, 0.5, 0.2, 0.0004, 0.9, 0.04]
    expected = stats.false_discovery_control(p_values, method="bh")
    assert benjamini_hochberg(p_values) == pytest.approx(list(expected))
    assert benjamini_hochberg([]) == []


def test_two_proportions_difference_and_p_value_match_scipy() -> None:
    difference, p_value = two_proportions(140, 200, 100, 200)
    expected = stats.chi2_contingency([[140, 60], [100, 100]], correction=False)
    assert difference == pytest.approx(0.5 - 0.7)
    assert p_value == pytest.approx(expected.pvalue)
    assert two_proportions(0, 0, 5, 10)[1] == 1.0
