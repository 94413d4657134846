"""Input checks shared by the course library.

Each raises ``ValueError`` naming the argument and what was expected, so that bad input
fails at the call a learner wrote, not deep inside NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_float_array(
    x: object,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    min_shape: Sequence[int] | None = None,
    finite: bool = True,
) -> np.ndarray:
    """Return ``x`` as a float64 array after checking its rank, size and values.

    ndim: allowed number(s) of dimensions. min_shape: minimum size of the trailing axes.
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be array-like, got {type(x).__name__}: {exc}") from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real-valued, got dtype {arr.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {arr.shape}")
    if min_shape is not None:
        tail = arr.shape[arr.ndim - len(min_shape):]
        if len(tail) < len(min_shape) or any(t < m for t, m in zip(tail, min_shape, strict=True)):
            raise ValueError(
                f"{name} must be at least {tuple(min_shape)} in its last axes, "
                f"got shape {arr.shape}"
            )
    arr = arr.astype(np.float64, copy=False)
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or Inf)")
    return arr


def image_array(x: object, name: str = "image", *, min_side: int = 1) -> np.ndarray:
    """A greyscale ``(H, W)`` or colour ``(H, W, 3)`` image as float64 in [0, 1].

    Integer images (uint8 and the like) are scaled by their dtype's maximum.
    """
    raw = np.asarray(x)
    arr = as_float_array(raw, name, ndim=(2, 3))
    if arr.ndim == 3 and arr.shape[2] != 3:
        raise ValueError(f"{name} must be (H, W) or (H, W, 3), got shape {arr.shape}")
    if min(arr.shape[:2]) < min_side:
        raise ValueError(
            f"{name} must be at least {min_side} pixels on each side, got {arr.shape[:2]}")
    if np.issubdtype(raw.dtype, np.integer):
        arr = arr / np.iinfo(raw.dtype).max
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError(
            f"{name} must have values in [0, 1] (or be an integer image), "
            f"got range [{arr.min():.3g}, {arr.max():.3g}]"
        )
    return arr


def positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    """``value`` as an int, checking it is an integer of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def boolean(value: object, name: str) -> bool:
    """``value`` as a bool, checking it is True or False (NumPy's bool too)."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def positive_float(value: object, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a float, checking it is finite and positive (or zero if allowed)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        want = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite {want} number, got {value}")
    return value


def axis_index(axis: object, ndim: int, name: str = "axis") -> int:
    """Normalise an axis argument for an array of ``ndim`` dimensions."""
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for an array with {ndim} dimensions")
    return int(axis) % ndim
