"""ResNet builders with a pluggable attention module on the residual branch.

Both SE and CBAM put the attention module at the end of the residual branch, after the last
batch norm and before the addition of the shortcut. ``attention`` is a callable that takes
the branch's output channels and returns a module, for example
``functools.partial(SqueezeExcitation, reduction=16)``; None gives the plain ResNet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .validate import positive_int

AttentionFactory = Callable[[int], nn.Module] | None


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Bias-free convolution ('same' padding) with He initialisation, then batch norm."""
    conv = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return nn.Sequential(conv, nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions; out = ReLU(attention(branch(x)) + shortcut(x))."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, attention: AttentionFactory = None,
                 stride_in: str = "3x3"):
        super().__init__()
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
        if stride_in not in ("3x3", "1x1"):
            raise ValueError(f"stride_in must be '3x3' or '1x1', got {stride_in!r}")
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


class PyramidAttentionNet(nn.Module):
    """A small ResNet whose stage outputs form a spatial pyramid: each is resampled to one
    grid (the sampling function R, bilinear), the maps are concatenated, and K interaction-
    aware attention maps pool the fused features for a linear classifier.

    ia_weight > 0 adds the interaction-aware loss (times ia_weight) as ``aux_loss`` during
    training; ``train_classifier`` adds it to the cross-entropy.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, maps: int = 4,
                 grid: int = 10, widths: Sequence[int] = (16, 32, 64), ia_weight: float = 0.0,
                 gamma: float = 1.0):
        super().__init__()
        from .modules import InteractionAwareAttention

        base = small_resnet(num_classes, in_channels, widths=widths)
        self.stem, self.stages = base.stem, base.stages
        self.grid = positive_int(grid, "grid")
        self.attention = InteractionAwareAttention(sum(widths), maps)
        self.fc = nn.Linear(maps * sum(widths), num_classes)
        if ia_weight < 0 or gamma < 0:
            raise ValueError(f"ia_weight and gamma must be >= 0, got {ia_weight} and {gamma}")
        self.ia_weight, self.gamma = float(ia_weight), float(gamma)
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
        from .modules import feature_covariance, interaction_loss

        features = self.fused(x)
        pooled = self.attention(features)                            # (B, K, C)
        self.aux_loss = None
        if self.training and self.ia_weight > 0:
            sigma = feature_covariance(features)
            self.aux_loss = self.ia_weight * interaction_loss(self.attention.score.weight, sigma,
                                                              self.gamma)
        return self.fc(pooled.flatten(1))
