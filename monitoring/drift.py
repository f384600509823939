"""Drift metrics: one window of production records against the reference table.

Each metric reports a significance figure (p-value), an effect size (its
``value``) and the sample sizes; it breaches only when all three agree: the
p-value is below the significance level, the effect reaches its threshold,
and both sides hold at least the minimum sample.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from monitoring.settings import MonitoringSettings
from monitoring.statistic import (
    benjamini_hochberg,
    chi_square,
    count_values,
    debiased_js_distance,
    kolmogorov_smirnov,
    normalised_wasserstein,
    two_proportions,
)
from producer.messages import MAX_QUESTIONS

TOKEN_PATTERN = re.compile(r"[a-z']+")
TOP_NEW_TOKENS = 15
EXAMPLES_PER_TOKEN = 3


@dataclass
class MetricResult:
    """One metric in one window: effect size, significance, sample sizes, verdict, details."""

    name: str
    value: float
    threshold: float
    p_value: float
    n_reference: int
    n_current: int
    breach: bool = False
    enough_data: bool = True
    reference_value: float = float("nan")
    current_value: float = float("nan")
    details: dict[str, Any] = field(default_factory=dict)

    def judge(self, settings: MonitoringSettings, min_samples: int | None = None) -> MetricResult:
        """Set :attr:`breach`: significant, large enough and on enough data."""
        floor = settings.min_samples if min_samples is None else min_samples
        self.enough_data = bool(
            not math.isnan(self.value) and min(self.n_reference, self.n_current) >= floor
        )
        self.breach = bool(
            self.enough_data
            and self.p_value < settings.significance_level
            and abs(self.value) >= self.threshold
        )
        return self

    @property
    def verdict(self) -> str:
        """``BREACH``, ``ok``, or ``too little data`` when the window could not tell."""
        if self.breach:
            return "BREACH"
        return "ok" if self.enough_data else "too little data"


def _guess_values(frame: pd.DataFrame, column: str) -> pd.Series:
    """One column of the rows where the model made a guess (selected alone: frames are wide)."""
    chosen = (frame["kind"] == "guess") & (frame["action"] == "guess")
    return frame.loc[chosen, column].dropna()


def _rows(frame: pd.DataFrame, kind: str, columns: list[str]) -> pd.DataFrame:
    return frame.loc[frame["kind"] == kind, columns]


def noun_distribution(
    reference: pd.DataFrame, current: pd.DataFrame, settings: MonitoringSettings
) -> MetricResult:
    """Guessed nouns: chi-square with rare nouns pooled; debiased Jensen-Shannon distance as the
    effect (the raw distance is in ``details["js_distance"]``)."""
    ref_counts = count_values(_guess_values(reference, "top_noun").tolist())
    cur_counts = count_values(_guess_values(current, "top_noun").tolist())
    test = chi_square(ref_counts, cur_counts, settings.min_expected_count)
    new_nouns = sorted((n for n in cur_counts if n not in ref_counts), key=lambda n: -cur_counts[n])
    raw_js, debiased_js = debiased_js_distance(ref_counts, cur_counts, settings.min_expected_count)
    return MetricResult(
        name="noun_distribution",
        value=debiased_js,
        threshold=settings.noun_js_threshold,
        p_value=test.p_value,
        n_reference=sum(ref_counts.values()),
        n_current=sum(cur_counts.values()),
        reference_value=0.0,
        current_value=float(len(new_nouns)),
        details={
            "js_distance": raw_js,
            "chi_square": test.statistic,
            "dof": test.dof,
            "new_nouns": {noun: cur_counts[noun] for noun in new_nouns},
            "reference_counts": ref_counts,
            "current_counts": cur_counts,
        },
    ).judge(settings)


def _distribution_shift(
    name: str,
    reference: list[float],
    current: list[float],
    threshold: float,
    settings: MonitoringSettings,
) -> MetricResult:
    ks_statistic, ks_p = kolmogorov_smirnov(reference, current)
    return MetricResult(
        name=name,
        value=normalised_wasserstein(reference, current),
        threshold=threshold,
        p_value=ks_p,
        n_reference=len(reference),
        n_current=len(current),
        reference_value=float(pd.Series(reference, dtype=float).mean()),
        current_value=float(pd.Series(current, dtype=float).mean()),
        details={"ks_statistic": ks_statistic},
    ).judge(settings)


def top_confidence(
    reference: pd.DataFrame, current: pd.DataFrame, settings: MonitoringSettings
) -> MetricResult:
    """Probability of the top guess when guessing: normalised Wasserstein; KS p-value."""
    return _distribution_shift(
        "top_confidence",
        _guess_values(reference, "top_probability").astype(float).tolist(),
        _guess_values(current, "top_probability").astype(float).tolist(),
        settings.confidence_wasserstein_threshold,
        settings,
    )


def questions_to_guess(
    reference: pd.DataFrame, current: pd.DataFrame, settings: MonitoringSettings
) -> MetricResult:
    """Questions answered before each guess: normalised Wasserstein; KS p-value."""
    return _distribution_shift(
        "questions_to_guess",
        _guess_values(reference, "questions_asked").astype(float).tolist(),
        _guess_values(current, "questions_asked").astype(float).tolist(),
        settings.questions_wasserstein_threshold,
        settings,
    )


def _limit_hits(frame: pd.DataFrame) -> tuple[int, int]:
    guesses = _rows(frame, "guess", ["game_id", "questions_asked"])
    games = guesses["game_id"].nunique()
    at_limit_rows = (guesses["questions_asked"] >= MAX_QUESTIONS).fillna(False).astype(bool)
    at_limit = guesses.loc[at_limit_rows, "game_id"].nunique()
    return int(at_limit), int(games)


def _proportion_metric(
    name: str,
    reference: tuple[int, int],
    current: tuple[int, int],
    threshold: float,
    settings: MonitoringSettings,
) -> MetricResult:
    difference, p_value = two_proportions(*reference, *current)
    return MetricResult(
        name=name,
        value=difference,
        threshold=threshold,
        p_value=p_value,
        n_reference=reference[1],
        n_current=current[1],
        reference_value=reference[0] / reference[1] if reference[1] else float("nan"),
        current_value=current[0] / current[1] if current[1] else float("nan"),
    ).judge(settings)


def question_limit_share(
    reference: pd.DataFrame, current: pd.DataFrame, settings: MonitoringSettings
) -> MetricResult:
    """Share of games that reached the question limit; effect is the change in share."""
    return _proportion_metric(
        "question_limit_share",
        _limit_hits(reference),
        _limit_hits(current),
        settings.question_limit_share_threshold,
        settings,
    )


def _answers_by_question(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    columns = ["answered_question_id", "answered_answer"]
    rows = _rows(frame, "guess", columns).dropna()
    questions, answers = rows["answered_question_id"].tolist(), rows["answered_answer"].tolist()
    pairs = Counter(zip(questions, answers, strict=True))
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for (question, answer), count in pairs.items():
        counts[str(question)][str(answer)] = count
    return counts


def answer_distribution(
    reference: pd.DataFrame, current: pd.DataFrame, settings: MonitoringSettings
) -> MetricResult:
    """Answers per question: chi-square where both sides have enough, Benjamini-Hochberg across.

    The value is the largest debiased Jensen-Shannon distance among questions whose q-value is below
    the significance level (0 when none is); ``details["questions"]`` lists every tested one.
    """
    ref_answers, cur_answers = _answers_by_question(reference), _answers_by_question(current)
    floor = settings.min_answers_per_question
    tested = [
        q
        for q in sorted(set(ref_answers) & set(cur_answers))
        if min(sum(ref_answers[q].values()), sum(cur_answers[q].values())) >= floor
    ]
    p_values = [
        chi_square(ref_answers[q], cur_answers[q], settings.min_expected_count).p_value
        for q in tested
    ]
    q_values = benjamini_hochberg(p_values)
    questions: list[dict[str, Any]] = [
        {
            "question_id": q,
            "p_value": p,
            "q_value": q_value,
            "js_distance": debiased_js_distance(
                ref_answers[q], cur_answers[q], settings.min_expected_count
            )[1],
            "reference_counts": ref_answers[q],
            "current_counts": cur_answers[q],
        }
        for q, p, q_value in zip(tested, p_values, q_values, strict=True)
    ]
    significant = [row for row in questions if row["q_value"] < settings.significance_level]
    drifting = [row for row in significant if row["js_distance"] >= settings.answer_js_threshold]
    return MetricResult(
        name="answer_distribution",
        value=max((row["js_distance"] for row in significant), default=0.0),
        threshold=settings.answer_js_threshold,
        p_value=min(q_values, default=1.0),
        n_reference=len(tested),
        n_current=len(tested),
        reference_value=0.0,
        current_value=float(len(drifting)),
        details={
            "questions": sorted(questions, key=lambda row: row["q_value"]),
            "drifting": [r["question_id"] for r in drifting],
        },
    ).judge(settings, min_samples=1)


def _tokens(text: str) -> list[str]:
    return TOKEN_PATTERN.findall(text.lower())


def _free_text_counts(
    frame: pd.DataFrame, vocabulary: set[str]
) -> tuple[int, int, Counter[str], dict[str, list[dict[str, str]]]]:
    rows = _rows(frame, "guess", ["game_id", "answered_text"]).dropna(subset=["answered_text"])
    total, unknown = 0, 0
    new_tokens: Counter[str] = Counter()
    examples: dict[str, list[dict[str, str]]] = defaultdict(list)
    for game_id, text in zip(rows["game_id"].tolist(), rows["answered_text"].tolist(), strict=True):
        for token in _tokens(str(text)):
            total += 1
            if token in vocabulary:
                continue
            unknown += 1
            new_tokens[token] += 1
            if len(examples[token]) < EXAMPLES_PER_TOKEN:
                examples[token].append({"game_id": str(game_id), "text": str(text)})
    return unknown, total, new_tokens, examples


def out_of_vocabulary_rate(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    vocabulary: set[str],
    settings: MonitoringSettings,
) -> MetricResult:
    """Rate of free-text tokens outside the interpreter's vocabulary; a rise is the effect."""
    ref_unknown, ref_total, _, _ = _free_text_counts(reference, vocabulary)
    cur_unknown, cur_total, new_tokens, examples = _free_text_counts(current, vocabulary)
    result = _proportion_metric(
        "oov_rate",
        (ref_unknown, ref_total),
        (cur_unknown, cur_total),
        settings.oov_rate_threshold,
        settings,
    )
    # Only a rise is drift here: players suddenly writing fewer unknown words is no harm.
    result.breach = result.breach and result.value > 0
    result.details = {
        "new_tokens": [
            {"token": token, "count": count, "examples": examples[token]}
            for token, count in new_tokens.most_common(TOP_NEW_TOKENS)
        ]
    }
    return result


def outcome_counts(frame: pd.DataFrame, column: str) -> tuple[int, int]:
    """(games where ``column`` is true / present, games reported) over the outcome rows."""
    outcomes = _rows(frame, "outcome", ["won", "revealed_noun"])
    if column == "won":
        return int(outcomes["won"].fillna(False).astype(bool).sum()), len(outcomes)
    return int(outcomes[column].notna().sum()), len(outcomes)


def win_rate(
    reference: pd.DataFrame, current: pd.DataFrame, settings: MonitoringSettings
) -> MetricResult:
    """Share of reported games the model won."""
    return _proportion_metric(
        "win_rate",
        outcome_counts(reference, "won"),
        outcome_counts(current, "won"),
        settings.win_rate_threshold,
        settings,
    )


def reveal_rate(
    reference: pd.DataFrame, current: pd.DataFrame, settings: MonitoringSettings
) -> MetricResult:
    """Share of reported games where the player revealed the noun."""
    return _proportion_metric(
        "reveal_rate",
        outcome_counts(reference, "revealed_noun"),
        outcome_counts(current, "revealed_noun"),
        settings.reveal_rate_threshold,
        settings,
    )


def evaluate_window(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    vocabulary: set[str],
    settings: MonitoringSettings,
) -> list[MetricResult]:
    """Every drift metric for one window of one model version."""
    return [
        noun_distribution(reference, current, settings),
        top_confidence(reference, current, settings),
        questions_to_guess(reference, current, settings),
        question_limit_share(reference, current, settings),
        answer_distribution(reference, current, settings),
        out_of_vocabulary_rate(reference, current, vocabulary, settings),
        win_rate(reference, current, settings),
        reveal_rate(reference, current, settings),
    ]
