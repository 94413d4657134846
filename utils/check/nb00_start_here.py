"""Notebook 00, Start here: the warm-up exercise."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import functional
from .core import Case, check_exercise, exercise


@exercise(
    points=1,
    idea="the softmax does not change when the same constant is subtracted from every score "
         "along the axis; subtract the largest score first, so that np.exp never sees a large "
         "positive number.",
    hint="subtract the maximum along `axis` (keepdims=True) before np.exp, so that large "
         "scores do not overflow, then divide by the sum along the same axis.")
def softmax(fn: Callable) -> Callable:
    """Notebook 00, warm-up: a numerically stable softmax ``fn(x, axis=-1)``."""
    rng = np.random.default_rng(0)
    cases = [
        Case((rng.normal(size=5),)),
        Case((rng.normal(size=(3, 4)),)),
        Case((rng.normal(size=(2, 3, 4)),), {"axis": 1}),
        Case((rng.normal(size=(4, 2)),), {"axis": 0}),
        Case((np.array([1000.0, 1001.0, 1002.0]),)),
        Case((np.array([[-800.0, -801.0], [3.0, 3.0]]),)),      # rows at different levels
        Case((np.array([[0.0, 750.0, 5.0], [-2.0, 1.0, 0.5]]),)),   # a row spanning 750
        Case((np.array([[1.0, -900.0], [2.0, 0.0], [700.0, 3.0]]),), {"axis": 0}),
    ]
    return check_exercise(
        fn, functional.softmax, cases, title="softmax", rtol=1e-9)
