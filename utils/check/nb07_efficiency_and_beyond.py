"""Notebook 07, Efficiency and beyond: GCNet's context and its non-local form, the module, ECA."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .. import reference
from .core import Case, check_exercise, exercise
from .module_check import _new_block_output, check_module

if TYPE_CHECKING:
    from torch import nn


@exercise(
    points=1,
    idea="a 1 x 1 convolution (a dot product with w_k over channels, plus b_k) scores every "
         "position; a stable softmax over positions gives the map a, which pools the features "
         "into one context vector.",
    hint="flat = x.reshape(B, C, -1); scores = np.einsum('c,bcn->bn', w_k, flat) + b_k; "
         "subtract the row maximum before np.exp (large inputs!), normalise each row to sum "
         "1, and return (np.einsum('bcn,bn->bc', flat, a), a).")
def gc_context(fn: Callable) -> Callable:
    """Notebook 07: GCNet's context modelling ``fn(x, w_k, b_k) -> (context, a)``."""
    rng = np.random.default_rng(18)
    cases = [Case((rng.normal(size=(2, 5, 3, 4)), rng.normal(size=5), 0.3)),
             Case((rng.normal(size=(1, 3, 2, 2)) * 30, rng.normal(size=3), -2.0)),
             Case((rng.normal(size=(1, 4, 5, 1)), np.zeros(4), 0.0)),
             Case((np.full((1, 2, 2, 2), 40.0) * [[[[1.0]], [[0.5]]]],  # scores near 1,000:
                   np.array([20.0, 2.0]), 1.0)),                      # exp overflows unshifted
             Case((np.concatenate([np.full((1, 2, 2, 2), 40.0), np.full((1, 2, 2, 2), -40.0)])
                   + rng.normal(size=(2, 2, 2, 2)), np.array([20.0, 2.0]), 1.0)),   # +/- 880
             Case((np.array([[[[0.0, 40.0, 80.0]], [[1.0, 0.0, -1.0]]]]),   # one row of scores
                   np.array([10.0, 0.5]), 0.0))]                          # spans 0 to 800
    return check_exercise(
        fn, reference.gc_context, cases, title="gc_context", rtol=1e-6, atol=1e-9)


@exercise(
    points=2,
    idea="write the block the non-local way: score every key once (w_k . x_j + b_k), take a "
         "stable softmax over the keys, and give every query that same row of an N x N matrix "
         "(not a softmax over the queries); each query then averages all positions with its row "
         "(its own context), the transform (W1 and b1, LayerNorm over the C/r numbers of each "
         "query with eps 1e-5, ln_gamma and ln_beta, ReLU, W2 and b2) runs on every query's "
         "context, and the result is added to x at that query's position.",
    hint="tokens = x.reshape(B, C, N).transpose(0, 2, 1) is (B, N, C); scores = tokens @ w_k + "
         "b_k is (B, N); row = its softmax over axis 1 (subtract the row maximum first); "
         "A = np.repeat(row[:, None, :], N, axis=1); y = A @ tokens; h = y @ w1.T + b1; "
         "h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5) * "
         "ln_gamma + ln_beta, then np.maximum(h, 0); t = h @ w2.T + b2 is (B, N, C); return "
         "(x + t.transpose(0, 2, 1).reshape(x.shape), A).")
def gc_as_nonlocal(fn: Callable) -> Callable:
    """Notebook 07: the GC block computed as a non-local block whose attention rows are all
    the same, ``fn(x, params) -> (z (B, C, H, W), attention (B, N, N))``."""
    rng = np.random.default_rng(20)

    def params(channels: int, reduction: int, b_k: float, **change: np.ndarray) -> dict:
        return {**reference.init_gc(channels, reduction, rng), "b_k": b_k, **change}

    cases = [Case((rng.normal(size=(2, 8, 3, 4)), params(8, 2, 0.3))),
             Case((rng.normal(size=(3, 9, 2, 5)), params(9, 3, -2.0))),
             Case((rng.normal(size=(1, 6, 4, 1)), params(6, 1, 0.0))),
             Case((40.0 + rng.normal(size=(1, 4, 2, 3)),                # scores near 900: exp
                   params(4, 2, 1.0, w_k=np.array([20.0, 2.0, -1.0, 0.5]))))]  # overflows
    return check_exercise(
        fn, reference.gc_as_nonlocal, cases, title="gc_as_nonlocal", rtol=1e-7, atol=1e-10)


def _gc_starts_as_identity(module: nn.Module, shape: tuple[int, ...]) -> str | None:
    """A new global context block returns its input unchanged, through a zero last
    convolution, and its first convolution is not zero as well."""
    import torch

    try:
        first, last = module.transform[0], module.transform[-1]
        w_first, w_last, b_last = first.weight, last.weight, last.bias
        if not all(isinstance(t, torch.Tensor) for t in (w_first, w_last, b_last)):
            return None
    except Exception:  # the structure check that follows names what is missing
        return None
    if not (torch.equal(w_last, torch.zeros_like(w_last))
            and torch.equal(b_last, torch.zeros_like(b_last))):
        return ("a new block must start as the identity, as in the authors' code: set the last "
                "convolution's weight and bias (transform[-1]) to zero in __init__ "
                "(nn.init.zeros_).")
    if not bool(w_first.detach().abs().sum() > 0):
        return ("transform[0].weight is all zeros as well as the last convolution: then the "
                "transform ignores the context at the start and its first convolution gets no "
                "gradient until the last one moves. Zero only the last convolution; keep the "
                "others' default initialisation.")
    ran = _new_block_output(module, shape)
    if ran is None:
        return None
    x, out = ran
    if not torch.equal(out, x):
        return (f"a new block must return its input unchanged (largest change "
                f"{(out - x).abs().max().item():.1e}): with the last convolution at zero the "
                "transform gives zeros, so fuse by addition, z = x + transform(context).")
    return None


@exercise(
    points=2,
    idea="context modelling: a 1x1 convolution named context (C to 1, with bias) scores every "
         "position, a softmax over the H*W positions (not over channels) makes one map, and the "
         "map pools x into a context vector (B, C, 1, 1); transform: an nn.Sequential named "
         "transform of a 1x1 convolution C to C // r, nn.LayerNorm([C // r, 1, 1]), ReLU and a "
         "1x1 convolution C // r to C; fusion: add the result to x at every position. The last "
         "convolution starts at zero, so a new block is the identity.",
    hint="in __init__: self.context = nn.Conv2d(channels, 1, 1); hidden = channels // "
         "reduction; self.transform = nn.Sequential(nn.Conv2d(channels, hidden, 1), "
         "nn.LayerNorm([hidden, 1, 1]), nn.ReLU(), nn.Conv2d(hidden, channels, 1)); then "
         "nn.init.zeros_(self.transform[-1].weight) and the same for its bias. In forward: "
         "a = torch.softmax(self.context(x).flatten(1), dim=1) is (B, N); c = x.flatten(2) @ "
         "a[:, :, None] is (B, C, 1); return x + self.transform(c[..., None]).")
def GlobalContext(cls: Callable) -> Callable:
    """Notebook 07: ``class GlobalContext(nn.Module)``, ``(channels, reduction=16)`` with
    ``context`` and ``transform``; x (B, C, H, W) -> x + transform(softmax-pooled context),
    starting as the identity."""
    from .. import modules

    builds = [Case((8,), {"reduction": 2}), Case((12,), {"reduction": 3}), Case((32,)),
              Case((6,), {"reduction": 1})]
    shapes = [[(2, 8, 5, 3), (1, 8, 4, 4)], [(2, 12, 3, 6)], [(2, 32, 2, 3)],
              [(1, 6, 7, 2), (3, 6, 1, 1)]]
    return check_module(cls, modules.GlobalContext, builds, shapes, title="GlobalContext",
                        fresh=_gc_starts_as_identity, large=300.0)


@exercise(
    points=2,
    idea="average over space, slide the k-wide kernel along the channel axis (zero padding keeps"
         " C outputs), then take the sigmoid.",
    hint="y = x.mean(axis=(2, 3)); pad y with k // 2 zeros on both sides of the channel "
         "axis; every output channel is the dot product of w with its window of k "
         "neighbours (np.lib.stride_tricks.sliding_window_view); then the sigmoid.")
def eca_gate(fn: Callable) -> Callable:
    """Notebook 07: ECA's channel weights ``fn(x, w) -> s (B, C)``."""
    rng = np.random.default_rng(19)
    cases = [Case((rng.normal(size=(2, 8, 3, 3)), rng.normal(size=3))),
             Case((rng.normal(size=(1, 5, 2, 4)), rng.normal(size=5))),
             Case((rng.normal(size=(3, 4, 1, 1)), np.array([0.0, 1.0, 0.0])))]
    return check_exercise(
        fn, lambda x, w: reference.eca_forward(x, w)[1], cases, title="eca_gate")


@exercise(
    points=2,
    idea="squeeze each channel to its mean over H and W, read the C means as one sequence of "
         "length C (one input channel), slide one k-tap kernel along it with no bias and k // 2 "
         "zeros padded at each end, so that each channel's window is centred on it, take the "
         "sigmoid and scale each channel of x. k is kernel_size when given, else psi(C) as the "
         "paper's code listing rounds it (truncate, then make an even value odd by adding 1).",
    hint="in __init__: t = int(abs((np.log2(channels) + 1) / 2)); k = kernel_size if "
         "kernel_size is not None else (t if t % 2 else t + 1); self.conv = nn.Conv1d(1, 1, k, "
         "padding=k // 2, bias=False). In forward: y = x.mean((2, 3))[:, None, :] is (B, 1, C); "
         "s = torch.sigmoid(self.conv(y))[:, 0] is (B, C); return x * s[:, :, None, None].")
def ECA(cls: Callable) -> Callable:
    """Notebook 07: ``class ECA(nn.Module)``, ``(channels, kernel_size=None)`` with ``conv`` (a
    bias-free nn.Conv1d(1, 1, k)); x (B, C, H, W) -> x * sigmoid(conv1d over channels of
    mean_hw x), k from C when not given."""
    from .. import modules

    # psi(C) = (log2 C + 1) / 2 is 3.5 at C = 64 and 5.5 at C = 1,024, where truncating (the
    # code listing: k = 3, 5) and rounding or ceil (k = 5, 7) part; at C <= 7 it is below 2,
    # where k = 1 and a floor of 3 part.
    builds = [Case((16,)), Case((128,)), Case((2048,)), Case((10,), {"kernel_size": 5}),
              Case((7,), {"kernel_size": 1}), Case((64,)), Case((1024,)), Case((6,))]
    shapes = [[(2, 16, 3, 5), (1, 16, 4, 4)], [(2, 128, 2, 3)], [(1, 2048, 2, 1)],
              [(3, 10, 4, 2)], [(2, 7, 3, 3)], [(2, 64, 2, 2)], [(2, 1024, 1, 2)],
              [(2, 6, 3, 2)]]
    return check_module(cls, modules.EfficientChannelAttention, builds, shapes, title="ECA")
