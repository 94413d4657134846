"""The O(N^2) memory wall of non-local attention, computed and measured.

``affinity_bytes`` is the analytic size of the N x N affinity matrix. ``measure`` runs one
attention of N queries and keys of width d in a fresh Python process and reports its
median time and its extra peak memory (the rise of the process's maximum resident set
size, so only CPU memory is meaningful; on Linux the high-water mark is reset first, so that
earlier peaks, such as importing PyTorch, cannot hide it), for three variants:

- 'explicit':   softmax(Q K^T) V with the N x N matrix in memory;
- 'fused':      torch.nn.functional.scaled_dot_product_attention (no N x N matrix);
- 'subsampled': explicit, with keys and values max-pooled 2 x 2 (N / 4 of them).

    python -m utils.memory_wall --n 12544 --d 64 --variant fused
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from .validate import positive_int

VARIANTS = ("explicit", "fused", "subsampled")


def affinity_bytes(n: int, dtype_bytes: int = 4, batch: int = 1) -> int:
    """Bytes of one N x N affinity matrix per batch element times ``batch``."""
    return positive_int(batch, "batch") * positive_int(n, "n") ** 2 * positive_int(
        dtype_bytes, "dtype_bytes")


def _memory_kib(field: str) -> int | None:
    """A memory field of /proc/self/status in KiB ('VmRSS', 'VmHWM'), None where unavailable."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's peak resident set size (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _run(n: int, d: int, variant: str, repeats: int) -> dict:
    import resource
    import time

    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 1, n, d) for _ in range(3))
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

    exact = _reset_peak() and _memory_kib("VmRSS") is not None
    base = _memory_kib("VmRSS") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.no_grad():
        attend()
        peak = _memory_kib("VmHWM") if exact else resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss
        extra_kib = peak - base
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            attend()
            times.append(time.perf_counter() - start)
    times.sort()
    return {"n": n, "d": d, "variant": variant, "ms": 1000 * times[len(times) // 2],
            "extra_mib": extra_kib / 1024, "threads": torch.get_num_threads(),
            "peak_reset": exact}


def measure(n: int, d: int, variant: str, repeats: int = 3) -> dict:
    """Run one measurement in a fresh process (so that peak memory starts clean)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    n, d, repeats = positive_int(n, "n"), positive_int(d, "d"), positive_int(repeats, "repeats")
    out = subprocess.run([sys.executable, "-m", "utils.memory_wall", "--n", str(n), "--d", str(d),
                          "--variant", variant, "--repeats", str(repeats)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, required=True, help="number of positions N")
    parser.add_argument("--d", type=int, default=64, help="query/key width")
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(_run(args.n, args.d, args.variant, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
