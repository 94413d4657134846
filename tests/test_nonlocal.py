"""Non-local means, the non-local block in NumPy and PyTorch, and the memory-wall benchmark."""

import numpy as np
import pytest
import torch
from skimage import data
from skimage.restoration import denoise_nl_means

from utils import check
from utils import reference as R
from utils.denoising import nl_means, nlmeans_weights, psnr
from utils.memory_wall import affinity_bytes, measure
from utils.modules import NonLocalBlock


def test_nl_means_is_within_half_a_decibel_of_scikit_image():
    clean = data.camera()[200:328, 200:328] / 255.0
    sigma = 0.1
    noisy = clean + np.random.default_rng(0).normal(0, sigma, clean.shape)
    kwargs = dict(patch_size=7, patch_distance=6, h=0.8 * sigma, sigma=sigma)
    ours = psnr(clean, nl_means(noisy, **kwargs))
    theirs = psnr(clean, denoise_nl_means(noisy, fast_mode=True, **kwargs))
    assert ours > psnr(clean, noisy) + 5 and abs(ours - theirs) < 0.5


def test_nlmeans_weights_and_psnr():
    w = nlmeans_weights(np.array([0.0, 0.02, 0.04]), h=0.1, sigma=0.1)
    np.testing.assert_allclose(w, [1.0, 1.0, np.exp(-2.0)])       # 2 sigma^2 = 0.02 is free
    assert psnr(np.zeros(4), np.full(4, 0.1)) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="patch_size must be odd"):
        nl_means(np.zeros((8, 8)), patch_size=4)


def test_embedded_gaussian_is_single_head_self_attention():
    rng = np.random.default_rng(1)
    q, k, v = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 2))
    y, f = R.embedded_attention(q, k, v, scale=True)
    expected = torch.nn.functional.scaled_dot_product_attention(*map(torch.from_numpy, (q, k, v)))
    np.testing.assert_allclose(y, expected.numpy(), rtol=1e-12)
    np.testing.assert_allclose(f.sum(-1), 1.0)
    y_dot, f_dot = R.dot_attention(q, k, v)
    np.testing.assert_allclose(f_dot, q @ k.transpose(0, 2, 1) / 4)


@pytest.mark.parametrize("mode", R.NL_MODES)
def test_block_is_the_identity_with_zero_gamma_and_permutation_equivariant(mode):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 6, 9))
    out, _ = R.nonlocal_forward(x, R.init_nonlocal(6, 3, mode, rng, zero_gamma=True), mode)
    np.testing.assert_allclose(out, x, atol=0)
    params = R.init_nonlocal(6, 3, mode, rng)
    perm = rng.permutation(9)
    out, _ = R.nonlocal_forward(x, params, mode)
    permuted, _ = R.nonlocal_forward(x[:, :, perm], params, mode)
    np.testing.assert_allclose(permuted, out[:, :, perm], rtol=1e-10, atol=1e-12)


def test_subsampling_pools_space_but_not_time():
    x = np.arange(2 * 3 * 4 * 6, dtype=float).reshape(1, 2, 3, 4, 6)
    pooled = R.max_pool_spatial(x)
    assert pooled.shape == (1, 2, 3, 2, 3)
    assert pooled[0, 0, 1, 0, 0] == x[0, 0, 1, :2, :2].max()
    rng = np.random.default_rng(3)
    _, f = R.nonlocal_forward(x, R.init_nonlocal(2, 1, "embedded", rng), subsample=True)
    assert f.shape == (1, 72, 18)


SPATIAL = {1: (7,), 2: (6, 5), 3: (3, 4, 6)}


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("mode", R.NL_MODES)
@pytest.mark.parametrize("subsample", [False, True])
def test_pytorch_block_equals_the_reference_in_float64(dim, mode, subsample):
    rng = np.random.default_rng(dim * 10 + R.NL_MODES.index(mode))
    x = rng.normal(size=(2, 8, *SPATIAL[dim]))
    for scale in (False, True):
        params = R.init_nonlocal(8, 4, mode, rng)
        expected, _ = R.nonlocal_forward(x, params, mode, subsample, scale)
        backends = ["matmul", "sdpa"] if mode in ("gaussian", "embedded") else ["matmul"]
        for backend in backends:
            block = NonLocalBlock(8, 4, mode, dim, subsample, scale, backend).double()
            out = block.load_reference(params).eval()(torch.from_numpy(x))
            np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-10, atol=1e-12)


def test_pytorch_block_starts_as_the_identity_and_is_equivariant():
    torch.manual_seed(0)
    block = NonLocalBlock(8, dim=1).eval()
    x = torch.randn(2, 8, 11)
    assert torch.equal(block(x), x)
    torch.nn.init.normal_(block.bn.weight)
    perm = torch.randperm(11)
    torch.testing.assert_close(block(x[:, :, perm]), block(x)[:, :, perm])


def test_sdpa_backend_matches_matmul_in_float32_and_trains():
    torch.manual_seed(1)
    a = NonLocalBlock(16, mode="embedded", dim=3, scale=True)
    b = NonLocalBlock(16, mode="embedded", dim=3, scale=True, backend="sdpa")
    torch.nn.init.normal_(a.bn.weight)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 16, 2, 6, 5, requires_grad=True)
    torch.testing.assert_close(a.eval()(x), b.eval()(x), rtol=1e-5, atol=1e-5)
    b.train()(x).sum().backward()
    assert x.grad is not None and b.theta.weight.grad is not None


@pytest.mark.parametrize("call, message", [
    (lambda: NonLocalBlock(8, mode="cosine"), "mode must be one of"),
    (lambda: NonLocalBlock(8, dim=4), "dim must be 1, 2 or 3"),
    (lambda: NonLocalBlock(8, mode="dot", backend="sdpa"), "use backend='matmul'"),
    (lambda: NonLocalBlock(8, dim=2)(torch.zeros(1, 8, 4)), "2 spatial axes"),
    (lambda: NonLocalBlock(8, dim=2)(torch.zeros(1, 6, 4, 4)), "built for 8 channels"),
    (lambda: R.nonlocal_forward(np.zeros((1, 4, 3)), {"w_g": np.zeros((2, 4))}), "missing"),
    (lambda: R.nonlocal_forward(np.zeros((1, 4)), {}), "x must have 3 or 4 or 5 dimensions"),
    (lambda: measure(16, 4, "flash"), "variant must be one of"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_recorded_measurements_round_trip_with_their_header(tmp_path):
    from utils.memory_wall import peak_bytes, read_recorded, write_recorded

    rows = [measure(256, 8, variant, repeats=2) for variant in ("explicit", "fused")]
    write_recorded(rows, tmp_path / "m.csv", "test device")
    meta, back = read_recorded(tmp_path / "m.csv")
    assert meta["device"] == "test device" and "torch" in meta["python"]
    assert [r["variant"] for r in back] == ["explicit", "fused"] and back[0]["n"] == 256
    assert back[0]["ms"] == pytest.approx(rows[0]["ms"]) and back[0]["ms"] <= back[0]["median_ms"]
    # tracemalloc sees NumPy: an explicit 512 x 512 float64 softmax needs at least its matrix
    _, explicit = peak_bytes(R.embedded_attention, *(np.ones((1, 512, 4)),) * 3)
    _, tiled = peak_bytes(R.tiled_attention, *(np.ones((1, 512, 4)),) * 3, tile=16)
    assert explicit >= 512 * 512 * 8 > 4 * tiled


def test_memory_wall_measures_and_counts():
    assert affinity_bytes(12544) == 12544**2 * 4
    explicit, fused = measure(4096, 16, "explicit"), measure(4096, 16, "fused")
    assert explicit["n"] == fused["n"] == 4096 and explicit["ms"] > 0
    assert explicit["extra_mib"] > 32 > fused["extra_mib"]   # a 64 MiB affinity vs none


@pytest.mark.parametrize("name, reference_fn", [
    ("nlmeans_weights", nlmeans_weights),
    ("embedded_attention", lambda t, p, g: R.embedded_attention(t, p, g)[0]),
    ("dot_attention", lambda t, p, g: R.dot_attention(t, p, g)[0]),
    ("max_pool_2x2", R.max_pool_spatial),
])
def test_nonlocal_checkers(name, reference_fn):
    checker = getattr(check, name)
    assert checker(reference_fn) is reference_fn
    with pytest.raises(AssertionError, match="Idea:"):
        checker(lambda *args: reference_fn(*args) * 1.01 + 0.01)


@pytest.mark.parametrize("backend", ["matmul", "sdpa"])
def test_counted_macs_of_the_block_match_the_formula_for_both_backends(backend):
    """4 N C C_i for the four 1x1 convolutions plus 2 N^2 C_i for the two attention products;
    the fused kernel is counted too (under the math backend)."""
    from utils.counting import count_macs

    c, ci, h, w = 32, 16, 6, 7
    n = h * w
    block = NonLocalBlock(c, ci, backend=backend)
    assert count_macs(block, (1, c, h, w)) == 4 * n * c * ci + 2 * n * n * ci


def test_a_function_that_measures_itself_cannot_end_or_reset_the_measurement():
    import tracemalloc

    from utils.measure import peak_bytes

    def full_then_own_measurement(n):
        tracemalloc.start()                 # natural in a notebook about memory
        scores = np.ones((n, n))
        del scores
        tracemalloc.reset_peak()
        tracemalloc.stop()
        return n

    assert peak_bytes(full_then_own_measurement, 512) == (512, pytest.approx(512 * 512 * 8,
                                                                             rel=0.01))
    assert not tracemalloc.is_tracing() and tracemalloc.start is not None
    from tracemalloc import start, stop  # bound before the measurement: it can be ended,

    def restarts(n):                        # and that is detected, not read as a tiny peak
        stop()
        start()
        return np.ones((n, n)).sum()

    with pytest.raises(RuntimeError, match="stopped or restarted tracemalloc"):
        peak_bytes(restarts, 64)
    assert not tracemalloc.is_tracing()
    assert tracemalloc.start is start and tracemalloc.stop is stop   # the module is as it was
