"""Notebook 05, Interaction-aware attention: PCA from scratch, the orthogonality penalty, the
module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .. import reference
from .core import Case, check_exercise, exercise
from .module_check import check_module

if TYPE_CHECKING:
    pass


@exercise(
    points=2,
    idea="centre the data, form the covariance matrix, and keep its eigenvectors with the "
         "largest eigenvalues; mind the order in which the eigen-solver returns them, and the "
         "course's sign convention.",
    hint="centre x (subtract the column means), sigma = xc.T @ xc / (M - 1); "
         "values, vectors = np.linalg.eigh(sigma) (ascending!); take the k largest, return "
         "(fix_signs(vectors[:, order].T), values[order]).")
def top_components(fn: Callable) -> Callable:
    """Notebook 05: PCA from scratch, ``fn(x, k) -> (components (k, C), variances (k,))``."""
    rng = np.random.default_rng(13)
    cases = [Case((rng.normal(size=(60, 5)) @ rng.normal(size=(5, 5)), 2)),
             Case((rng.normal(size=(40, 8)) * np.arange(1, 9), 3)),
             Case((rng.normal(size=(30, 4)) + 5.0, 4))]
    return check_exercise(
        fn, reference.top_components, cases, title="top_components", rtol=1e-6, atol=1e-9)


@exercise(
    points=1,
    idea="normalise each row to unit length first, then measure how far the rows' Gram matrix is"
         " from the identity, off the diagonal only.",
    hint="normalise each row to unit length, gram = u @ u.T, subtract np.eye(K) and return "
         "the sum of the squares (a float).")
def orthogonality_penalty(fn: Callable) -> Callable:
    """Notebook 05: eq. (6)'s second term, the sum of squared off-diagonal entries of
    A_hat A_hat^T for rows (maps) scaled to unit length, ``fn(maps) -> float``."""
    rng = np.random.default_rng(14)
    cases = [Case((rng.normal(size=(4, 6)),)), Case((np.eye(3, 5) * 7.0,)),
             Case((rng.normal(size=(2, 3)) + 3.0,))]
    return check_exercise(
        fn, lambda w: reference.orthogonality_penalty(w)[0], cases, title="orthogonality_penalty")


@exercise(
    points=2,
    idea="self.score (an nn.Linear from C to K, weight and bias) scores the C-vector at every "
         "position, giving K scores per position; a softmax over the positions (all of *S, "
         "flattened), separately for each map and each example, turns each map's scores into "
         "weights that sum to 1; each map then pools the C-vectors of x with its weights, a "
         "weighted sum over the positions: pooled is (B, K, C), maps first.",
    hint="in __init__: super().__init__(); self.score = nn.Linear(channels, maps). In forward: "
         "flat = x.flatten(2) is (B, C, N); scores = self.score(flat.transpose(1, 2)) is "
         "(B, N, K); maps = torch.softmax(scores, dim=1) (over N); return "
         "maps.transpose(1, 2) @ flat.transpose(1, 2), which is (B, K, C).")
def InteractionAware(cls: Callable) -> Callable:
    """Notebook 05: ``class InteractionAware(nn.Module)``, ``(channels, maps=4)`` with ``score``
    (an nn.Linear, C to K); x (B, C, *S) -> pooled (B, K, C), K softmax maps over positions."""
    from .. import modules

    builds = [Case((6,)), Case((8,), {"maps": 3}), Case((5,), {"maps": 1})]
    shapes = [[(2, 6, 4, 5), (1, 6, 3, 3)], [(2, 8, 7), (1, 8, 2, 3, 4)], [(3, 5, 4, 2)]]
    return check_module(cls, modules.InteractionAwareAttention, builds, shapes,
                        title="InteractionAware", large=300.0)
