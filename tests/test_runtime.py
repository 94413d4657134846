import random

import numpy as np
import pytest
import torch

from utils import runtime


@pytest.mark.parametrize("value, expected", [("", False), ("0", False), ("off", False),
                                             ("1", True), ("true", True), ("YES", True)])
def test_fast_mode_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv(runtime.FAST_ENV_VAR, value)
    assert runtime.fast_mode() is expected
    assert runtime.pick(fast="small", full="big") == ("small" if expected else "big")
    assert runtime.mode_name() == ("fast" if expected else "full")


def test_fast_mode_unset_means_full(monkeypatch):
    monkeypatch.delenv(runtime.FAST_ENV_VAR, raising=False)
    assert runtime.fast_mode() is False


def test_fast_mode_rejects_unclear_values(monkeypatch):
    monkeypatch.setenv(runtime.FAST_ENV_VAR, "maybe")
    with pytest.raises(ValueError, match="ACV_FAST"):
        runtime.fast_mode()


def test_seed_everything_makes_every_generator_repeat():
    def draw():
        rng = runtime.seed_everything(7)
        legacy = np.random.rand()  # noqa: NPY002 - the legacy global state must be seeded too
        return (random.random(), legacy, torch.rand(1).item(), rng.random())

    assert draw() == draw()
    first = draw()
    runtime.seed_everything(8)
    assert random.random() != first[0]


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, None])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="seed"):
        runtime.seed_everything(bad)


def test_get_device_falls_back_in_order():
    device = runtime.get_device()
    if torch.cuda.is_available():
        assert device.type == "cuda"
    elif torch.backends.mps.is_available():
        assert device.type == "mps"
    else:
        assert device.type == "cpu"
    assert runtime.get_device("cpu").type == "cpu"


def test_get_device_explains_bad_requests():
    with pytest.raises(ValueError, match="prefer must be one of"):
        runtime.get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no cuda device"):
            runtime.get_device("cuda")


def test_environment_report_names_versions_device_and_mode():
    report = runtime.environment_report()
    for key in ("python", "numpy", "torch", "device", "mode"):
        assert report[key]
    assert report["numpy"] == np.__version__
