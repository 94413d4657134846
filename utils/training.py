"""The course's training loop: seeded, device-aware, quiet by default."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .datasets import DigitScenes
from .runtime import get_device, seed_everything
from .validate import positive_float, positive_int


@dataclass
class TrainResult:
    """Test accuracy, per-class accuracy, mean training loss per epoch, wall time, the model."""

    accuracy: float
    per_class: np.ndarray
    losses: list[float]
    seconds: float
    model: nn.Module = field(repr=False)


def _tensors(data: DigitScenes, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(data, DigitScenes):
        raise ValueError(f"data must be a DigitScenes, got {type(data).__name__}")
    return (torch.as_tensor(data.images, device=device),
            torch.as_tensor(data.labels, device=device))


@torch.no_grad()
def evaluate(model: nn.Module, data: DigitScenes, batch_size: int = 500,
             device: torch.device | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Accuracy, per-class accuracy (10,) and predictions (N,) of ``model`` on ``data``."""
    device = device or next(model.parameters()).device
    x, y = _tensors(data, device)
    model.eval()
    preds = torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    correct = (preds == y).cpu().numpy()
    labels = data.labels
    per_class = np.array([correct[labels == k].mean() if np.any(labels == k) else np.nan
                          for k in range(10)])
    return float(correct.mean()), per_class, preds.cpu().numpy()


def train_classifier(model: nn.Module, train: DigitScenes, test: DigitScenes, *, epochs: int,
                     batch_size: int = 128, lr: float = 3e-3, seed: int = 0,
                     device: torch.device | None = None) -> TrainResult:
    """Adam with a one-cycle learning-rate schedule and cross-entropy (plus the model's
    ``aux_loss`` when it sets one during training); returns a TrainResult."""
    epochs = positive_int(epochs, "epochs")
    batch_size = positive_int(batch_size, "batch_size")
    lr = positive_float(lr, "lr")
    device = device or get_device()
    model = model.to(device)
    x, y = _tensors(train, device)
    if len(x) < batch_size:
        raise ValueError(f"batch_size ({batch_size}) must not exceed the training set ({len(x)})")
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = len(x) // batch_size
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr,
                                                   total_steps=epochs * steps_per_epoch)
    losses, start = [], time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator).to(device)
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * batch_size:(step + 1) * batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            aux = getattr(model, "aux_loss", None)      # e.g. the interaction-aware loss
            if aux is not None:
                loss = loss + aux
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        losses.append(total / steps_per_epoch)
    accuracy, per_class, _ = evaluate(model, test, device=device)
    return TrainResult(accuracy, per_class, losses, time.perf_counter() - start, model)


def compare_models(builders: dict[str, Callable[[], nn.Module]], train: DigitScenes,
                   test: DigitScenes, *, seeds: Sequence[int], epochs: int,
                   **kwargs) -> dict[str, list[TrainResult]]:
    """Train every model once per seed (the seed fixes initialisation and batch order)."""
    if not builders or not seeds:
        raise ValueError("builders and seeds must not be empty")
    results: dict[str, list[TrainResult]] = {}
    for name, build in builders.items():
        for seed in seeds:
            seed_everything(seed)
            results.setdefault(name, []).append(
                train_classifier(build(), train, test, epochs=epochs, seed=seed, **kwargs))
    return results


def versus_baseline(results: dict[str, list[TrainResult]],
                    baseline: str) -> dict[str, tuple[float, float, str]]:
    """For every model but the baseline: (difference of mean test accuracy, its standard error,
    verdict). The verdict is 'better' or 'worse' when the difference exceeds twice its
    standard error (Welch's form, sqrt(s_a^2/n_a + s_b^2/n_b)), else 'no clear difference'."""
    if baseline not in results:
        raise ValueError(f"baseline {baseline!r} is not among the results {sorted(results)}")
    base = np.array([r.accuracy for r in results[baseline]])
    out = {}
    for name, runs in results.items():
        if name == baseline:
            continue
        acc = np.array([r.accuracy for r in runs])
        if len(acc) < 2 or len(base) < 2:
            raise ValueError("comparing with the baseline needs at least two seeds per model")
        diff = acc.mean() - base.mean()
        se = float(np.sqrt(acc.var(ddof=1) / len(acc) + base.var(ddof=1) / len(base)))
        verdict = ("better" if diff > 2 * se else "worse" if diff < -2 * se
                   else "no clear difference")
        out[name] = (float(diff), se, verdict)
    return out


def results_table(results: dict[str, list[TrainResult]], baseline: str | None = None) -> str:
    """A Markdown table: test accuracy mean ± std over seeds, the difference to ``baseline``
    ± twice its standard error with a verdict, parameters, and seconds per run."""
    lines = ["| model | test accuracy (%) | vs baseline (points, ± 2 SE) | parameters | s / run |",
             "|---|---|---|---|---|"]
    versus = versus_baseline(results, baseline) if baseline is not None else {}
    for name, runs in results.items():
        acc = np.array([r.accuracy for r in runs]) * 100
        params = sum(p.numel() for p in runs[0].model.parameters())
        std = acc.std(ddof=1) if len(acc) > 1 else 0.0
        diff = ""
        if name in versus:
            d, se, verdict = versus[name]
            diff = f"{d * 100:+.1f} ± {2 * se * 100:.1f}: {verdict}"
        lines.append(f"| {name} | {acc.mean():.1f} ± {std:.1f} | {diff} | {params:,} | "
                     f"{np.mean([r.seconds for r in runs]):.1f} |")
    return "\n".join(lines)


def digit_experiment() -> dict:
    """The shared set-up of the notebook 02/03 experiments, sized by the mode.

    Returns train and test scenes, the seeds and the number of epochs.
    """
    from .datasets import cluttered_digits
    from .runtime import pick

    n_train, n_test = pick(fast=(1000, 300), full=(4000, 1000))
    return {"train": cluttered_digits(n_train, split="train", seed=0),
            "test": cluttered_digits(n_test, split="test", seed=0),
            "seeds": pick(fast=[0, 1], full=[0, 1, 2]), "epochs": pick(fast=3, full=6)}
