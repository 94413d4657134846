"""Counting parameters and multiply-adds (MACs) of PyTorch models.

Papers quote "FLOPs" in two conventions: multiply-adds (one MAC = one multiplication plus
one addition, the convention of the ResNet, SE and CBAM papers' ImageNet tables) and
floating-point operations (two per MAC). The course reports MACs, counted by PyTorch's
``FlopCounterMode`` (which counts 2 FLOPs per MAC) over convolutions and matrix products:
the multiply-adds of conv and fully connected layers. Pooling, batch norm, activations and
elementwise products are not counted, in line with the papers' tables.
"""

from __future__ import annotations

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
    if len(input_shape) < 2 or not all(isinstance(s, int) and s > 0 for s in input_shape):
        raise ValueError(f"input_shape must be positive integers (B, C, ...), got {input_shape}")
    param = next(model.parameters(), None)
    x = torch.zeros(input_shape, device=param.device if param is not None else "cpu")
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    model.train(was_training)
    return counter.get_total_flops() // 2
