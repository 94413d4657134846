"""Library functions refuse bad input with a ValueError that names the argument, before any work."""

import numpy as np
import pytest

from utils import counting, datasets, reference


@pytest.mark.parametrize("call, message", [
    (lambda: counting.se_parameter_overhead((1,), (16,), 0), "reduction must be a positive"),
    (lambda: counting.se_parameter_overhead((1,), (16,), 2.0), "reduction must be a positive"),
    (lambda: counting.se_parameter_overhead((-1,), (16,), 4), "blocks and channels must hold"),
    (lambda: reference.eca_kernel_size(256, gamma=-2), "gamma must be >= 1"),
    (lambda: reference.eca_kernel_size(256, gamma=0), "gamma must be >= 1"),
    (lambda: reference.eca_kernel_size(256, b=-1), "b must be >= 0"),
    (lambda: reference.max_pool_spatial(np.ones((4, 4))), "x must have 3 or 4 or 5 dim"),
    (lambda: reference.max_pool_spatial(np.ones((1, 1, 1, 1))), "at least 2 wide"),
    (lambda: reference.max_pool_spatial(np.ones((1, 1, 1))), "at least 2 wide"),
    (lambda: datasets.attention_in_box(np.zeros((1, 4, 4)), np.array([[0, 0, 8, 8]]), 16),
     "positive total weight"),
    (lambda: datasets.attention_in_box(np.ones((1, 4, 4)), np.array([[0, 0, 8, 8]]), 0),
     "image_size must be >= 1"),
])
def test_bad_input_is_refused_with_the_argument_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_guarded_functions_still_answer_good_input():
    assert counting.se_parameter_overhead((1,), (16,), 4) == 2 * 16 * 4 + 4 + 16
    assert reference.eca_kernel_size(256) == 5
    assert reference.max_pool_spatial(np.arange(16.0).reshape(1, 1, 4, 4)).tolist() == [
        [[[5.0, 7.0], [13.0, 15.0]]]]
    maps = np.ones((1, 4, 4))
    assert datasets.attention_in_box(maps, np.array([[0, 0, 8, 8]]), 16)[0] == 0.25


def test_more_bad_inputs_are_refused_before_any_work():
    from utils import models, modules, saliency

    with pytest.raises(ValueError, match="levels must be at most 9 for a 64 x 64"):
        saliency.gaussian_pyramid(np.zeros((64, 64)), levels=10**7)
    assert len(saliency.gaussian_pyramid(np.zeros((64, 64)))) == 9      # Itti-Koch's scales
    with pytest.raises(ValueError, match="levels must be at most 11 for a 1024 x 8"):
        saliency.gaussian_pyramid(np.zeros((1024, 8)), levels=12)
    with pytest.raises(ValueError, match="fixations must be at most the number of map pixels"):
        saliency.scanpath(np.zeros((8, 8)), fixations=10**9)
    with pytest.raises(ValueError, match="attention must be None or a callable"):
        models.resnet50(attention="se")
    with pytest.raises(ValueError, match="params must be a dict holding 'w1'"):
        modules.SqueezeExcitation(16, reduction=4).load_reference({"w": np.ones(3)})
    with pytest.raises(ValueError, match="params must be a dict holding 'w'"):
        modules.SpatialAttention().load_reference([1, 2])


def test_the_non_local_block_refuses_an_affinity_past_its_memory_limit():
    import torch

    from utils import modules

    block = modules.NonLocalBlock(4, mode="embedded", dim=2)
    x = torch.zeros(1, 4, 256, 256)
    with pytest.raises(ValueError, match=r"N = 65536 positions and 65536 keys: the explicit "
                                         r"affinity needs about 32\.00 GiB") as err:
        block.max_affinity_bytes = 2**30
        block(x)
    assert "subsample=True" in str(err.value) and "backend='sdpa'" in str(err.value)
    huge = torch.zeros(1, 4, 512, 512)        # 2 x 262,144^2 x 4 B = 512 GiB: past any machine
    for mode in ("gaussian", "dot", "concat"):
        with pytest.raises(ValueError, match="max_affinity_bytes"):
            modules.NonLocalBlock(4, mode=mode, dim=2)(huge)   # default: free memory
    small = modules.NonLocalBlock(4, mode="embedded", dim=2)
    small.max_affinity_bytes = 2**20
    assert small(torch.zeros(1, 4, 8, 8)).shape == (1, 4, 8, 8)   # 2 x 64 x 64 x 4 B fits
    fused = modules.NonLocalBlock(4, mode="embedded", dim=2, backend="sdpa")
    fused.max_affinity_bytes = 1
    assert fused(torch.zeros(1, 4, 8, 8)).shape == (1, 4, 8, 8)   # no N x N matrix to guard


def test_the_benchmark_refuses_a_bad_memory_limit():
    from utils import benchmark

    for bad in (-1, 0, float("nan"), float("inf"), "4"):
        with pytest.raises(ValueError, match="max_affinity_gib must be a positive"):
            benchmark.run([(8, 4, 4)], max_affinity_gib=bad)
