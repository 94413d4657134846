"""Notebook 06, Video attention: affinity masks, attention folded over space or time,
attention similarity.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import reference
from .core import Case, check_exercise, exercise


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
    points=1,
    idea="after scaling each row to unit length, the cosine similarity of two rows is their dot "
         "product; average it over all pairs of distinct rows.",
    hint="divide each row by its length, gram = u @ u.T, then average the off-diagonal "
         "entries: (gram.sum() - np.trace(gram)) / (n * (n - 1)); return a float.")
def attention_similarity(fn: Callable) -> Callable:
    """Notebook 06: mean cosine similarity between the rows of an attention matrix."""
    rng = np.random.default_rng(16)
    same = np.tile(rng.random(6), (4, 1))
    cases = [Case((rng.random((5, 7)),)), Case((same,)), Case((np.eye(4) + 0.1,)),
             Case((rng.random((2, 3)),))]
    return check_exercise(
        fn, reference.attention_similarity, cases, title="attention_similarity")


@exercise(
    points=2,
    idea="every position's C-vector is a token, and the positions that may attend to each other "
         "form groups: the whole clip ('spacetime'), one frame ('space'), one place across the "
         "frames ('time'). Bring the channel axis last, fold every axis that is not compared "
         "into the batch (moving axes with a transpose; a reshape alone mixes channels and "
         "positions), attend within each group (scores z z^T / sqrt(C), softmax over the keys), "
         "then undo the fold so every output lands back on its own (t, h, w).",
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
