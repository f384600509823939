"""Two-sample statistics the drift job uses: plain functions over counts and samples."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

POOLED_LABEL = "(pooled rare)"
# A reference spread this small is treated as a point mass: any shift is then a large effect.
_MIN_SPREAD = 1e-9


@dataclass(frozen=True)
class ChiSquare:
    """A chi-square test of homogeneity on a 2 x k table (reference row, current row)."""

    statistic: float
    p_value: float
    dof: int
    labels: tuple[str, ...]


def pool_rare(
    reference: Mapping[str, int], current: Mapping[str, int], min_expected: float
) -> tuple[list[str], np.ndarray]:
    """Build the 2 x k table, pooling categories expected fewer than ``min_expected`` times.

    The expected count of a cell under "same distribution" is row total x column total /
    grand total; a category is pooled when either of its cells falls below the bound.
    """
    labels = sorted(set(reference) | set(current))
    table = np.array(
        [[reference.get(k, 0) for k in labels], [current.get(k, 0) for k in labels]], dtype=float
    )
    total = table.sum()
    if total == 0:
        return [], np.zeros((2, 0))
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    rare = expected.min(axis=0) < min_expected
    kept = [label for label, is_rare in zip(labels, rare, strict=True) if not is_rare]
    pooled = table[:, ~rare]
    if rare.any():
        kept.append(POOLED_LABEL)
        pooled = np.column_stack([pooled, table[:, rare].sum(axis=1)])
    return kept, pooled


def chi_square(
    reference: Mapping[str, int], current: Mapping[str, int], min_expected: float = 5.0
) -> ChiSquare:
    """Chi-square test (no continuity correction) with rare categories pooled.

    With fewer than two categories left, or an empty side, there is nothing to test: p = 1.
    """
    labels, table = pool_rare(reference, current, min_expected)
    occupied = table[:, table.sum(axis=0) > 0]
    if occupied.shape[1] < 2 or (occupied.sum(axis=1) == 0).any():
        return ChiSquare(0.0, 1.0, 0, tuple(labels))
    result = stats.chi2_contingency(occupied, correction=False)
    return ChiSquare(float(result.statistic), float(result.pvalue), int(result.dof), tuple(labels))


def debiased_js_distance(
    reference: Mapping[str, int], current: Mapping[str, int], min_expected: float = 5.0
) -> tuple[float, float]:
    """Jensen-Shannon distance (base 2) on the pooled table: (raw, with sampling bias removed).

    Two samples of one distribution still differ by chance: with k categories and n1, n2
    observations the divergence expected from sampling alone is about
    (k - 1)(1/n1 + 1/n2) / (8 ln 2) bits. The debiased distance subtracts it (floored at
    0) before the square root, so the effect size does not grow as samples shrink.
    """
    _, table = pool_rare(reference, current, min_expected)
    sizes = table.sum(axis=1)
    if table.shape[1] == 0 or (sizes == 0).any():
        return float("nan"), float("nan")
    raw = float(jensenshannon(table[0] / sizes[0], table[1] / sizes[1], base=2))
    categories = int((table.sum(axis=0) > 0).sum())
    expected_bits = (categories - 1) * (1 / sizes[0] + 1 / sizes[1]) / (8 * np.log(2))
    return raw, float(np.sqrt(max(0.0, raw**2 - expected_bits)))


def normalised_wasserstein(reference: Sequence[float], current: Sequence[float]) -> float:
    """Wasserstein-1 distance divided by the reference's standard deviation."""
    if len(reference) == 0 or len(current) == 0:
        return float("nan")
    distance = stats.wasserstein_distance(reference, current)
    spread = max(float(np.std(reference)), _MIN_SPREAD)
    return float(distance / spread)


def kolmogorov_smirnov(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """Two-sample KS statistic and p-value."""
    if len(reference) == 0 or len(current) == 0:
        return float("nan"), 1.0
    result = stats.ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def two_proportions(
    reference_hits: int, reference_n: int, current_hits: int, current_n: int
) -> tuple[float, float]:
    """Difference of two proportions (current minus reference) and its chi-square p-value."""
    if reference_n == 0 or current_n == 0:
        return float("nan"), 1.0
    difference = current_hits / current_n - reference_hits / reference_n
    table = np.array(
        [[reference_hits, reference_n - reference_hits], [current_hits, current_n - current_hits]]
    )
    if (table.sum(axis=0) == 0).any():
        return difference, 1.0
    return difference, float(stats.chi2_contingency(table, correction=False).pvalue)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order."""
    count = len(p_values)
    if count == 0:
        return []
    order = np.argsort(p_values)
    ranked = np.asarray(p_values, dtype=float)[order] * count / np.arange(1, count + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    result = np.empty(count)
    result[order] = adjusted
    return [float(q) for q in result]


def count_values(values: Sequence[object]) -> dict[str, int]:
    """Counts of each distinct value, as strings."""
    return {str(key): int(count) for key, count in Counter(values).items()}
