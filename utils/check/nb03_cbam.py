"""Notebook 03, CBAM: channel and spatial attention in NumPy and as modules, attention on the
digit box.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .. import datasets, reference
from .core import Case, check_exercise, exercise
from .module_check import check_module
from .nb02_squeeze_excitation import _SE_BUILDS, _SE_SHAPES, _mlp_case

if TYPE_CHECKING:
    from torch import nn


@exercise(
    points=1,
    idea="as in SE, but squeeze twice (average and maximum over space), pass both descriptors "
         "through the same MLP, and add the two results before the sigmoid.",
    hint="avg = x.mean(axis=(2, 3)) and mx = x.max(axis=(2, 3)) are (B, C); pass both "
         "through the SAME mlp(z) = relu(z @ w1.T + b1) @ w2.T + b2; "
         "Mc = sigmoid(mlp(avg) + mlp(mx)); return x * Mc[:, :, None, None].")
def channel_attention(fn: Callable) -> Callable:
    """Notebook 03: CBAM channel attention ``fn(x, params) -> out``, avg and max branches."""
    rng = np.random.default_rng(6)
    cases = [_mlp_case(rng, 2, 8, 4, 5, 6), _mlp_case(rng, 1, 16, 8, 4, 4),
             _mlp_case(rng, 2, 6, 3, 1, 5)]
    return check_exercise(
        fn, lambda x, p: reference.channel_attention_forward(x, p)[0], cases,
        title="channel_attention")


@exercise(
    points=1,
    idea="pool across channels (mean, then max) into a 2-channel map, convolve it to one channel"
         " with 'same' padding, take the sigmoid, and scale every channel by that map.",
    hint="pooled = np.stack([x.mean(axis=1), x.max(axis=1)], axis=1) is (B, 2, H, W) in the "
         "paper's order (mean first); logits, _ = conv2d_same(pooled, w, b); "
         "Ms = sigmoid(logits[:, 0]); return x * Ms[:, None].")
def spatial_attention(fn: Callable) -> Callable:
    """Notebook 03: CBAM spatial attention ``fn(x, params) -> out`` (paper order: mean, max)."""
    rng = np.random.default_rng(7)
    cases = [Case((rng.normal(size=(b, c, h, w)), {"w": rng.normal(size=(1, 2, k, k)) * 0.3,
                                                   "b": rng.normal(size=1)}))
             for b, c, h, w, k in [(2, 4, 6, 7, 3), (1, 8, 9, 9, 7), (2, 3, 5, 4, 5)]]
    return check_exercise(
        fn, lambda x, p: reference.spatial_attention_forward(x, p)[0], cases,
        title="spatial_attention")


@exercise(
    points=1,
    idea="as your SqueezeExcitation, but squeeze twice, average and maximum over space; both "
         "(B, C) descriptors go through the SAME MLP (one pair of layers, fc1 and fc2, shared by "
         "the two branches), and the two results are added before the sigmoid.",
    hint="layers as in SqueezeExcitation (fc1, fc2); in forward: def mlp(z): return "
         "self.fc2(F.relu(self.fc1(z))); s = torch.sigmoid(mlp(x.mean((2, 3))) + "
         "mlp(x.amax((2, 3)))); return x * s[:, :, None, None]. No second pair of layers for "
         "the max branch.")
def ChannelAttention(cls: Callable) -> Callable:
    """Notebook 03: ``class ChannelAttention(nn.Module)``, ``(channels, reduction=16)`` with
    ``fc1``/``fc2``; x (B, C, H, W) -> x * sigmoid(MLP(mean_hw x) + MLP(max_hw x))."""
    from .. import modules

    return check_module(cls, modules.ChannelAttention, _SE_BUILDS, _SE_SHAPES,
                        title="ChannelAttention")


@functools.cache
def _paper_spatial_attention() -> type[nn.Module]:
    """``modules.SpatialAttention`` (variant 'paper') with the exercise's constructor."""
    from .. import modules

    class SpatialAttention(modules.SpatialAttention):
        """CBAM spatial attention as in the paper, ``SpatialAttention(kernel_size=7)``:
        x * sigmoid(conv_k([mean_c x; max_c x])), x (B, C, H, W)."""

        def __init__(self, kernel_size: int = 7) -> None:
            super().__init__(kernel_size=kernel_size)

    SpatialAttention.__qualname__ = "SpatialAttention"
    return SpatialAttention


@exercise(
    points=1,
    idea="pool across the channels into two maps, the mean first and then the maximum, stack "
         "them as a 2-channel image, convolve it to one channel with a k x k convolution (with "
         "bias, named conv) that keeps H and W, take the sigmoid, and scale every channel of x "
         "by that map.",
    hint="self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2); in forward: "
         "pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1) is "
         "(B, 2, H, W); return x * torch.sigmoid(self.conv(pooled)) (the (B, 1, H, W) map "
         "broadcasts over the channels).")
def SpatialAttention(cls: Callable) -> Callable:
    """Notebook 03: ``class SpatialAttention(nn.Module)``, ``(kernel_size=7)`` with ``conv``;
    x (B, C, H, W) -> x * sigmoid(conv([mean_c x; max_c x])) (B, C, H, W)."""
    builds = [Case(), Case((3,)), Case(kwargs={"kernel_size": 5})]
    shapes = [[(2, 4, 6, 9), (1, 3, 5, 4)], [(3, 5, 4, 7), (1, 2, 8, 5)], [(2, 6, 7, 4)]]
    return check_module(cls, _paper_spatial_attention(), builds, shapes,
                        title="SpatialAttention")


@exercise(
    points=1,
    idea="CBAM applies channel attention ('what') first and spatial attention ('where') to its "
         "result; it owns one of each, built from your own classes, as submodules named "
         "channel and spatial.",
    hint="self.channel = ChannelAttention(channels, reduction); self.spatial = "
         "SpatialAttention(kernel_size); forward returns self.spatial(self.channel(x)).")
def CBAM(cls: Callable) -> Callable:
    """Notebook 03: ``class CBAM(nn.Module)``, ``(channels, reduction=16, kernel_size=7)`` with
    submodules ``channel`` and ``spatial``; x (B, C, H, W) -> spatial(channel(x))."""
    from .. import modules

    builds = [Case((8,), {"reduction": 2, "kernel_size": 3}), Case((16, 4)), Case((32,))]
    shapes = [[(2, 8, 5, 7), (1, 8, 6, 4)], [(3, 16, 7, 6), (1, 16, 4, 9)], [(2, 32, 3, 5)]]
    return check_module(cls, modules.CBAM, builds, shapes, title="CBAM")


@exercise(
    points=1,
    idea="mark which cells of each map fall inside its box (the box is in image pixels, the map "
         "is coarser) and divide the map's mass inside the box by its total mass.",
    hint="mask = box_mask(boxes, maps.shape[1:], image_size) marks the cells inside each "
         "box; return (maps * mask).sum(axis=(1, 2)) / maps.sum(axis=(1, 2)).")
def attention_in_box(fn: Callable) -> Callable:
    """Notebook 03: fraction of attention mass on the digit box, ``fn(maps, boxes, size)``."""
    rng = np.random.default_rng(8)
    cases = []
    for n, h, size in [(4, 10, 40), (3, 20, 40), (2, 5, 30)]:
        tops = rng.integers(0, size - 16, size=(n, 2))
        boxes = np.concatenate([tops, tops + 16], axis=1)
        cases.append(Case((rng.random((n, h, h)), boxes, size)))
    return check_exercise(
        fn, datasets.attention_in_box, cases, title="attention_in_box")
