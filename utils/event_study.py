"""The temporal-attention study of notebook 08, recorded: ``python -m utils.event_study``.

Four ``models.event_models('c2d')`` networks (no attention, CBAM on each frame, temporal
attention, CBAM then temporal attention) x five seeds on ``datasets.event_experiment``'s
clips in full mode. One CSV row per run: the test accuracy, every test clip's prediction (a
string of class indices, for ``utils.stats.bootstrap_interval``), the share of the temporal
block's weight on the event's steps (temporal models), the training seconds, torch's thread
count, the processor, the torch version and the date. The notebook plots the file and
re-trains one run live; ``tests/test_event_study.py`` re-trains one recorded run.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

FIELDS = ("model", "seed", "mode", "epochs", "train_clips", "test_clips", "accuracy",
          "event_weight", "seconds", "threads", "device", "torch", "date", "predictions")


def event_steps(positions: np.ndarray) -> np.ndarray:
    """(N, T/2) bool: the steps after the stem (step k pools input frames 2k and 2k + 1 by a
    max) that hold an event frame, from ``positions`` (N, 2, T, 2) of ``brief_event_clips``."""
    positions = np.asarray(positions)
    if positions.ndim != 4 or positions.shape[1:2] != (2,) or positions.shape[2] % 2:
        raise ValueError(f"positions must be (N, 2, T, 2) with T even, from brief_event_clips, "
                         f"got shape {positions.shape}")
    event = positions[:, 1, :, 0] >= 0
    return event.reshape(len(event), -1, 2).any(-1)


@torch.no_grad()
def frame_weights(model: nn.Module, clips: np.ndarray, batch_size: int = 200) -> np.ndarray:
    """The weights (N, T/2) that the model's ``TemporalAttention`` block gives the steps of
    ``clips`` (N, 1, T, S, S), in evaluation mode."""
    from .modules import TemporalAttention

    block = next((m for m in model.modules() if isinstance(m, TemporalAttention)), None) if (
        isinstance(model, nn.Module)) else None
    if block is None:
        raise ValueError("model must hold a TemporalAttention block (an event model with "
                         "'temporal' in its name)")
    device = next(model.parameters()).device
    model.eval()
    block.keep_attention = True
    parts = []
    try:
        for i in range(0, len(clips), batch_size):
            model(torch.as_tensor(clips[i:i + batch_size], device=device))
            parts.append(block.attention.cpu().numpy())
    finally:
        block.keep_attention = False
    return np.concatenate(parts)


def run_one(name: str, seed: int, setup: dict) -> tuple[dict, object]:
    """Train model ``name`` of ``event_models('c2d')`` with ``seed`` on ``setup`` (from
    ``event_experiment``): (the CSV row, the TrainResult)."""
    from .measure import device_name
    from .models import event_models
    from .runtime import seed_everything
    from .training import train_classifier

    builders = event_models("c2d")
    if name not in builders:
        raise ValueError(f"name must be one of {tuple(builders)}, got {name!r}")
    seed_everything(seed)
    run = train_classifier(builders[name](), setup["train"], setup["test"],
                           epochs=setup["epochs"], batch_size=setup["batch_size"],
                           lr=setup["lr"], seed=seed, device=torch.device("cpu"), history=False)
    share = float("nan")
    if "temporal" in name:
        w = frame_weights(run.model, setup["test"].clips)
        share = float((w * event_steps(setup["test"].positions)).sum(1).mean())
    row = {"model": name, "seed": seed, "mode": setup.get("mode", "full"),
           "epochs": setup["epochs"], "train_clips": len(setup["train"]),
           "test_clips": len(setup["test"]), "accuracy": round(run.accuracy, 6),
           "event_weight": round(share, 6), "seconds": round(run.seconds, 1),
           "threads": torch.get_num_threads(), "device": device_name(torch.device("cpu")),
           "torch": torch.__version__, "date": datetime.date.today().isoformat(),
           "predictions": "".join(str(int(p)) for p in run.predictions)}
    return row, run


RECORDED = Path(__file__).resolve().parents[1] / "data" / "event_study.csv"


def load(path: str | Path = RECORDED) -> list[dict]:
    """The rows of the study's CSV (``#`` lines skipped; by default the course's recording,
    ``data/event_study.csv``): numbers converted, predictions as an int64 array."""
    if not isinstance(path, str | Path) or not Path(path).is_file():
        raise ValueError(f"path must be an existing CSV file of the study, got {path!r}")
    with open(path) as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    for row in rows:
        for key in ("seed", "epochs", "train_clips", "test_clips", "threads"):
            row[key] = int(row[key])
        for key in ("accuracy", "event_weight", "seconds"):
            row[key] = float(row[key])
        row["predictions"] = np.array([int(c) for c in row["predictions"]], dtype=np.int64)
    return rows


def main(argv: list[str] | None = None) -> int:
    from .datasets import event_experiment
    from .models import event_models

    parser = argparse.ArgumentParser(prog="python -m utils.event_study", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=list(event_models("c2d")),
                        choices=list(event_models("c2d")))
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--csv", default="data/event_study.csv")
    parser.add_argument("--fast", action="store_true", help="the fast mode's sizes")
    args = parser.parse_args(argv)
    setup = event_experiment(fast=args.fast)
    setup["mode"] = "fast" if args.fast else "full"
    command = "OMP_NUM_THREADS=1 python -m utils.event_study " + shlex.join(
        argv if argv is not None else sys.argv[1:])
    try:
        new = open(args.csv).read() == ""
    except FileNotFoundError:
        new = True
    if new:
        with open(args.csv, "w") as handle:
            handle.write(f"# {command}\n")
            csv.writer(handle, lineterminator="\n").writerow(FIELDS)
    for name in args.model:
        for seed in args.seeds if args.seeds is not None else setup["seeds"]:
            row, _ = run_one(name, seed, setup)
            with open(args.csv, "a") as handle:
                csv.DictWriter(handle, FIELDS, lineterminator="\n").writerow(row)
            print(f"{name}, seed {seed}: {row['accuracy']:.1%}, weight on the event "
                  f"{row['event_weight']:.2f}, {row['seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
