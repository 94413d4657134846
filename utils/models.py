"""ResNet builders with a pluggable attention module on the residual branch.

Both SE and CBAM put the attention module at the end of the residual branch, after the last
batch norm and before the addition of the shortcut. ``attention`` is a callable that takes
the branch's output channels and returns a module, for example
``functools.partial(SqueezeExcitation, reduction=16)``; None gives the plain ResNet.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .validate import boolean, positive_int

AttentionFactory = Callable[[int], nn.Module] | None


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Bias-free convolution ('same' padding) with He initialisation, then batch norm."""
    cin, cout = positive_int(cin, "cin"), positive_int(cout, "cout")
    kernel, stride = positive_int(kernel, "kernel"), positive_int(stride, "stride")
    if kernel % 2 == 0:
        raise ValueError(f"kernel must be odd for 'same' padding, got {kernel}")
    conv = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return nn.Sequential(conv, nn.BatchNorm2d(cout))


def _check_attention(attention: AttentionFactory) -> None:
    if attention is not None and not callable(attention):
        raise ValueError(f"attention must be None or a callable that builds a module from a "
                         f"channel count (e.g. functools.partial(SqueezeExcitation, "
                         f"reduction=16)), got {attention!r}")


def _check_block(cin: int, width: int, stride: int, attention: AttentionFactory,
                 stride_in: str) -> None:
    positive_int(cin, "cin")
    positive_int(width, "width")
    positive_int(stride, "stride")
    _check_attention(attention)
    if stride_in not in ("3x3", "1x1"):
        raise ValueError(f"stride_in must be '3x3' or '1x1', got {stride_in!r}")


class BasicBlock(nn.Module):
    """Two 3x3 convolutions; out = ReLU(attention(branch(x)) + shortcut(x))."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, attention: AttentionFactory = None,
                 stride_in: str = "3x3"):
        super().__init__()
        _check_block(cin, width, stride, attention, stride_in)
        self._assemble(cin, width, stride, attention,
                       [conv_bn(cin, width, 3, stride), nn.ReLU(inplace=True),
                        conv_bn(width, width * self.expansion, 3)])

    def _assemble(self, cin: int, width: int, stride: int, attention: AttentionFactory,
                  branch: list[nn.Module]) -> None:
        cout = width * self.expansion
        self.branch = nn.Sequential(*branch)
        self.attention = attention(cout) if attention else nn.Identity()
        self.shortcut = (conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout
                         else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.attention(self.branch(x)) + self.shortcut(x))


class Bottleneck(BasicBlock):
    """1x1 -> 3x3 -> 1x1 (x4 channels). stride_in='3x3' puts the stride in the 3x3 convolution
    (ResNet v1.5, torchvision); '1x1' puts it in the first 1x1 (the original ResNet)."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, attention: AttentionFactory = None,
                 stride_in: str = "3x3"):
        nn.Module.__init__(self)
        _check_block(cin, width, stride, attention, stride_in)
        s1, s3 = (1, stride) if stride_in == "3x3" else (stride, 1)
        self._assemble(cin, width, stride, attention,
                       [conv_bn(cin, width, 1, s1), nn.ReLU(inplace=True),
                        conv_bn(width, width, 3, s3), nn.ReLU(inplace=True),
                        conv_bn(width, width * self.expansion, 1)])


class ResNet(nn.Module):
    """A ResNet: stem, stages of blocks (the first block of stages 2+ downsamples), global
    average pool, linear classifier. x: (B, in_channels, H, W) -> logits (B, num_classes)."""

    def __init__(self, block: type[BasicBlock], blocks: Sequence[int], widths: Sequence[int],
                 num_classes: int, in_channels: int = 3, stem: str = "imagenet",
                 attention: AttentionFactory = None, stride_in: str = "3x3"):
        super().__init__()
        _check_attention(attention)
        if len(blocks) != len(widths) or not blocks:
            raise ValueError(f"blocks and widths must be equal-length, non-empty; got "
                             f"{list(blocks)} and {list(widths)}")
        num_classes = positive_int(num_classes, "num_classes")
        in_channels = positive_int(in_channels, "in_channels")
        if stem == "imagenet":       # 7x7/2 convolution and 3x3/2 max pool: 224 -> 56
            self.stem = nn.Sequential(conv_bn(in_channels, widths[0], 7, 2), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(3, 2, 1))
        elif stem == "small":        # one 3x3/2 convolution, for small images
            self.stem = nn.Sequential(conv_bn(in_channels, widths[0], 3, 2), nn.ReLU(inplace=True))
        else:
            raise ValueError(f"stem must be 'imagenet' or 'small', got {stem!r}")
        stages, cin = [], widths[0]
        for i, (n, width) in enumerate(zip(blocks, widths, strict=True)):
            layers = []
            for j in range(positive_int(n, f"blocks[{i}]")):
                stride = 2 if i > 0 and j == 0 else 1
                layers.append(block(cin, width, stride, attention, stride_in))
                cin = width * block.expansion
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map (B, C, h, w)."""
        if x.ndim != 4:
            raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


def resnet50(num_classes: int = 1000, attention: AttentionFactory = None,
             stride_in: str = "3x3") -> ResNet:
    """The ImageNet ResNet-50 (blocks 3-4-6-3, widths 64-128-256-512, bottlenecks)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), (64, 128, 256, 512), num_classes,
                  attention=attention, stride_in=stride_in)


def small_resnet(num_classes: int = 10, in_channels: int = 1, attention: AttentionFactory = None,
                 widths: Sequence[int] = (16, 32, 64), blocks: Sequence[int] = (1, 1, 1)) -> ResNet:
    """A small ResNet of basic blocks for the course's CPU experiments."""
    return ResNet(BasicBlock, blocks, widths, num_classes, in_channels, stem="small",
                  attention=attention)


PYRAMID_POOLINGS = ("attention", "average")


class PyramidAttentionNet(nn.Module):
    """A small ResNet whose stage outputs form a spatial pyramid: each is resampled to one
    grid (the sampling function R, bilinear), the maps are concatenated, and K interaction-
    aware attention maps pool the fused features for a linear classifier.

    ia_weight (beta) > 0 adds beta times the interaction-aware loss, eq. (6) of Du et al. on
    the attention maps and the fused features (``modules.interaction_loss``; its variance
    term divided by tr(X X^T) when ``normalise``), as ``aux_loss`` during training;
    ``train_classifier`` adds it to the cross-entropy. ``pooling='average'`` is the control
    without attention: the same fused pyramid, global average pooling, a linear classifier.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, maps: int = 4,
                 grid: int = 10, widths: Sequence[int] = (16, 32, 64), ia_weight: float = 0.0,
                 normalise: bool = True, pooling: str = "attention"):
        super().__init__()
        from .modules import InteractionAwareAttention

        if pooling not in PYRAMID_POOLINGS:
            raise ValueError(f"pooling must be one of {PYRAMID_POOLINGS}, got {pooling!r}")
        if isinstance(ia_weight, bool) or not isinstance(ia_weight, int | float) or not (
                ia_weight >= 0):
            raise ValueError(f"ia_weight must be a number >= 0, got {ia_weight!r}")
        if pooling == "average" and ia_weight > 0:
            raise ValueError("ia_weight must be 0 with pooling='average': the interaction-aware "
                             "loss acts on attention maps, and average pooling has none")
        normalise = boolean(normalise, "normalise")
        maps = positive_int(maps, "maps")
        base = small_resnet(num_classes, in_channels, widths=widths)
        self.stem, self.stages = base.stem, base.stages
        self.grid = positive_int(grid, "grid")
        self.pooling = pooling
        if pooling == "attention":
            self.attention = InteractionAwareAttention(sum(widths), maps)
            self.fc = nn.Linear(maps * sum(widths), num_classes)
        else:
            self.attention = None
            self.fc = nn.Linear(sum(widths), num_classes)
        self.ia_weight, self.normalise = float(ia_weight), normalise
        self.aux_loss: torch.Tensor | None = None

    def fused(self, x: torch.Tensor) -> torch.Tensor:
        """Stage outputs resampled to (grid, grid) and concatenated: (B, sum(widths), g, g)."""
        levels, h = [], self.stem(x)
        for stage in self.stages:
            h = stage(h)
            levels.append(torch.nn.functional.interpolate(h, size=(self.grid, self.grid),
                                                          mode="bilinear", align_corners=False))
        return torch.cat(levels, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.fused(x))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Attention pooling, the interaction-aware loss (training) and the classifier, on
        fused features (B, C, *S): the positions may span space or space and time."""
        from .modules import interaction_loss

        self.aux_loss = None
        if self.attention is None:                                   # the average-pooling control
            return self.fc(features.flatten(2).mean(-1))
        pooled, maps = self.attention.attend(features)               # (B, K, C), (B, K, N)
        if self.training and self.ia_weight > 0:
            self.aux_loss = self.ia_weight * interaction_loss(maps, features, self.normalise)
        return self.fc(pooled.flatten(1))


# ---------------------------------------------------------------------------------------------
# Video networks (notebook 06): clips (B, 1, T, S, S) -> logits

VIDEO_ARCHS = ("c2d", "i3d")
VIDEO_ATTENTION = ("none", "se", "cbam", "nl", "temporal", "cbam+temporal")
NL_AFFINITIES = ("spacetime", "space", "time")


def conv_bn3d(cin: int, cout: int, kernel: tuple[int, int, int],
              stride: tuple[int, int, int] = (1, 1, 1)) -> nn.Sequential:
    """Bias-free 3-D convolution ('same' padding), He initialisation, batch norm, ReLU."""
    cin, cout = positive_int(cin, "cin"), positive_int(cout, "cout")
    for name, value in (("kernel", kernel), ("stride", stride)):
        if (not isinstance(value, tuple | list) or len(value) != 3
                or not all(isinstance(v, int) and v > 0 for v in value)):
            raise ValueError(f"{name} must be three positive integers (t, h, w), got {value!r}")
    if any(k % 2 == 0 for k in kernel):
        raise ValueError(f"kernel must be odd in every axis for 'same' padding, got {kernel}")
    conv = nn.Conv3d(cin, cout, kernel, stride, padding=tuple(k // 2 for k in kernel), bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return nn.Sequential(conv, nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


def _check_clips(x: torch.Tensor, name: str) -> None:
    from .modules import _check_input

    _check_input(x, None, name, ndim=5, expected="(B, C, T, H, W), a batch of clips")


class FrameWise(nn.Module):
    """Apply a 2-D module to every frame of (B, C, T, H, W): T is folded into the batch."""

    def __init__(self, module: nn.Module):
        if not isinstance(module, nn.Module):
            raise ValueError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_clips(x, "FrameWise")
        b, c, t, h, w = x.shape
        y = self.module(x.transpose(1, 2).reshape(b * t, c, h, w))
        return y.reshape(b, t, c, h, w).transpose(1, 2)


def sinusoidal_position_code(channels: int, frames: int, height: int, width: int,
                             base: float = 10000.0) -> torch.Tensor:
    """A fixed position code (channels, frames, height, width) for a (T, H, W) grid.

    The sinusoids of Vaswani et al. (2017), ``sin(p * w_k)`` and ``cos(p * w_k)`` with
    ``w_k = base ** (-k / m)``, k = 0..m-1, applied to each axis separately: the first 2m
    channels code t, the next 2m code h, the next 2m code w, with m = channels // 6; any
    channels left over are zero. For two positions, the dot product of their codes is
    ``sum_k cos(w_k * offset)`` per axis: it depends only on the offset, and it is largest
    (m) when the two share that coordinate.
    """
    channels = positive_int(channels, "channels")
    frames, height = positive_int(frames, "frames"), positive_int(height, "height")
    width = positive_int(width, "width")
    if isinstance(base, bool) or not isinstance(base, int | float) or not base > 1:
        raise ValueError(f"base must be a number greater than 1, got {base!r}")
    m = channels // 6
    if m == 0:
        raise ValueError(f"channels must be at least 6 (a sine and a cosine per axis), "
                         f"got {channels}")
    omega = float(base) ** (-torch.arange(m, dtype=torch.float64) / m)            # (m,)
    code = torch.zeros(channels, frames, height, width, dtype=torch.float64)
    for axis, size in enumerate((frames, height, width)):
        angle = torch.arange(size, dtype=torch.float64)[:, None] * omega           # (size, m)
        shape = [1, 1, 1]
        shape[axis] = size
        for j, part in enumerate((angle.sin(), angle.cos())):
            first = 2 * m * axis + j * m
            code[first:first + m] = part.T.reshape(m, *shape)
    return code.float()


def grid_position_code(channels: int, frames: int, height: int, width: int) -> torch.Tensor:
    """A fixed position code (channels, frames, height, width) whose sinusoids never wrap.

    Laid out as ``sinusoidal_position_code`` (m = channels // 6 sine/cosine pairs per axis,
    t first, then h, then w; spare channels zero), but the frequencies are scaled to the
    grid: on an axis of L cells, ``w_k = pi * (k + 1) / (m * L)``, k = 0..m-1. The largest
    offset, L - 1, turns the fastest sinusoid by less than half a period, so the per-axis
    dot product ``sum_k cos(w_k * offset)`` falls strictly as the offset grows: two far
    cells never look like neighbours (with ``base ** (-k / m)``, w_0 = 1 rad per cell and
    an offset of 6 cells is almost a full turn).
    """
    channels = positive_int(channels, "channels")
    sizes = (positive_int(frames, "frames"), positive_int(height, "height"),
             positive_int(width, "width"))
    m = channels // 6
    if m == 0:
        raise ValueError(f"channels must be at least 6 (a sine and a cosine per axis), "
                         f"got {channels}")
    code = torch.zeros(channels, *sizes, dtype=torch.float64)
    for axis, size in enumerate(sizes):
        omega = math.pi * torch.arange(1, m + 1, dtype=torch.float64) / (m * size)  # (m,)
        angle = torch.arange(size, dtype=torch.float64)[:, None] * omega           # (size, m)
        shape = [1, 1, 1]
        shape[axis] = size
        for j, part in enumerate((angle.sin(), angle.cos())):
            first = 2 * m * axis + j * m
            code[first:first + m] = part.T.reshape(m, *shape)
    return code.float()


POSITION_CODES = {"sinusoidal": sinusoidal_position_code, "grid": grid_position_code}


class VideoNonLocal(nn.Module):
    """A non-local block on (B, C, T, H, W) whose affinities span space and time
    ('spacetime': N = T*H*W positions), one frame ('space': N = H*W, frames folded into the
    batch) or one position across frames ('time': N = T). ``position=True`` adds
    a position code to the input first, as a transformer adds its position embedding to the
    tokens, so the block can compare where and when as well as what: ``code='sinusoidal'``
    (``sinusoidal_position_code``) or ``'grid'`` (``grid_position_code``, frequencies that
    do not wrap on the grid). Other keyword arguments go to ``NonLocalBlock``."""

    def __init__(self, channels: int, affinity: str = "spacetime", position: bool = False,
                 code: str = "sinusoidal", **kwargs):
        super().__init__()
        from .modules import NonLocalBlock

        if affinity not in NL_AFFINITIES:
            raise ValueError(f"affinity must be one of {NL_AFFINITIES}, got {affinity!r}")
        self.affinity = affinity
        self.position = boolean(position, "position")
        if code not in POSITION_CODES:
            raise ValueError(f"code must be one of {tuple(POSITION_CODES)}, got {code!r}")
        self.code = code
        self.block = NonLocalBlock(channels, dim={"spacetime": 3, "space": 2, "time": 1}[affinity],
                                   **kwargs)
        if self.position and channels < 6:
            raise ValueError(f"position=True needs channels >= 6 for the position code, "
                             f"got {channels}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_clips(x, "VideoNonLocal")
        b, c, t, h, w = x.shape
        if self.position:
            x = x + POSITION_CODES[self.code](c, t, h, w).to(x.device, x.dtype)
        if self.affinity == "spacetime":
            return self.block(x)
        if self.affinity == "space":
            return FrameWise(self.block)(x)
        y = self.block(x.permute(0, 3, 4, 1, 2).reshape(b * h * w, c, t))
        return y.reshape(b, h, w, c, t).permute(0, 3, 4, 1, 2)


class VideoNet(nn.Module):
    """A small video network: stem, two stages at 1/4 resolution, a 1x1 stage, global average
    pooling over (T, H, W), a linear classifier.

    arch='c2d': 2-D kernels (1x3x3) in every layer, so frames meet only in the final pooling;
    'i3d': the stem and stage 1 have kernels inflated to 3x3x3. Time is max-pooled by 2 after
    the stem, so a feature after stage 1 sees 8 input frames (3, doubled by the pooling to 4,
    plus 2 pooled steps on each side: 8). attention ('none', 'se', 'cbam', 'nl') is
    inserted after stage 2, and with ``blocks=2`` after stage 1 too. SE and CBAM act on each
    frame; a non-local block's affinities span ``affinity`` ('spacetime', 'space', 'time'), or
    with two blocks a pair such as ('space', 'time'), one per block. Extra keyword arguments go
    to the non-local blocks. 'temporal' (notebook 08) is ``TemporalAttention`` (reduction 4),
    which weights the T/2 frames it sees; 'cbam+temporal' cascades the two: CBAM on each frame
    (channel, then spatial), then temporal attention across the frames. x: (B, 1, T, S, S) ->
    (B, classes).
    """

    def __init__(self, arch: str = "i3d", attention: str = "none",
                 affinity: str | tuple[str, str] = "spacetime", blocks: int = 1,
                 num_classes: int = 6, widths: Sequence[int] = (16, 32, 64), **nl_kwargs):
        super().__init__()
        from .modules import CBAM, SqueezeExcitation, TemporalAttention

        if arch not in VIDEO_ARCHS:
            raise ValueError(f"arch must be one of {VIDEO_ARCHS}, got {arch!r}")
        if attention not in VIDEO_ATTENTION:
            raise ValueError(f"attention must be one of {VIDEO_ATTENTION}, got {attention!r}")
        if blocks not in (1, 2):
            raise ValueError(f"blocks must be 1 or 2, got {blocks!r}")
        if len(widths) != 3:
            raise ValueError(f"widths must have three entries, got {list(widths)}")
        w0, w1, w2 = (positive_int(w, "widths") for w in widths)
        kt = 3 if arch == "i3d" else 1
        self.arch = arch

        affinities = (affinity, affinity) if isinstance(affinity, str) else tuple(affinity)
        if len(affinities) != blocks and not isinstance(affinity, str):
            raise ValueError(f"affinity must be one name or one per block ({blocks}), "
                             f"got {affinity!r}")

        def attend(channels: int, affinity: str) -> nn.Module:
            if attention == "se":
                return FrameWise(SqueezeExcitation(channels, reduction=4))
            if attention == "cbam":
                return FrameWise(CBAM(channels, reduction=4))
            if attention == "nl":
                return VideoNonLocal(channels, affinity, **nl_kwargs)
            if attention == "temporal":
                return TemporalAttention(channels, reduction=4)
            if attention == "cbam+temporal":
                return nn.Sequential(FrameWise(CBAM(channels, reduction=4)),
                                     TemporalAttention(channels, reduction=4))
            return nn.Identity()

        self.stem = nn.Sequential(conv_bn3d(1, w0, (kt, 3, 3), (1, 2, 2)),
                                  nn.MaxPool3d((2, 1, 1)))
        self.stage1 = conv_bn3d(w0, w1, (kt, 3, 3), (1, 2, 2))
        self.attend1 = attend(w1, affinities[0]) if blocks == 2 else nn.Identity()
        self.stage2 = conv_bn3d(w1, w1, (1, 3, 3))
        self.attend2 = attend(w1, affinities[-1])
        self.stage3 = conv_bn3d(w1, w2, (1, 1, 1))
        self.fc = nn.Linear(w2, positive_int(num_classes, "num_classes"))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (B, widths[2], T/2, S/4, S/4)."""
        _check_clips(x, "VideoNet")
        h = self.attend1(self.stage1(self.stem(x)))
        return self.stage3(self.attend2(self.stage2(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3, 4)))


class SegmentPyramidNet(nn.Module):
    """TSN-style segment sampling with the interaction-aware pyramid attention of notebook 05.

    The clip is cut into ``segments`` equal parts and one frame is taken from each (at random
    within its segment in training, the centre at test time); every frame goes through the 2-D
    pyramid network of ``PyramidAttentionNet``; the interaction-aware maps pool the fused
    features over all frames and positions. x: (B, 1, T, S, S) -> (B, classes).
    """

    def __init__(self, segments: int = 4, num_classes: int = 6, maps: int = 4, grid: int = 8,
                 widths: Sequence[int] = (16, 32, 64), ia_weight: float = 0.0):
        super().__init__()
        self.segments = positive_int(segments, "segments")
        self.net = PyramidAttentionNet(num_classes, 1, maps, grid, widths, ia_weight)
        self.generator = torch.Generator().manual_seed(0)

    @property
    def aux_loss(self) -> torch.Tensor | None:
        return self.net.aux_loss

    def frame_indices(self, frames: int) -> torch.Tensor:
        """The sampled frame of each segment: random within it (training) or its centre."""
        from .datasets import segment_indices

        if self.segments > frames:
            raise ValueError(f"segments ({self.segments}) must not exceed the clip's frames "
                             f"({frames})")
        if not self.training:
            return torch.as_tensor(segment_indices(frames, self.segments))
        edges = torch.linspace(0, frames, self.segments + 1)
        starts = torch.ceil(edges[:-1]).long()
        stops = torch.maximum(torch.ceil(edges[1:]).long(), starts + 1)
        return starts + (torch.rand(self.segments, generator=self.generator)
                         * (stops - starts)).long()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_clips(x, "SegmentPyramidNet")
        b, c, t, s, _ = x.shape
        idx = self.frame_indices(t).to(x.device)
        frames = x.index_select(2, idx).transpose(1, 2).reshape(b * self.segments, c, s, s)
        fused = self.net.fused(frames)                               # (B*K, C', g, g)
        fused = fused.reshape(b, self.segments, *fused.shape[1:]).transpose(1, 2)
        return self.net.head(fused)                                  # positions: (K, g, g)


def video_models() -> dict[str, Callable[[], nn.Module]]:
    """The models of notebook 06 by name, each a builder taking no arguments. The non-local
    blocks use the fused attention kernel (``backend='sdpa'``)."""
    from functools import partial

    nl = partial(VideoNet, "i3d", "nl", backend="sdpa")
    return {
        "c2d": partial(VideoNet, "c2d"),
        "i3d": partial(VideoNet, "i3d"),
        "i3d+se": partial(VideoNet, "i3d", "se"),
        "i3d+cbam": partial(VideoNet, "i3d", "cbam"),
        "i3d+nl": nl,
        "i3d+2nl": partial(nl, blocks=2),
        "i3d+nl space": partial(nl, affinity="space"),
        "i3d+nl time": partial(nl, affinity="time"),
        "i3d+nl space,time": partial(nl, affinity=("space", "time"), blocks=2),
        "i3d+nl+position": partial(nl, position=True),
        "i3d+nl+gridpos": partial(nl, position=True, code="grid"),
        "tsn+pyramid": partial(SegmentPyramidNet, ia_weight=0.01),   # beta as in notebook 05
    }


EVENT_WIDTHS = (8, 16, 32)      # half notebook 06's: 4 models x 5 seeds train in minutes on a CPU


def event_models(arch: str = "c2d") -> dict[str, Callable[[], nn.Module]]:
    """The models of notebook 08's temporal-attention experiment by name, each a builder
    taking no arguments: the ``VideoNet`` of ``arch`` ('c2d': per-frame 2-D kernels, so that
    frames meet only in the stem's max over pairs of frames, in the attention and in the
    final average; 'i3d': 3x3x3 kernels in the stem and stage 1) without attention, with
    CBAM on each frame, with temporal attention, and with CBAM cascaded into temporal
    attention (both after stage 2, reduction 4), every one ``EVENT_WIDTHS`` wide with an
    output per class of ``datasets.EVENT_CLASSES``; the names start with ``arch``. Keyword
    arguments given to a builder go to ``VideoNet``."""
    from functools import partial

    from .datasets import EVENT_CLASSES

    if arch not in VIDEO_ARCHS:
        raise ValueError(f"arch must be one of {VIDEO_ARCHS}, got {arch!r}")
    net = partial(VideoNet, arch, num_classes=len(EVENT_CLASSES), widths=EVENT_WIDTHS)
    return {
        arch: partial(net, attention="none"),
        f"{arch}+cbam": partial(net, attention="cbam"),
        f"{arch}+temporal": partial(net, attention="temporal"),
        f"{arch}+cbam+temporal": partial(net, attention="cbam+temporal"),
    }
