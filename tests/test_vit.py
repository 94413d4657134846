"""The tiny Vision Transformer: multi-head attention as non-local operations, the patch
embedding, the backends, the counts, the gradients."""

from pathlib import Path

import numpy as np
import pytest
import torch

from utils import reference as R
from utils.counting import count_macs, count_parameters
from utils.modules import NonLocalBlock
from utils.vit import (
    EncoderBlock,
    MultiHeadAttention,
    PatchEmbedding,
    TinyViT,
    vit_macs,
    vit_parameter_count,
)


def _mha_params(dim: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Non-local parameters (C = C_i = dim) whose batch norm is the identity in inference:
    gamma = sqrt(1 + eps), beta = 0, so that NonLocalBlock(x) = x + W_z y + b_z exactly."""
    params = R.init_nonlocal(dim, dim, "embedded", rng)
    params["gamma"] = np.full(dim, np.sqrt(1 + R.BN_EPS))
    params["beta"] = np.zeros(dim)
    return params


def test_one_head_is_the_non_local_block_without_its_residual_and_norm():
    rng = np.random.default_rng(0)
    params = _mha_params(6, rng)
    x = rng.normal(size=(2, 7, 6))                                   # (B, N, D) tokens
    block = NonLocalBlock(6, inter_channels=6, dim=1, scale=True).double()
    block.load_reference(params).eval()
    mha = MultiHeadAttention(6, heads=1).double().load_reference(params)
    tokens = torch.as_tensor(x)
    with torch.no_grad():
        from_block = block(tokens.transpose(1, 2)).transpose(1, 2)   # (B, C, L) layout
        from_mha = tokens + mha(tokens)
    np.testing.assert_allclose(from_mha.numpy(), from_block.numpy(), rtol=1e-12, atol=1e-12)
    numpy_block, _ = R.nonlocal_forward(x.transpose(0, 2, 1), params, "embedded", scale=True)
    np.testing.assert_allclose(from_mha.numpy(), numpy_block.transpose(0, 2, 1), rtol=1e-10,
                               atol=1e-12)


def _project(x: np.ndarray, params: dict, name: str) -> np.ndarray:
    return x @ params[f"w_{name}"].T + params[f"b_{name}"]


def test_each_head_is_the_embedded_gaussian_operation_on_its_own_channels():
    rng = np.random.default_rng(1)
    dim, heads = 8, 4
    params = _mha_params(dim, rng)
    x = rng.normal(size=(3, 5, dim))
    mha = MultiHeadAttention(dim, heads).double().load_reference(params)
    mha.keep_attention = True
    with torch.no_grad():
        out = mha(torch.as_tensor(x)).numpy()
    theta, phi, g = (_project(x, params, n) for n in ("theta", "phi", "g"))
    d = dim // heads
    ys, fs = [], []
    for k in range(heads):
        cut = slice(k * d, (k + 1) * d)
        y, f = R.embedded_attention(theta[..., cut], phi[..., cut], g[..., cut], scale=True)
        ys.append(y)
        fs.append(f)
    expected = np.concatenate(ys, axis=-1) @ params["w_z"].T + params["b_z"]
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mha.attention.numpy(), np.stack(fs, axis=1), rtol=1e-10,
                               atol=1e-14)
    np.testing.assert_allclose(mha.attention.sum(-1).numpy(), 1.0)


def test_changing_one_heads_weights_leaves_the_other_heads_outputs_unchanged():
    torch.manual_seed(0)
    dim, heads = 8, 2
    mha = MultiHeadAttention(dim, heads).double()
    with torch.no_grad():                          # W_z = I: the output is the concatenation
        mha.w_z.weight.copy_(torch.eye(dim, dtype=torch.float64))
        mha.w_z.bias.zero_()
    x = torch.randn(2, 6, dim, dtype=torch.float64)
    with torch.no_grad():
        before = mha(x)
        for layer in (mha.theta, mha.phi, mha.g):   # head 2 owns rows 4..7
            layer.weight[4:] += torch.randn(4, dim, dtype=torch.float64)
            layer.bias[4:] += 1.0
        after = mha(x)
    torch.testing.assert_close(after[..., :4], before[..., :4], rtol=0, atol=0)
    assert (after[..., 4:] - before[..., 4:]).abs().max() > 1e-3


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_the_fused_and_explicit_backends_agree_forward_and_backward(dtype, tol):
    torch.manual_seed(0)
    kwargs = dict(image_size=(16, 24), patch_size=4, in_channels=2, num_classes=5, dim=16,
                  depth=2, heads=4, mlp_dim=32)
    explicit = TinyViT(**kwargs, backend="matmul").to(dtype)
    with torch.no_grad():                        # a non-zero head, so gradients reach it all
        explicit.head.weight.normal_()
        explicit.cls_token.normal_()
    fused = TinyViT(**kwargs, backend="sdpa").to(dtype)
    fused.load_state_dict(explicit.state_dict())
    x = torch.randn(3, 2, 16, 24, dtype=dtype)
    outs, grads = [], []
    for model in (explicit, fused):
        y = model(x)
        y.pow(2).sum().backward()
        outs.append(y.detach())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(outs[1], outs[0], rtol=tol, atol=tol)
    torch.testing.assert_close(grads[1], grads[0], rtol=tol * 10, atol=tol * 10)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fused.parameters())


def test_shapes_of_every_part():
    x = torch.randn(2, 3, 40, 40)
    assert PatchEmbedding(5, 3, 32)(x).shape == (2, 64, 32)
    assert PatchEmbedding(8, 3, 32)(torch.randn(2, 3, 32, 48)).shape == (2, 24, 32)
    tokens = torch.randn(2, 9, 32)
    assert MultiHeadAttention(32, 4)(tokens).shape == (2, 9, 32)
    assert EncoderBlock(32, 4, 64)(tokens).shape == (2, 9, 32)
    model = TinyViT(40, 5, in_channels=3, num_classes=7, dim=32, depth=1, heads=2, mlp_dim=64,
                    backend="matmul")
    assert model.tokens(x).shape == (2, 65, 32) and model.num_patches == 64
    model.attention_layers()[0].keep_attention = True
    assert model(x).shape == (2, 7)
    assert model.attention_layers()[0].attention.shape == (2, 2, 65, 65)
    wide = TinyViT((32, 48), 8, dim=16, heads=4, mlp_dim=16)
    assert wide(torch.randn(1, 1, 32, 48)).shape == (1, 10) and wide.grid == (4, 6)


def test_patch_embedding_is_reshape_into_patches_then_one_linear_map():
    torch.manual_seed(1)
    b, c, h, w, p, d = 2, 3, 12, 8, 4, 5
    embed = PatchEmbedding(p, c, d).double()
    x = torch.randn(b, c, h, w, dtype=torch.float64)
    # (B, C, H/P, P, W/P, P) -> (B, H/P, W/P, C, P, P) -> (B, N, C P P), patches row-major
    patches = (x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
               .reshape(b, (h // p) * (w // p), c * p * p))
    e = embed.proj.weight.reshape(d, c * p * p)                      # the paper's E, (PPC, D)^T
    expected = patches @ e.T + embed.proj.bias
    torch.testing.assert_close(embed(x), expected, rtol=1e-12, atol=1e-12)
    # the token of patch (row 1, column 0) is computed from those pixels alone
    x2 = x.clone()
    x2[:, :, p:2 * p, 0:p] += 1.0
    changed = (embed(x2) - embed(x)).abs().amax((0, 2)) > 0
    assert changed.nonzero().flatten().tolist() == [w // p]


@pytest.mark.parametrize("config", [
    dict(image_size=40, patch_size=5, in_channels=1, num_classes=10, dim=64, depth=2,
         heads=4, mlp_dim=128),
    dict(image_size=(16, 24), patch_size=8, in_channels=3, num_classes=4, dim=12, depth=3,
         heads=3, mlp_dim=20),
])
def test_parameter_and_mac_formulas_match_the_counters(config):
    model = TinyViT(**config)
    sizes = {k: v for k, v in config.items() if k != "heads"}
    assert count_parameters(model) == vit_parameter_count(**sizes)
    h, w = (config["image_size"],) * 2 if isinstance(config["image_size"], int) else \
        config["image_size"]
    assert count_macs(model, (1, config["in_channels"], h, w)) == vit_macs(**sizes)
    other_heads = TinyViT(**{**config, "heads": 1})
    assert count_parameters(other_heads) == count_parameters(model)


def test_a_new_model_gives_every_class_the_same_score_and_position_tells_patches_apart():
    torch.manual_seed(2)
    model = TinyViT(16, 4, dim=16, depth=1, heads=2, mlp_dim=16).double()
    x = torch.rand(3, 1, 16, 16, dtype=torch.float64)
    assert torch.count_nonzero(model(x)) == 0                       # zero head (authors' code)
    with torch.no_grad():
        model.head.weight.normal_()
    # shuffle the 4 x 4 patches of the image
    blocks = x.reshape(3, 1, 4, 4, 4, 4).permute(0, 1, 2, 4, 3, 5).reshape(3, 1, 16, 4, 4)
    order = torch.randperm(16)
    shuffled = (blocks[:, :, order].reshape(3, 1, 4, 4, 4, 4).permute(0, 1, 2, 4, 3, 5)
                .reshape(3, 1, 16, 16))
    with torch.no_grad():
        assert (model(shuffled) - model(x)).abs().max() > 1e-6      # E_pos tells where
        model.pos_embed.zero_()
        torch.testing.assert_close(model(shuffled), model(x), rtol=1e-12, atol=1e-12)


def test_gradients_match_finite_differences_in_float64():
    torch.manual_seed(3)
    mha = MultiHeadAttention(4, heads=2).double()
    tokens = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(mha, (tokens,))
    model = TinyViT(4, 2, dim=4, depth=1, heads=2, mlp_dim=4, num_classes=3).double()
    with torch.no_grad():
        model.head.weight.normal_()
    image = torch.rand(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (image,))


def test_bad_input_names_the_argument():
    model = TinyViT(40, 5)
    with pytest.raises(ValueError, match=r"built for images \(B, C, 40, 40\)"):
        model(torch.ones(1, 1, 32, 32))
    with pytest.raises(ValueError, match="multiples of patch_size"):
        PatchEmbedding(5, 1, 8)(torch.ones(1, 1, 12, 10))
    with pytest.raises(ValueError, match="was built for D = 8"):
        MultiHeadAttention(8, 2)(torch.ones(1, 3, 4))
    with pytest.raises(ValueError, match="params must be a dict holding 'w_theta'"):
        MultiHeadAttention(8, 2).load_reference({"w_g": np.ones((8, 8))})
    with pytest.raises(ValueError, match=r"params\['w_phi'\] must have shape \(8, 8\)"):
        MultiHeadAttention(8, 2).load_reference(
            {**_mha_params(8, np.random.default_rng(0)), "w_phi": np.ones((4, 8))})


# ---------------------------------------------------------------------------------------------
# The recorded study of notebook 07 (data/vit_study.csv)

ROOT = Path(__file__).resolve().parents[1]


def _study_data():
    from utils.datasets import cluttered_digits
    from utils.vit import read_study

    runs, curves = read_study(ROOT / "data" / "vit_study.csv")
    train = cluttered_digits(runs[0]["train_scenes"], split="train", seed=0)
    test = cluttered_digits(runs[0]["test_scenes"], split="test", seed=0)
    return runs, curves, train, test


def test_the_hybrid_is_the_vit_on_a_convolutions_feature_map():
    from utils.vit import STUDY_SIZE, HybridViT, study_model

    torch.manual_seed(0)
    hybrid = HybridViT(**STUDY_SIZE, stem_channels=8)
    assert hybrid.embed.proj.in_channels == 8 and hybrid.stem[0].in_channels == 1
    x = torch.randn(2, 1, 40, 40)
    with torch.no_grad():
        assert hybrid(x).shape == (2, 10)
        torch.testing.assert_close(hybrid.tokens(x), TinyViT.tokens(hybrid, hybrid.stem(x)))
    assert count_parameters(study_model("hybrid ViT")) == (
        vit_parameter_count(40, 5, 8, 10, 64, 2, 128) + 9 * 8 + 2 * 8)
    with pytest.raises(ValueError, match="model must be one of"):
        study_model("ResNet")


def test_warmup_then_cosine_schedule():
    from utils.vit import warmup_cosine

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = warmup_cosine(opt, 4, 12)
    rates = []
    for _ in range(12):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert rates[4] == pytest.approx(1.0) and rates[-1] == pytest.approx(
        0.5 * (1 + np.cos(np.pi * 7 / 8)))
    assert all(a >= b for a, b in zip(rates[3:], rates[4:], strict=False))
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup_cosine(opt, 12, 12)


def test_the_recorded_study_is_complete_and_consistent():
    runs, curves, _, test = _study_data()
    from utils.vit import STUDY_MODELS, STUDY_RECIPE

    assert {(r["model"], r["seed"]) for r in runs} == {
        (m, s) for m in STUDY_MODELS for s in range(5)}
    for r in runs:
        assert r["epochs"] == STUDY_RECIPE["epochs"] and r["threads"] == 1
        predictions = np.array([int(p) for p in r["predictions"]])
        assert len(predictions) == r["test_scenes"] == len(test.labels)
        assert np.isclose((predictions == test.labels).mean(), r["test_accuracy"])
        last = [c for c in curves if (c["model"], c["seed"]) == (r["model"], r["seed"])][-1]
        assert last["epoch"] == r["epochs"] and np.isclose(last["train_loss"], r["final_loss"])


def test_retraining_the_first_epochs_of_a_recorded_run_gives_the_recorded_curve():
    """The first two epochs of the ViT's seed-0 run, with the recorded schedule, on one
    thread: the notebook's live check, in a test."""
    from utils.vit import study_run

    runs, curves, train, test = _study_data()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _, live, _ = study_run("ViT", 0, train, test, stop_after=2)
    finally:
        torch.set_num_threads(threads)
    recorded = next(c for c in curves if (c["model"], c["seed"], c["epoch"]) == ("ViT", 0, 2))
    assert live[-1]["train_loss"] == pytest.approx(recorded["train_loss"], abs=1e-3)
    assert live[-1]["test_accuracy"] == pytest.approx(recorded["test_accuracy"], abs=0.005)


@pytest.mark.slow
def test_retraining_a_whole_recorded_run_gives_its_recorded_accuracies():
    """The CNN's seed-0 run, all 30 epochs (minutes on one core)."""
    from utils.vit import study_run

    runs, _, train, test = _study_data()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        row, _, _ = study_run("CNN", 0, train, test)
    finally:
        torch.set_num_threads(threads)
    recorded = next(r for r in runs if (r["model"], r["seed"]) == ("CNN", 0))
    assert row["train_accuracy"] == pytest.approx(recorded["train_accuracy"], abs=0.01)
    assert row["test_accuracy"] == pytest.approx(recorded["test_accuracy"], abs=0.01)
