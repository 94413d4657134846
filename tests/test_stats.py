"""The statistics helper: Student-t intervals over seeds and paired differences."""

import numpy as np
import pytest
from scipy import stats

from utils.stats import Interval, paired_difference, t_interval


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
])
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
