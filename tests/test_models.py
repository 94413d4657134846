"""Model builders, the cost counts behind notebook 02/03's tables, data and training."""

import functools

import numpy as np
import pytest
import torch

from utils.counting import count_macs, count_parameters
from utils.datasets import cluttered_digits
from utils.models import resnet50, small_resnet
from utils.modules import CBAM, SqueezeExcitation
from utils.training import compare_models, results_table, train_classifier

SE16 = functools.partial(SqueezeExcitation, reduction=16)


def test_resnet50_parameter_counts_and_the_se_overhead_formula():
    plain, se = count_parameters(resnet50()), count_parameters(resnet50(attention=SE16))
    cbam = count_parameters(resnet50(attention=functools.partial(CBAM, reduction=16)))
    assert plain == 25_557_032                        # torchvision's ResNet-50 has the same
    n_s, c_s = np.array([3, 4, 6, 3]), np.array([256, 512, 1024, 2048])
    formula = 2 / 16 * np.sum(n_s * c_s**2)          # the SE paper's (2/r) sum N_s C_s^2
    biases = np.sum(n_s * (c_s // 16 + c_s))
    assert se - plain == formula + biases
    assert cbam - se == 16 * (2 * 7 * 7 + 1)          # one 7x7 conv (2 -> 1, with bias) per block


def test_resnet50_macs_depend_on_where_the_stride_is():
    v15 = count_macs(resnet50(), (1, 3, 224, 224))
    v1 = count_macs(resnet50(stride_in="1x1"), (1, 3, 224, 224))
    assert 4.05e9 < v15 < 4.15e9 and 3.8e9 < v1 < 3.9e9


def test_attention_sits_on_the_residual_branch_before_the_addition():
    model = small_resnet(attention=functools.partial(SqueezeExcitation, reduction=4))
    block = model.stages[1][0]
    assert isinstance(block.attention, SqueezeExcitation) and block.attention.channels == 32
    seen = []
    block.attention.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    model(torch.zeros(2, 1, 40, 36))
    assert seen == [torch.Size([2, 32, 10, 9])]


def test_builders_reject_bad_arguments():
    with pytest.raises(ValueError, match="stride_in"):
        resnet50(stride_in="7x7")
    with pytest.raises(ValueError, match="num_classes"):
        small_resnet(num_classes=0)
    with pytest.raises(ValueError, match="input_shape"):
        count_macs(small_resnet(), (1, 40, 40.0))


def test_cluttered_digits_are_deterministic_and_splits_disjoint():
    a = cluttered_digits(20, seed=3)
    b = cluttered_digits(20, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.images.shape == (20, 1, 40, 40) and a.images.dtype == np.float32
    assert 0 <= a.images.min() and a.images.max() <= 1 and set(a.labels) <= set(range(10))
    top, left, bottom, right = a.boxes[0]
    assert a.images[0, 0, top:bottom, left:right].max() > 0.5
    from utils.datasets import _source_digits
    train, test = _source_digits("train")[0], _source_digits("test")[0]
    assert not (set(map(bytes, train.astype(np.float32))) & set(map(bytes, test.astype(np.float32))))
    with pytest.raises(ValueError, match="split must be one of"):
        cluttered_digits(5, split="val")


def test_training_learns_and_is_reproducible():
    train, test = cluttered_digits(768, clutter=0), cluttered_digits(200, split="test", clutter=0)

    def run():
        torch.manual_seed(0)
        return train_classifier(small_resnet(widths=(8, 16, 16)), train, test, epochs=6,
                                batch_size=64, lr=1e-2, seed=0)

    first, second = run(), run()
    assert first.losses[-1] < first.losses[0]
    assert first.accuracy > 0.3                      # chance is 0.1
    assert first.accuracy == second.accuracy and first.losses == second.losses


def test_compare_models_and_table():
    train, test = cluttered_digits(128, clutter=0), cluttered_digits(50, split="test", clutter=0)
    results = compare_models({"a": lambda: small_resnet(widths=(4, 4, 4))}, train, test,
                             seeds=[0, 1], epochs=1, batch_size=64)
    assert len(results["a"]) == 2
    table = results_table(results, baseline="a")
    assert table.splitlines()[2].startswith("| a |")


def test_se_overhead_formula_and_attention_in_box():
    from utils.counting import se_parameter_overhead
    from utils.datasets import attention_in_box

    assert se_parameter_overhead((3, 4, 6, 3), (256, 512, 1024, 2048), 16) == 2_530_992
    assert se_parameter_overhead((3, 4, 6, 3), (256, 512, 1024, 2048), 16, biases=False) == \
        2 / 16 * (3 * 256**2 + 4 * 512**2 + 6 * 1024**2 + 3 * 2048**2)
    maps = np.zeros((2, 4, 4))
    maps[0, 0, 0] = maps[0, 3, 3] = 1.0               # half inside the top-left box
    maps[1] = 1.0                                     # uniform: the box's share of the area
    boxes = np.array([[0, 0, 20, 20], [0, 0, 20, 20]])
    np.testing.assert_allclose(attention_in_box(maps, boxes, 40), [0.5, 0.25])
    with pytest.raises(ValueError, match="divisible"):
        se_parameter_overhead((1,), (10,), 4)
    with pytest.raises(ValueError, match="non-negative"):
        attention_in_box(-maps, boxes, 40)


def test_versus_baseline_pairs_the_seeds_and_uses_a_t_interval():
    from scipy import stats

    from utils.training import TrainResult, versus_baseline

    def runs(*accs):
        return [TrainResult(a, np.zeros(1), [], 0.0, None, seed)
                for seed, a in enumerate(accs)]

    out = versus_baseline({"base": runs(0.80, 0.82, 0.81, 0.80, 0.82),
                           "a": runs(0.90, 0.91, 0.92, 0.90, 0.93),
                           "b": runs(0.80, 0.83, 0.79, 0.81, 0.80)}, "base")
    assert out["a"].verdict == "better" and out["b"].verdict == "no clear difference"
    diffs = np.array([0.10, 0.09, 0.11, 0.10, 0.11])         # paired, seed by seed
    assert out["a"].mean == pytest.approx(diffs.mean())
    assert out["a"].half_width == pytest.approx(stats.t.ppf(0.975, 4) * diffs.std(ddof=1)
                                                / np.sqrt(5))
    few = versus_baseline({"base": runs(0.80, 0.82, 0.81), "a": runs(0.90, 0.91, 0.92)}, "base")
    assert few["a"].low > 0 and few["a"].verdict == "no verdict (n < 5 seeds)"
    with pytest.raises(ValueError, match="two seeds"):
        versus_baseline({"base": runs(0.8), "a": runs(0.9)}, "base")
    shifted = [TrainResult(0.9, np.zeros(1), [], 0.0, None, seed) for seed in (1, 2, 3)]
    with pytest.raises(ValueError, match="a paired comparison needs the same seeds"):
        versus_baseline({"base": runs(0.80, 0.82, 0.81), "a": shifted}, "base")
    assert runs(0.5, 0.6)[1].seed == 1


def test_train_one_epoch_and_evaluate_epoch_are_the_loop_of_train_classifier():
    from utils.training import evaluate_epoch, train_one_epoch

    train, test = cluttered_digits(256, clutter=0), cluttered_digits(100, split="test", clutter=0)
    torch.manual_seed(0)
    run = train_classifier(small_resnet(widths=(4, 8, 8)), train, test, epochs=2,
                           batch_size=64, seed=0)
    assert set(run.history) == {"train_loss", "train_accuracy", "test_loss", "test_accuracy"}
    assert all(len(v) == 2 for v in run.history.values()) and run.seed == 0
    assert run.history["test_accuracy"][-1] == pytest.approx(run.accuracy)

    # The same two epochs by hand, with the same batches, give the same weights and losses.
    torch.manual_seed(0)
    model = small_resnet(widths=(4, 8, 8))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=2 * 4)
    x, y = torch.as_tensor(train.images), torch.as_tensor(train.labels)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(2):
        order = torch.randperm(256, generator=generator)
        losses.append(train_one_epoch(model, [(x[i], y[i]) for i in order.split(64)],
                                      optimizer, schedule))
    assert losses == pytest.approx(run.losses, abs=1e-6)
    xt, yt = torch.as_tensor(test.images), torch.as_tensor(test.labels)
    loss, accuracy = evaluate_epoch(model, [(xt[:30], yt[:30]), (xt[30:], yt[30:])])
    assert loss == pytest.approx(run.history["test_loss"][-1], abs=1e-5)   # per example
    assert accuracy == pytest.approx(run.accuracy)
    assert not model.training
    with pytest.raises(ValueError, match="at least one batch"):
        train_one_epoch(model, [], optimizer)


def test_cued_digits_hold_what_they_promise():
    from utils.datasets import cued_digits

    what = cued_digits(40, "channel", canvas=16, digit_size=8, others=1)
    assert what.images.shape == (40, 2, 16, 16)
    border = np.concatenate([what.images[:, :, 0], what.images[:, :, -1],
                             what.images[:, :, :, 0], what.images[:, :, :, -1]], axis=2)
    framed = border.min(axis=2) == 1.0                        # (N, channels)
    assert (framed.sum(axis=1) == 1).all()                    # exactly one framed channel
    for i in range(40):
        top, left, bottom, right = what.boxes[i]
        inside = what.images[i, :, top:bottom, left:right]
        assert inside.max(axis=(1, 2)).min() > 0.3            # every channel holds a digit
    where = cued_digits(40, "location", canvas=20, digit_size=8, others=2)
    assert where.images.shape == (40, 1, 20, 20)
    for image, (top, left, bottom, right) in zip(where.images[:, 0], where.boxes, strict=True):
        rows, cols = slice(top - 1, bottom + 1), slice(left - 1, right + 1)
        ring = np.concatenate([image[top - 1, cols], image[bottom, cols],
                               image[rows, left - 1], image[rows, right]])
        assert (ring == 1.0).all()                            # the frame surrounds the box
    assert len(set(what.labels)) > 5 and len(set(where.labels)) > 5
    a, b = (cued_digits(10, "location", canvas=20, digit_size=8, seed=3) for _ in range(2))
    assert np.array_equal(a.images, b.images)
    with pytest.raises(ValueError, match="has room for 1 framed digits"):
        cued_digits(5, "location", canvas=12, digit_size=8, others=1)
    with pytest.raises(ValueError, match="cue must be one of"):
        cued_digits(5, "colour")
