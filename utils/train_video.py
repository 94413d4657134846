"""Train, resume and evaluate the video models of notebook 06 from the command line.

    python -m utils.train_video --model i3d+nl --epochs 8 --seeds 0 1 2 --save runs
    python -m utils.train_video --evaluate runs/i3d-nl_seed0_full.pt
    python -m utils.train_video --resume runs/i3d-nl_seed0_full.pt --epochs 2 --save runs2
    torchrun --nproc_per_node 2 -m utils.train_video --model i3d+nl --epochs 8

``--fast`` uses the sizes of the course's fast mode (also switched on by ``ACV_FAST=1``).
``--save DIR`` writes one checkpoint per seed, ``DIR/<model>_seed<S>_<mode>.pt``: the weights
with the model's name, the seed, the mode, the epochs trained and the test accuracy. It never
overwrites a file unless ``--overwrite`` is given. ``--evaluate PATH`` tests a checkpoint;
``--resume PATH`` trains a checkpoint's weights for ``--epochs`` more epochs (with a fresh
optimiser and learning-rate schedule: the checkpoint holds the weights only). Checkpoints are
read with ``torch.load(weights_only=True)``, which cannot run code stored in the file.

Every argument, the output folder and the checkpoint are checked before any data is built.
Under ``torchrun`` the processes train one model data-parallel (DistributedDataParallel;
gloo on CPU, nccl on CUDA): each takes its share of every batch and the gradients are
averaged; each process then saves its copy of the weights with ``_rank<R>`` in the name.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from .datasets import CLIP_CLASSES, LONG_RANGE, moving_digits
from .models import video_models
from .runtime import environment_report, fast_mode, get_device, seed_everything
from .training import PROGRESS, evaluate, train_classifier

CHECKPOINT_FORMAT = "acv-video-checkpoint"
CHECKPOINT_VERSION = 1
SEEDS = {"fast": [0, 1], "full": [0, 1, 2]}              # notebook 06's seeds in each mode


def video_experiment(fast: bool | None = None) -> dict:
    """The set-up of notebook 06, sized by the mode (``fast=None``: from ``ACV_FAST``):
    train and test clips, seeds, epochs and batch size."""
    fast = fast_mode() if fast is None else fast
    if not isinstance(fast, bool):
        raise ValueError(f"fast must be True, False or None, got {fast!r}")
    n_train, n_test = (300, 120) if fast else (3000, 600)
    return {"train": moving_digits(n_train, split="train", frames=16, size=32),
            "test": moving_digits(n_test, split="test", frames=16, size=32),
            "seeds": SEEDS["fast" if fast else "full"], "epochs": 2 if fast else 6,
            "batch_size": 60}


def checkpoint_name(model: str, seed: int, mode: str, rank: int | None = None) -> str:
    """File name of one run's checkpoint: model name (non-alphanumerics as '-'), seed, mode."""
    if model not in video_models():
        raise ValueError(f"model must be one of {sorted(video_models())}, got {model!r}")
    if mode not in SEEDS:
        raise ValueError(f"mode must be 'fast' or 'full', got {mode!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", model).strip("-")
    return f"{slug}_seed{seed}_{mode}" + (f"_rank{rank}" if rank is not None else "") + ".pt"


def _writable_folder(folder: Path) -> str | None:
    """Why ``folder`` cannot take checkpoints (None when it can): made if missing, then a
    probe file is written and removed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def load_checkpoint(path: Path) -> dict:
    """A checkpoint written by this command, loaded with ``weights_only=True``.

    Raises ValueError naming the file when it is unreadable, corrupt, or not a course
    video checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:                        # truncated, not a zip, pickled code, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path} is not a readable checkpoint (corrupt or truncated?): "
                         f"{first}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a checkpoint of python -m utils.train_video (no "
                         f"'format': {CHECKPOINT_FORMAT!r} entry)")
    missing = {"version", "model", "seed", "mode", "epochs", "state_dict"} - set(ckpt)
    if missing:
        raise ValueError(f"{path} lacks {sorted(missing)}: not a complete checkpoint")
    if ckpt["version"] != CHECKPOINT_VERSION:
        raise ValueError(f"{path} has checkpoint version {ckpt['version']}; this course "
                         f"reads version {CHECKPOINT_VERSION}")
    if ckpt["model"] not in video_models():
        raise ValueError(f"{path} holds a model named {ckpt['model']!r}, which the course "
                         f"does not have ({', '.join(sorted(video_models()))})")
    return ckpt


def _model_from(ckpt: dict, path: Path) -> torch.nn.Module:
    model = video_models()[ckpt["model"]]()
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: the weights do not fit a {ckpt['model']!r} model: "
                         f"{str(exc).splitlines()[0]}") from None
    return model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line: every check that needs no data runs here."""
    models = video_models()
    parser = argparse.ArgumentParser(prog="python -m utils.train_video", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(models), default=None,
                        help="which network to train (with --resume/--evaluate: the "
                             "checkpoint's, and it must match)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="passes over the training clips (default: the notebook's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="one run per seed (default: the notebook's)")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="global batch size, split over the processes")
    parser.add_argument("--clips", type=int, default=None,
                        help="train on the first CLIPS training clips only (quick checks)")
    parser.add_argument("--fast", action="store_true",
                        help="the course's fast-mode sizes (as ACV_FAST=1 does)")
    parser.add_argument("--progress", choices=PROGRESS, default="auto")
    parser.add_argument("--save", type=Path, default=None,
                        help="folder for one checkpoint per seed")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace checkpoints that already exist in --save")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--resume", type=Path, default=None, metavar="PATH",
                        help="train this checkpoint's weights for --epochs more epochs")
    action.add_argument("--evaluate", type=Path, default=None, metavar="PATH",
                        help="only test this checkpoint")
    args = parser.parse_args(argv)

    for name in ("epochs", "batch_size", "clips"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr must be a finite positive number, got {args.lr}")
    if args.seeds is not None:
        if any(s < 0 for s in args.seeds):
            parser.error(f"--seeds must be non-negative integers, got {args.seeds}")
        if len(set(args.seeds)) != len(args.seeds):
            parser.error(f"--seeds must not repeat a seed (each seed's run has one "
                         f"checkpoint), got {args.seeds}")
    args.checkpoint = None
    args.mode = "fast" if args.fast or fast_mode() else "full"
    given = args.resume or args.evaluate
    if given is not None:
        flag = "--resume" if args.resume else "--evaluate"
        try:
            args.checkpoint = load_checkpoint(given)
        except ValueError as exc:
            parser.error(f"{flag}: {exc}")
        held = args.checkpoint["model"]
        if args.model is not None and args.model != held:
            parser.error(f"{flag}: {given} holds {held!r} weights, not {args.model!r}; drop "
                         f"--model or name the checkpoint of {args.model!r}")
        args.model = held
        if args.seeds is not None:
            parser.error(f"{flag}: the seed is the checkpoint's ({args.checkpoint['seed']}); "
                         f"drop --seeds")
        if args.resume is not None and args.checkpoint["mode"] != args.mode:
            fix = "add --fast" if args.mode == "full" else "drop --fast and unset ACV_FAST"
            parser.error(f"--resume: {given} was trained in {args.checkpoint['mode']} mode; "
                         f"continue it in the same mode ({fix})")
        if args.evaluate is not None and (args.save or args.epochs or args.clips):
            parser.error("--evaluate only tests a checkpoint: drop --save, --epochs and --clips")
    elif args.model is None:
        parser.error("--model is required (unless --resume or --evaluate names a checkpoint)")
    args.run_seeds = ([args.checkpoint["seed"]] if args.checkpoint is not None
                      else args.seeds if args.seeds is not None else SEEDS[args.mode])
    if args.save is not None:
        why = _writable_folder(args.save)
        if why is not None:
            parser.error(f"--save: cannot write checkpoints to {args.save}: {why}")
        _, world, rank = _distributed_env()
        clash = [args.save / checkpoint_name(args.model, s, args.mode,
                                             rank if world > 1 else None)
                 for s in args.run_seeds]
        clash = [str(p) for p in clash if p.exists()]
        if clash and not args.overwrite:
            parser.error(f"--save: {', '.join(clash)} already exist; pass --overwrite to "
                         f"replace them, or choose another folder")
    return args


def _distributed_env() -> tuple[bool, int, int]:
    """(launched by torchrun, world size, this process's rank) from the environment."""
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    if not distributed:
        return False, 1, 0
    return True, int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])


def _checkpoint(run, args: argparse.Namespace, seed: int, epochs: int) -> dict:
    done = epochs + (args.checkpoint["epochs"] if args.checkpoint is not None else 0)
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model": args.model,
            "seed": seed, "mode": args.mode, "epochs": done, "lr": args.lr,
            "accuracy": run.accuracy, "torch": str(torch.__version__),
            "state_dict": {k: v.detach().cpu() for k, v in run.model.state_dict().items()}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    distributed, world, rank = _distributed_env()
    device = get_device()
    if distributed:
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    setup = video_experiment(fast=args.mode == "fast")
    train, test = setup["train"], setup["test"]
    say = print if rank == 0 else (lambda *a, **k: None)
    report = environment_report()
    report["mode"] = args.mode + (" (--fast)" if args.fast else "")
    say(report)
    if args.evaluate is not None:
        model = _model_from(args.checkpoint, args.evaluate).to(device)
        with torch.no_grad():
            accuracy, per_class, _ = evaluate(model, test, device=device)
        say(f"{args.evaluate}: {args.model}, seed {args.checkpoint['seed']}, trained "
            f"{args.checkpoint['epochs']} epochs in {args.checkpoint['mode']} mode; on the "
            f"{len(test)} {args.mode}-mode test clips: accuracy {accuracy:.1%}")
        say("  per class: " + ", ".join(f"{name} {acc:.0%}"
                                       for name, acc in zip(CLIP_CLASSES, per_class, strict=True)))
        return 0
    if args.clips is not None:
        train = train.subset(np.arange(min(args.clips, len(train))))
    epochs = args.epochs or setup["epochs"]
    seeds = args.run_seeds
    batch_size = min(args.batch_size or setup["batch_size"], len(train))
    start = f" from {args.resume} ({args.checkpoint['epochs']} epochs)" if args.resume else ""
    say(f"model {args.model}{start}: {len(train)} training and {len(test)} test clips of "
        f"{train.clips.shape[2]} frames of {train.clips.shape[3]} px, {epochs} epochs, "
        f"batch {batch_size}, seeds {seeds}, device {device}")
    accuracies = []
    for seed in seeds:
        seed_everything(seed)
        if args.checkpoint is not None:
            model = _model_from(args.checkpoint, args.resume)
        else:
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
            path = args.save / checkpoint_name(args.model, seed, args.mode,
                                               rank if world > 1 else None)
            partial = path.with_name(path.name + f".{os.getpid()}.partial")
            torch.save(_checkpoint(run, args, seed, epochs), partial)
            os.replace(partial, path)                   # a crash never leaves half a file
            say(f"  saved {path}")
    if len(accuracies) > 1:
        say(f"mean over {len(accuracies)} seeds: {np.mean(accuracies):.1%} "
            f"± {np.std(accuracies, ddof=1):.1%} (standard deviation)")
    if distributed:
        import torch.distributed as dist

        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
