"""Notebook 07, Efficiency and beyond: the non-local block with one map (GCNet's derivation),
the GC module, ECA's gate and module."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .. import reference
from .core import Case, check_exercise, exercise
from .module_check import _new_block_output, _torch_calls, check_module

if TYPE_CHECKING:
    from torch import nn


def _full_block_at_zero_theta(x: np.ndarray, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """The whole non-local block with W_theta = 0: (output, row 0 of its attention matrix)."""
    inter, channels = params["w_phi"].shape
    out, f = reference.nonlocal_forward(x, {**params, "w_theta": np.zeros((inter, channels))},
                                        "embedded")
    return out, f[:, 0]


def _query_free_params(channels: int, inter: int, rng: np.random.Generator,
                       theta_bias: float = 1.0) -> dict:
    """A non-local block's parameters without w_theta (it is zero), in the order the block
    uses them."""
    p = reference.init_nonlocal(channels, inter, "embedded", rng)
    return {"b_theta": p["b_theta"] * theta_bias, "w_phi": p["w_phi"], "b_phi": p["b_phi"],
            "w_g": p["w_g"], "b_g": p["b_g"], "w_z": p["w_z"], "b_z": p["b_z"],
            "gamma": p["gamma"], "beta": p["beta"]}


def _query_free_memory(fn: Callable) -> str | None:
    """None when ``fn`` never holds anything near an N x N array (NumPy's peak, tracemalloc)."""
    import functools
    import sys

    from ..measure import peak_bytes

    rng = np.random.default_rng(27)
    n_side, c = 32, 8
    x = rng.normal(size=(1, c, n_side, n_side))
    params = _query_free_params(c, 4, rng)
    ran = _torch_calls(functools.partial(fn, x[:, :, :4, :4], params)) if (
        "torch" in sys.modules) else []
    if ran:
        return (f"your function computes with PyTorch (it called {ran[0][0]}), but this "
                "exercise is NumPy: its memory is measured through NumPy's allocations, which "
                "PyTorch's are not. Write it with np.* functions on the arrays you are given.")
    try:
        _, peak = peak_bytes(fn, x, params)
    except RuntimeError as exc:
        return (f"{exc}: your function switched tracemalloc off or restarted it, which ends "
                "any measurement around it. Measure memory outside the function, not inside.")
    n = n_side * n_side
    full = n * n * 8
    if peak < full / 4:
        return None
    return (f"with N = {n} positions your function needed {peak / 2**20:.1f} MiB at its peak, "
            f"as much as an N x N matrix ({full / 2**20:.1f} MiB). The numbers are right, but "
            "the point of the derivation is that one map serves every query: compute the N "
            "scores once and never build an N x N array (O(NC) memory).")


@exercise(
    points=3,
    idea="with W_theta = 0 every query theta_i is the same vector b_theta, so the score of key "
         "j does not depend on i: every row of the softmax is one map a over the keys. Expand "
         "b_theta . phi_j to see which vector scores x_j and which term the softmax ignores. "
         "The weights of a sum to 1, so a bias inside the weighted sum comes out unchanged, and "
         "everything after the sum is the same for every query: one vector, added at every "
         "position.",
    hint="flat = x.reshape(B, C, N); w_k = params['w_phi'].T @ params['b_theta'] (C,); scores "
         "= np.einsum('c,bcn->bn', w_k, flat); a = a stable softmax over axis 1 (subtract the "
         "row maximum); c = np.einsum('bcn,bn->bc', flat, a); y = c @ w_g.T + b_g; t = (y @ "
         "w_z.T + b_z) * gamma / np.sqrt(1 + reference.BN_EPS) + beta; return "
         "(x + t[:, :, None, None], a).")
def query_free_nonlocal(fn: Callable) -> Callable:
    """Notebook 07: the embedded-Gaussian non-local block with W_theta = 0, computed without
    an N x N array, ``fn(x, params) -> (out (B, C, H, W), a (B, N))``; compared with the whole
    block (``reference.nonlocal_forward``) at W_theta = 0, then its memory at N = 1,024."""
    rng = np.random.default_rng(21)
    cases = [Case((rng.normal(size=(2, 6, 2, 5)), _query_free_params(6, 6, rng))),  # C_i = C
             Case((rng.normal(size=(2, 8, 3, 4)), _query_free_params(8, 4, rng))),
             Case((rng.normal(size=(3, 5, 4, 1)), _query_free_params(5, 3, rng))),
             Case((rng.normal(size=(1, 4, 3, 3)) * 3,                     # scores in the
                   _query_free_params(4, 4, rng, theta_bias=300.0)))]     # thousands: overflow
    return check_exercise(fn, _full_block_at_zero_theta, cases, title="query_free_nonlocal",
                          rtol=1e-7, atol=1e-10, then=_query_free_memory)


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
    idea="three steps, as in the derivation: context modelling scores every position, takes a "
         "softmax over the H*W positions of each example (not over channels, which a single "
         "score map would turn into all ones) and pools x with that map into one context per "
         "example; a bottleneck transforms the context, with the LayerNorm before the ReLU; "
         "fusion adds the result at every position. The parameter names and shapes in the "
         "exercise fix the layers; the last layer starts at zero so that a new block is the "
         "identity.",
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
    idea="squeeze each channel to its mean over H and W and treat the C means as a sequence "
         "with one channel: one k-tap kernel, the same for every channel and without a bias, "
         "slides along it, with zeros beyond both ends so that each channel's window is centred "
         "on it and C gates come out; the sigmoid of each gates its channel. k is kernel_size "
         "when given, else psi(C) rounded as the paper's code listing rounds it.",
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


@exercise(
    points=3,
    idea="every head is one non-local operation on its own slice of d = D / h channels: after "
         "the three projections, view the last axis as h groups of d and move the heads next "
         "to the batch, so that each head's (T, T) scores compare tokens with its d channels "
         "only, scaled by 1 / sqrt(d), the size of a head's dot product, not of all D channels; "
         "the softmax runs over the keys. Then undo the split in the same order (heads back "
         "after the tokens, then merged into D channels) before the output projection w_z. The "
         "first test case has one head: if it passes and a later one fails, look at how you "
         "split and merge the heads; if it fails, at the scale, the softmax's axis and w_z.",
    hint="in __init__: self.heads = heads; self.theta, self.phi, self.g, self.w_z = "
         "(nn.Linear(dim, dim) for _ in range(4)). In forward: b, t, D = x.shape; d = D // "
         "self.heads; split = lambda u: u.reshape(b, t, self.heads, d).transpose(1, 2) gives "
         "(B, h, T, d); y = F.scaled_dot_product_attention(split(self.theta(x)), "
         "split(self.phi(x)), split(self.g(x))) (its default scale is 1 / sqrt(d)); return "
         "self.w_z(y.transpose(1, 2).reshape(b, t, D)).")
def MultiHeadAttention(cls: Callable) -> Callable:
    """Notebook 07: ``class MultiHeadAttention(nn.Module)``, ``(dim, heads)`` with the linear
    maps ``theta``, ``phi``, ``g`` and ``w_z``; tokens (B, T, D) -> (B, T, D), h non-local
    operations on D / h channels each, concatenated and projected."""
    from .. import vit

    # One head first: a learner whose single head is right and whose heads=4 case fails
    # learns from the case numbers that the split into heads is what is wrong.
    builds = [Case((6,), {"heads": 1}), Case((8,), {"heads": 4}), Case((12,), {"heads": 3}),
              Case((16,), {"heads": 2})]
    shapes = [[(2, 4, 6)], [(2, 5, 8), (1, 7, 8)], [(3, 6, 12)], [(2, 9, 16)]]
    return check_module(cls, vit.MultiHeadAttention, builds, shapes,
                        title="MultiHeadAttention", large=30.0)
