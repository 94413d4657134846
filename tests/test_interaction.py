"""Interaction-aware attention: PCA, eq. (6) on maps and its gradient, the modules, the
pyramid network with its controls, TSN sampling."""

import numpy as np
import pytest
import scipy.optimize
import torch
from sklearn.decomposition import PCA

from utils import check
from utils import reference as R
from utils.datasets import segment_indices
from utils.functional import softmax
from utils.gradcheck import gradient_check
from utils.models import PyramidAttentionNet, SegmentPyramidNet
from utils.modules import InteractionAwareAttention, interaction_loss, interaction_terms


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


@pytest.mark.parametrize("normalise", [True, False])
def test_interaction_loss_gradient_passes_the_check(normalise):
    rng = np.random.default_rng(1)
    maps = softmax(rng.normal(size=(4, 12)), axis=1)
    x = np.abs(rng.normal(size=(12, 5)))
    _, grad = R.interaction_loss(maps, x, normalise)
    errors = gradient_check(lambda maps: np.array(R.interaction_loss(maps, x, normalise)[0]),
                            {"maps": maps}, {"maps": grad}, np.array(1.0))
    assert errors["maps"] < 1e-7


def test_the_two_terms_of_eq_6():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 3))
    disjoint = np.array([[1.0, 2, 0, 0, 0, 0], [0, 0, 3, 0, 0, 0], [0, 0, 0, 1, 1, 1]])
    variance, overlap = R.interaction_terms(disjoint, x, normalise=False)
    unit = disjoint / np.linalg.norm(disjoint, axis=1, keepdims=True)
    assert overlap == pytest.approx(0.0)
    assert variance == pytest.approx(np.trace(unit @ x @ x.T @ unit.T))
    same = np.ones((3, 6))
    assert R.interaction_terms(same, x)[1] == pytest.approx(3 * 2)        # K (K - 1)
    loss, _ = R.interaction_loss(disjoint, x, normalise=False)
    assert loss == pytest.approx(-variance + overlap)
    # The orthogonality penalty of the exercise is the second term.
    assert R.orthogonality_penalty(same * rng.uniform(1, 2, size=(3, 1)))[0] == pytest.approx(6)


def test_the_raw_variance_term_grows_with_the_square_of_the_scale_and_the_course_s_does_not():
    rng = np.random.default_rng(3)
    maps, x = softmax(rng.normal(size=(3, 10)), axis=1), rng.normal(size=(10, 4))
    raw, normalised = R.interaction_terms(maps, x, False)[0], R.interaction_terms(maps, x)[0]
    assert R.interaction_terms(maps, 5 * x, False)[0] == pytest.approx(25 * raw)
    assert R.interaction_terms(maps, 5 * x)[0] == pytest.approx(normalised)
    assert 0 < normalised <= 3 + 1e-12                   # each map holds at most all the energy


def _descend(x, normalise, k=3, seed=4):
    n = len(x)

    def fun(s):
        loss, grad = R.interaction_loss(s.reshape(k, n), x, normalise)
        return loss, grad.ravel()

    s0 = np.random.default_rng(seed).normal(size=k * n)
    rows = scipy.optimize.minimize(fun, s0, jac=True, method="L-BFGS-B").x.reshape(k, n)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_descent_collapses_onto_the_leading_eigenvector_only_without_the_normalisation():
    rng = np.random.default_rng(5)
    x = np.abs(rng.normal(size=(30, 6))) * 3          # non-negative: a dominant eigenvalue
    lead = np.linalg.eigh(x @ x.T)[1][:, -1]
    collapsed, spread = _descend(x, False), _descend(x, True)
    assert np.all(np.abs(collapsed @ lead) > 0.99)
    off = ~np.eye(3, dtype=bool)
    assert np.abs(spread @ spread.T)[off].max() < 0.3
    np.testing.assert_allclose(_descend(10 * x, True), spread, atol=1e-4)   # scale-free


def test_penalty_is_zero_for_orthogonal_rows_and_scale_free():
    assert R.orthogonality_penalty(np.eye(3, 5) * 4)[0] == pytest.approx(0.0)
    w = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert R.orthogonality_penalty(w)[0] == pytest.approx(2 * 0.5)
    assert R.orthogonality_penalty(3 * w)[0] == pytest.approx(R.orthogonality_penalty(w)[0])
    with pytest.raises(ValueError, match="all-zero row"):
        R.orthogonality_penalty(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="all-zero row"):
        R.interaction_loss(np.zeros((2, 3)), np.ones((3, 2)))


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
    pooled, maps = module.attend(torch.from_numpy(x))
    np.testing.assert_allclose(pooled.detach().numpy(), R.ia_attention_forward(x, w, b)[0],
                               rtol=1e-12)
    np.testing.assert_allclose(module(torch.from_numpy(x)).detach().numpy(),
                               pooled.detach().numpy())
    for normalise in (True, False):
        variance, overlap = interaction_terms(maps, torch.from_numpy(x), normalise)
        expected = [R.interaction_terms(maps[i].detach().numpy(), x[i].reshape(6, -1).T,
                                        normalise) for i in range(2)]
        np.testing.assert_allclose(variance.detach().numpy(), [e[0] for e in expected],
                                   rtol=1e-12)
        np.testing.assert_allclose(overlap.detach().numpy(), [e[1] for e in expected],
                                   rtol=1e-12, atol=1e-14)
        loss = interaction_loss(maps, torch.from_numpy(x), normalise)
        assert loss.item() == pytest.approx(np.mean([o - v for v, o in expected]), rel=1e-12)
    with pytest.raises(ValueError, match="built for 6 channels"):
        module(torch.zeros(1, 5, 3, 3))


def test_the_loss_reaches_the_score_weights_through_the_maps():
    module = InteractionAwareAttention(5, 3)
    features = torch.randn(2, 5, 4, 4)
    _, maps = module.attend(features)
    interaction_loss(maps, features).backward()
    assert module.score.weight.grad is not None and module.score.weight.grad.abs().sum() > 0


def test_pyramid_network_sets_its_auxiliary_loss_only_when_training():
    model = PyramidAttentionNet(ia_weight=0.5)
    x = torch.randn(3, 1, 40, 40)
    assert model(x).shape == (3, 10) and model.aux_loss is not None
    model.eval()
    model(x)
    assert model.aux_loss is None
    assert model.fused(x).shape == (3, 112, 10, 10)
    plain = PyramidAttentionNet()
    plain(x)
    assert plain.aux_loss is None


def test_the_average_pooling_control_has_the_same_pyramid_and_no_attention():
    torch.manual_seed(0)
    control = PyramidAttentionNet(pooling="average")
    x = torch.randn(2, 1, 40, 40)
    assert control.attention is None and control(x).shape == (2, 10)
    features = control.fused(x)
    np.testing.assert_allclose(control(x).detach().numpy(),
                               control.fc(features.mean((2, 3))).detach().numpy(), rtol=1e-6)
    attention = PyramidAttentionNet()
    trunk = {k for k in attention.state_dict() if k.startswith(("stem", "stages"))}
    assert trunk == {k for k in control.state_dict() if k.startswith(("stem", "stages"))}


def test_the_video_network_keeps_its_loss():
    net = SegmentPyramidNet(segments=2, ia_weight=1.0)
    out = net(torch.rand(2, 1, 4, 16, 16))
    assert out.shape == (2, 6) and net.aux_loss is not None and net.aux_loss.requires_grad


def test_segment_indices_take_one_frame_per_segment():
    np.testing.assert_array_equal(segment_indices(24, 4), [3, 9, 15, 21])
    drawn = segment_indices(24, 4, np.random.default_rng(0))
    assert all(6 * k <= f < 6 * (k + 1) for k, f in enumerate(drawn))
    with pytest.raises(ValueError, match="must not exceed num_frames"):
        segment_indices(3, 4)


@pytest.mark.parametrize("name, correct", [
    ("top_components", R.top_components),
    ("orthogonality_penalty", lambda w: R.orthogonality_penalty(w)[0]),
])
def test_interaction_checkers(name, correct):
    checker = getattr(check, name)
    assert checker(correct) is correct

    def wrong(*args):
        out = correct(*args)
        return (out[0] * 1.01, out[1]) if isinstance(out, tuple) else out * 1.01 + 0.01

    with pytest.raises(AssertionError, match="Idea:"):
        checker(wrong)


def test_the_module_checker_accepts_the_course_s_module():
    assert check.InteractionAware(InteractionAwareAttention) is InteractionAwareAttention


def test_attention_runs_over_space_and_time_for_video_features():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 5, 4, 3, 3))                  # (B, C, T, H, W): 4 TSN frames
    w, b = rng.normal(size=(3, 5)), rng.normal(size=3)
    pooled, maps = R.ia_attention_forward(x, w, b)
    assert pooled.shape == (2, 3, 5) and maps.shape == (2, 3, 36)
    module = InteractionAwareAttention(5, 3).double().load_reference(w, b)
    np.testing.assert_allclose(module(torch.from_numpy(x)).detach().numpy(), pooled, rtol=1e-12)
