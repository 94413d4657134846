"""Train, resume and evaluate the video models of notebook 06 from the command line.

    python -m utils.train_video --model i3d+nl --seeds 0 1 2 --save runs
    python -m utils.train_video --model all --csv sweep.csv
    python -m utils.train_video --evaluate runs/i3d-nl_seed0_full.pt
    python -m utils.train_video --resume runs/i3d-nl_seed0_full.pt --epochs 2 --save runs2
    torchrun --nproc_per_node 2 -m utils.train_video --model i3d+nl

``--fast`` uses the sizes of the course's fast mode (also switched on by ``ACV_FAST=1``).
``--save DIR`` writes one checkpoint per seed, ``DIR/<model>_seed<S>_<mode>.pt``: the weights
with the model's name, the seed, the mode, the epochs trained and the test accuracy. It never
overwrites a file unless ``--overwrite`` is given. ``--csv PATH`` appends one row per run to a
table of results (model, seed, mode, epochs, accuracy overall and per class, seconds, threads,
versions, date); ``--model`` takes several names, or ``all``. ``--evaluate PATH`` tests a
checkpoint; ``--resume PATH`` trains a checkpoint's weights for ``--epochs`` more epochs (with
a fresh optimiser and learning-rate schedule: the checkpoint holds the weights only).
Checkpoints are read with ``torch.load(weights_only=True)``, which cannot run code stored in
the file.

Every argument, the output folder and the checkpoint are checked before any data is built.
Under ``torchrun`` the processes train one model data-parallel (DistributedDataParallel;
gloo on CPU, nccl on CUDA): each takes its share of every batch and the gradients are
averaged; each process then saves its copy of the weights with ``_rank<R>`` in the name.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import math
import os
import platform
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from .datasets import CLIP_CLASSES, LONG_RANGE, moving_digits
from .measure import device_name
from .models import video_models
from .runtime import environment_report, fast_mode, get_device, seed_everything
from .training import PROGRESS, TrainResult, evaluate, train_classifier

CHECKPOINT_FORMAT = "acv-video-checkpoint"
CHECKPOINT_VERSION = 1
SEEDS = {"fast": [0, 1], "full": [0, 1, 2, 3, 4]}        # the sweep's seeds in each mode
CSV_FIELDS = ("model", "seed", "mode", "epochs", "lr", "batch_size", "train_clips",
              "test_clips", "accuracy", *(f"class{k}" for k in range(len(CLIP_CLASSES))),
              "seconds", "threads", "device", "torch", "python", "date")


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
    parser.add_argument("--model", choices=[*sorted(models), "all"], default=None, nargs="+",
                        help="which networks to train, one after the other ('all': every "
                             "one; with --resume/--evaluate: one, the checkpoint's)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="passes over the training clips (default: the notebook's: 6, "
                             "or 2 in fast mode)")
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
    parser.add_argument("--csv", type=Path, default=None,
                        help="append one row per run to this results table (made if missing)")
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
    chosen = args.model or []
    args.models = list(models) if "all" in chosen else list(dict.fromkeys(chosen))
    args.model = args.models[0] if len(args.models) == 1 else None
    given = args.resume or args.evaluate
    if given is not None:
        flag = "--resume" if args.resume else "--evaluate"
        try:
            args.checkpoint = load_checkpoint(given)
        except ValueError as exc:
            parser.error(f"{flag}: {exc}")
        held = args.checkpoint["model"]
        if args.models and args.models != [held]:
            parser.error(f"{flag}: {given} holds {held!r} weights, not "
                         f"{' '.join(args.models)!r}; drop --model or name the checkpoint of "
                         f"{args.models[0]!r}")
        args.model, args.models = held, [held]
        if args.seeds is not None:
            parser.error(f"{flag}: the seed is the checkpoint's ({args.checkpoint['seed']}); "
                         f"drop --seeds")
        if args.resume is not None and args.checkpoint["mode"] != args.mode:
            fix = "add --fast" if args.mode == "full" else "drop --fast and unset ACV_FAST"
            parser.error(f"--resume: {given} was trained in {args.checkpoint['mode']} mode; "
                         f"continue it in the same mode ({fix})")
        if args.evaluate is not None and (args.save or args.epochs or args.clips):
            parser.error("--evaluate only tests a checkpoint: drop --save, --epochs and --clips")
    elif not args.models:
        parser.error("--model is required (unless --resume or --evaluate names a checkpoint)")
    if args.csv is not None:
        if args.evaluate is not None:
            parser.error("--csv records training runs; --evaluate trains nothing")
        why = _csv_problem(args.csv)
        if why is not None:
            parser.error(f"--csv: {why}")
    args.run_seeds = ([args.checkpoint["seed"]] if args.checkpoint is not None
                      else args.seeds if args.seeds is not None else SEEDS[args.mode])
    if args.save is not None:
        why = _writable_folder(args.save)
        if why is not None:
            parser.error(f"--save: cannot write checkpoints to {args.save}: {why}")
        _, world, rank = _distributed_env()
        clash = [args.save / checkpoint_name(m, s, args.mode, rank if world > 1 else None)
                 for m in args.models for s in args.run_seeds]
        clash = [str(p) for p in clash if p.exists()]
        if clash and not args.overwrite:
            parser.error(f"--save: {', '.join(clash)} already exist; pass --overwrite to "
                         f"replace them, or choose another folder")
    return args


def _csv_problem(path: Path) -> str | None:
    """Why rows cannot be appended to ``path`` (None when they can): its folder must be
    writable, and an existing file must be a results table with this command's columns."""
    path = Path(path)
    if path.exists():
        if not path.is_file():
            return f"{path} exists and is not a file"
        header = next((line for line in path.read_text().splitlines()
                       if line and not line.startswith("#")), None)
        if header is not None and header.split(",") != list(CSV_FIELDS):
            return (f"{path} is not a results table of this command (its columns are not "
                    f"{','.join(CSV_FIELDS)}); choose another file")
        if not os.access(path, os.W_OK):
            return f"{path} is not writable"
        return None
    why = _writable_folder(path.parent)
    return None if why is None else f"cannot write to {path.parent}: {why}"


def append_result(path: Path, row: dict) -> None:
    """Append one run's row to the results table ``path``, writing the header (a comment line
    saying what wrote it, then the columns) if the file is new. One ``write`` per row, in
    append mode, so processes appending to one file do not interleave their lines."""
    path = Path(path)
    missing = set(CSV_FIELDS) - set(row)
    if missing:
        raise ValueError(f"row lacks the columns {sorted(missing)}")
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([row[k] for k in CSV_FIELDS])
    line = buffer.getvalue()
    if not path.exists():
        with open(path, "a") as f:
            if f.tell() == 0:
                f.write("# results of python -m utils.train_video --csv: one row per run\n"
                        + ",".join(CSV_FIELDS) + "\n")
    with open(path, "a") as f:
        f.write(line)


def read_results(path: Path) -> list[dict]:
    """The rows of a results table written with ``--csv``: numbers as int or float."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    if not lines or lines[0].split(",") != list(CSV_FIELDS):
        raise ValueError(f"{path} is not a results table of python -m utils.train_video --csv")
    rows = []
    for row in csv.DictReader(lines):
        for key in ("seed", "epochs", "batch_size", "train_clips", "test_clips", "threads"):
            row[key] = int(row[key])
        for key in ("lr", "accuracy", "seconds", *(f"class{k}" for k in range(len(CLIP_CLASSES)))):
            row[key] = float(row[key])
        rows.append(row)
    return rows


def sweep_results(rows: list[dict], mode: str = "full") -> dict[str, list[TrainResult]]:
    """The runs of a results table as ``compare_models`` returns them: model name -> one
    ``TrainResult`` per seed (sorted), in the order of ``video_models()``, for the tables of
    ``utils.training``. Each result's ``model`` is a freshly built network of that name (its
    parameters are counted; its weights are not the trained ones), and it has no losses."""
    if mode not in SEEDS:
        raise ValueError(f"mode must be 'fast' or 'full', got {mode!r}")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and set(CSV_FIELDS) <= set(r)
                                             for r in rows):
        raise ValueError("rows must be a list of result rows, as read_results returns")
    builders = video_models()
    results: dict[str, list[TrainResult]] = {}
    for name, build in builders.items():
        mine = sorted((r for r in rows if r["model"] == name and r["mode"] == mode),
                      key=lambda r: r["seed"])
        seeds = [r["seed"] for r in mine]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"rows hold seed {max(seeds, key=seeds.count)} of {name!r} twice")
        if mine:
            model = build()
            results[name] = [TrainResult(
                accuracy=r["accuracy"], losses=[], seconds=r["seconds"], model=model,
                seed=r["seed"],
                per_class=np.array([r[f"class{k}"] for k in range(len(CLIP_CLASSES))]))
                for r in mine]
    return results


def recorded_correctness(runs: list[TrainResult], classes: Sequence[int], clips_per_class: int,
                         reverse: bool = False) -> np.ndarray:
    """Per seed and test clip of ``classes``, 1.0 if the clip was classified right, 0.0 if not,
    as far as a results table knows: (n_seeds, len(classes) * clips_per_class).

    The table keeps each class's accuracy, not which clips were right, so the clips are laid
    out in the order that makes ``utils.stats.bootstrap_interval`` most cautious: in every
    class the right clips come first for every seed (the seeds agree as much as their counts
    allow, which maximises the test-set noise of the mean), and with ``reverse=True`` they come
    last (pass this for the other model of a paired difference: the two models then disagree
    as much as their counts allow, which maximises the noise of the difference).
    """
    if isinstance(clips_per_class, bool) or not isinstance(clips_per_class, int) \
            or clips_per_class < 1:
        raise ValueError(f"clips_per_class must be a positive integer, got {clips_per_class!r}")
    if not runs:
        raise ValueError("runs must hold at least one run")
    rows = []
    for run in runs:
        row = []
        for k in classes:
            right = int(round(float(run.per_class[k]) * clips_per_class))
            if not 0 <= right <= clips_per_class:
                raise ValueError(f"class {k}'s accuracy {run.per_class[k]} does not fit "
                                 f"{clips_per_class} clips")
            block = np.arange(clips_per_class) < right
            row.append(block[::-1] if reverse else block)
        rows.append(np.concatenate(row))
    return np.array(rows, dtype=float)


def _distributed_env() -> tuple[bool, int, int]:
    """(launched by torchrun, world size, this process's rank) from the environment."""
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    if not distributed:
        return False, 1, 0
    return True, int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])


def _checkpoint(run, args: argparse.Namespace, name: str, seed: int, epochs: int) -> dict:
    done = epochs + (args.checkpoint["epochs"] if args.checkpoint is not None else 0)
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model": name,
            "seed": seed, "mode": args.mode, "epochs": done, "lr": args.lr,
            "accuracy": run.accuracy, "torch": str(torch.__version__),
            "state_dict": {k: v.detach().cpu() for k, v in run.model.state_dict().items()}}


def _train_seeds(name: str, args: argparse.Namespace, train, test, epochs: int,
                 batch_size: int, device: torch.device, say: Callable, rank: int | None) -> None:
    """Train model ``name`` once per seed; save, record and report each run."""
    seeds = args.run_seeds
    start = f" from {args.resume} ({args.checkpoint['epochs']} epochs)" if args.resume else ""
    say(f"model {name}{start}: {len(train)} training and {len(test)} test clips of "
        f"{train.clips.shape[2]} frames of {train.clips.shape[3]} px, {epochs} epochs, "
        f"batch {batch_size}, seeds {seeds}, device {device}")
    accuracies = []
    for seed in seeds:
        seed_everything(seed)
        if args.checkpoint is not None:
            model = _model_from(args.checkpoint, args.resume)
        else:
            model = video_models()[name]()
        run = train_classifier(model, train, test, epochs=epochs, batch_size=batch_size,
                               lr=args.lr, seed=seed, device=device, progress=args.progress)
        accuracies.append(run.accuracy)
        long_range = np.nanmean(run.per_class[list(LONG_RANGE)])
        say(f"seed {seed}: test accuracy {run.accuracy:.1%} (long-range classes "
            f"{long_range:.1%}), {run.seconds:.1f} s")
        say("  per class: " + ", ".join(f"{label} {acc:.0%}"
                                       for label, acc in zip(CLIP_CLASSES, run.per_class,
                                                             strict=True)))
        if args.save is not None:
            path = args.save / checkpoint_name(name, seed, args.mode, rank)
            partial = path.with_name(path.name + f".{os.getpid()}.partial")
            torch.save(_checkpoint(run, args, name, seed, epochs), partial)
            os.replace(partial, path)                   # a crash never leaves half a file
            say(f"  saved {path}")
        if args.csv is not None and not rank:
            append_result(args.csv, {
                "model": name, "seed": seed, "mode": args.mode,
                "epochs": epochs + (args.checkpoint["epochs"] if args.checkpoint else 0),
                "lr": args.lr, "batch_size": batch_size, "train_clips": len(train),
                "test_clips": len(test), "accuracy": f"{run.accuracy:.6f}",
                **{f"class{k}": f"{acc:.6f}" for k, acc in enumerate(run.per_class)},
                "seconds": f"{run.seconds:.1f}", "threads": torch.get_num_threads(),
                "device": device_name(device), "torch": torch.__version__,
                "python": platform.python_version(),
                "date": datetime.date.today().isoformat()})
    if len(accuracies) > 1:
        say(f"mean over {len(accuracies)} seeds: {np.mean(accuracies):.1%} "
            f"± {np.std(accuracies, ddof=1):.1%} (standard deviation)")


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
    for name in args.models:
        _train_seeds(name, args, train, test, epochs,
                     min(args.batch_size or setup["batch_size"], len(train)), device, say,
                     rank if world > 1 else None)
    if distributed:
        import torch.distributed as dist

        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
