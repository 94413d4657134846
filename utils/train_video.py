"""Train the video models of notebook 06 from the command line.

    python -m utils.train_video --model i3d+nl --epochs 8 --seeds 0 1 2
    torchrun --nproc_per_node 2 -m utils.train_video --model i3d+nl --epochs 8

Under ``torchrun`` the processes train one model data-parallel (DistributedDataParallel;
gloo on CPU, nccl on CUDA): each takes its share of every batch and the gradients are
averaged. ``--fast`` uses the sizes of the course's fast mode; ``--save DIR`` writes each
process's final weights to ``DIR/weights_rank{R}.pt``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

from .datasets import CLIP_CLASSES, LONG_RANGE, moving_digits
from .models import video_models
from .runtime import environment_report, get_device, seed_everything
from .training import PROGRESS, train_classifier


def video_experiment(fast: bool | None = None) -> dict:
    """The set-up of notebook 06, sized by the mode (``fast=None``: from ``ACV_FAST``):
    train and test clips, seeds, epochs and batch size."""
    from .runtime import fast_mode

    fast = fast_mode() if fast is None else fast
    n_train, n_test = (300, 120) if fast else (3000, 600)
    return {"train": moving_digits(n_train, split="train", frames=16, size=32),
            "test": moving_digits(n_test, split="test", frames=16, size=32),
            "seeds": [0, 1] if fast else [0, 1, 2], "epochs": 2 if fast else 6,
            "batch_size": 60}




def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    models = video_models()
    parser = argparse.ArgumentParser(prog="python -m utils.train_video", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, choices=sorted(models),
                        help="which network to train")
    parser.add_argument("--epochs", type=int, default=None,
                        help="passes over the training clips (default: the notebook's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="one run per seed (default: the notebook's)")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="global batch size, split over the processes")
    parser.add_argument("--clips", type=int, default=None,
                        help="train on the first CLIPS training clips only (quick checks)")
    parser.add_argument("--fast", action="store_true", help="the course's fast-mode sizes")
    parser.add_argument("--progress", choices=PROGRESS, default="auto")
    parser.add_argument("--save", type=Path, default=None,
                        help="folder for each process's final weights")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "clips"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    device = get_device()
    if distributed:
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank = dist.get_rank()
    else:
        rank = 0
    setup = video_experiment(fast=args.fast)
    train, test = setup["train"], setup["test"]
    if args.clips is not None:
        train = train.subset(np.arange(min(args.clips, len(train))))
    epochs = args.epochs or setup["epochs"]
    seeds = args.seeds if args.seeds is not None else setup["seeds"]
    batch_size = min(args.batch_size or setup["batch_size"], len(train))
    say = print if rank == 0 else (lambda *a, **k: None)
    say(environment_report())
    say(f"model {args.model}: {len(train)} training and {len(test)} test clips of "
        f"{train.clips.shape[2]} frames of {train.clips.shape[3]} px, {epochs} epochs, "
        f"batch {batch_size}, seeds {seeds}, device {device}")
    accuracies = []
    for seed in seeds:
        seed_everything(seed)
        model = video_models()[args.model]()
        run = train_classifier(model, train, test, epochs=epochs, batch_size=batch_size,
                               lr=args.lr, seed=seed, device=device, progress=args.progress)
        accuracies.append(run.accuracy)
        long_range = np.nanmean(run.per_class[list(LONG_RANGE)])
        say(f"seed {seed}: test accuracy {run.accuracy:.1%} (long-range classes "
            f"{long_range:.1%}), {run.seconds:.1f} s")
        say("  per class: " + ", ".join(f"{name} {acc:.0%}"
                                       for name, acc in zip(CLIP_CLASSES, run.per_class,
                                                            strict=True)))
        if args.save is not None:
            args.save.mkdir(parents=True, exist_ok=True)
            torch.save({k: v.cpu() for k, v in run.model.state_dict().items()},
                       args.save / f"weights_rank{rank}.pt")
    if len(accuracies) > 1:
        say(f"mean over {len(accuracies)} seeds: {np.mean(accuracies):.1%} "
            f"± {np.std(accuracies, ddof=1):.1%}")
    if distributed:
        import torch.distributed as dist

        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
