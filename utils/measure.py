"""The measurement helpers the benchmarks, the memory wall, the deployment study and the
checkers share: the peak resident memory of this process, the name of a device, and the peak
of the NumPy memory one call allocates.

- ``PeakRSS``: ``start()`` then ``extra_kib()``, the rise of the process's high-water mark
  (on Linux the mark is reset first, so that earlier peaks, such as importing PyTorch, cannot
  hide it; elsewhere the coarser ``ru_maxrss``);
- ``device_name``: the GPU's name, or the CPU's model name where Linux reports it;
- ``peak_bytes``: ``tracemalloc``'s peak for one call, which the call's own ``tracemalloc``
  calls cannot end or reset.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any


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


def _reset_peak_rss() -> bool:
    """Reset this process's peak resident set size (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


class PeakRSS:
    """The rise of this process's peak resident memory since ``start()``.

    ``exact`` is True where the high-water mark could be reset (Linux); elsewhere the rise of
    ``ru_maxrss``, which an earlier, larger peak can hide (it then reads 0).
    """

    def start(self) -> PeakRSS:
        self.exact = _reset_peak_rss() and _memory_kib("VmRSS") is not None
        self.base = _memory_kib("VmRSS") if self.exact else self._maxrss()
        return self

    def extra_kib(self) -> int:
        peak = _memory_kib("VmHWM") if self.exact else self._maxrss()
        return max((peak or 0) - self.base, 0)

    @staticmethod
    def _maxrss() -> int:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def device_name(device: Any) -> str:
    """The GPU's name for a CUDA ``torch.device``, else the CPU's model name where Linux
    reports it, else the device type."""
    if not isinstance(getattr(device, "type", None), str):
        raise ValueError(f"device must be a torch.device, got {type(device).__name__}")
    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return device.type


_TRACEMALLOC_CONTROLS = ("start", "stop", "reset_peak", "clear_traces")


def peak_bytes(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, int]:
    """``fn(*args, **kwargs)`` and the peak bytes it allocated on top of what existed before.

    Measured with ``tracemalloc``, which sees NumPy's array allocations (not PyTorch's);
    deterministic, so the same call gives the same figure on every machine. While ``fn`` runs,
    ``tracemalloc.start``, ``stop``, ``reset_peak`` and ``clear_traces`` do nothing, so that a
    function that measures itself cannot end or reset this measurement; a function that got
    round that (names imported from tracemalloc beforehand) raises RuntimeError.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    if tracemalloc.is_tracing():
        raise ValueError("peak_bytes cannot run while tracemalloc is already tracing")
    controls = {name: getattr(tracemalloc, name) for name in _TRACEMALLOC_CONTROLS}
    tracemalloc.start()
    marker = bytearray(64)                      # traced from now on, unless tracing restarts
    try:
        for name in _TRACEMALLOC_CONTROLS:
            setattr(tracemalloc, name, lambda *a, **k: None)
        base = tracemalloc.get_traced_memory()[0]
        result = fn(*args, **kwargs)
        intact = tracemalloc.is_tracing() and tracemalloc.get_object_traceback(marker) is not None
        peak = tracemalloc.get_traced_memory()[1] if intact else 0
    finally:
        for name, control in controls.items():
            setattr(tracemalloc, name, control)
        controls["stop"]()
    if not intact:
        raise RuntimeError("the measured function stopped or restarted tracemalloc itself, so "
                           "its peak memory could not be measured")
    return result, peak - base
