"""Counting parameters and multiply-adds (MACs) of PyTorch models.

Papers quote "FLOPs" in two conventions: multiply-adds (one MAC = one multiplication plus
one addition, the convention of the ResNet, SE and CBAM papers' ImageNet tables) and
floating-point operations (two per MAC). The course reports MACs, counted by PyTorch's
``FlopCounterMode`` (which counts 2 FLOPs per MAC) over convolutions and matrix products:
the multiply-adds of conv and fully connected layers. Pooling, batch norm, activations and
elementwise products are not counted, in line with the papers' tables.

Fused attention (``scaled_dot_product_attention``) is counted under its math backend, which
runs as two matrix products that the counter sees: PyTorch's counter does not count the
fused CPU kernel at all, and would report the attention as free.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass on a zero input of ``input_shape`` (with the batch)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if (not isinstance(input_shape, tuple | list) or len(input_shape) < 2
            or not all(isinstance(s, int) and s > 0 for s in input_shape)):
        shown = input_shape if isinstance(input_shape, tuple | list) else type(input_shape).__name__
        raise ValueError(f"input_shape must be a tuple of positive integers (B, C, ...), "
                         f"got {shown}")
    param = next(model.parameters(), None)
    x = torch.zeros(input_shape, device=param.device if param is not None else "cpu")
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        model(x)
    model.train(was_training)
    return counter.get_total_flops() // 2


def se_parameter_overhead(blocks: Sequence[int], channels: Sequence[int], reduction: int,
                          biases: bool = True) -> int:
    """Parameters SE adds to a network: (2/r) sum_s N_s C_s^2 (the SE paper's formula), plus
    the biases sum_s N_s (C_s/r + C_s) when ``biases``. N_s blocks with C_s output channels."""
    if len(blocks) != len(channels) or len(blocks) == 0:
        raise ValueError(f"blocks and channels must be equal-length and non-empty, got "
                         f"{blocks} and {channels}")
    if isinstance(reduction, bool) or not isinstance(reduction, Integral) or reduction < 1:
        raise ValueError(f"reduction must be a positive integer, got {reduction!r}")
    if any(isinstance(v, bool) or not isinstance(v, Integral) or v < 1
           for v in (*blocks, *channels)):
        raise ValueError(f"blocks and channels must hold positive integers, got {blocks} and "
                         f"{channels}")
    if any(c % reduction for c in channels):
        raise ValueError(f"every channel count must be divisible by reduction={reduction}")
    total = sum(2 * n * c * (c // reduction) for n, c in zip(blocks, channels, strict=True))
    if biases:
        total += sum(n * (c // reduction + c) for n, c in zip(blocks, channels, strict=True))
    return total
