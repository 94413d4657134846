"""The O(N^2) memory wall of non-local attention, computed and measured.

``affinity_bytes`` is the analytic size of the N x N affinity matrix. ``peak_bytes`` (from
``utils.measure``) is the peak of the NumPy memory one call allocates (``tracemalloc``).
``measure`` runs one attention of N queries and keys of width d in a fresh Python process and
reports its fastest and median time over the repeats and its extra peak memory, for three
variants. On the CPU the memory is the rise of the process's maximum resident set size
(``utils.measure.PeakRSS``); with ``device='cuda'`` it is PyTorch's peak allocated GPU
memory and the time is taken between CUDA synchronisations.

- 'explicit':   softmax(Q K^T) V with the N x N matrix in memory;
- 'fused':      torch.nn.functional.scaled_dot_product_attention (no N x N matrix);
- 'subsampled': explicit, with keys and values max-pooled 2 x 2 (N / 4 of them).

    python -m utils.memory_wall --n 12544 --d 64 --variant fused
    python -m utils.memory_wall --sweep 32 64 112 224 --device cuda --csv data/memory_wall_gpu.csv

``--sweep`` measures every variant at N = side² for each side and writes a CSV whose first
lines (starting with ``#``) say when, on which device and with which versions;
``read_recorded`` reads it back.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from .measure import PeakRSS, device_name
from .measure import peak_bytes as peak_bytes  # notebook 04 imports it from here
from .validate import positive_int

VARIANTS = ("explicit", "fused", "subsampled")


def affinity_bytes(n: int, dtype_bytes: int = 4, batch: int = 1) -> int:
    """Bytes of one N x N affinity matrix per batch element times ``batch``."""
    return positive_int(batch, "batch") * positive_int(n, "n") ** 2 * positive_int(
        dtype_bytes, "dtype_bytes")


def _run(n: int, d: int, variant: str, repeats: int, device: str = "cpu") -> dict:
    import time

    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    q, k, v = (torch.randn(1, 1, n, d, device=dev) for _ in range(3))
    if variant == "subsampled":
        side = int(round(n**0.5))
        if side * side != n:
            raise ValueError(f"subsampled needs a square number of positions, got n={n}")

        def pool(t: torch.Tensor) -> torch.Tensor:
            grid = t[0, 0].T.reshape(1, d, side, side)
            return F.max_pool2d(grid, 2).reshape(d, -1).T[None, None].contiguous()

        k, v = pool(k), pool(v)

    def attend() -> torch.Tensor:
        if variant == "fused":
            return F.scaled_dot_product_attention(q, k, v, scale=1.0)
        return torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(dev)

    with torch.no_grad():
        if cuda:
            sync()
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            attend()
            sync()
            extra_kib = (torch.cuda.max_memory_allocated(dev) - base) / 1024
            exact = True
        else:
            rss = PeakRSS().start()
            attend()
            extra_kib, exact = rss.extra_kib(), rss.exact
        times = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            attend()
            sync()
            times.append(time.perf_counter() - start)
    times.sort()
    return {"n": n, "d": d, "variant": variant, "device": dev.type,
            "ms": 1000 * times[0], "median_ms": 1000 * times[len(times) // 2],
            "repeats": repeats, "extra_mib": extra_kib / 1024,
            "threads": torch.get_num_threads(), "peak_reset": exact}


def measure(n: int, d: int, variant: str, repeats: int = 10, device: str = "cpu") -> dict:
    """Run one measurement in a fresh process (so that peak memory starts clean).

    Returns a dict with ``ms`` (the fastest of ``repeats`` timed calls after one warm-up
    call: the least disturbed by other work on the machine), ``median_ms`` and ``extra_mib``
    (the extra peak memory of one call).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    n, d, repeats = positive_int(n, "n"), positive_int(d, "d"), positive_int(repeats, "repeats")
    out = subprocess.run([sys.executable, "-m", "utils.memory_wall", "--n", str(n), "--d", str(d),
                          "--variant", variant, "--repeats", str(repeats), "--device", device],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


FIELDS = ("n", "d", "variant", "device", "ms", "median_ms", "repeats", "extra_mib")


def write_recorded(rows: list[dict], path: Path | str, device_name: str) -> None:
    """Write measurements (dicts from ``measure``) to a CSV, with a header of '#' lines: the
    date (UTC), ``device_name`` and the Python and PyTorch versions."""
    import csv
    import platform
    from datetime import UTC, datetime

    import torch

    if not rows or not all(isinstance(r, dict) and set(FIELDS) <= set(r) for r in rows):
        raise ValueError(f"rows must be a non-empty list of measurements with fields {FIELDS}")
    path = Path(path)
    with path.open("w", newline="") as out:
        out.write(f"# recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n# device {device_name}\n"
                  f"# python {platform.python_version()}, torch {torch.__version__}\n")
        writer = csv.DictWriter(out, FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def read_recorded(path: Path | str) -> tuple[dict[str, str], list[dict]]:
    """A CSV written by ``write_recorded``: (its header as {'recorded', 'device', 'python'},
    its rows with numbers as numbers)."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path must be a recorded measurement file, got {str(path)!r} "
                         "(no such file)")
    lines = path.read_text().splitlines()
    meta = {}
    for line in lines:
        if line.startswith("# "):
            key, _, value = line[2:].partition(" ")
            meta[key] = value
    rows = []
    for row in csv.DictReader(line for line in lines if not line.startswith("#")):
        rows.append({k: (v if k in ("variant", "device") else
                         int(v) if k in ("n", "d", "repeats") else float(v))
                     for k, v in row.items()})
    if not rows:
        raise ValueError(f"path {str(path)!r} holds no measurements")
    return meta, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help="number of positions N")
    parser.add_argument("--sweep", type=int, nargs="+", default=None, metavar="SIDE",
                        help="measure every variant at N = SIDE**2 for each SIDE")
    parser.add_argument("--csv", type=Path, default=None, help="with --sweep: write here")
    parser.add_argument("--d", type=int, default=64, help="query/key width")
    parser.add_argument("--variant", choices=VARIANTS, default=None)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    if args.sweep is None and (args.n is None or args.variant is None):
        parser.error("give --n and --variant for one measurement, or --sweep SIDE ...")
    for name in ("n", "d", "repeats"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be a positive integer, got {value}")
    if args.sweep is not None:
        if min(args.sweep) < 2:
            parser.error(f"--sweep sides must be integers >= 2, got {args.sweep}")
        rows = []
        for side in args.sweep:
            for variant in VARIANTS:
                rows.append(measure(side * side, args.d, variant, args.repeats, args.device))
                print(json.dumps(rows[-1]), flush=True)
        if args.csv is not None:
            import torch

            write_recorded(rows, args.csv, device_name(torch.device(args.device)))
        return 0
    print(json.dumps(_run(args.n, args.d, args.variant, args.repeats, args.device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
