"""NumPy references of SE and CBAM: gradients, equivalences and input checks."""

import numpy as np
import pytest

from utils import reference as R
from utils.gradcheck import gradient_check


def setup(seed=0, b=2, c=8, r=4, h=5, w=6, k=7):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(b, c, h, w))
    return (rng, x, rng.normal(size=x.shape), R.init_mlp(c, r, rng),
            {"w": rng.normal(size=(1, 2, k, k)) * 0.3, "b": rng.normal(size=1)})


@pytest.mark.parametrize("seed", range(3))
def test_se_backward_passes_the_gradient_check(seed):
    _, x, dout, p, _ = setup(seed)
    dx, grads = R.se_backward(dout, R.se_forward(x, p)[1])
    errors = gradient_check(lambda x, **q: R.se_forward(x, q)[0], {"x": x, **p},
                            {"x": dx, **grads}, dout)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("seed", range(3))
def test_channel_attention_backward_passes_the_gradient_check(seed):
    _, x, dout, p, _ = setup(seed)
    dx, grads = R.channel_attention_backward(dout, R.channel_attention_forward(x, p)[1])
    errors = gradient_check(lambda x, **q: R.channel_attention_forward(x, q)[0], {"x": x, **p},
                            {"x": dx, **grads}, dout)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("order", R.POOL_ORDERS)
@pytest.mark.parametrize("seed", range(2))
def test_spatial_attention_backward_passes_the_gradient_check(order, seed):
    _, x, dout, _, sp = setup(seed, h=6, w=4, k=5)
    dx, grads = R.spatial_attention_backward(dout, R.spatial_attention_forward(x, sp, order)[1])
    errors = gradient_check(lambda x, **q: R.spatial_attention_forward(x, q, order)[0],
                            {"x": x, **sp}, {"x": dx, **grads}, dout)
    assert max(errors.values()) < 1e-7, errors


def test_cbam_backward_passes_the_gradient_check():
    _, x, dout, p, sp = setup(3)
    params = {"channel": p, "spatial": sp}
    dx, grads = R.cbam_backward(dout, R.cbam_forward(x, params)[1])
    errors = gradient_check(lambda x, w1, b1, w2, b2, w, b: R.cbam_forward(
        x, {"channel": dict(w1=w1, b1=b1, w2=w2, b2=b2), "spatial": dict(w=w, b=b)})[0],
        {"x": x, **p, **sp}, {"x": dx, **grads["channel"], **grads["spatial"]}, dout)
    assert max(errors.values()) < 1e-7, errors


def test_conv2d_same_matches_a_direct_loop():
    rng = np.random.default_rng(4)
    x, w, b = rng.normal(size=(1, 2, 5, 4)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    out, _ = R.conv2d_same(x, w, b)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    direct = np.zeros((1, 3, 5, 4))
    for o in range(3):
        for i in range(5):
            for j in range(4):
                direct[0, o, i, j] = np.sum(padded[0, :, i:i + 3, j:j + 3] * w[o]) + b[o]
    np.testing.assert_allclose(out, direct, rtol=1e-12)


def test_se_is_channel_attention_without_the_max_branch():
    _, x, _, p, _ = setup(5)
    se, _ = R.se_forward(x, p)
    z = x.mean(axis=(2, 3))
    s = 1 / (1 + np.exp(-(np.maximum(z @ p["w1"].T + p["b1"], 0) @ p["w2"].T + p["b2"])))
    np.testing.assert_allclose(se, x * s[:, :, None, None], rtol=1e-12)
    ca, _ = R.channel_attention_forward(x, p)
    assert not np.allclose(ca, se)


def test_pool_orders_differ_only_by_swapping_the_kernel_halves():
    _, x, _, _, sp = setup(6)
    swapped = {"w": sp["w"][:, ::-1].copy(), "b": sp["b"]}
    np.testing.assert_allclose(R.spatial_attention_forward(x, sp, "mean-max")[0],
                               R.spatial_attention_forward(x, swapped, "max-mean")[0], rtol=1e-12)


@pytest.mark.parametrize("call, message", [
    (lambda p, sp: R.se_forward(np.zeros((2, 8, 4)), p), "x must have 4 dimensions"),
    (lambda p, sp: R.se_forward(np.zeros((2, 6, 4, 4)), p), r"params\['w1'\] must have shape"),
    (lambda p, sp: R.se_forward(np.zeros((2, 8, 4, 4)), {"w1": p["w1"]}), "missing 'b1'"),
    (lambda p, sp: R.mlp_shapes(8, 16), r"reduction \(16\) must not exceed channels \(8\)"),
    (lambda p, sp: R.spatial_attention_forward(np.zeros((1, 8, 4, 4)),
                                               {"w": np.zeros((1, 2, 4, 4)), "b": np.zeros(1)}),
     "odd k"),
    (lambda p, sp: R.spatial_attention_forward(np.zeros((1, 8, 4, 4)), sp, "avg-max"),
     "pool_order must be one of"),
    (lambda p, sp: R.se_backward(np.zeros((1, 8, 4, 4)),
                                 R.se_forward(np.zeros((2, 8, 4, 4)), p)[1]),
     "dout must have the shape of x"),
])
def test_bad_input_is_named(call, message):
    _, _, _, p, sp = setup()
    with pytest.raises(ValueError, match=message):
        call(p, sp)


def test_affinity_masks_count_the_pairs_each_pattern_allows():
    t, h, w = 3, 2, 4
    space = R.affinity_mask(t, h, w, "space")
    time = R.affinity_mask(t, h, w, "time")
    full = R.affinity_mask(t, h, w, "spacetime")
    assert space.sum() == t * (h * w) ** 2 and time.sum() == h * w * t ** 2
    assert full.all() and (space & time).sum() == t * h * w       # only i == j is in both
    assert np.array_equal(space, space.T) and np.array_equal(time, time.T)
    with pytest.raises(ValueError, match="affinity"):
        R.affinity_mask(t, h, w, "frame")
    with pytest.raises(ValueError, match="frames"):
        R.affinity_mask(0, h, w, "space")


def test_attention_similarity_is_one_for_shared_maps_and_lower_for_distinct_ones():
    row = np.array([0.1, 0.6, 0.3])
    assert np.isclose(R.attention_similarity(np.tile(row, (5, 1))), 1.0)
    assert np.isclose(R.attention_similarity(np.eye(4)), 0.0)
    rng = np.random.default_rng(0)
    w = rng.random((6, 9))
    u = w / np.linalg.norm(w, axis=1, keepdims=True)
    pairs = [u[i] @ u[j] for i in range(6) for j in range(6) if i != j]
    assert np.isclose(R.attention_similarity(w), np.mean(pairs))
    with pytest.raises(ValueError, match="two queries"):
        R.attention_similarity(np.ones((1, 3)))
    with pytest.raises(ValueError, match="all-zero row"):
        R.attention_similarity(np.zeros((2, 3)))


def test_top_attended_returns_coordinates_largest_first():
    weights = np.zeros(2 * 3 * 4)
    weights[np.ravel_multi_index((1, 2, 3), (2, 3, 4))] = 0.9
    weights[np.ravel_multi_index((0, 1, 0), (2, 3, 4))] = 0.5
    top = R.top_attended(weights, (2, 3, 4), 2)
    assert top.tolist() == [[1, 2, 3], [0, 1, 0]]
    with pytest.raises(ValueError, match="shape"):
        R.top_attended(weights, (2, 3, 3), 2)
    with pytest.raises(ValueError, match="k"):
        R.top_attended(weights, (2, 3, 4), 25)
