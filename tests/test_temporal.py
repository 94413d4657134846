"""Temporal attention (notebook 08): the NumPy reference and its gradients, the PyTorch module
against it, the video networks that use it, and the brief-event clips it is tested on."""

import re

import numpy as np
import pytest
import torch

from utils import reference as R
from utils.datasets import (
    EVENT_CLASSES,
    EVENT_DIGITS,
    EVENT_FLAG,
    SPRITE,
    VideoClips,
    brief_event_clips,
    event_experiment,
)
from utils.gradcheck import gradient_check, numerical_gradient
from utils.models import FrameWise, VideoNet, event_models
from utils.modules import CBAM, TemporalAttention


def setup(seed=0, b=2, c=6, r=2, t=4, h=3, w=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(b, c, t, h, w))
    return x, rng.normal(size=x.shape), R.init_temporal(c, r, rng)


# --------------------------------------------------------------------------- NumPy reference

@pytest.mark.parametrize("seed", range(3))
def test_temporal_attention_backward_passes_the_gradient_check(seed):
    x, dout, p = setup(seed, t=seed + 3)
    dx, grads = R.temporal_attention_backward(dout, R.temporal_attention(x, p)[1])

    def forward(x, **q):
        return R.temporal_attention(x, {"b2": p["b2"], **q})[0]

    errors = gradient_check(forward, {"x": x, "w1": p["w1"], "b1": p["b1"], "w2": p["w2"]},
                            {"x": dx, **grads}, dout)
    assert max(errors.values()) < 1e-7, errors
    # b2 moves every frame's score alike, which the softmax ignores: both gradients vanish
    numeric = numerical_gradient(lambda b2: forward(x, **{**p, "b2": b2}), p["b2"].copy(), dout)
    assert abs(grads["b2"][0]) < 1e-12 and abs(numeric[0]) < 1e-8


def test_the_weights_are_a_softmax_over_frames_and_b2_does_not_matter():
    x, _, p = setup(1, b=3, t=5)
    y, cache = R.temporal_attention(x, p)
    a = cache[1]
    assert a.shape == (3, 5) and np.all(a > 0)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(R.temporal_weights(x.mean(axis=(3, 4)), p), a, rtol=1e-12)
    np.testing.assert_allclose(y, 5 * a[:, None, :, None, None] * x, rtol=1e-12)
    shifted = R.temporal_weights(x.mean(axis=(3, 4)), {**p, "b2": p["b2"] + 7.0})
    np.testing.assert_allclose(shifted, a, rtol=1e-12)
    assert not np.allclose(a, 1 / 5)                                   # the frames differ


def test_the_frames_compete_a_frame_gains_only_what_the_others_lose():
    """Raising one frame's score raises its weight and lowers every other frame's weight,
    which a sigmoid gate per frame would leave alone."""
    rng = np.random.default_rng(2)
    s = rng.random((1, 3, 4))                                   # non-negative: ReLU passes it
    p = {"w1": np.eye(3), "b1": np.zeros(3), "w2": np.ones((1, 3)), "b2": np.zeros(1)}
    e = s.sum(axis=1)                                           # the scores, e_t = sum_c s_ct
    np.testing.assert_allclose(R.temporal_weights(s, p), np.exp(e) / np.exp(e).sum(),
                               rtol=1e-12)
    louder = s.copy()
    louder[0, :, 0] += 0.5
    before, after = R.temporal_weights(s, p)[0], R.temporal_weights(louder, p)[0]
    assert after[0] > before[0] and np.all(after[1:] < before[1:])
    np.testing.assert_allclose(after[1:] / after[2], before[1:] / before[2], rtol=1e-12)


def test_equal_scores_and_single_frames_give_the_identity():
    x, _, p = setup(3, t=6)
    zero = {**p, "w2": np.zeros_like(p["w2"]), "b2": np.zeros_like(p["b2"])}
    np.testing.assert_allclose(R.temporal_attention(x, zero)[0], x, rtol=1e-14)
    one = x[:, :, :1]
    np.testing.assert_allclose(R.temporal_attention(one, p)[0], one, rtol=1e-14)


def test_large_scores_do_not_overflow():
    x, _, p = setup(4)
    big = {**p, "w2": p["w2"] * 1e4}
    y, cache = R.temporal_attention(x, big)
    assert np.all(np.isfinite(y)) and np.allclose(cache[1].sum(axis=1), 1.0)


P6 = R.init_temporal(6, 2, np.random.default_rng(0))


@pytest.mark.parametrize("call, message", [
    (lambda: R.temporal_attention(np.ones((2, 6, 4, 3)), P6), "x must have 5 dimensions"),
    (lambda: R.temporal_attention(np.ones((1, 5, 2, 2, 2)), P6),
     "params['w1'] must have shape (3, 5)"),
    (lambda: R.temporal_weights(np.ones((1, 6, 3)), {"w1": np.ones((3, 6))}), "is missing 'b1'"),
    (lambda: R.temporal_attention_backward(np.ones((1, 6, 2, 2, 2)), (1, 2)),
     "cache must be the cache that temporal_attention returned"),
    (lambda: R.init_temporal(4, 8, np.random.default_rng(0)), "reduction (8) must not exceed"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# --------------------------------------------------------------------------- PyTorch module

def test_the_module_equals_the_reference_in_float64_outputs_and_gradients():
    x, dout, p = setup(5, b=3, c=8, r=4, t=5, h=4, w=3)
    module = TemporalAttention(8, 4).double().load_reference(p)
    xt = torch.tensor(x, requires_grad=True)
    y = module(xt)
    y_ref, cache = R.temporal_attention(x, p)
    torch.testing.assert_close(y.detach(), torch.tensor(y_ref), rtol=1e-12, atol=1e-12)
    y.backward(torch.tensor(dout))
    dx, grads = R.temporal_attention_backward(dout, cache)
    torch.testing.assert_close(xt.grad, torch.tensor(dx), rtol=1e-12, atol=1e-12)
    for name, param in (("w1", module.fc1.weight), ("b1", module.fc1.bias),
                        ("w2", module.fc2.weight), ("b2", module.fc2.bias)):
        torch.testing.assert_close(param.grad, torch.tensor(grads[name]), rtol=1e-12,
                                   atol=1e-12, msg=name)


def test_a_new_block_is_the_identity_and_keeps_its_weights_for_plots():
    torch.manual_seed(0)
    module = TemporalAttention(8)
    assert torch.equal(module.fc2.weight, torch.zeros(1, 2)) and module.fc1.weight.abs().sum() > 0
    x = torch.randn(2, 8, 6, 3, 3)
    torch.testing.assert_close(module(x), x, rtol=1e-6, atol=1e-6)
    module.keep_attention = True
    with torch.no_grad():
        module.fc2.weight.normal_()
    y = module(x)
    a = module.attention
    assert a.shape == (2, 6) and not a.requires_grad
    torch.testing.assert_close(a.sum(1), torch.ones(2))
    torch.testing.assert_close(y, x * 6 * a[:, None, :, None, None])
    assert not torch.allclose(a, torch.full_like(a, 1 / 6))


def test_the_module_refuses_a_batch_of_images_and_the_wrong_channels():
    with pytest.raises(ValueError, match=r"expects x of shape \(B, C, T, H, W\)"):
        TemporalAttention(8)(torch.ones(2, 8, 4, 4))
    with pytest.raises(ValueError, match="built for 8 channels, got x with 4"):
        TemporalAttention(8)(torch.ones(2, 4, 3, 4, 4))
    with pytest.raises(ValueError, match=r"reduction \(16\) must not exceed channels \(8\)"):
        TemporalAttention(8, 16)


# --------------------------------------------------------------------------- video networks

def test_temporal_models_insert_the_blocks_after_stage_2():
    temporal, both = VideoNet("i3d", "temporal"), VideoNet("i3d", "cbam+temporal")
    assert isinstance(temporal.attend2, TemporalAttention) and temporal.attend2.channels == 32
    framewise, block = both.attend2
    assert isinstance(framewise, FrameWise) and isinstance(framewise.module, CBAM)
    assert isinstance(block, TemporalAttention)
    both.attend2[1].keep_attention = True
    both(torch.rand(3, 1, 16, 16, 16))
    assert both.attend2[1].attention.shape == (3, 8)                  # T/2 frames after stage 2


def test_a_network_with_a_new_temporal_block_computes_what_it_computed_without_it():
    torch.manual_seed(0)
    plain = VideoNet("i3d", num_classes=4).eval()
    with_block = VideoNet("i3d", "temporal", num_classes=4).eval()
    missing, unexpected = with_block.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("attend2.") for k in missing)
    x = torch.rand(2, 1, 16, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(with_block(x), plain(x), rtol=1e-5, atol=1e-5)
        with_block.attend2.fc2.weight.normal_()
        assert not torch.allclose(with_block(x), plain(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(event_models()))
def test_every_event_model_runs_and_gets_gradients_everywhere(name):
    torch.manual_seed(0)
    model = event_models()[name]()
    clips = brief_event_clips(4, frames=8)
    x = torch.as_tensor(clips.clips)
    logits = model(x)
    assert logits.shape == (4, len(EVENT_CLASSES))
    torch.nn.functional.cross_entropy(logits, torch.as_tensor(clips.labels)).backward()
    names = [n for n, p in model.named_parameters() if p.grad is None]
    assert not names
    if "temporal" in name:              # fc2 starts at zero: only it moves the weights at first
        block = model.attend2 if name.endswith("+temporal") and "cbam" not in name else (
            model.attend2[1])
        assert block.fc2.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", ["c2d", "i3d"])
def test_event_models_are_the_video_net_with_the_four_attention_options(arch):
    models = event_models(arch)
    assert list(models) == [arch, f"{arch}+cbam", f"{arch}+temporal", f"{arch}+cbam+temporal"]
    built = {name[len(arch):] or "none": build() for name, build in models.items()}
    assert all(m.arch == arch for m in built.values())
    sizes = {name: sum(p.numel() for p in m.parameters()) for name, m in built.items()}
    assert sizes["none"] < sizes["+temporal"] < sizes["+cbam+temporal"]
    assert sizes["+cbam+temporal"] - sizes["+cbam"] == sizes["+temporal"] - sizes["none"]
    with pytest.raises(ValueError, match="arch must be one of"):
        event_models("x3d")


def test_c2d_event_models_mix_frames_only_in_pairs_before_the_attention():
    """In the c2d network a change in input frame 5 reaches, before the attention, only step
    2 (frames 4 and 5 pooled by a max): the temporal block is the only path between steps
    before the final average."""
    torch.manual_seed(0)
    model = event_models("c2d")["c2d"]().eval()
    x = torch.rand(1, 1, 8, 24, 24)
    y = x.clone()
    y[:, :, 5] = torch.rand(24, 24)
    with torch.no_grad():
        a = model.stage2(model.attend1(model.stage1(model.stem(x))))
        b = model.stage2(model.attend1(model.stage1(model.stem(y))))
    changed = (a - b).abs().amax((0, 1, 3, 4)) > 0
    assert changed.tolist() == [False, False, True, False]


# --------------------------------------------------------------------------- brief events

@pytest.fixture(scope="module")
def events() -> VideoClips:
    return brief_event_clips(80, frames=12, size=24)


def test_event_clips_shapes_balance_and_range(events):
    assert events.clips.shape == (80, 1, 12, 24, 24) and events.clips.dtype == np.float32
    assert np.bincount(events.labels).tolist() == [20] * len(EVENT_CLASSES)
    assert events.clips.min() >= 0 and events.clips.max() <= 1
    assert events.positions.shape == (80, 2, 12, 2)


def test_each_clip_has_one_brief_flagged_event_and_a_digit_in_every_frame(events):
    clips = events.clips[:, 0]
    target = events.positions[:, 1, :, 0] >= 0                          # (N, T)
    distractor = events.positions[:, 0, :, 0] >= 0
    assert np.array_equal(target, ~distractor)
    assert np.all(target.sum(axis=1) == 2)
    first = target.argmax(axis=1)
    assert np.all(target[np.arange(80), first + 1])                   # two consecutive frames
    assert len(set(first.tolist())) > 5                               # at random times
    flag = clips[..., :EVENT_FLAG, :EVENT_FLAG]
    assert np.array_equal(np.all(flag == 1.0, axis=(-2, -1)), target)
    assert np.all(flag[~target] == 0.0)
    corners = events.positions.max(axis=1)                            # the one digit's place
    assert corners.min() == 12 and corners.max() == 24 - SPRITE - 1   # the lower right
    ink = np.array([[clips[i, t, y:y + SPRITE, x:x + SPRITE].sum()
                     for t, (y, x) in enumerate(corners[i])] for i in range(80)])
    rest = clips.sum(axis=(-2, -1)) - flag.sum(axis=(-2, -1))
    np.testing.assert_allclose(ink, rest, rtol=1e-5)                   # nothing else drawn
    for i in range(80):                                               # one image, one place
        t0, t1 = np.flatnonzero(target[i])
        assert np.array_equal(corners[i, t0], corners[i, t1])
        np.testing.assert_array_equal(clips[i, t0], clips[i, t1])


def test_the_event_is_found_from_each_frames_global_content_alone(events):
    """The mean of a frame's flag corner, a global property of the frame, finds the event in
    every clip, while the distractors fill all the other frames."""
    clips = events.clips[:, 0]
    flag_mean = clips[..., :EVENT_FLAG, :EVENT_FLAG].mean(axis=(-2, -1))
    target = events.positions[:, 1, :, 0] >= 0
    top_two = np.argsort(-flag_mean, axis=1)[:, :2]
    assert np.all(np.take_along_axis(target, top_two, axis=1))
    assert np.all((~target).sum(axis=1) == 10)


def test_the_target_digit_is_of_the_labels_class_and_distractors_of_every_class():
    from utils.datasets import _source_digits

    sources, classes = _source_digits("test")
    clips = brief_event_clips(40, split="test", frames=8, seed=2)
    flat = sources.reshape(len(sources), -1).astype(np.float32)

    def class_of(i: int, t: int, slot: int) -> int:
        y, x = clips.positions[i, slot, t]
        patch = clips.clips[i, 0, t, y:y + SPRITE, x:x + SPRITE].reshape(-1)
        return int(classes[np.argmin(np.abs(flat - patch).sum(axis=1))])

    seen = set()
    for i in range(40):
        shown = clips.positions[i, 1, :, 0] >= 0
        t_event = int(np.argmax(shown))
        assert class_of(i, t_event, 1) == EVENT_DIGITS[clips.labels[i]]
        seen |= {class_of(i, t, 0) for t in np.flatnonzero(~shown)}
    assert seen == set(range(10))


def test_event_clips_are_deterministic_seeded_and_split():
    a = brief_event_clips(20, seed=3)
    b = brief_event_clips(20, seed=3)
    c = brief_event_clips(20, seed=4)
    d = brief_event_clips(20, seed=3, split="test")
    assert np.array_equal(a.clips, b.clips) and np.array_equal(a.positions, b.positions)
    assert not np.array_equal(a.clips, c.clips) and not np.array_equal(a.clips, d.clips)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=0), "n must be >= 1"), (dict(n=4, frames=3), "frames must be >= 4"),
    (dict(n=4, size=17), "size must be >= 18"), (dict(n=4, split="val"), "split must be one of"),
    (dict(n=4, event=0), "event must be >= 1"), (dict(n=4, seed=-1), "seed must be a non-neg")])
def test_event_clips_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        brief_event_clips(**kwargs)


def test_the_experiment_is_sized_by_the_mode(monkeypatch):
    monkeypatch.setenv("ACV_FAST", "1")
    fast = event_experiment()
    assert (len(fast["train"]), len(fast["test"])) == (300, 200)
    assert fast["seeds"] == [0, 1] and fast["epochs"] == 2
    monkeypatch.setenv("ACV_FAST", "0")
    full = event_experiment()
    assert full["seeds"] == [0, 1, 2, 3, 4] and len(full["train"]) > len(fast["train"])
    assert fast["batch_size"] <= len(fast["train"])
    assert np.array_equal(event_experiment(fast=True)["test"].clips, fast["test"].clips)
    assert set(np.unique(full["test"].labels)) == set(range(len(EVENT_CLASSES)))


def test_the_checkers_accept_the_references_and_fall_back_for_a_blank(capsys):
    from utils import check, modules

    assert check.temporal_weights(R.temporal_weights) is R.temporal_weights
    assert check.TemporalAttention(modules.TemporalAttention) is modules.TemporalAttention
    assert capsys.readouterr().out.count("✅") == 2

    class Blank(torch.nn.Module):
        def __init__(self, channels, reduction=4):
            super().__init__()
            raise NotImplementedError()

    fallback = check.TemporalAttention(Blank)
    assert issubclass(fallback, modules.TemporalAttention)
    assert "still open" in capsys.readouterr().out


# --------------------------------------------------------------------------- the recorded study

def test_the_event_study_cli_records_runs_with_predictions(tmp_path, capsys):
    from utils import event_study

    table = tmp_path / "events.csv"
    assert event_study.main(["--fast", "--model", "c2d+temporal", "--seeds", "3",
                             "--csv", str(table)]) == 0
    rows = event_study.load(table)
    assert [(r["model"], r["seed"], r["mode"]) for r in rows] == [("c2d+temporal", 3, "fast")]
    row = rows[0]
    test = event_experiment(fast=True)["test"]
    assert len(row["predictions"]) == len(test) == row["test_clips"]
    assert abs((row["predictions"] == test.labels).mean() - row["accuracy"]) < 1e-6
    assert 0 < row["event_weight"] <= 1 and row["torch"] == torch.__version__
    assert table.read_text().startswith("# OMP_NUM_THREADS=1 python -m utils.event_study")
    assert "c2d+temporal, seed 3" in capsys.readouterr().out


def test_event_steps_pool_frame_pairs():
    from utils.event_study import event_steps

    positions = np.full((1, 2, 8, 2), -1)
    positions[0, 1, 3:5] = 5                        # event frames 3 and 4: steps 1 and 2
    assert event_steps(positions).tolist() == [[False, True, True, False]]


def test_one_run_of_the_recorded_event_study_is_reproduced():
    """Notebook 08 reads data/event_study.csv; re-train its c2d run of seed 0 (the fastest)
    with the recorded thread count. Seeded, but another processor may sum in another order
    and flip a near-tie: the predictions must agree on all but 6 of the 600 test clips."""
    from utils import event_study

    row = next(r for r in event_study.load() if r["model"] == "c2d" and r["seed"] == 0)
    threads = torch.get_num_threads()
    torch.set_num_threads(row["threads"])
    try:
        setup = event_experiment(fast=False)
        assert (len(setup["train"]), setup["epochs"]) == (row["train_clips"], row["epochs"])
        again, run = event_study.run_one("c2d", 0, setup)
    finally:
        torch.set_num_threads(threads)
    assert (run.predictions != row["predictions"]).sum() <= 6, (again["accuracy"], row["accuracy"])
