"""Numerical gradient checking for the NumPy backward passes of the course.

The analytic gradient of a scalar loss L = sum(f(x) * dout) is compared with centred
differences (L(x + h) - L(x - h)) / 2h, one element of x at a time, in float64. The relative
error ||analytic - numeric|| / (||analytic|| + ||numeric||) of a correct backward pass is
about 1e-9 or smaller; 1e-4 or larger means a bug. (The norm-wise form does not blow up on
gradient entries that are nearly zero, where rounding alone would make an element-wise
ratio large.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .validate import as_float_array, positive_float


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||) (Frobenius norms; 0 when both are zero)."""
    a = as_float_array(a, "a")
    b = as_float_array(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0


def numerical_gradient(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                       dout: np.ndarray | None = None, h: float = 1e-5) -> np.ndarray:
    """Centred-difference gradient of sum(f(x) * dout) with respect to x.

    f: maps an array shaped like x to any array; it may read x but must not keep it.
    x: float64 array, perturbed in place one element at a time and restored.
    dout: upstream gradient shaped like f(x) (ones if None). Returns an array shaped like x.
    """
    if not callable(f):
        raise ValueError(f"f must be callable, got {type(f).__name__}")
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise ValueError("x must be a float64 numpy array (centred differences need the "
                         f"precision), got {type(x).__name__} "
                         f"{getattr(x, 'dtype', '')}".rstrip())
    h = positive_float(h, "h")
    out = np.asarray(f(x))
    if dout is None:
        dout = np.ones_like(out, dtype=np.float64)
    dout = as_float_array(dout, "dout")
    if dout.shape != out.shape:
        raise ValueError(f"dout must have the shape of f(x), {out.shape}, got {dout.shape}")
    grad = np.zeros_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)
    for i in range(flat_x.size):
        saved = flat_x[i]
        flat_x[i] = saved + h
        plus = np.array(f(x), dtype=np.float64)
        flat_x[i] = saved - h
        minus = np.asarray(f(x), dtype=np.float64)
        flat_x[i] = saved
        # Difference the outputs element by element before weighting and summing: subtracting
        # two large sums instead would lose digits to rounding.
        flat_grad[i] = np.sum((plus - minus) * dout) / (2 * h)
    return grad


def gradient_check(f: Callable[..., np.ndarray], inputs: dict[str, np.ndarray],
                   analytic: dict[str, np.ndarray], dout: np.ndarray,
                   h: float = 1e-5) -> dict[str, float]:
    """Relative error between analytic and numerical gradients, per named input.

    f(**inputs) is the forward pass; analytic[name] is your backward pass's gradient with
    respect to inputs[name] for the upstream gradient dout.
    """
    if not callable(f):
        raise ValueError(f"f must be callable, got {type(f).__name__}")
    for name, value in (("inputs", inputs), ("analytic", analytic)):
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError(f"{name} must be a dict from argument names to arrays, "
                             f"got {type(value).__name__}")
    missing = set(inputs) - set(analytic)
    if missing:
        raise ValueError(f"analytic is missing gradients for {sorted(missing)}")
    errors = {}
    for name, value in inputs.items():
        def partial(v: np.ndarray, name: str = name) -> np.ndarray:
            return f(**{**inputs, name: v})

        numeric = numerical_gradient(partial, value, dout, h=h)
        if analytic[name].shape != numeric.shape:
            raise ValueError(f"analytic[{name!r}] must have shape {numeric.shape}, "
                             f"got {analytic[name].shape}")
        errors[name] = rel_error(analytic[name], numeric)
    return errors
