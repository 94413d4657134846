"""GCNet's global context block and ECA: NumPy references, modules, initialisation."""

import numpy as np
import pytest
import torch

from utils import reference as R
from utils.modules import EfficientChannelAttention, GlobalContext, NonLocalBlock, SqueezeExcitation


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_global_context_module_equals_the_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 8, 5, 3))
    params = R.init_gc(8, 4, rng)
    expected, a = R.gc_forward(x, params)
    block = GlobalContext(8, reduction=4).double().load_reference(params)
    block.keep_attention = True
    got = block(torch.as_tensor(x)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(block.attention.flatten(1).numpy(), a, rtol=1e-10)


def test_global_context_is_a_query_independent_non_local_block():
    """GCNet's simplified block: one softmax map shared by all queries. A non-local block in
    gaussian mode with theta = 0 (every query scores every key the same way) attends
    uniformly; the GC context with w_k = 0 is that uniform average, the same for every
    position: the shared map is what both reduce to."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 6, 4, 4))
    params = R.init_gc(6, 2, rng)
    params["w_k"] = np.zeros(6)
    out, a = R.gc_forward(x, params)
    assert np.allclose(a, 1 / 16)
    shift = out - x                                                  # the same at every position
    assert np.allclose(shift, shift[:, :, :1, :1])


@pytest.mark.parametrize("shape, reduction", [((2, 8, 3, 4), 2), ((1, 6, 5, 1), 3)])
def test_global_context_equals_a_non_local_block_with_one_row_for_every_query(shape, reduction):
    """GCNet's equivalence: the non-local computation with an explicit N x N matrix whose rows
    are all the softmax map, the transform run at every query, gives the GC block's output."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=shape)
    params = R.init_gc(shape[1], reduction, rng)
    expected, a = R.gc_forward(x, params)
    z, attention = R.gc_as_nonlocal(x, params)
    n = shape[2] * shape[3]
    assert attention.shape == (shape[0], n, n)
    np.testing.assert_allclose(attention, np.broadcast_to(a[:, None, :], attention.shape),
                               rtol=1e-12)
    np.testing.assert_allclose(z, expected, rtol=1e-10, atol=1e-12)


def test_global_context_starts_as_the_identity_with_papers_shapes():
    torch.manual_seed(0)
    block = GlobalContext(64, reduction=16)
    x = torch.randn(2, 64, 7, 9)
    assert torch.equal(block(x), x)
    assert block.transform[0].out_channels == 4
    assert isinstance(block.transform[1], torch.nn.LayerNorm)
    assert block.context.weight.abs().sum() > 0
    # parameters: C + 1 (context) + 2 C^2 / r + 3 C / r + C (transform)
    c, r = 64, 16
    assert sum(p.numel() for p in block.parameters()) == c + 1 + 2 * c * c // r + 3 * c // r + c


def test_global_context_is_far_cheaper_than_non_local_at_large_n():
    from utils.counting import count_macs

    gc = count_macs(GlobalContext(256), (1, 256, 56, 56))
    nl = count_macs(NonLocalBlock(256), (1, 256, 56, 56))
    assert gc * 20 < nl


@pytest.mark.parametrize("channels, k", [(64, 3), (128, 5), (256, 5), (512, 5), (1024, 5),
                                         (2048, 7)])
def test_eca_kernel_size_matches_the_authors_code(channels, k):
    assert R.eca_kernel_size(channels) == k
    t = (np.log2(channels) + 1) / 2
    nearest_odd = 2 * np.floor(t / 2) + 1                            # odd number in [t-1, t+1]
    if t != round(t) or t % 2:                                       # no tie: the two agree
        assert k == nearest_odd


@pytest.mark.parametrize("seed", [0, 1])
def test_eca_module_equals_the_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, 16, 4, 5))
    w = rng.normal(size=3)
    expected, s = R.eca_forward(x, w)
    eca = EfficientChannelAttention(16, kernel_size=3).double().load_reference(w)
    np.testing.assert_allclose(eca(torch.as_tensor(x)).detach().numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(eca.gate(torch.as_tensor(x)).detach().numpy(), s, rtol=1e-10)


def test_eca_is_local_across_channels_and_has_k_parameters():
    """A change in channel c moves the weights of channels c - k//2 .. c + k//2 only."""
    eca = EfficientChannelAttention(256)
    assert eca.kernel_size == 5 and sum(p.numel() for p in eca.parameters()) == 5
    se = SqueezeExcitation(256, reduction=16)
    assert sum(p.numel() for p in se.parameters()) > 1000 * 5
    x = torch.randn(1, 256, 3, 3)
    y = x.clone()
    y[:, 100] += 5.0
    changed = (eca.gate(x) != eca.gate(y))[0].nonzero().flatten().tolist()
    assert changed and min(changed) >= 98 and max(changed) <= 102


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="odd"):
        EfficientChannelAttention(16, kernel_size=4)
    with pytest.raises(ValueError, match="odd"):
        R.eca_forward(np.ones((1, 4, 2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="reduction"):
        GlobalContext(8, reduction=16)
    with pytest.raises(ValueError, match="channels"):
        GlobalContext(8)(torch.randn(1, 4, 3, 3))
    with pytest.raises(ValueError, match="missing"):
        R.gc_forward(np.ones((1, 4, 2, 2)), {"w1": np.ones((2, 4))})


@pytest.mark.parametrize("channels, inter", [(8, 4), (6, 6), (5, 7)])
def test_a_non_local_block_with_zero_query_weights_is_one_map_and_one_added_vector(
        channels, inter):
    """Notebook 07's derivation: with W_theta = 0 every row of the attention matrix is one map
    softmax(w_k . x_j) with w_k = W_phi^T b_theta, and the block adds one vector everywhere."""
    rng = np.random.default_rng(channels)
    params = R.init_nonlocal(channels, inter, "embedded", rng)
    params["w_theta"] = np.zeros_like(params["w_theta"])
    x = rng.normal(size=(2, channels, 3, 4))
    z, f = R.nonlocal_forward(x, params, "embedded")
    z_one, a = R.query_free_nonlocal(x, params)
    np.testing.assert_allclose(z_one, z, atol=1e-12)
    np.testing.assert_allclose(f, np.repeat(a[:, None, :], 12, axis=1), atol=1e-14)
    added = (z_one - x).reshape(2, channels, -1)
    np.testing.assert_allclose(added, added[:, :, :1].repeat(12, axis=2), atol=1e-14)
