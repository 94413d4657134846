"""The cost of every attention module of the course: parameters, MACs, peak memory, latency.

    python -m utils.benchmark                      # every module at every shape, this device
    python -m utils.benchmark --quick              # the smallest shapes, fewer repeats
    python -m utils.benchmark --dtype bfloat16 --compile --csv out.csv --markdown out.md

Shapes: the four ResNet-50 stages (256x56x56, 512x28x28, 1024x14x14, 2048x7x7, batch 1) and
video features (T frames of a stage, batch 1). 2-D modules (SE, CBAM and its parts, GC,
ECA) run on every frame of a video shape, as in notebook 06.

- MACs: ``utils.counting.count_macs`` (convolutions and matrix products, fused attention
  counted under its math backend); elementwise work is not counted.
- Peak memory: the most memory held during one forward pass beyond the input and the
  parameters. On CUDA from the allocator's statistics; on CPU the rise of the process's
  resident-set high-water mark (Linux, reset before each measurement; large allocations are
  forced to ``mmap`` so that freed memory goes back to the system). Memory is measured for
  every module in a pass of its own, before any timing: forcing ``mmap`` slows a forward
  pass, so the timed passes run afterwards with the allocator's normal settings.
- Latency: median of ``--repeats`` timed forward passes after ``--warmup`` untimed ones,
  under ``torch.inference_mode``; CUDA is synchronised around each pass. ``ms_iqr`` is the
  interquartile range of those passes: the timing noise. ``--batch`` sets the batch (1 by
  default: latency; larger: throughput, images per second = batch / time).
- "vs plain": this module's time over that of the obvious plain-PyTorch way of writing the
  same computation (pooling layers, explicit attention matrix); below 1 is faster. The module
  and its twin are timed interleaved (one pass of each, in turn), so that a slow spell of the
  machine hits both; the ratio is the median of the per-pair ratios, and ``vs_plain_low`` and
  ``vs_plain_high`` their quartiles: a range that contains 1 is no measured difference.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .counting import count_macs, count_parameters
from .measure import PeakRSS, device_name
from .models import FrameWise, VideoNonLocal
from .modules import (
    CBAM,
    ChannelAttention,
    EfficientChannelAttention,
    GlobalContext,
    InteractionAwareAttention,
    NonLocalBlock,
    SpatialAttention,
    SqueezeExcitation,
)

RESNET_SHAPES = [(256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)]
VIDEO_SHAPES = [(512, 8, 28, 28), (1024, 4, 14, 14)]          # (C, T, H, W)


# ------------------------------------------------------------------ plain-PyTorch baselines

class PlainSE(nn.Module):
    """SE written with pooling and 1x1 convolution layers."""

    def __init__(self, se: SqueezeExcitation):
        if not isinstance(se, SqueezeExcitation):
            raise ValueError(f"se must be a SqueezeExcitation module, got {type(se).__name__}")
        super().__init__()
        c, h = se.fc1.in_features, se.fc1.out_features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(c, h, 1), nn.Conv2d(h, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(self.pool(x)))))


class PlainECA(nn.Module):
    """ECA written with a pooling layer and a Conv1d over the squeezed, transposed vector."""

    def __init__(self, eca: EfficientChannelAttention):
        if not isinstance(eca, EfficientChannelAttention):
            raise ValueError(f"eca must be an EfficientChannelAttention module, "
                             f"got {type(eca).__name__}")
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, eca.kernel_size, padding=eca.kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(x).squeeze(-1).transpose(-1, -2)                # (B, 1, C)
        return x * torch.sigmoid(self.conv(y).transpose(-1, -2).unsqueeze(-1))


class PlainGC(nn.Module):
    """The global context block with an explicit softmax map and a matmul."""

    def __init__(self, gc: GlobalContext):
        if not isinstance(gc, GlobalContext):
            raise ValueError(f"gc must be a GlobalContext module, got {type(gc).__name__}")
        super().__init__()
        self.gc = gc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        a = F.softmax(self.gc.context(x).view(b, 1, h * w), dim=-1)   # (B, 1, N)
        context = torch.matmul(x.view(b, c, h * w).unsqueeze(1), a.unsqueeze(-1))  # (B,1,C,1)
        return x + self.gc.transform(context.view(b, c, 1, 1))


@dataclass
class Row:
    """One measured module at one shape."""

    module: str
    shape: str
    device: str
    dtype: str
    params: int
    mmacs: float
    peak_mib: float
    ms: float
    vs_plain: float | None = None
    ms_iqr: float | None = None
    vs_plain_low: float | None = None
    vs_plain_high: float | None = None
    batch: int = 1


def _specs(c: int, video: bool) -> dict[str, tuple[Callable[[], nn.Module],
                                                    Callable[[nn.Module], nn.Module] | None]]:
    """name -> (builder, plain twin builder or None) for features with c channels."""
    r = 16

    def frames(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        return (lambda: FrameWise(build())) if video else build

    def nl(**kw) -> Callable[[], nn.Module]:
        if video:
            return lambda: VideoNonLocal(c, "spacetime", **kw)
        return lambda: NonLocalBlock(c, **kw)

    def unwrap(m: nn.Module) -> nn.Module:
        return m.module if isinstance(m, FrameWise) else m

    def plain(cls: type) -> Callable[[nn.Module], nn.Module]:
        return lambda m: FrameWise(cls(unwrap(m))) if video else cls(m)

    def as_matmul(m: nn.Module) -> nn.Module:
        twin = (VideoNonLocal(c, "spacetime") if video else NonLocalBlock(c))
        twin.load_state_dict(m.state_dict())
        return twin

    specs = {
        "SE": (frames(lambda: SqueezeExcitation(c, r)), plain(PlainSE)),
        "CBAM channel": (frames(lambda: ChannelAttention(c, r)), None),
        "CBAM spatial": (frames(lambda: SpatialAttention(c)), None),
        "CBAM": (frames(lambda: CBAM(c, r)), None),
        "ECA": (frames(lambda: EfficientChannelAttention(c)), plain(PlainECA)),
        "GC": (frames(lambda: GlobalContext(c, r)), plain(PlainGC)),
        "NL matmul": (nl(), None),
        "NL sdpa": (nl(backend="sdpa"), as_matmul),
        "NL sdpa + subsample": (nl(backend="sdpa", subsample=True), None),
        "NL matmul + subsample": (nl(subsample=True), None),
        "NL dot": (nl(mode="dot"), None),
        "NL concat": (nl(mode="concat"), None),
        "interaction-aware (K=4)": (lambda: InteractionAwareAttention(c, 4), None),
    }
    return specs


def _peak_tracker(device: torch.device) -> tuple[Callable[[], None], Callable[[], float]]:
    """(reset, read): bytes of memory held at the peak since reset, beyond what was held."""
    if device.type == "cuda":
        def reset() -> None:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            reset.base = torch.cuda.memory_allocated(device)

        def read() -> float:
            torch.cuda.synchronize(device)
            return float(torch.cuda.max_memory_allocated(device) - reset.base)
        return reset, read
    rss = PeakRSS()

    def read_cpu() -> float:      # only an exact (resettable) high-water mark is reported
        return 1024.0 * rss.extra_kib() if rss.exact else float("nan")
    return rss.start, read_cpu


def _times(modules: list[nn.Module], x: torch.Tensor, warmup: int,
           repeats: int) -> list[list[float]]:
    """Milliseconds of ``repeats`` forward passes of each module, interleaved (one pass of each
    module in turn, ``repeats`` times), after ``warmup`` untimed rounds."""
    sync = (lambda: torch.cuda.synchronize(x.device)) if x.device.type == "cuda" else (
        lambda: None)
    times: list[list[float]] = [[] for _ in modules]
    with torch.inference_mode():
        for _ in range(warmup):
            for module in modules:
                module(x)
        for _ in range(repeats):
            for module, own in zip(modules, times, strict=True):
                sync()
                start = time.perf_counter()
                module(x)
                sync()
                own.append(1000 * (time.perf_counter() - start))
    return times


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    """(lower quartile, median, upper quartile); all three equal for a single value."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    low, mid, high = statistics.quantiles(values, n=4, method="inclusive")
    return low, mid, high


def _time(module: nn.Module, x: torch.Tensor, warmup: int, repeats: int) -> float:
    """The median time of a forward pass in milliseconds."""
    return statistics.median(_times([module], x, warmup, repeats)[0])


def time_spread(module: nn.Module, x: torch.Tensor, warmup: int = 2,
                repeats: int = 5) -> tuple[float, float, float]:
    """(lower quartile, median, upper quartile) of the forward time in milliseconds."""
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor (the module's input), got {type(x).__name__}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    return _quartiles(_times([module], x, warmup, repeats)[0])


@contextlib.contextmanager
def _mmap_every_allocation() -> Iterator[None]:
    """Inside: glibc serves allocations above 64 KiB with mmap, so that freed memory leaves
    the process and the high-water mark of each measurement starts clean. On exit: thresholds
    as glibc's dynamic rule ends up after large frees (mmap above 32 MiB, trim above 64 MiB);
    left at 64 KiB, every later tensor allocation would fault in fresh pages, which made
    training in the same process 1.6x slower. No-op where glibc is absent."""
    try:
        import ctypes

        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        yield
        return
    mallopt(-3, 64 * 1024)                           # M_MMAP_THRESHOLD
    mallopt(-1, 0)                                   # M_TRIM_THRESHOLD
    try:
        yield
    finally:
        mallopt(-3, 32 * 2**20)
        mallopt(-1, 64 * 2**20)


def run(shapes: list[tuple[int, ...]], modules: list[str] | None = None,
        device: torch.device | None = None, dtype: torch.dtype = torch.float32,
        compile_: bool = False, warmup: int = 2, repeats: int = 5, progress: str = "auto",
        max_affinity_gib: float = 4.0, batch: int = 1) -> list[Row]:
    """Measure every module (or those named in ``modules``) at every shape (C, H, W) or
    (C, T, H, W), on ``batch`` inputs at a time. Explicit attention whose N x N matrices
    would exceed ``max_affinity_gib`` is skipped (reported as a row of NaNs)."""
    from .runtime import get_device
    from .training import Progress

    if isinstance(max_affinity_gib, bool) or not isinstance(max_affinity_gib, int | float) or (
            not max_affinity_gib > 0 or max_affinity_gib == float("inf")):
        raise ValueError(f"max_affinity_gib must be a positive, finite number of GiB, got "
                         f"{max_affinity_gib!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    device = device or get_device()
    jobs = []
    for shape in shapes:
        if len(shape) not in (3, 4):
            raise ValueError(f"shapes must be (C, H, W) or (C, T, H, W), got {shape}")
        specs = _specs(shape[0], video=len(shape) == 4)
        unknown = set(modules or []) - set(specs)
        if unknown:
            raise ValueError(f"unknown modules {sorted(unknown)}; choose from {sorted(specs)}")
        jobs += [(shape, name, specs[name]) for name in specs if not modules or name in modules]
    # Memory first, for every job, in a pass of its own: on CPU the measurement serves every
    # allocation from fresh pages (mmap), which slows a forward pass several times over, so
    # the timed passes run afterwards, with the allocator's normal settings.
    built, peaks = [], []
    with _mmap_every_allocation():
        reset, read = _peak_tracker(device)
        for shape, name, (build, _) in jobs:
            n = math.prod(shape[1:])
            explicit = "matmul" in name or name in ("NL dot", "NL concat")
            keys = n // 4 if "subsample" in name else n
            if explicit and batch * n * keys * 4 > max_affinity_gib * 2**30:
                built.append(None)
                peaks.append(float("nan"))
                continue
            torch.manual_seed(0)
            module = build().eval()
            params = count_parameters(module)
            macs = count_macs(module, (1, *shape)) / 1e6
            module = module.to(device=device, dtype=dtype)
            x = torch.randn(batch, *shape, device=device, dtype=dtype)
            run_module = torch.compile(module) if compile_ else module
            with torch.inference_mode():
                run_module(x)                            # compile / first-call allocations
                reset()
                run_module(x)
                peaks.append(read() / 2**20)
            built.append((module, run_module, params, macs))
            del x
    bar = Progress(len(jobs), "benchmark", progress)
    rows = []
    for (shape, name, (_, plain)), made, peak in zip(jobs, built, peaks, strict=True):
        label = "x".join(map(str, shape))
        if made is None:
            rows.append(Row(name, label, device.type, str(dtype).replace("torch.", ""),
                            0, float("nan"), float("nan"), float("nan"), batch=batch))
            bar.step(f"{name} {label}: skipped (N x N too large)")
            continue
        module, run_module, params, macs = made
        torch.manual_seed(0)
        x = torch.randn(batch, *shape, device=device, dtype=dtype)
        ratio = low = high = None
        if plain is None:
            times = _times([run_module], x, warmup, repeats)[0]
        else:
            twin = plain(module).to(device=device, dtype=dtype).eval()
            twin = torch.compile(twin) if compile_ else twin
            times, twin_times = _times([run_module, twin], x, warmup, repeats)
            ratios = [a / b for a, b in zip(times, twin_times, strict=True)]
            low, ratio, high = _quartiles(ratios)
        q1, ms, q3 = _quartiles(times)
        rows.append(Row(name, label, device.type, str(dtype).replace("torch.", ""), params,
                        macs, peak, ms, ratio, q3 - q1, low, high, batch))
        bar.step(f"{name} {label}: {ms:.2f} ms")
    bar.close()
    return rows


def _check_rows(rows: object) -> None:
    if not isinstance(rows, list | tuple) or not rows or not all(
            isinstance(r, Row) for r in rows):
        raise ValueError("rows must be a non-empty list of benchmark Rows (what run returns), "
                         f"got {type(rows).__name__}")


def markdown(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    _check_rows(rows)
    lines = ["| module | shape | params | MMACs | peak MiB | ms (IQR) | vs plain (IQR) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = "" if r.vs_plain is None else f"{r.vs_plain:.2f}"
        if r.vs_plain is not None and r.vs_plain_low is not None:
            ratio += f" ({r.vs_plain_low:.2f}–{r.vs_plain_high:.2f})"
            if r.vs_plain_low <= 1 <= r.vs_plain_high:
                ratio += " ≈1"
        spread = "" if r.ms_iqr is None else f" ({r.ms_iqr:.2g})"
        macs = f"{r.mmacs:,.0f}" if r.mmacs >= 100 else f"{r.mmacs:.3g}"
        lines.append(f"| {r.module} | {r.shape} | {r.params:,} | {macs} | "
                     f"{r.peak_mib:,.1f} | {r.ms:.3g}{spread} | {ratio} |")
    return "\n".join(lines)


def to_csv(rows: list[Row]) -> str:
    """The rows as CSV text with a header."""
    _check_rows(rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(asdict(rows[0])))
    writer.writeheader()
    for r in rows:
        writer.writerow(asdict(r))
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    from .runtime import environment_report, get_device

    parser = argparse.ArgumentParser(prog="python -m utils.benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="the two smallest ResNet shapes and one video shape, 3 repeats")
    parser.add_argument("--shapes", nargs="+", default=None, metavar="C,H,W",
                        help="feature shapes C,H,W or C,T,H,W (default: ResNet-50 stages and "
                             "two video shapes)")
    parser.add_argument("--modules", nargs="+", default=None, help="measure only these")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--compile", action="store_true", help="torch.compile every module")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1,
                        help="inputs per pass (1: latency; e.g. 64: throughput)")
    parser.add_argument("--markdown", type=Path, default=None, help="write the table here")
    parser.add_argument("--csv", type=Path, default=None, help="write the rows here")
    parser.add_argument("--progress", default="auto", choices=["auto", "bar", "text", "off"])
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be a positive integer, got {args.repeats}")
    if args.batch < 1:
        parser.error(f"--batch must be a positive integer, got {args.batch}")
    shapes = (RESNET_SHAPES[2:] + VIDEO_SHAPES[1:]) if args.quick else (
        RESNET_SHAPES + VIDEO_SHAPES)
    if args.shapes:
        try:
            shapes = [tuple(int(v) for v in text.split(",")) for text in args.shapes]
        except ValueError:
            parser.error(f"--shapes must be comma-separated integers such as 256,56,56, "
                         f"got {args.shapes}")
        if any(len(sh) not in (3, 4) or min(sh) < 1 for sh in shapes):
            parser.error(f"--shapes must be C,H,W or C,T,H,W of positive integers, "
                         f"got {args.shapes}")
    repeats = args.repeats or (3 if args.quick else 10)
    device = torch.device(args.device) if args.device else get_device()
    rows = run(shapes, args.modules, device, getattr(torch, args.dtype), args.compile,
               args.warmup, repeats, args.progress, batch=args.batch)
    table = markdown(rows)
    threads = torch.get_num_threads()
    header = (f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {device_name(device)}, "
              f"{threads} thread{'s' if threads != 1 else ''}\n\n{environment_report()}\n\n"
              f"dtype {args.dtype}, compile {args.compile}, batch {args.batch}, "
              f"median of {repeats} after "
              f"{args.warmup} warm-up passes\n\n")
    print(header + table)
    if args.markdown:
        args.markdown.write_text(header + table + "\n")
    if args.csv:
        args.csv.write_text(to_csv(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
