"""Notebook 06, Video attention: affinity masks, attention folded over space or time, and a
position code for one axis that does not alias.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from .. import reference
from .core import Case, _begin, _Blank, check_exercise, exercise


@exercise(
    points=1,
    idea="number the positions frame by frame: 'space' pairs positions in the same frame, 'time'"
         " pairs positions at the same place in any frame, 'spacetime' pairs everything.",
    hint="number the positions n = 0..T*H*W-1; frame t = n // (H*W), place p = n % (H*W) "
         "(np.divmod); 'space' compares t[:, None] == t[None, :], 'time' compares p, and "
         "'spacetime' allows every pair (np.ones(..., dtype=bool)).")
def affinity_mask(fn: Callable) -> Callable:
    """Notebook 06: ``fn(frames, height, width, affinity) -> (N, N) bool``."""
    cases = [Case((t, h, w, a)) for a in reference.AFFINITIES
             for t, h, w in [(2, 2, 3), (3, 1, 2), (1, 2, 2)]]
    return check_exercise(
        fn, reference.affinity_mask, cases, title="affinity_mask")


@exercise(
    points=2,
    idea="the positions that may attend to each other form groups (the whole clip for "
         "'spacetime', one frame for 'space', one place across the frames for 'time'); each "
         "group must become one entry of a batch, its tokens along one axis and their C "
         "channels along another, attention must run inside each entry only, and every output "
         "must land back on the (t, h, w) it came from. On a tiny clip, compare your output "
         "with reference.masked_attention(x, affinity_mask(...)) to see which positions got "
         "mixed.",
    hint="b, c, t, h, w = x.shape. 'space': z = x.transpose(0, 2, 3, 4, 1).reshape(b * t, h * w, "
         "c); 'time': z = x.transpose(0, 3, 4, 2, 1).reshape(b * h * w, t, c); 'spacetime': "
         "z = x.reshape(b, c, -1).transpose(0, 2, 1). Then s = z @ z.transpose(0, 2, 1) / "
         "np.sqrt(c), subtract s.max(-1, keepdims=True), exponentiate, divide by the sum over "
         "the last axis, y = weights @ z; reshape y to (b, t, h, w, c) ('space') or (b, h, w, t, "
         "c) ('time') and transpose the channel axis back to position 1.")
def fold_attention(fn: Callable) -> Callable:
    """Notebook 06: ``fn(x (B, C, T, H, W), affinity) -> (B, C, T, H, W)``, self-attention over
    the positions the affinity lets compare, checked against the explicit masked attention
    (``reference.masked_attention`` with ``reference.affinity_mask``)."""
    rng = np.random.default_rng(18)
    cases = []
    for shape in [(2, 3, 3, 2, 4), (1, 4, 4, 3, 2), (3, 2, 2, 5, 3)]:
        x = 1.5 * rng.standard_normal(shape)
        cases += [Case((x, a)) for a in ("space", "time", "spacetime")]

    def explicit(x: np.ndarray, affinity: str) -> np.ndarray:
        _, _, t, h, w = x.shape
        return reference.masked_attention(x, reference.affinity_mask(t, h, w, affinity))
    return check_exercise(fn, explicit, cases, title="fold_attention",
                          idea=_fold_diagnosis(fn, cases[0].args[0]))


def _softmax_attend(z: np.ndarray, scale: float, axis: int) -> np.ndarray:
    s = z @ z.transpose(0, 2, 1) / scale
    e = np.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True) @ z


def _fold_diagnosis(fn: Callable, x: np.ndarray) -> str | None:
    """The first-level message, led by the mistake the learner's answer matches (if any):
    the wrong axes folded, the scale forgotten, the softmax over the queries."""
    from .core import EXERCISES

    idea = EXERCISES["fold_attention"].idea
    b, c, t, h, w = x.shape
    z = x.transpose(0, 2, 3, 4, 1).reshape(b * t, h * w, c)

    def unfold(y: np.ndarray) -> np.ndarray:
        return y.reshape(b, t, h, w, c).transpose(0, 4, 1, 2, 3)
    mistakes = {
        "your 'space' answer equals attention over 'time' (or over the whole clip): it "
        "folds the wrong axes into the batch. ": [reference.fold_attention(x, "time"),
                                                   reference.fold_attention(x, "spacetime")],
        "your answer matches attention without the 1/sqrt(C) scale of the scores. ":
            [unfold(_softmax_attend(z, 1.0, -1))],
        "your answer matches a softmax over the queries (axis -2) instead of the keys. ":
            [unfold(_softmax_attend(z, np.sqrt(c), -2))],
        "your answer matches reshaping (B, C, T, H, W) straight into groups of tokens: a "
        "reshape without moving the channel axis last mixes channels and positions. ":
            [_softmax_attend(x.reshape(b * t, h * w, c), np.sqrt(c), -1).reshape(x.shape)],
    }
    try:
        got = np.asarray(fn(x.copy(), "space"), dtype=float)
    except Exception:  # noqa: BLE001 (blank, or a crash the check itself will report)
        return None
    for message, outputs in mistakes.items():
        if any(got.shape == o.shape and np.allclose(got, o, atol=1e-8) for o in outputs):
            return message + idea[0].upper() + idea[1:]
    return None


AXIS_CASES = [(8, 5), (4, 3), (16, 5), (5, 1), (2, 2), (12, 4)]     # (length, pairs)


def axis_code_reference(length: int, pairs: int = 5) -> np.ndarray:
    """One answer: sines and cosines with w_k = pi (k + 1) / (pairs * length), so the largest
    offset, length - 1, turns the fastest by less than half a period (the axis part of
    ``utils.models.grid_position_code``). (2 * pairs, length)."""
    omega = np.pi * np.arange(1, pairs + 1) / (pairs * length)
    angle = omega[:, None] * np.arange(length)[None, :]
    return np.concatenate([np.sin(angle), np.cos(angle)])


@exercise(
    points=2,
    idea="give each frequency a sine and a cosine: then every cell's code has the same length "
         "and the dot product of two cells is sum_k cos(w_k * offset), a function of the offset "
         "alone (the formula of Section 6). Ask what must hold for every w_k over the offsets "
         "0 ... length - 1 for that sum to keep falling, and how slow the frequencies may be "
         "before the far end still looks like the start.",
    hint="w = np.pi * np.arange(1, pairs + 1) / (pairs * length) (the fastest turns by pi * "
         "(length - 1) / length < pi over the axis); angle = w[:, None] * np.arange(length)"
         "[None, :]; return np.concatenate([np.sin(angle), np.cos(angle)]), shape (2 * pairs, "
         "length).")
def axis_code(fn: Callable) -> Callable:
    """Notebook 06: ``fn(length, pairs) -> (2 * pairs, length)``, a position code for the cells
    of one axis, checked by its properties on several (length, pairs): finite, the same norm
    for every cell, a similarity (dot product) that depends only on the offset, falls strictly
    from offset 0 to length - 1, and at length - 1 is at most half of a cell's own."""
    attempt = _begin(fn, axis_code_reference, "axis_code", None)
    if attempt is None:
        return fn
    try:
        for number, (length, pairs) in enumerate(AXIS_CASES, start=1):
            where = f"test case {number} of {len(AXIS_CASES)}, length={length}, pairs={pairs}"
            got = attempt.run(functools.partial(fn, length, pairs), where, first=number == 1)
            problem = _axis_problem(got, length, pairs)
            if problem:
                raise attempt.wrong(where, problem)
    except _Blank:
        return attempt.still_open()
    return attempt.right(f"on all {len(AXIS_CASES)} axes every cell's code has the same length, "
                         "and the similarity depends only on the offset and falls all the way "
                         "to the far end.")


def _axis_problem(got: object, length: int, pairs: int) -> str | None:
    """What is wrong with a learner's axis code, or None."""
    try:
        code = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return (f"returned {type(got).__name__}, which is not an array of numbers; return an "
                f"array of shape (2 * pairs, length) = {(2 * pairs, length)}")
    if code.shape != (2 * pairs, length):
        return (f"returned shape {code.shape}, expected (2 * pairs, length) = "
                f"{(2 * pairs, length)}: one column per cell, 2 * pairs numbers each")
    if not np.all(np.isfinite(code)):
        return "the code holds NaN or infinite values"
    gram = code.T @ code                                   # (length, length): cell similarities
    own = np.diag(gram)
    if own[0] <= 1e-12:
        return "cell 0's code is all zeros: a cell must be similar to itself"
    tol = 1e-9 * own[0]
    if np.any(np.abs(own - own[0]) > tol):
        i = int(np.argmax(np.abs(own - own[0])))
        return (f"the codes do not all have the same length: cell {i}'s squared length is "
                f"{own[i]:.4g}, cell 0's {own[0]:.4g}; then a similarity mixes where a cell is "
                f"with how far apart two cells are")
    offsets = np.abs(np.arange(length)[:, None] - np.arange(length)[None, :])
    expected = gram[0][offsets]
    if np.any(np.abs(gram - expected) > 1e-7 * own[0]):
        i, j = np.unravel_index(int(np.argmax(np.abs(gram - expected))), gram.shape)
        return (f"the similarity of cells {i} and {j} ({gram[i, j]:.4g}) differs from that of "
                f"cells 0 and {abs(int(i) - int(j))} ({expected[i, j]:.4g}), the same offset: "
                f"it must depend on the offset alone, not on where the two cells are")
    similarity = gram[0]
    rises = np.flatnonzero(np.diff(similarity) >= -tol)
    if rises.size:
        d = int(rises[0])
        if abs(similarity[d + 1] - similarity[d]) <= tol:
            return (f"the similarity stays at {similarity[d]:.4g} from offset {d} to offset "
                    f"{d + 1}: the code cannot tell cells {d} apart from cells {d + 1} apart")
        return (f"the similarity rises from offset {d} ({similarity[d]:.4g}) to offset "
                f"{d + 1} ({similarity[d + 1]:.4g}): cells {d + 1} apart look more alike than "
                f"cells {d} apart, the aliasing of the figure above")
    if similarity[-1] > 0.5 * similarity[0]:
        return (f"at the largest offset, {length - 1}, the similarity is still "
                f"{similarity[-1]:.4g}, more than half of a cell's own ({similarity[0]:.4g}): "
                f"the far end looks too much like the start (a frequency that is too slow, or "
                f"0, adds almost the same at every offset)")
    return None
