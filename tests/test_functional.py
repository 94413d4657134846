import numpy as np
import pytest

from utils import functional as F


def naive_softmax(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def test_softmax_matches_the_definition_and_sums_to_one():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 5))
    for axis in (0, 1, 2, -1):
        y = F.softmax(x, axis=axis)
        np.testing.assert_allclose(y, naive_softmax(x, axis), rtol=1e-12)
        np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-12)


def test_softmax_is_stable_for_huge_scores_and_shift_invariant():
    x = np.array([1000.0, 1001.0, 1002.0])
    y = F.softmax(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, F.softmax(x - 1000.0), rtol=1e-12)


@pytest.mark.parametrize("x, axis, message", [(np.float64(1.0), -1, "at least one dimension"),
                                              (np.ones((2, 3)), 2, "out of range"),
                                              (np.array([np.nan, 1.0]), -1, "finite"),
                                              (np.zeros((2, 0)), 1, "empty")])
def test_softmax_rejects_bad_input(x, axis, message):
    with pytest.raises(ValueError, match=message):
        F.softmax(x, axis=axis)


def test_sigmoid_is_exact_and_never_overflows():
    x = np.array([-1000.0, -2.0, 0.0, 2.0, 1000.0])
    y = F.sigmoid(x)
    np.testing.assert_allclose(y[1:4], 1 / (1 + np.exp(-x[1:4])), rtol=1e-14)
    assert y[0] == 0.0 and y[-1] == 1.0
    np.testing.assert_allclose(F.sigmoid(-x), 1 - y, atol=1e-15)


def test_reweighting_scales_the_right_axes():
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(2, 3, 4, 5))
    gains = rng.random((2, 3))
    out = F.reweight_channels(feats, gains)
    np.testing.assert_allclose(out[1, 2], feats[1, 2] * gains[1, 2])
    weights = rng.random((2, 4, 5))
    out = F.reweight_positions(feats, weights)
    np.testing.assert_allclose(out[1, :, 3, 4], feats[1, :, 3, 4] * weights[1, 3, 4])
    with pytest.raises(ValueError, match="gains must have shape"):
        F.reweight_channels(feats, gains.T)
    with pytest.raises(ValueError, match="weights must have shape"):
        F.reweight_positions(feats, weights[:, :3])


def test_attention_pool_is_a_convex_combination():
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(3, 4, 4))
    scores = np.full((4, 4), -50.0)
    scores[1, 2] = 50.0                      # hard attention in the limit
    np.testing.assert_allclose(F.attention_pool(feats, scores), feats[:, 1, 2], atol=1e-12)
    uniform = F.attention_pool(feats, np.zeros((4, 4)))
    np.testing.assert_allclose(uniform, feats.mean(axis=(1, 2)), atol=1e-12)
    with pytest.raises(ValueError, match="scores must have shape"):
        F.attention_pool(feats, np.zeros((3, 4)))
