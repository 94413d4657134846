"""Interaction-aware attention: PCA, the loss and its gradient, the modules, TSN sampling."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from utils import check
from utils import reference as R
from utils.datasets import segment_indices
from utils.gradcheck import gradient_check
from utils.models import PyramidAttentionNet
from utils.modules import InteractionAwareAttention, feature_covariance, interaction_loss


def data(seed=0):
    rng = np.random.default_rng(seed)
    return rng, rng.normal(size=(80, 6)) @ rng.normal(size=(6, 6)) + 2.0


def test_pca_from_scratch_equals_svd_and_scikit_learn_up_to_sign():
    _, x = data()
    components, variances = R.top_components(x, 3)
    pca = PCA(3).fit(x)
    np.testing.assert_allclose(components, R.fix_signs(pca.components_), atol=1e-10)
    np.testing.assert_allclose(variances, pca.explained_variance_, rtol=1e-10)
    _, _, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    np.testing.assert_allclose(components, R.fix_signs(vt[:3]), atol=1e-10)
    with pytest.raises(ValueError, match="must not exceed the number of features"):
        R.top_components(x, 7)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_interaction_loss_gradient_passes_the_check(gamma):
    rng, x = data(1)
    w, sigma = rng.normal(size=(4, 6)), R.covariance(x)
    _, grad = R.interaction_loss(w, sigma, gamma)
    errors = gradient_check(lambda w: np.array(R.interaction_loss(w, sigma, gamma)[0]),
                            {"w": w}, {"w": grad}, np.array(1.0))
    assert errors["w"] < 1e-7


def test_penalty_is_zero_for_orthogonal_rows_and_scale_free():
    assert R.orthogonality_penalty(np.eye(3, 5) * 4)[0] == pytest.approx(0.0)
    w = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert R.orthogonality_penalty(w)[0] == pytest.approx(2 * 0.5)
    assert R.orthogonality_penalty(3 * w)[0] == pytest.approx(R.orthogonality_penalty(w)[0])
    with pytest.raises(ValueError, match="all-zero row"):
        R.orthogonality_penalty(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="all-zero row"):
        R.interaction_loss(np.zeros((2, 3)), np.eye(3))


def test_minimising_the_loss_recovers_the_principal_subspace():
    _, x = data(2)
    sigma = R.covariance(x)
    w = np.random.default_rng(3).normal(size=(2, 6))
    for _ in range(3000):
        w -= 0.05 * R.interaction_loss(w, sigma, 1.0)[1]
    u = w / np.linalg.norm(w, axis=1, keepdims=True)
    top, _ = R.top_components(x, 2)
    assert np.linalg.norm(top @ u.T) ** 2 / 2 > 0.9       # share of u inside the top-2 subspace


def test_the_bias_does_not_change_the_maps_and_pooling_is_a_weighted_mean():
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=(2, 5, 3, 4)), rng.normal(size=(3, 5))
    pooled, maps = R.ia_attention_forward(x, w, np.zeros(3))
    pooled_b, maps_b = R.ia_attention_forward(x, w, rng.normal(size=3) * 10)
    np.testing.assert_allclose(maps, maps_b, rtol=1e-12)
    np.testing.assert_allclose(maps.sum(-1), 1.0)
    np.testing.assert_allclose(pooled[0, 1], (x[0].reshape(5, -1) * maps[0, 1]).sum(-1))
    same = np.repeat(maps[:, :1], 3, axis=1)
    assert R.map_diversity(same) == pytest.approx(1.0)


def test_pytorch_attention_and_loss_equal_numpy():
    rng = np.random.default_rng(5)
    x, w, b = rng.normal(size=(2, 6, 4, 5)), rng.normal(size=(3, 6)), rng.normal(size=3)
    module = InteractionAwareAttention(6, 3).double().load_reference(w, b)
    np.testing.assert_allclose(module(torch.from_numpy(x)).detach().numpy(),
                               R.ia_attention_forward(x, w, b)[0], rtol=1e-12)
    flat = x.transpose(1, 0, 2, 3).reshape(6, -1).T
    sigma = feature_covariance(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(sigma, R.covariance(flat), rtol=1e-12)
    value = interaction_loss(torch.from_numpy(w), torch.from_numpy(sigma), 0.7).item()
    assert value == pytest.approx(R.interaction_loss(w, sigma, 0.7)[0], rel=1e-12)
    with pytest.raises(ValueError, match="built for 6 channels"):
        module(torch.zeros(1, 5, 3, 3))


def test_pyramid_network_sets_its_auxiliary_loss_only_when_training():
    model = PyramidAttentionNet(ia_weight=0.5)
    x = torch.randn(3, 1, 40, 40)
    assert model(x).shape == (3, 10) and model.aux_loss is not None
    model.eval()
    model(x)
    assert model.aux_loss is None
    assert model.fused(x).shape == (3, 112, 10, 10)


def test_segment_indices_take_one_frame_per_segment():
    np.testing.assert_array_equal(segment_indices(24, 4), [3, 9, 15, 21])
    drawn = segment_indices(24, 4, np.random.default_rng(0))
    assert all(6 * k <= f < 6 * (k + 1) for k, f in enumerate(drawn))
    with pytest.raises(ValueError, match="must not exceed num_frames"):
        segment_indices(3, 4)


@pytest.mark.parametrize("name, correct", [
    ("top_components", R.top_components),
    ("orthogonality_penalty", lambda w: R.orthogonality_penalty(w)[0]),
    ("ia_attention", lambda x, w, b: R.ia_attention_forward(x, w, b)[0]),
])
def test_interaction_checkers(name, correct):
    checker = getattr(check, name)
    assert checker(correct) is correct

    def wrong(*args):
        out = correct(*args)
        return (out[0] * 1.01, out[1]) if isinstance(out, tuple) else out * 1.01 + 0.01

    with pytest.raises(AssertionError, match="Idea:"):
        checker(wrong)


def test_attention_runs_over_space_and_time_for_video_features():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 5, 4, 3, 3))                  # (B, C, T, H, W): 4 TSN frames
    w, b = rng.normal(size=(3, 5)), rng.normal(size=3)
    pooled, maps = R.ia_attention_forward(x, w, b)
    assert pooled.shape == (2, 3, 5) and maps.shape == (2, 3, 36)
    module = InteractionAwareAttention(5, 3).double().load_reference(w, b)
    np.testing.assert_allclose(module(torch.from_numpy(x)).detach().numpy(), pooled, rtol=1e-12)
