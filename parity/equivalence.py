"""Are two frameworks' test accuracies the same? A paired equivalence test over seeds.

Each seed trains both frameworks from the same initial weights on the same
batches, so the per-seed differences are paired. Equivalence within a margin
``m`` is two one-sided t-tests (TOST): the difference is shown above ``-m`` and
below ``+m`` at level alpha each, which is the same as the ``1 - 2 alpha``
confidence interval of the mean difference lying inside ``(-m, +m)``. A pass
needs enough seeds for the interval to be that narrow; :func:`seeds_needed`
says how many, from a pilot estimate of the differences' spread.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class Equivalence:
    """The outcome: mean and standard deviation of the differences (percentage points), the confidence
    interval of the mean, the margin, and whether the interval lies inside it."""

    n: int
    mean_pp: float
    sd_pp: float
    interval_pp: tuple[float, float]  # the 1 - 2 alpha (90%) confidence interval of the mean difference
    margin_pp: float
    alpha: float
    equivalent: bool

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def tost(differences_pp, margin_pp: float, alpha: float = 0.05) -> Equivalence:
    """TOST on paired differences (JAX minus PyTorch, in percentage points) with margin ``margin_pp``."""
    d = np.asarray(differences_pp, dtype=np.float64)
    n = len(d)
    if n < 2:
        raise ValueError("an equivalence test needs at least two seeds")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    half = float(stats.t.ppf(1 - alpha, n - 1)) * sd / math.sqrt(n)
    interval = (mean - half, mean + half)
    return Equivalence(n, mean, sd, interval, margin_pp, alpha, -margin_pp < interval[0] and interval[1] < margin_pp)


def seeds_needed(sd_pp: float, margin_pp: float, *, alpha: float = 0.05, power: float = 0.8,
                 true_difference_pp: float = 0.0, most: int = 100) -> int:
    """The fewest seeds with which TOST shows equivalence with probability ``power`` when the true mean
    difference is ``true_difference_pp`` and the differences spread by ``sd_pp`` (the usual t approximation)."""
    room = margin_pp - abs(true_difference_pp)
    if room <= 0:
        raise ValueError("the true difference is outside the margin: no number of seeds shows equivalence")
    for n in range(2, most + 1):
        t = stats.t.ppf(1 - alpha, n - 1) + stats.t.ppf(power, n - 1)
        if t * sd_pp / math.sqrt(n) <= room:
            return n
    return most
