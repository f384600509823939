"""The answer model: how likely each of the five answers is, given a noun's ``p_yes``.

A knowledge-base cell ``p_yes`` is the share of people who would answer
"yes" to a question about a noun. Players answer with one of five classes;
the *answer profile* below says how a truthful player spreads over them, and
a *flip* (yes<->no, probably<->probably_not) models a player who is wrong.
The engine's likelihood and the simulated players both start from the same
profile, so a simulated player is exactly the player the engine assumes; the
engine's ``noise`` is its assumed flip rate.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

ANSWER_CLASSES: tuple[str, ...] = ("yes", "probably", "unknown", "probably_not", "no")
"""The answer classes, in the order every array's last axis uses."""

CLASS_INDEX: dict[str, int] = {name: index for index, name in enumerate(ANSWER_CLASSES)}

FLIPPED_CLASS: tuple[int, ...] = (4, 3, 2, 1, 0)
"""Index of the class a flipped answer lands on: yes<->no, probably<->probably_not."""

PROFILE_KNOTS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
# Rows follow PROFILE_KNOTS, columns ANSWER_CLASSES; each row sums to 1. Between
# knots the profile is interpolated linearly, so every p_yes gives a distribution.
PROFILE_TABLE = np.array(
    [
        [0.00, 0.00, 0.00, 0.05, 0.95],
        [0.00, 0.05, 0.15, 0.55, 0.25],
        [0.05, 0.15, 0.60, 0.15, 0.05],
        [0.25, 0.55, 0.15, 0.05, 0.00],
        [0.95, 0.05, 0.00, 0.00, 0.00],
    ]
)


def answer_profile(p_yes: NDArray[np.floating]) -> NDArray[np.float64]:
    """Return P(answer class | p_yes) for a truthful player, shape ``p_yes.shape + (5,)``."""
    clipped = np.clip(np.asarray(p_yes, dtype=np.float64), 0.0, 1.0)
    columns = [np.interp(clipped, PROFILE_KNOTS, PROFILE_TABLE[:, k]) for k in range(5)]
    return np.stack(columns, axis=-1)


def flip_answers(probabilities: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return the distribution of a flipped answer (last axis reversed by :data:`FLIPPED_CLASS`)."""
    return probabilities[..., list(FLIPPED_CLASS)]


def answer_likelihood(
    p_yes: NDArray[np.floating], noise: float, floor: float
) -> NDArray[np.float64]:
    """Return the engine's P(answer class | p_yes), shape ``p_yes.shape + (5,)``.

    A player flips with probability ``noise``; ``floor`` mixes in a uniform
    answer so no answer is ever impossible (one surprising answer must not
    rule out the right noun for good).
    """
    profile = answer_profile(p_yes)
    noisy = (1.0 - noise) * profile + noise * flip_answers(profile)
    return (1.0 - floor) * noisy + floor / len(ANSWER_CLASSES)
