"""The statistics helper: Student-t intervals over seeds and paired differences."""

import numpy as np
import pytest
from scipy import stats

from utils.stats import Interval, bootstrap_interval, paired_difference, t_interval


def test_t_interval_matches_the_textbook_formula():
    values = [0.80, 0.82, 0.81]
    ci = t_interval(values)
    half = stats.t.ppf(0.975, df=2) * np.std(values, ddof=1) / np.sqrt(3)
    assert ci.mean == pytest.approx(0.81)
    assert ci.half_width == pytest.approx(half)
    assert half == pytest.approx(4.303 * 0.01 / np.sqrt(3), rel=1e-3)   # t(0.975, 2) = 4.303
    assert (ci.low, ci.high, ci.n) == (pytest.approx(0.81 - half), pytest.approx(0.81 + half), 3)
    wider = t_interval(values, confidence=0.99)
    assert wider.half_width > ci.half_width


def test_paired_difference_removes_what_the_seeds_share():
    base = np.array([0.70, 0.80, 0.90, 0.75, 0.85])          # seeds differ a lot ...
    model = base + np.array([0.02, 0.03, 0.02, 0.025, 0.03])  # ... the gain does not
    paired = paired_difference(model, base)
    assert paired.verdict == "better" and paired.low > 0
    unpaired_half = stats.t.ppf(0.975, 8) * np.sqrt(model.var(ddof=1) / 5 + base.var(ddof=1) / 5)
    assert unpaired_half > paired.mean          # unpaired, the same data would say nothing
    assert paired_difference(base, model).verdict == "worse"
    assert paired_difference(base + [0.01, -0.01, 0.0, 0.02, -0.02], base).verdict == \
        "no clear difference"
    few = paired_difference(model[:3], base[:3])
    assert few.low > 0 and few.verdict == "no verdict (n < 5 seeds)"   # the course's rule
    assert paired.text(100) == (f"{paired.mean * 100:+.1f} [{paired.low * 100:+.1f}, "
                                f"{paired.high * 100:+.1f}]")
    near = Interval(mean=0.012, low=0.0002, high=0.024, n=5, confidence=0.95)
    assert near.verdict == "better" and near.text(100) == "+1.20 [+0.02, +2.40]"
    assert Interval(0.01, 0.0, 0.02, 5, 0.95).text(100) == "+1.0 [+0.0, +2.0]"


@pytest.mark.parametrize("call, message", [
    (lambda: t_interval([0.5]), "at least two numbers"),
    (lambda: t_interval([[0.5, 0.6]]), "values must have 1 dimensions"),
    (lambda: t_interval([0.5, 0.6], confidence=1.5), "confidence must be a number strictly"),
    (lambda: paired_difference([0.5, 0.6], [0.5, 0.6, 0.7]), "a and b must pair up"),
    (lambda: t_interval([0.5, float("nan")]), "values must be finite"),
    (lambda: bootstrap_interval([0.5, 0.6]), "per_item must have 2 dimensions"),
    (lambda: bootstrap_interval([[0.5]]), "at least one seed and two items"),
    (lambda: bootstrap_interval(np.ones((2, 3)), np.ones((3, 2))), "baseline must have"),
    (lambda: bootstrap_interval(np.ones((2, 3)), resamples=10), "resamples must be an integer"),
    (lambda: bootstrap_interval(np.ones((2, 3)), seed=0.5), "seed must be an integer"),
])
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bootstrap_holds_the_test_set_noise_that_seeds_alone_miss():
    rng = np.random.default_rng(0)
    # a network that is right on a clip or not by the clip, not by the seed: at chance in
    # truth, 100 test clips, five seeds that agree on 90 % of the clips
    shared = rng.random(100) < 0.5
    per_clip = np.array([np.where(rng.random(100) < 0.9, shared, rng.random(100) < 0.5)
                         for _ in range(5)], dtype=float)
    seeds_only = t_interval(per_clip.mean(1))
    both = bootstrap_interval(per_clip)
    assert both.mean == pytest.approx(per_clip.mean()) and both.n == 5
    assert both.high - both.low > 3 * (seeds_only.high - seeds_only.low)
    assert both.low < 0.5 < both.high
    # about the binomial standard error of 100 clips: 2 * 1.96 * 0.05
    assert 0.12 < both.high - both.low < 0.28
    perfect = bootstrap_interval(np.ones((5, 40)))
    assert (perfect.low, perfect.high) == (1.0, 1.0)           # never past 100 %
    assert bootstrap_interval(per_clip, seed=3) != bootstrap_interval(per_clip, seed=4)
    assert bootstrap_interval(per_clip) == both                 # seeded: reproducible


def test_bootstrap_of_a_paired_difference_resamples_both_models_together():
    rng = np.random.default_rng(1)
    base = (rng.random((5, 200)) < 0.6).astype(float)
    better = np.maximum(base, rng.random((5, 200)) < 0.2)       # right wherever base is, and more
    paired = bootstrap_interval(better, base)
    assert paired.low > 0 and paired.verdict == "better"
    assert paired.mean == pytest.approx((better - base).mean())
    unpaired_low = bootstrap_interval(better).low - bootstrap_interval(base).high
    assert unpaired_low < paired.low                            # pairing removes shared noise
    same = bootstrap_interval(base, base)
    assert (same.mean, same.low, same.high) == (0.0, 0.0, 0.0)
    assert bootstrap_interval(better[:3], base[:3]).verdict == "no verdict (n < 5 seeds)"


def test_bootstrap_is_never_narrower_than_the_t_interval_over_seeds():
    # seeds that disagree a lot, on many items: most of the noise is the seeds', and five of
    # them leave Student's t wider than the bootstrap's percentiles would be
    rates = np.array([0.30, 0.70, 0.50, 0.90, 0.20])
    per_item = (np.arange(1000)[None] < rates[:, None] * 1000).astype(float)   # (5, 1000)
    over_seeds = t_interval(per_item.mean(1))
    both = bootstrap_interval(per_item)
    assert (both.low, both.high) == pytest.approx((over_seeds.low, over_seeds.high))
    assert both.low <= over_seeds.low and both.high >= over_seeds.high
    tight = bootstrap_interval(np.ones((5, 10)) - np.eye(5, 10) * np.c_[[1, 0, 0, 0, 0]])
    assert tight.high <= 1.0                                 # still never past the data
