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


def bootstrap_interval(per_item: Sequence[Sequence[float]] | np.ndarray,
                       baseline: Sequence[Sequence[float]] | np.ndarray | None = None, *,
                       confidence: float = 0.95, resamples: int = 10_000,
                       seed: int = 0) -> Interval:
    """The mean score with an interval that holds both noises: seeds *and* test items.

    ``per_item`` (n_seeds, n_items) holds one score per seed and test item: 1/0 for a test
    clip classified right or wrong, or a query's average precision. A t-interval over the seeds'
    means treats the test set as fixed, so on a small test set it is too narrow: two models that
    are equally good in truth can differ on 100 test clips by chance, and an order-invariant
    network can sit "above chance" on the clips it happened to get. This interval resamples
    both axes (a two-way bootstrap: seeds with replacement, and test items with replacement,
    the same items for every seed), and takes the percentile interval of the resampled means.

    With ``baseline`` (same shape, seed i and item j of the other model) it bootstraps the
    paired difference per_item - baseline: one resample draws the same seeds and items for both
    models. With a handful of seeds a percentile bootstrap is narrower than Student's t (it
    knows nothing of how few the seeds are), so the interval returned is never narrower than
    the t-interval over the seeds' means: it spans both. The result is an :class:`Interval`
    whose ``n`` is the number of seeds, so that its verdict follows the course's rule; its
    bounds never leave the range of the scores (no accuracy interval past 100 %). Resampling
    both axes is conservative when seeds and items interact; ``seed`` fixes the resampling.
    """
    values = as_float_array(per_item, "per_item", ndim=2)
    if baseline is not None:
        other = as_float_array(baseline, "baseline", ndim=2)
        if other.shape != values.shape:
            raise ValueError(f"baseline must have per_item's shape {values.shape} (seed i and "
                             f"item j of both models), got {other.shape}")
        values = values - other
    confidence = _confidence(confidence)
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise ValueError(f"resamples must be an integer of at least 100, got {resamples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    seeds, items = values.shape
    if seeds < 1 or items < 2:
        raise ValueError(f"per_item must be (n_seeds, n_items) with at least one seed and two "
                         f"items, got shape {values.shape}")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 4_000_000 // (seeds + items))        # resamples per block: bounded memory
    for start in range(0, resamples, chunk):
        b = min(chunk, resamples - start)
        rows = rng.multinomial(seeds, np.full(seeds, 1 / seeds), size=b)      # (b, seeds)
        cols = rng.multinomial(items, np.full(items, 1 / items), size=b)      # (b, items)
        means[start:start + b] = np.einsum("bn,bn->b", rows @ values, cols) / (seeds * items)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    if seeds >= 2:        # never narrower than Student's t over the seeds' means
        over_seeds = t_interval(values.mean(1), confidence)
        low = max(min(low, over_seeds.low), values.min())
        high = min(max(high, over_seeds.high), values.max())
    return Interval(float(values.mean()), float(low), float(high), seeds, confidence)
