"""What the training-loop exercises are checked on: a tiny probe model, seeded cases, and
two sides (learner and reference) that see the same random numbers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .core import _Attempt, compare

if TYPE_CHECKING:
    import torch
    from torch import nn


LOOP_EPOCHS = 3


@functools.cache
def _loop_probe() -> type[nn.Module]:
    """The tiny classifier the training-loop exercises are checked on (built on first use,
    so that importing this module does not import PyTorch)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class LoopProbe(nn.Module):
        """x (N, 6) -> logits (N, 3) through Linear, BatchNorm1d, ReLU, Dropout and Linear, so
        that its numbers depend on training vs evaluation mode. ``grad_enabled``, a list of
        the class (so that a copy of a probe, ``copy.deepcopy(model)``, records into it too),
        holds for every forward whether autograd was recording."""

        grad_enabled: list[bool] = []

        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(6, 8)
            self.bn = nn.BatchNorm1d(8)
            self.drop = nn.Dropout(0.25)
            self.fc2 = nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            LoopProbe.grad_enabled.append(torch.is_grad_enabled())
            return self.fc2(self.drop(F.relu(self.bn(self.fc1(x)))))

    return LoopProbe


@dataclass(frozen=True)
class _LoopCase:
    """One training-loop test: batches of unequal ``sizes`` (a list of (x (N, 6) float64,
    y (N,) int64) pairs), the probe model and an optimiser, all seeded by ``seed``."""

    sizes: tuple[int, ...]
    optimizer: str = "adam"           # 'adam' (lr 0.05) or 'sgd' (lr 0.1, momentum 0.9)
    one_cycle: bool = False           # a OneCycleLR schedule over LOOP_EPOCHS epochs
    seed: int = 0

    def describe(self) -> str:
        name = "Adam" if self.optimizer == "adam" else "SGD with momentum"
        schedule = " + OneCycleLR" if self.one_cycle else ", no scheduler"
        return f"{name}{schedule}, batches of {', '.join(map(str, self.sizes))} examples"

    def batches(self, sizes: tuple[int, ...] | None = None,
                offset: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
        import torch

        generator = torch.Generator().manual_seed(1000 + self.seed + offset)
        return [(torch.randn(n, 6, generator=generator, dtype=torch.float64),
                 torch.randint(3, (n,), generator=generator)) for n in sizes or self.sizes]

    def model(self) -> nn.Module:
        import torch

        torch.manual_seed(self.seed)
        return _loop_probe()().double()

    def optimiser(self, model: nn.Module, steps: int) -> tuple[Any, Any]:
        """(optimizer, scheduler or None) for ``model``; the schedule spans ``steps`` steps."""
        import torch

        if self.optimizer == "adam":
            optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        else:
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, 0.05, total_steps=steps) if self.one_cycle else None
        return optimizer, scheduler


class _Sides:
    """The learner's and the reference's runs, each with its own copy of the torch random
    state (dropout draws from it), so that both see the same random numbers."""

    def __init__(self, seed: int) -> None:
        import torch

        torch.manual_seed(seed)
        self.states = {"mine": torch.get_rng_state(), "ref": torch.get_rng_state()}

    def run(self, side: str, call: Callable[[], Any]) -> Any:
        import torch

        torch.set_rng_state(self.states[side])
        try:
            return call()
        finally:
            self.states[side] = torch.get_rng_state()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's weights and buffers, by name."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _compare_states(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                    what: str, rtol: float = 1e-9, atol: float = 1e-12) -> None:
    """AssertionError naming the first weight or buffer (with its shape) that differs."""
    for name, want in expected.items():
        compare(got[name].cpu().numpy(), want.cpu().numpy(),
                name=f"{what} {name} {tuple(want.shape)}", rtol=rtol, atol=atol)


def _loop_check(attempt: _Attempt, where: str, check: Callable[[], Any]) -> None:
    """Run one comparison; its AssertionError becomes the learner's verdict for ``where``."""
    try:
        check()
    except AssertionError as exc:
        raise attempt.wrong(where, str(exc)) from None


# ---------------------------------------------------------------------------------------------
# The exercises of the course, in notebook order.
