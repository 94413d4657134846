"""The course's training loop: seeded, device-aware, quiet by default."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .datasets import DigitScenes, VideoClips
from .runtime import get_device, seed_everything
from .stats import Interval, paired_difference, t_interval
from .validate import positive_float, positive_int

Dataset = DigitScenes | VideoClips


@dataclass
class TrainResult:
    """One training run: final test accuracy and per-class accuracy, the mean training loss of
    each epoch (as the optimiser saw it, in training mode), training time in seconds, the
    model, its seed, and ``history``: per epoch, in evaluation mode, 'train_loss' and
    'train_accuracy' (on up to ``HISTORY_EXAMPLES`` training examples) and 'test_loss' and
    'test_accuracy' (empty when the run was asked not to keep a history); and ``predictions``,
    the predicted class of every test example (N,), for intervals that include test-set
    noise (:func:`utils.stats.bootstrap_interval`)."""

    accuracy: float
    per_class: np.ndarray
    losses: list[float]
    seconds: float
    model: nn.Module = field(repr=False)
    seed: int = 0
    history: dict[str, list[float]] = field(default_factory=dict, repr=False)
    predictions: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64),
                                    repr=False)


HISTORY_EXAMPLES = 1000
Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def train_one_epoch(model: nn.Module, batches: Batches, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> float:
    """One pass over ``batches`` of (inputs, integer labels): for each batch, clear the
    gradients, compute the cross-entropy of the model's logits (plus the model's ``aux_loss``
    when it sets one), back-propagate, step the optimiser (and the scheduler, when given).
    The model is put in training mode first. Returns the mean of the batch losses."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer, got "
                         f"{type(optimizer).__name__}")
    inner = getattr(model, "module", model)          # DistributedDataParallel wraps the model
    model.train()
    total, count = 0.0, 0
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        aux = getattr(inner, "aux_loss", None)       # e.g. the interaction-aware loss
        if aux is not None:
            loss = loss + aux
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item()
        count += 1
    if count == 0:
        raise ValueError("batches must hold at least one batch")
    return total / count


@torch.no_grad()
def evaluate_epoch(model: nn.Module, batches: Batches) -> tuple[float, float]:
    """Mean cross-entropy per example and accuracy of ``model`` over ``batches``, in
    evaluation mode (batch norm uses its running statistics, dropout is off) and without
    building a graph for gradients."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    model.eval()
    loss, correct, count = 0.0, 0, 0
    for x, y in batches:
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += int((logits.argmax(1) == y).sum())
        count += len(y)
    if count == 0:
        raise ValueError("batches must hold at least one example")
    return loss / count, correct / count


def _chunks(x: torch.Tensor, y: torch.Tensor, size: int) -> Batches:
    return ((x[i:i + size], y[i:i + size]) for i in range(0, len(x), size))


def _tensors(data: Dataset, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, DigitScenes):
        inputs = data.images
    elif isinstance(data, VideoClips):
        inputs = data.clips
    else:
        raise ValueError(f"data must be DigitScenes or VideoClips, got {type(data).__name__}")
    return torch.as_tensor(inputs, device=device), torch.as_tensor(data.labels, device=device)


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, batch_size: int = 250,
             device: torch.device | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Accuracy, per-class accuracy (classes,) and predictions (N,) of ``model`` on ``data``;
    the number of classes is the width of the model's output."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    batch_size = positive_int(batch_size, "batch_size")
    device = device or next(model.parameters()).device
    x, y = _tensors(data, device)
    model.eval()
    logits = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    preds = logits.argmax(1)
    correct = (preds == y).cpu().numpy()
    labels = data.labels
    per_class = np.array([correct[labels == k].mean() if np.any(labels == k) else np.nan
                          for k in range(logits.shape[1])])
    return float(correct.mean()), per_class, preds.cpu().numpy()


PROGRESS = ("auto", "bar", "text", "off")


class Progress:
    """Progress over ``total`` steps: a tqdm bar (``'bar'``; a widget in Jupyter), a line of
    text per step (``'text'``), nothing (``'off'``), or ``'auto'``: a bar when standard output
    is a terminal, text otherwise (notebooks, logs, CI). Writes to standard output only."""

    def __init__(self, total: int, desc: str, mode: str = "auto"):
        if mode not in PROGRESS:
            raise ValueError(f"progress must be one of {PROGRESS}, got {mode!r}")
        total = positive_int(total, "total")
        if mode == "auto":
            mode = "bar" if sys.stdout.isatty() else "text"
        self.total, self.desc, self.mode, self.done = total, desc, mode, 0
        self.bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, file=sys.stdout, leave=True)

    def step(self, message: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(message, refresh=False)
            self.bar.update(1)
        elif self.mode == "text":
            print(f"{self.desc} [{self.done}/{self.total}] {message}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _distributed() -> tuple[int, int]:
    """(rank, world size) of the running torch.distributed job, or (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def train_classifier(model: nn.Module, train: Dataset, test: Dataset, *, epochs: int,
                     batch_size: int = 128, lr: float = 3e-3, seed: int = 0,
                     device: torch.device | None = None, progress: str = "off",
                     history: bool = True) -> TrainResult:
    """Adam with a one-cycle learning-rate schedule, ``epochs`` calls of ``train_one_epoch``
    on shuffled batches; returns a TrainResult. With ``history`` the model is evaluated
    after every epoch on the test set and on up to HISTORY_EXAMPLES training examples (the
    learning curves); the reported seconds count training only.

    Inside a ``torch.distributed`` job (``torchrun``) the model is wrapped in
    DistributedDataParallel and each of the W processes takes every W-th example of each
    batch; the averaged gradients then equal those of the whole batch (batch-norm statistics
    stay per process). ``progress`` ('auto', 'bar', 'text', 'off') reports each epoch, on the
    first process only.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    epochs = positive_int(epochs, "epochs")
    batch_size = positive_int(batch_size, "batch_size")
    lr = positive_float(lr, "lr")
    device = device or get_device()
    model = model.to(device)
    x, y = _tensors(train, device)
    if len(x) < batch_size:
        raise ValueError(f"batch_size ({batch_size}) must not exceed the training set ({len(x)})")
    rank, world = _distributed()
    if batch_size % world:
        raise ValueError(f"batch_size ({batch_size}) must be divisible by the number of "
                         f"processes ({world})")
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = len(x) // batch_size
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr,
                                                   total_steps=epochs * steps_per_epoch)
    bar = Progress(epochs, "epoch", progress if rank == 0 else "off")
    curves: dict[str, list[float]] = {}
    if history:
        x_test, y_test = _tensors(test, device)
        x_seen, y_seen = x[:HISTORY_EXAMPLES], y[:HISTORY_EXAMPLES]
    losses, seconds = [], 0.0
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(x), generator=generator).to(device)
        batches = ((x[idx], y[idx]) for idx in
                   (order[step * batch_size:(step + 1) * batch_size][rank::world]
                    for step in range(steps_per_epoch)))
        losses.append(train_one_epoch(net, batches, optimizer, schedule))
        seconds += time.perf_counter() - start
        message = f"loss {losses[-1]:.3f}"
        if history:
            for split, (xs, ys) in (("train", (x_seen, y_seen)), ("test", (x_test, y_test))):
                loss, acc = evaluate_epoch(model, _chunks(xs, ys, 250))
                curves.setdefault(f"{split}_loss", []).append(loss)
                curves.setdefault(f"{split}_accuracy", []).append(acc)
            message += f", test accuracy {curves['test_accuracy'][-1]:.1%}"
        bar.step(f"{message}, {seconds:.0f} s")
    bar.close()
    accuracy, per_class, predictions = evaluate(model, test, device=device)
    return TrainResult(accuracy, per_class, losses, seconds, model, seed, curves, predictions)


def compare_models(builders: dict[str, Callable[[], nn.Module]], train: Dataset,
                   test: Dataset, *, seeds: Sequence[int], epochs: int, progress: str = "off",
                   **kwargs) -> dict[str, list[TrainResult]]:
    """Train every model once per seed (the seed fixes initialisation and batch order).

    progress ('auto', 'bar', 'text', 'off') reports each finished run."""
    if not builders or not seeds:
        raise ValueError("builders and seeds must not be empty")
    results: dict[str, list[TrainResult]] = {}
    bar = Progress(len(builders) * len(seeds), "runs", progress)
    for name, build in builders.items():
        for seed in seeds:
            seed_everything(seed)
            run = train_classifier(build(), train, test, epochs=epochs, seed=seed, **kwargs)
            results.setdefault(name, []).append(run)
            bar.step(f"{name}, seed {seed}: {run.accuracy:.1%} in {run.seconds:.0f} s")
    bar.close()
    return results


def versus_baseline(results: dict[str, list[TrainResult]], baseline: str,
                    confidence: float = 0.95) -> dict[str, Interval]:
    """For every model but the baseline, the paired difference of test accuracy (model minus
    baseline, seed by seed) with its t-interval; ``.verdict`` says 'better', 'worse' or 'no
    clear difference' from the interval. Every model must have run the baseline's seeds."""
    _check_results(results)
    if baseline not in results:
        raise ValueError(f"baseline {baseline!r} is not among the results {sorted(results)}")
    base = {r.seed: r.accuracy for r in results[baseline]}
    out = {}
    for name, runs in results.items():
        if name == baseline:
            continue
        seeds = [r.seed for r in runs]
        if sorted(seeds) != sorted(base) or len(set(seeds)) != len(seeds):
            raise ValueError(f"{name} ran seeds {seeds} and {baseline} ran {sorted(base)}: a "
                             f"paired comparison needs the same seeds, once each")
        if len(seeds) < 2:
            raise ValueError("comparing with the baseline needs at least two seeds per model")
        out[name] = paired_difference([r.accuracy for r in runs],
                                      [base[r.seed] for r in runs], confidence)
    return out


def results_table(results: dict[str, list[TrainResult]], baseline: str | None = None, *,
                  classes: Sequence[int] | None = None, macs: dict[str, int] | None = None) -> str:
    """A Markdown table: test accuracy, mean over seeds ± the half-width of its 95 %
    t-interval; the paired difference to ``baseline`` with its 95 % t-interval and the
    verdict it gives; parameters; training seconds per run. With ``classes`` also the mean
    accuracy on those classes, with ``macs`` the multiply-adds of one input per model."""
    _check_results(results)
    n = {len(runs) for runs in results.values()}
    head = ["model", "test accuracy (%)", "vs baseline (points, 95 % t-interval)"]
    if classes is not None:
        head.append(f"classes {', '.join(map(str, classes))} (%)")
    head.append("parameters")
    if macs is not None:
        head.append("MMACs / input")
    head.append("s / run")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    versus = versus_baseline(results, baseline) if baseline is not None else {}

    def mean_pm(values: np.ndarray) -> str:
        if len(values) < 2:
            return f"{values.mean():.1f}"
        return f"{values.mean():.1f} ± {t_interval(values).half_width:.1f}"

    for name, runs in results.items():
        row = [name, mean_pm(np.array([r.accuracy for r in runs]) * 100), ""]
        if name in versus:
            row[2] = f"{versus[name].text(100)}: {versus[name].verdict}"
        if classes is not None:
            row.append(mean_pm(np.array([np.nanmean(r.per_class[list(classes)])
                                         for r in runs]) * 100))
        row.append(f"{sum(p.numel() for p in runs[0].model.parameters()):,}")
        if macs is not None:
            row.append(f"{macs[name] / 1e6:.1f}")
        row.append(f"{np.mean([r.seconds for r in runs]):.1f}")
        lines.append("| " + " | ".join(row) + " |")
    seeds = "/".join(str(k) for k in sorted(n))
    lines.append(f"\n{seeds} seeds per model; ± is the half-width of the 95 % t-interval of "
                 f"the mean (Student's t, n - 1 degrees of freedom).")
    return "\n".join(lines)


def _check_results(results: object) -> None:
    """results: model name -> non-empty list of TrainResult, as compare_models returns."""
    if not isinstance(results, dict) or not results or not all(
            isinstance(k, str) and isinstance(v, list | tuple) and v
            and all(isinstance(r, TrainResult) for r in v) for k, v in results.items()):
        raise ValueError("results must map model names to non-empty lists of TrainResult, "
                         "as compare_models returns")


def per_class_table(results: dict[str, list[TrainResult]], class_names: Sequence[str]) -> str:
    """A Markdown table of each model's accuracy per class (%), averaged over seeds."""
    _check_results(results)
    lines = ["| model | " + " | ".join(class_names) + " |",
             "|---|" + "---:|" * len(class_names)]
    for name, runs in results.items():
        per = np.nanmean([r.per_class for r in runs], axis=0) * 100
        if len(per) != len(class_names):
            raise ValueError(f"{name}: {len(per)} classes but {len(class_names)} class names")
        lines.append(f"| {name} | " + " | ".join(f"{v:.0f}" for v in per) + " |")
    return "\n".join(lines)


def digit_experiment() -> dict:
    """The shared set-up of the notebook 02/03 experiments, sized by the mode.

    Returns train and test scenes, the seeds and the number of epochs.
    """
    from .datasets import cluttered_digits
    from .runtime import pick

    n_train, n_test = pick(fast=(600, 300), full=(3000, 1000))
    return {"train": cluttered_digits(n_train, split="train", seed=0),
            "test": cluttered_digits(n_test, split="test", seed=0),
            "seeds": pick(fast=[0, 1], full=[0, 1, 2, 3, 4]), "epochs": pick(fast=2, full=6)}


CUED_SIZES = {"channel": {"canvas": 16, "digit_size": 8, "others": 1},
              "location": {"canvas": 20, "digit_size": 8, "others": 2}}


def cued_experiment(cue: str) -> dict:
    """The set-up of the designed experiments of notebooks 02 ('channel') and 03
    ('location'), sized by the mode: train and test scenes of ``cued_digits``, the seeds and
    the number of epochs."""
    from .datasets import CUES, cued_digits
    from .runtime import pick

    if cue not in CUES:
        raise ValueError(f"cue must be one of {CUES}, got {cue!r}")
    n_train, n_test = pick(fast=(400, 200), full=(3000 if cue == "channel" else 2000, 1000))
    return {"train": cued_digits(n_train, cue, split="train", **CUED_SIZES[cue]),
            "test": cued_digits(n_test, cue, split="test", **CUED_SIZES[cue]),
            "seeds": pick(fast=[0, 1], full=[0, 1, 2, 3, 4]), "epochs": pick(fast=2, full=8)}
