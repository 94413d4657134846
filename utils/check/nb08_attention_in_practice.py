"""Notebook 08, Attention in practice: temporal attention over frames, in NumPy and as a module."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .. import reference
from .core import Case, check_exercise, exercise
from .module_check import _new_block_output, check_module

if TYPE_CHECKING:
    from torch import nn


def _temporal_case(rng: np.random.Generator, b: int, c: int, r: int, t: int,
                   scale: float = 1.0) -> Case:
    return Case((rng.normal(size=(b, c, t)), reference.init_temporal(c, r, rng, scale)))


@exercise(
    points=2,
    idea="every frame is scored by the same small MLP from its descriptor s_t (the C channel "
         "means of frame t: s is (B, C, T), channels first): W1 and b1, a ReLU, then w2 and "
         "b2 down to one number e_t; the T scores of each clip then compete in a softmax over "
         "the frames (not over the batch, and not a sigmoid per frame), so that each clip's "
         "weights are positive and sum to 1.",
    hint="z = s.transpose(0, 2, 1) is (B, T, C) (transpose, not reshape); e = "
         "(np.maximum(z @ w1.T + b1, 0) @ w2.T + b2)[..., 0] is (B, T); subtract "
         "e.max(axis=1, keepdims=True) before np.exp (large scores!), then divide by the sum "
         "over axis 1. No factor T here: a sums to 1.")
def temporal_weights(fn: Callable) -> Callable:
    """Notebook 08: temporal attention's frame weights ``fn(s, params) -> a (B, T)`` from
    frame descriptors s (B, C, T)."""
    rng = np.random.default_rng(22)
    big = reference.init_temporal(4, 2, rng)
    big["w2"] = big["w2"] * 400.0                       # scores in the hundreds: exp overflows
    cases = [_temporal_case(rng, 3, 8, 2, 5), _temporal_case(rng, 2, 6, 3, 4),
             _temporal_case(rng, 1, 12, 4, 7), _temporal_case(rng, 2, 5, 1, 1),
             Case((rng.normal(size=(2, 4, 6)) * 3.0, big))]
    return check_exercise(fn, reference.temporal_weights, cases, title="temporal_weights")


def _temporal_starts_as_identity(module: nn.Module, shape: tuple[int, ...]) -> str | None:
    """A new temporal-attention block returns its input unchanged, through a zero fc2, and
    its fc1 is not zero as well."""
    import torch

    try:
        w1, w2, b2 = module.fc1.weight, module.fc2.weight, module.fc2.bias
        if not all(isinstance(p, torch.Tensor) for p in (w1, w2, b2)):
            return None
    except Exception:  # the structure check that follows names what is missing
        return None
    if not (torch.equal(w2, torch.zeros_like(w2)) and torch.equal(b2, torch.zeros_like(b2))):
        return ("a new block must start as the identity: set fc2's weight and bias to zero in "
                "__init__ (nn.init.zeros_), so that every frame scores 0 and gets weight 1/T.")
    if not bool(w1.detach().abs().sum() > 0):
        return ("fc1.weight is all zeros as well as fc2: then every frame gets the same hidden "
                "vector and fc1 no gradient until fc2 moves. Zero only fc2; keep fc1's default "
                "initialisation.")
    ran = _new_block_output(module, shape)
    if ran is None:
        return None
    x, out = ran
    if torch.allclose(out, x, rtol=1e-5, atol=1e-6):
        return None
    frames = shape[2]
    why = {frames: "each frame was scaled by T: its weight came out as 1, not 1/T; take the "
                   "softmax over the T frames of each clip (dim=1 of the (B, T) scores), not "
                   "over an axis of size 1",
           1 / frames: "each frame was scaled by 1/T: multiply by T * a_t, not a_t alone",
           0.5: "each frame was scaled by 0.5, a sigmoid of 0: use a softmax over the frames",
           frames / 2: "each frame was scaled by T/2, T times a sigmoid of 0: use a softmax "
                       "over the frames"}
    reason = next((text for factor, text in why.items()
                   if torch.allclose(out, x * factor, rtol=1e-5, atol=1e-6)),
                  "with fc2 at zero every score is 0, the softmax over the T frames gives each "
                  "1/T, and T * a_t * x_t = x_t")
    return (f"a new block must return its input unchanged (largest change "
            f"{(out - x).abs().max().item():.1e}): {reason}.")


@exercise(
    points=2,
    idea="squeeze every frame of x (B, C, T, H, W) to its mean over H and W, so that s is "
         "(B, T, C) with the frames along the rows; score each frame with fc1 (C to C // r), a "
         "ReLU and fc2 (C // r to 1); a softmax over the T frames of each clip gives the "
         "weights a (B, T); return T * a_t * x_t, every frame of x scaled by its own weight. fc2 "
         "starts at zero (weight and bias), so a new block is the identity.",
    hint="in __init__: super().__init__(); self.fc1 = nn.Linear(channels, channels // "
         "reduction); self.fc2 = nn.Linear(channels // reduction, 1); nn.init.zeros_ on "
         "self.fc2.weight and self.fc2.bias. In forward: s = x.mean((3, 4)).transpose(1, 2) is "
         "(B, T, C); e = self.fc2(F.relu(self.fc1(s)))[..., 0] is (B, T); a = torch.softmax(e, "
         "dim=1); return x * (x.shape[2] * a)[:, None, :, None, None].")
def TemporalAttention(cls: Callable) -> Callable:
    """Notebook 08: ``class TemporalAttention(nn.Module)``, ``(channels, reduction=4)`` with
    ``fc1``/``fc2``; x (B, C, T, H, W) -> T * softmax_t(fc2(relu(fc1(mean_hw x)))) * x,
    starting as the identity."""
    from .. import modules

    builds = [Case((8,), {"reduction": 2}), Case((16,)), Case((6,), {"reduction": 3}),
              Case((4,), {"reduction": 1})]
    shapes = [[(3, 8, 5, 3, 4), (1, 8, 3, 2, 2)], [(2, 16, 4, 2, 3)], [(2, 6, 6, 1, 5)],
              [(2, 4, 1, 3, 3), (1, 4, 7, 2, 2)]]
    return check_module(cls, modules.TemporalAttention, builds, shapes,
                        title="TemporalAttention", fresh=_temporal_starts_as_identity,
                        large=3000.0)
