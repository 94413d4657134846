"""Device, seed, fast-mode, grading-mode and frontend helpers: the one place each is decided.

Fast mode is switched on by the environment variable ``ACV_FAST`` (``make test`` sets
``ACV_FAST=1``). Unset, empty or ``0`` means full size: the instructive sizes the notebooks
are committed with.

Grading mode is switched on by ``ACV_GRADING`` (``grading/nbgrader_config.py`` and
``python -m utils.grade`` set ``ACV_GRADING=1``; any other grader can set it too). Under
grading a blank exercise fails its check cell instead of falling back to the reference.
"""

from __future__ import annotations

import os
import platform
import random
import sys
from typing import TypeVar

import numpy as np

FAST_ENV_VAR = "ACV_FAST"
GRADING_ENV_VAR = "ACV_GRADING"
T = TypeVar("T")


def _env_flag(name: str) -> bool:
    """The on/off switch held by environment variable ``name`` (unset means off)."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(
        f"environment variable {name} must be one of 1/0, true/false, yes/no, on/off; "
        f"got {value!r}"
    )


def fast_mode() -> bool:
    """Return True when the fast (CI) mode is switched on by ``ACV_FAST``."""
    return _env_flag(FAST_ENV_VAR)


def grading_mode() -> bool:
    """Return True when a grader runs the notebook (``ACV_GRADING``): blank exercises fail."""
    return _env_flag(GRADING_ENV_VAR)


def live_frontend() -> bool:
    """True when a person's notebook frontend runs the current cell, so widgets can be shown.

    JupyterLab and Jupyter Notebook send every execute request with ``allow_stdin`` true: a
    person is there to type into ``input()``. Batch executors (nbclient, hence ``jupyter
    nbconvert --execute``, nbgrader and ``python -m utils.grade``; nbval) send it false, and no
    frontend renders a widget for them. Starting one there is worse than useless:
    nbclient answers an ``interact``'s Output widget on the kernel's shell socket while it waits
    on that socket for the cell's reply, and that reply is then sometimes missed until the cell's
    time limit (nbclient issue 312). Outside a kernel (plain Python) and under grading mode the
    answer is False as well.
    """
    if grading_mode():
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None or not hasattr(kernel, "get_parent"):
        return False
    request = kernel.get_parent("shell") or {}
    return bool(request.get("content", {}).get("allow_stdin", False))


def pick(fast: T, full: T) -> T:
    """Choose a size by mode: ``pick(fast=64, full=512)``."""
    return fast if fast_mode() else full


def mode_name() -> str:
    """'fast' or 'full', for printing."""
    return "fast" if fast_mode() else "full"


def seed_everything(seed: int = 0) -> np.random.Generator:
    """Seed Python's ``random``, NumPy's global state and PyTorch (CPU and CUDA).

    Returns a fresh ``np.random.Generator`` seeded with ``seed``, the way the course draws
    random numbers in NumPy code.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - libraries still draw from the global state
    try:
        import torch
    except ImportError:  # the NumPy parts of the course run without torch
        pass
    else:
        torch.manual_seed(seed)
    return np.random.default_rng(seed)


def get_device(prefer: str | None = None):
    """The best available ``torch.device``: CUDA, then Apple MPS, then CPU.

    ``prefer`` ('cuda', 'mps' or 'cpu') forces a choice and fails clearly when it is not
    available.
    """
    import torch

    available = {
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(),
        "cpu": True,
    }
    if prefer is not None:
        if prefer not in available:
            raise ValueError(f"prefer must be one of {sorted(available)} or None, got {prefer!r}")
        if not available[prefer]:
            raise ValueError(f"prefer={prefer!r} but no {prefer} device is available here")
        return torch.device(prefer)
    for name in ("cuda", "mps", "cpu"):
        if available[name]:
            return torch.device(name)
    raise AssertionError("unreachable: cpu is always available")


def environment_report() -> dict[str, str]:
    """Versions, device and mode, for the environment check at the top of the course."""
    import matplotlib
    import scipy
    import skimage
    import sklearn
    import torch

    device = get_device()
    if device.type == "cuda":
        device_text = f"cuda ({torch.cuda.get_device_name(device)})"
    else:
        device_text = device.type
    return {
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "matplotlib": matplotlib.__version__,
        "scikit-image": skimage.__version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
        "device": device_text,
        "mode": f"{mode_name()} ({FAST_ENV_VAR}={os.environ.get(FAST_ENV_VAR, '')!r})",
    }
