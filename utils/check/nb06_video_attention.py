"""Notebook 06, Video attention: affinity masks, attention similarity, the most attended
positions.
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
    points=1,
    idea="sort the flat weights from largest to smallest (equal weights keep their order), keep "
         "k, and turn each flat index back into (t, h, w).",
    hint="order = np.argsort(-weights, kind='stable')[:k]; then np.unravel_index(order, "
         "shape) gives three index arrays; stack them as columns (axis=1).")
def top_attended(fn: Callable) -> Callable:
    """Notebook 06: the k most attended (t, h, w) positions of one query's map."""
    rng = np.random.default_rng(17)
    cases = [Case((rng.random(24), (2, 3, 4), 3)), Case((rng.random(6), (3, 1, 2), 6)),
             Case((np.r_[0.1, 0.5, 0.5, 0.2], (1, 2, 2), 2))]
    return check_exercise(
        fn, reference.top_attended, cases, title="top_attended")
