"""PyTorch attention modules of the course, batch-first (B, C, H, W), any H and W.

One constructor style: ``Module(channels, reduction=16, kernel_size=7, ...)``. Each module
is the NumPy reference of ``utils.reference`` as an ``nn.Module``; ``load_reference(params)``
copies NumPy parameters in, so that tests can compare the two in float64. Pooling uses
``x.mean((2, 3))`` / ``amax`` rather than pooling layers, which keeps channels-last inputs
and low-precision dtypes working.

Set ``module.keep_attention = True`` to keep the last attention weights in
``module.attention`` (for plots).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .validate import positive_int

ORDERS = ("channel-spatial", "spatial-channel", "parallel")
VARIANTS = ("paper", "official")


def _check_input(x: torch.Tensor, channels: int | None, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} expects x of shape (B, C, H, W), got {shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} was built for {channels} channels, got x with {x.shape[1]} "
                         f"(shape {tuple(x.shape)})")


def _hidden(channels: int, reduction: int) -> int:
    channels = positive_int(channels, "channels")
    reduction = positive_int(reduction, "reduction")
    if reduction > channels:
        raise ValueError(f"reduction ({reduction}) must not exceed channels ({channels})")
    return channels // reduction


def _copy(param: torch.Tensor, value: np.ndarray, name: str) -> None:
    value = torch.as_tensor(np.asarray(value), dtype=param.dtype, device=param.device)
    if value.shape != param.shape:
        raise ValueError(f"{name} must have shape {tuple(param.shape)}, got {tuple(value.shape)}")
    with torch.no_grad():
        param.copy_(value)


class _Attention(nn.Module):
    keep_attention: bool = False
    attention: torch.Tensor | None = None

    def _keep(self, weights: torch.Tensor) -> None:
        if self.keep_attention:
            self.attention = weights.detach()


class SqueezeExcitation(_Attention):
    """SE block: x * sigmoid(W2 ReLU(W1 mean_hw(x) + b1) + b2). x: (B, C, H, W)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = _hidden(channels, reduction)
        self.channels, self.reduction = channels, reduction
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The excitation s: (B, C), values in (0, 1)."""
        _check_input(x, self.channels, type(self).__name__)
        return torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(x)
        self._keep(s)
        return x * s[:, :, None, None]

    def load_reference(self, params: dict[str, np.ndarray]) -> SqueezeExcitation:
        for name, param in (("w1", self.fc1.weight), ("b1", self.fc1.bias),
                            ("w2", self.fc2.weight), ("b2", self.fc2.bias)):
            _copy(param, params[name], f"params[{name!r}]")
        return self


class ChannelAttention(SqueezeExcitation):
    """CBAM channel attention: x * sigmoid(MLP(avg_hw x) + MLP(max_hw x)), one shared MLP."""

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.channels, type(self).__name__)

        def mlp(z: torch.Tensor) -> torch.Tensor:
            return self.fc2(F.relu(self.fc1(z)))

        return torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))


class SpatialAttention(_Attention):
    """CBAM spatial attention: x * sigmoid(conv_k([mean_c x; max_c x])). x: (B, C, H, W).

    variant='paper': conv with bias, pooled maps stacked [mean; max] (the paper's equation).
    variant='official': bias-free conv followed by batch norm, stacked [max; mean], as in the
    authors' released code. ``channels`` is accepted for a uniform constructor and unused.
    """

    def __init__(self, channels: int | None = None, kernel_size: int = 7, variant: str = "paper"):
        super().__init__()
        kernel_size = positive_int(kernel_size, "kernel_size")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd so that the map keeps its size, "
                             f"got {kernel_size}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.kernel_size, self.variant = kernel_size, variant
        official = variant == "official"
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=not official)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01) if official else nn.Identity()

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial map Ms: (B, H, W), values in (0, 1)."""
        _check_input(x, None, type(self).__name__)
        pooled = [x.mean(1, keepdim=True), x.amax(1, keepdim=True)]
        if self.variant == "official":
            pooled.reverse()
        return torch.sigmoid(self.bn(self.conv(torch.cat(pooled, dim=1))))[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.gate(x)
        self._keep(m)
        return x * m[:, None]

    def load_reference(self, params: dict[str, np.ndarray]) -> SpatialAttention:
        _copy(self.conv.weight, params["w"], "params['w']")
        if self.conv.bias is not None:
            _copy(self.conv.bias, params["b"], "params['b']")
        return self


class CBAM(nn.Module):
    """Convolutional Block Attention Module: channel then spatial attention (the paper).

    order: 'channel-spatial' (the paper), 'spatial-channel', or 'parallel' (both maps from the
    same input, applied together: x * Mc(x) * Ms(x)).
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7,
                 order: str = "channel-spatial", variant: str = "paper"):
        super().__init__()
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self.order = order
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(channels, kernel_size, variant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order == "channel-spatial":
            return self.spatial(self.channel(x))
        if self.order == "spatial-channel":
            return self.channel(self.spatial(x))
        mc, ms = self.channel.gate(x), self.spatial.gate(x)
        self.channel._keep(mc)
        self.spatial._keep(ms)
        return x * mc[:, :, None, None] * ms[:, None]

    def load_reference(self, params: dict[str, dict[str, np.ndarray]]) -> CBAM:
        self.channel.load_reference(params["channel"])
        self.spatial.load_reference(params["spatial"])
        return self
