"""What a learner's function can leave changed in the process, put back after every call.

Every call of the learner's code that a checker makes runs inside :func:`restored`: the
settings below are saved before it and restored after it, so that a function that switches
autograd off (or changes the default dtype, NumPy's error handling, ...) and never switches
it back cannot break the checker's own reference run or the rest of the notebook. What was
changed is reported, so that the answer fails with a message naming it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Setting:
    """One process-wide setting: how to read it, how to set it back, and what to tell a
    learner whose function left it changed."""

    name: str
    read: Callable[[], Any]
    write: Callable[[Any], None]
    advice: str


def _tracing(on: bool) -> None:
    (tracemalloc.start if on else tracemalloc.stop)()


def _numpy_settings() -> list[Setting]:
    return [
        Setting("NumPy's error handling (np.seterr)", np.geterr, lambda d: np.seterr(**d),
                "use `with np.errstate(...):`, which restores it"),
        Setting("tracemalloc tracing", tracemalloc.is_tracing, _tracing,
                "stop what you start before returning"),
        Setting("the working directory", os.getcwd, os.chdir, "use paths, not os.chdir"),
    ]


def _torch_settings() -> list[Setting]:
    import torch

    settings = [
        Setting("gradient recording (torch.is_grad_enabled())", torch.is_grad_enabled,
                torch.set_grad_enabled, "use `with torch.no_grad():`, which switches it back "
                "on; not torch.set_grad_enabled(False) alone"),
        Setting("PyTorch's default dtype", torch.get_default_dtype, torch.set_default_dtype,
                "give new tensors dtype=x.dtype instead"),
        Setting("PyTorch's thread count", torch.get_num_threads, torch.set_num_threads,
                "leave it to the notebook"),
        Setting("PyTorch's deterministic-algorithms switch",
                torch.are_deterministic_algorithms_enabled, torch.use_deterministic_algorithms,
                "leave it to the notebook"),
        Setting("autograd's anomaly detection", torch.is_anomaly_enabled,
                torch.set_anomaly_enabled, "use `with torch.autograd.detect_anomaly():`"),
    ]
    if hasattr(torch, "get_default_device"):
        settings.append(Setting("PyTorch's default device", torch.get_default_device,
                                torch.set_default_device,
                                "create new tensors with device=x.device instead"))
    return settings


def settings() -> list[Setting]:
    """The settings guarded now: NumPy's and the process's, and PyTorch's once it is imported
    (a NumPy exercise does not import it)."""
    return _numpy_settings() + (_torch_settings() if "torch" in sys.modules else [])


@contextlib.contextmanager
def restored() -> Iterator[list[Setting]]:
    """Inside: the learner's code. On exit, every setting is put back as it was, and the list
    given by ``with restored() as changed`` holds those that had changed."""
    guarded = settings()
    before = [s.read() for s in guarded]
    changed: list[Setting] = []
    try:
        yield changed
    finally:
        for setting, value in zip(guarded, before, strict=True):
            try:
                same = setting.read() == value
            except Exception:       # a setting that cannot even be read back: put it back
                same = False
            if not same:
                changed.append(setting)
                setting.write(value)


def describe(changed: list[Setting], who: str) -> str:
    """The message for settings left changed by ``who`` ('your function')."""
    return (f"{who} left {' and '.join(s.name for s in changed)} changed for every later cell "
            f"(put back now): {'; '.join(s.advice for s in changed)}.")
