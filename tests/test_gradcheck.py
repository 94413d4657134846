import numpy as np
import pytest

from utils.gradcheck import gradient_check, numerical_gradient, rel_error


def test_numerical_gradient_of_known_functions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4))
    dout = rng.normal(size=(3, 4))
    g = numerical_gradient(lambda v: v**3, x, dout)
    assert rel_error(g, 3 * x**2 * dout) < 1e-8
    w = rng.normal(size=(4, 2))
    dout = rng.normal(size=(3, 2))
    g = numerical_gradient(lambda v: v @ w, x, dout)
    assert rel_error(g, dout @ w.T) < 1e-8


def test_numerical_gradient_restores_its_input():
    x = np.linspace(-1, 1, 7)
    before = x.copy()
    numerical_gradient(np.tanh, x)
    np.testing.assert_array_equal(x, before)


def test_gradient_check_passes_a_right_backward_and_catches_a_wrong_one():
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(5, 3)), rng.normal(size=(3, 2))
    dout = rng.normal(size=(5, 2))

    def forward(x, w):
        return np.tanh(x @ w)

    y = forward(x, w)
    dz = dout * (1 - y**2)
    good = gradient_check(forward, {"x": x, "w": w}, {"x": dz @ w.T, "w": x.T @ dz}, dout)
    assert max(good.values()) < 1e-7
    bad = gradient_check(forward, {"x": x, "w": w}, {"x": dout @ w.T, "w": x.T @ dout}, dout)
    assert min(bad.values()) > 1e-3


def test_rel_error_is_zero_for_equal_arrays_and_symmetric():
    a = np.array([1.0, -2.0, 0.0])
    b = np.array([1.1, -2.0, 0.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(a, b) == rel_error(b, a) == pytest.approx(0.1 / (5**0.5 + 5.21**0.5))
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="x must be a float64"):
        numerical_gradient(np.sin, np.arange(3))
    with pytest.raises(ValueError, match="dout must have the shape"):
        numerical_gradient(np.sin, np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="same shape"):
        rel_error(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="analytic is missing"):
        gradient_check(np.sin, {"x": np.zeros(2)}, {}, np.zeros(2))
