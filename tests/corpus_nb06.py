"""Checker corpus of notebook 06's exercises ``fold_attention`` and ``axis_code``: right answers
written in other ways, and the mistakes a learner folding a clip for attention, or designing a
position code for one axis, would plausibly make."""

from __future__ import annotations

import numpy as np
import scipy.special

from utils import reference


def _attend(z, *, axis=-1, scale="sqrt"):
    """softmax(z z^T / s) z over groups z (G, n, C); axis: the softmax's axis."""
    c = z.shape[-1]
    s = {"sqrt": np.sqrt(c), "none": 1.0, "c": float(c)}[scale]
    return scipy.special.softmax(z @ z.transpose(0, 2, 1) / s, axis=axis) @ z


def _fold(x, affinity, *, swap=False, reshape_only=False, axis=-1, scale="sqrt",
          unfold="right", across_batch=False):
    b, c, t, h, w = x.shape
    if swap:
        affinity = {"space": "time", "time": "space"}.get(affinity, affinity)
    if affinity == "spacetime" or across_batch and affinity == "spacetime":
        z = x.reshape(b, c, -1).transpose(0, 2, 1)
        if across_batch:
            z = z.reshape(1, b * t * h * w, c)
        return _attend(z, axis=axis, scale=scale).reshape(b, t * h * w, c).transpose(
            0, 2, 1).reshape(b, c, t, h, w)
    if affinity == "space":
        z = (x.reshape(b * t, h * w, c) if reshape_only
             else x.transpose(0, 2, 3, 4, 1).reshape(b * t, h * w, c))
        y = _attend(z, axis=axis, scale=scale)
        if reshape_only:
            return y.reshape(b, c, t, h, w)
        if unfold == "wrong":
            return y.reshape(b, c, t, h, w)
        return y.reshape(b, t, h, w, c).transpose(0, 4, 1, 2, 3)
    z = (x.reshape(b * h * w, t, c) if reshape_only
         else x.transpose(0, 3, 4, 2, 1).reshape(b * h * w, t, c))
    y = _attend(z, axis=axis, scale=scale)
    if reshape_only:
        return y.reshape(b, c, t, h, w)
    if unfold == "wrong":                                   # unfolds as if t came before h, w
        return y.reshape(b, t, h, w, c).transpose(0, 4, 1, 2, 3)
    return y.reshape(b, h, w, t, c).transpose(0, 4, 3, 1, 2)


def _loops(x, affinity):
    """A right answer written position by position with the mask the learner wrote first."""
    b, c, t, h, w = x.shape
    mask = reference.affinity_mask(t, h, w, affinity)
    z = x.reshape(b, c, -1)
    out = np.zeros_like(z)
    for i in range(b):
        for q in range(t * h * w):
            keys = np.flatnonzero(mask[q])
            scores = z[i][:, q] @ z[i][:, keys] / np.sqrt(c)
            weights = np.exp(scores - scores.max())
            out[i][:, q] = z[i][:, keys] @ (weights / weights.sum())
    return out.reshape(x.shape)


def _moveaxis(x, affinity):
    """A right answer with np.moveaxis and einsum."""
    b, c, t, h, w = x.shape
    tokens = np.moveaxis(x, 1, -1)                                  # (B, T, H, W, C)
    if affinity == "time":
        tokens = np.moveaxis(tokens, 1, 3)                          # (B, H, W, T, C)
    lead = {"spacetime": (b,), "space": (b, t), "time": (b, h, w)}[affinity]
    z = tokens.reshape(int(np.prod(lead)), -1, c)
    s = np.einsum("gic,gjc->gij", z, z) / np.sqrt(c)
    y = np.einsum("gij,gjc->gic", scipy.special.softmax(s, axis=-1), z).reshape(tokens.shape)
    if affinity == "time":
        y = np.moveaxis(y, 3, 1)
    return np.moveaxis(y, -1, 1)


def _axis(length, pairs, omega, parts=("sin", "cos")):
    """Sine and cosine rows of the angles omega_k * p for the cells p of one axis."""
    angle = np.asarray(omega, dtype=float)[:, None] * np.arange(length)[None, :]
    rows = {"sin": np.sin(angle), "cos": np.cos(angle)}
    return np.concatenate([rows[part] for part in parts])


def _interleaved(length, pairs):
    """A right answer: one (sin, cos) row pair per frequency, the whole axis within pi."""
    rows = []
    for k in range(pairs):
        omega = np.pi * (k + 1) / (pairs * (length - 1) + 1)
        rows += [np.sin(omega * np.arange(length)), np.cos(omega * np.arange(length))]
    return np.array(rows)


def _complex(length, pairs):
    """A right answer: a rotation e^{i w p} per frequency, split into real and imaginary
    parts, with the slowest frequency half the fastest."""
    omega = np.linspace(0.5, 1.0, pairs) * np.pi / length
    z = np.exp(1j * omega[:, None] * np.arange(length)[None, :])
    return np.concatenate([z.real, z.imag])


_K = lambda pairs, start=1: np.arange(start, pairs + start)  # noqa: E731


CORPUS = {
    "fold_attention": (
        [reference.fold_attention, _loops, _moveaxis],
        [lambda x, a: _fold(x, a, reshape_only=True),          # reshape without moving C last
         lambda x, a: _fold(x, a, swap=True),                  # folds the wrong axes
         lambda x, a: _fold(x, a, axis=-2),                    # softmax over the queries
         lambda x, a: _fold(x, a, scale="none"),               # forgets the 1/sqrt(C)
         lambda x, a: _fold(x, a, scale="c"),                  # divides by C
         lambda x, a: _fold(x, a, unfold="wrong"),             # unfolds in the wrong axis order
         lambda x, a: _fold(x, a, across_batch=True),          # lets clips attend to each other
         lambda x, a: _fold(x, a).astype(np.float32),          # float32 loses the precision
         lambda x, a: _fold(x, a).transpose(0, 2, 1, 3, 4)]),  # returns (B, T, C, H, W)
    "axis_code": (
        [lambda n, m: _axis(n, m, np.pi * _K(m) / (m * n)),
         lambda n, m: _axis(n, m, np.pi * _K(m) / (m * (n - 1) if n > 1 else m), ("cos", "sin")),
         _interleaved, _complex],
        [lambda n, m: _axis(n, m, 10000.0 ** (-_K(m, 0) / m)),      # Vaswani's base: wraps
         lambda n, m: _axis(n, m, 2 * np.pi * _K(m) / (m * n)),     # a full period, not half
         lambda n, m: _axis(n, m, np.pi * _K(m) / n),               # forgets to share pi
         lambda n, m: _axis(n, m, np.pi * _K(m) / (m * n), ("sin",) * 2),  # sines only
         lambda n, m: _axis(n, m, np.pi * _K(m, 0) / (m * n)),      # a frequency of 0
         lambda n, m: _axis(n, m, 1e-3 * _K(m)),                    # far too slow
         lambda n, m: _axis(n, m, np.pi * _K(m) / (m * n)).T,       # (length, 2 * pairs)
         lambda n, m: np.eye(2 * m, n),                              # one-hot cells
         lambda n, m: np.vstack([np.arange(n) / n] * m + [1 - np.arange(n) / n] * m),  # ramps
         lambda n, m: _axis(n, m, 2 * np.pi * _K(m) / (m * n) * (n / max(n - 1, 1)))]),
}
