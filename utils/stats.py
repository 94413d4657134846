"""The course's one statistics helper: Student-t intervals over seeds.

A few seeds give a noisy estimate of a model's accuracy, and with n seeds the mean's
uncertainty follows Student's t with n - 1 degrees of freedom: with 3 seeds the 95 % interval
is mean ± 4.30 standard errors, not ± 2. Comparisons with a baseline are *paired*: run i of
both models uses seed i (the same initialisation stream and batch order), so the course takes
the per-seed differences d_i = a_i - b_i and reports their mean with its t-interval. The verdict
word follows from the interval: 'better' when it lies above zero, 'worse' when below, and
'no clear difference' when it contains zero; with fewer than ``MIN_SEEDS`` values the course
draws no verdict at all (the interval is still reported).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy_stats

from .validate import as_float_array

MIN_SEEDS = 5               # the course's rule: no 'better' or 'worse' from fewer seeds


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` values with its two-sided t-interval [low, high] at ``confidence``."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    @property
    def verdict(self) -> str:
        """'better' (interval above 0), 'worse' (below 0) or 'no clear difference'; 'no
        verdict (n < 5 seeds)' when fewer than MIN_SEEDS values were compared."""
        if self.n < MIN_SEEDS:
            return f"no verdict (n < {MIN_SEEDS} seeds)"
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "no clear difference"

    def text(self, scale: float = 1.0, digits: int = 1) -> str:
        """'+3.2 [+1.1, +5.3]' with every number multiplied by ``scale`` (100 for points).
        A bound that is not zero but would print as 0 gets more digits, so that the printed
        interval always shows which side of zero it lies on."""
        m, lo, hi = (v * scale for v in (self.mean, self.low, self.high))
        while digits < 6 and any(v != 0 and round(v, digits) == 0 for v in (lo, hi)):
            digits += 1
        return f"{m:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def _confidence(confidence: object) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not (
            0 < confidence < 1):
        raise ValueError(f"confidence must be a number strictly between 0 and 1, "
                         f"got {confidence!r}")
    return float(confidence)


def t_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Interval:
    """Mean of ``values`` (n >= 2) with its t-interval: mean ± t_{n-1} * s / sqrt(n)."""
    x = as_float_array(values, "values", ndim=1)
    confidence = _confidence(confidence)
    if x.size < 2:
        raise ValueError(f"values must hold at least two numbers (one per seed) for an "
                         f"interval, got {x.size}")
    mean = float(x.mean())
    half = float(_scipy_stats.t.ppf(0.5 + confidence / 2, df=x.size - 1)
                 * x.std(ddof=1) / np.sqrt(x.size))
    return Interval(mean, mean - half, mean + half, int(x.size), confidence)


def paired_difference(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                      confidence: float = 0.95) -> Interval:
    """The mean of the paired differences a_i - b_i (seed i of each) with its t-interval."""
    a = as_float_array(a, "a", ndim=1)
    b = as_float_array(b, "b", ndim=1)
    if a.shape != b.shape:
        raise ValueError(f"a and b must pair up (one value per seed each), got {a.size} and "
                         f"{b.size} values")
    return t_interval(a - b, confidence)
