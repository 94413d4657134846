"""Notebook 04, Non-local blocks: NL-means weights, the pairwise functions, subsampling, the
online softmax in tiles, the module.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .. import reference
from .core import Case, check_exercise, exercise
from .module_check import _torch_calls, check_module

if TYPE_CHECKING:
    from torch import nn


@exercise(
    points=1,
    idea="the weight decays with the squared patch distance after removing what noise alone "
         "contributes to it (2 sigma^2), and that difference never goes below zero.",
    hint="subtract the noise's contribution 2 * sigma**2 from d2, clip at 0 with "
         "np.maximum, divide by h**2, and take np.exp of minus that.")
def nlmeans_weights(fn: Callable) -> Callable:
    """Notebook 04: NL-means weights ``fn(d2, h, sigma) = exp(-max(d2 - 2 sigma^2, 0) / h^2)``."""
    from .. import denoising

    rng = np.random.default_rng(9)
    cases = [Case((rng.random((5, 6)) * 0.05, 0.1, 0.1)), Case((rng.random(20) * 0.2, 0.05, 0.0)),
             Case((np.array([0.0, 0.02, 0.5]), 0.2, 0.1))]
    return check_exercise(
        fn, denoising.nlmeans_weights, cases, title="nlmeans_weights")


def _attention_cases(seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [Case((rng.normal(size=(b, n, d)), rng.normal(size=(b, m, d)),
                  rng.normal(size=(b, m, e)))) for b, n, m, d, e in
            [(2, 6, 6, 4, 3), (1, 9, 3, 2, 5), (2, 1, 4, 3, 3)]]


@exercise(
    points=1,
    idea="compare every query (a row of theta) with every key (a row of phi) by a dot product, "
         "turn each query's scores into weights with a stable softmax over the keys, and average"
         " the values g with those weights.",
    hint="scores = theta @ phi.transpose(0, 2, 1) is (B, N, N_p); a softmax over the last "
         "axis (subtract its max first) gives f; return f @ g.")
def embedded_attention(fn: Callable) -> Callable:
    """Notebook 04: the embedded-Gaussian non-local operation ``fn(theta, phi, g) -> y``."""
    far = np.array([[[30.0, 30.0], [-30.0, -30.0], [1.0, 0.0]]])   # scores near +1,800,
    near = np.array([[[30.0, 30.0], [29.0, 31.0], [0.0, 1.0]]])     # -1,800 and 30: each row
    cases = _attention_cases(10) + [                                # needs its own maximum
        Case((np.full((1, 2, 2), 30.0), np.full((1, 3, 2), 30.0), np.eye(3)[None])),
        Case((far, near, np.eye(3)[None])),
        Case((np.concatenate([far, -far]), np.concatenate([near, near]),
              np.concatenate([np.eye(3)[None]] * 2)))]
    return check_exercise(
        fn, lambda t, p, g: reference.embedded_attention(t, p, g)[0], cases,
        title="embedded_attention")


@exercise(
    points=1,
    idea="the same as the embedded version but without a softmax: the raw dot products are "
         "divided by the number of keys.",
    hint="f = theta @ phi.transpose(0, 2, 1) divided by N_p = phi.shape[1], the number of "
         "keys (not a softmax); return f @ g.")
def dot_attention(fn: Callable) -> Callable:
    """Notebook 04: the dot-product non-local operation ``fn(theta, phi, g) -> y``."""
    return check_exercise(
        fn, lambda t, p, g: reference.dot_attention(t, p, g)[0], _attention_cases(11),
        title="dot_attention")


@exercise(
    points=1,
    idea="group H and W into pairs (an odd last row or column is dropped) and keep the largest "
         "value of each 2 x 2 block; a reshape does this without loops.",
    hint="crop H and W to even sizes, reshape (B, C, H/2, 2, W/2, 2) and take the max over "
         "axes 3 and 5.")
def max_pool_2x2(fn: Callable) -> Callable:
    """Notebook 04: spatial 2 x 2 max pooling of (B, C, H, W) maps for subsampled non-local."""
    rng = np.random.default_rng(12)
    cases = [Case((rng.normal(size=s),)) for s in [(2, 3, 4, 6), (1, 2, 5, 7), (1, 1, 2, 2)]]
    return check_exercise(
        fn, reference.max_pool_spatial, cases, title="max_pool_2x2")


def _tiled_cases() -> list[Case]:
    rng = np.random.default_rng(13)

    def qkv(b: int, n: int, m: int, d: int, e: int, size: float) -> tuple:
        return (rng.normal(size=(b, n, d)) * size, rng.normal(size=(b, m, d)) * size,
                rng.normal(size=(b, m, e)))

    rising = rng.normal(size=(1, 10, 3))           # key norms grow tile by tile: the maximum
    keys = rng.normal(size=(1, 10, 3)) * np.arange(1, 11)[None, :, None]   # moves every tile
    return [Case(qkv(2, 6, 7, 3, 2, 1.0), {"tile": 3}),
            Case((rising, keys, rng.normal(size=(1, 10, 4))), {"tile": 2}),
            Case(qkv(1, 5, 4, 2, 3, 1.0), {"tile": 1}),
            Case(qkv(2, 3, 5, 4, 2, 1.0), {"tile": 8}),
            Case(qkv(1, 4, 9, 2, 2, 25.0), {"tile": 4}),      # scores in the hundreds
            Case((np.array([[[1.0], [2.0], [3.0]]]), np.arange(8.0)[None, :, None] * 150,
                  rng.normal(size=(1, 8, 2))), {"tile": 4}),   # later tiles score 1,800 more
            Case((np.array([[[-30.0], [2.0]]]), np.full((1, 6, 1), 30.0) + rng.random((1, 6, 1)),
                  rng.normal(size=(1, 6, 2))), {"tile": 4})]   # query 0 scores all near -900


def _tiled_memory(fn: Callable) -> str | None:
    """None when ``fn`` never holds much more than one tile of scores, else what is wrong.

    The peak is NumPy's (``tracemalloc``), which the function's own tracemalloc calls cannot
    end or reset; PyTorch's allocations are invisible to it, so a function that computes with
    PyTorch is told that the exercise is NumPy.
    """
    from ..measure import peak_bytes

    n, d, tile = 512, 8, 16
    rng = np.random.default_rng(14)
    q, k, v = (rng.normal(size=(1, n, d)) for _ in range(3))
    ran = _torch_calls(functools.partial(fn, q[:, :64], k[:, :64], v[:, :64], tile=tile)) if (
        "torch" in sys.modules) else []
    if ran:
        return (f"your function computes with PyTorch (it called {ran[0][0]}), but this "
                "exercise is NumPy: its memory is measured through NumPy's allocations, which "
                "PyTorch's are not. Write it with np.* functions on the arrays you are given.")
    try:
        _, peak = peak_bytes(fn, q, k, v, tile=tile)
    except RuntimeError as exc:
        return (f"{exc}: your function switched tracemalloc off or restarted it, which ends "
                "any measurement around it. Measure memory outside the function, not inside.")
    full = n * n * 8
    if peak < full / 4:
        return None
    return (f"with N = M = {n} and tile = {tile} your function needed {peak / 2**20:.1f} MiB at "
            f"its peak, as much as the whole (B, N, M) score matrix ({full / 2**20:.1f} MiB); one "
            f"tile of scores is only {n * tile * 8 / 2**10:.0f} KiB. The numbers are right, but "
            "the point of tiling is never to build the full matrix: compute the scores of one "
            "tile of keys at a time.")


@exercise(
    points=2,
    idea="walk over the keys one tile at a time; for each query keep three running "
         "quantities: the largest score seen so far m, the sum l of exp(score - m) and the "
         "weighted sum of values. When a tile raises the maximum, multiply the old sum and the "
         "old output by exp(m_old - m_new) before adding the tile's terms; divide by l at the "
         "end. Never build the whole score matrix.",
    hint="m = np.full((B, N, 1), -np.inf); l = np.zeros((B, N, 1)); out = np.zeros((B, N, e)); "
         "for start in range(0, M, tile): s = q @ k[:, start:start + tile].transpose(0, 2, 1); "
         "m_new = np.maximum(m, s.max(-1, keepdims=True)); r = np.exp(m - m_new); "
         "p = np.exp(s - m_new); l = l * r + p.sum(-1, keepdims=True); "
         "out = out * r + p @ v[:, start:start + tile]; m = m_new. Return out / l.")
def tiled_attention(fn: Callable) -> Callable:
    """Notebook 04: the online softmax, ``fn(q, k, v, tile) -> softmax(q k^T) v`` (B, N, e),
    computed one tile of keys at a time; checked for values and for its peak memory."""
    return check_exercise(fn, reference.tiled_attention, _tiled_cases(), title="tiled_attention",
                          rtol=1e-9, then=_tiled_memory)


@functools.cache
def _embedded_nonlocal() -> type[nn.Module]:
    """``modules.NonLocalBlock`` (embedded Gaussian) with the exercise's constructor."""
    from .. import modules

    class NonLocal(modules.NonLocalBlock):
        """Embedded-Gaussian non-local block, ``NonLocal(channels, inter_channels=None, dim=2,
        subsample=False, scale=False)``; x (B, C, *S) -> x + bn(w_z(softmax(theta phi^T) g))."""

        def __init__(self, channels: int, inter_channels: int | None = None, dim: int = 2,
                     subsample: bool = False, scale: bool = False) -> None:
            super().__init__(channels, inter_channels, "embedded", dim, subsample, scale)

    NonLocal.__qualname__ = "NonLocal"
    return NonLocal


def _starts_as_identity(module: nn.Module, shape: tuple[int, ...]) -> str | None:
    """A new non-local block returns its input unchanged, through a zero batch-norm scale."""
    import torch

    bn, w_z = getattr(module, "bn", None), getattr(module, "w_z", None)
    if bn is None or w_z is None:
        return None                       # the structure check that follows names what is missing
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = module(x)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        return None                       # reported, with the case, by the full check
    if not torch.equal(bn.weight, torch.zeros_like(bn.weight)) or not torch.equal(
            bn.bias, torch.zeros_like(bn.bias)):
        return ("a new block must start as the identity, through its batch norm: set bn.weight "
                "(the scale gamma) and bn.bias to zero in __init__ (nn.init.zeros_), as the paper "
                "does.")
    if not bool(w_z.weight.detach().abs().sum() > 0):
        return ("w_z.weight is all zeros as well as the batch norm's scale: then no gradient "
                "reaches gamma or w_z (each is multiplied by the other), and the block never "
                "learns. Zero only bn.weight and bn.bias; keep w_z's default initialisation.")
    if not torch.equal(out, x):
        return (f"a new block must return its input unchanged (largest change "
                f"{(out - x).abs().max().item():.1e}); add the input back (z = x + bn(...)).")
    return None


@exercise(
    points=2,
    idea="project x with three 1x1 convolutions (theta, phi, g, to C_i channels), flatten the "
         "positions so that each map is (B, N, C_i), compare every query (theta) with every key "
         "(phi) by a dot product, divided by sqrt(C_i) when scale is set, softmax over the keys, "
         "average g with these weights, bring the result back to (B, C_i, *S), project to C "
         "channels with w_z, batch-normalise with bn (scale and shift initialised to zero) and "
         "add x. Subsampling max-pools what phi and g see, by 2 in space and never in time.",
    hint="conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dim], likewise BatchNorm1d/2d/3d and "
         "MaxPool1d(2)/MaxPool2d(2)/MaxPool3d((1, 2, 2)); in forward: keys = pool(x) if subsample "
         "else x; t = lambda m: m.flatten(2).transpose(1, 2); s = t(theta(x)) @ "
         "t(phi(keys)).transpose(1, 2), times C_i ** -0.5 if scale; y = softmax(s, -1) @ "
         "t(g(keys)); return x + bn(w_z(y.transpose(1, 2).reshape(B, C_i, *x.shape[2:]))).")
def NonLocal(cls: Callable) -> Callable:
    """Notebook 04: ``class NonLocal(nn.Module)``, ``(channels, inter_channels=None, dim=2,
    subsample=False, scale=False)`` with ``theta``, ``phi``, ``g``, ``w_z`` and ``bn``; the
    embedded-Gaussian block for 1-, 2- and 3-D inputs, starting as the identity."""
    builds = [Case((8,)), Case((6, 2), {"dim": 1, "scale": True}),
              Case((8,), {"dim": 3, "subsample": True}),
              Case((4,), {"subsample": True, "scale": True}), Case((6, 3), {"dim": 1,
                                                                           "subsample": True})]
    shapes = [[(2, 8, 6, 5), (1, 8, 4, 4)], [(2, 6, 9)], [(2, 8, 3, 4, 4), (1, 8, 2, 5, 3)],
              [(2, 4, 6, 7)], [(2, 6, 7)]]
    return check_module(cls, _embedded_nonlocal(), builds, shapes, title="NonLocal",
                        fresh=_starts_as_identity, large=30.0)
