"""The moving-digits clips, the video networks and the training command line."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from utils.datasets import CLIP_CLASSES, SPRITE, VideoClips, moving_digits
from utils.models import FrameWise, SegmentPyramidNet, VideoNet, VideoNonLocal, video_models
from utils.modules import NonLocalBlock

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clips() -> VideoClips:
    return moving_digits(60, frames=8, size=24, cache=False)


def test_clips_shapes_balance_and_range(clips):
    assert clips.clips.shape == (60, 1, 8, 24, 24) and clips.clips.dtype == np.float32
    assert np.bincount(clips.labels).tolist() == [10] * len(CLIP_CLASSES)
    assert clips.clips.min() >= 0 and clips.clips.max() <= 1
    assert clips.positions.shape == (60, 2, 8, 2)


def test_clips_are_deterministic_and_seeded():
    a = moving_digits(12, frames=8, size=24, seed=3, cache=False)
    b = moving_digits(12, frames=8, size=24, seed=3, cache=False)
    c = moving_digits(12, frames=8, size=24, seed=4, cache=False)
    assert np.array_equal(a.clips, b.clips) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.clips, c.clips)


def test_cache_round_trip(tmp_path, monkeypatch):
    import utils.datasets as datasets

    monkeypatch.setattr(datasets, "_cache_dir", lambda: tmp_path)
    made = moving_digits(12, frames=8, size=24, seed=5)
    assert len(list(tmp_path.glob("moving_digits_*.npz"))) == 1
    loaded = moving_digits(12, frames=8, size=24, seed=5)
    assert np.array_equal(made.clips, loaded.clips)
    assert np.array_equal(made.positions, loaded.positions)


def _ink(clips: VideoClips, i: int, d: int, t: int) -> np.ndarray:
    y, x = clips.positions[i, d, t]
    return clips.clips[i, 0, t, y:y + SPRITE, x:x + SPRITE]


def test_each_class_shows_what_it_says(clips):
    frames, size = clips.clips.shape[2], clips.clips.shape[3]
    corners = {(0, 0), (0, size - SPRITE), (size - SPRITE, 0), (size - SPRITE, size - SPRITE)}
    for i, label in enumerate(clips.labels):
        shown = clips.positions[i, :, :, 0] >= 0                          # (2, T)
        if label in (0, 1):
            lefts = clips.positions[i, 0, :, 1]
            assert shown[0].all() and not shown[1].any()
            assert np.all(np.diff(lefts) > 0) if label == 0 else np.all(np.diff(lefts) < 0)
            continue
        first = [tuple(clips.positions[i, d][shown[d]][0]) for d in range(2)]
        assert set(first) <= corners
        if label in (2, 3):                                            # a half each
            assert shown.sum(axis=1).tolist() == [frames // 2] * 2
            assert np.array_equal(shown[0], shown[1]) == (label == 2)
            assert first[0] != first[1]
        else:                                                          # early, then late
            q = frames // 4
            assert shown[0, :q].all() and not shown[0, q:].any()
            assert shown[1, -q:].all() and not shown[1, :-q].any()
            assert np.all(clips.clips[i, 0, q:-q] == 0)                # an empty middle
            assert np.array_equal(_ink(clips, i, 0, 0), _ink(clips, i, 1, frames - 1))
            assert (first[0] == first[1]) == (label == 4)


def test_train_and_test_use_different_source_digits():
    a = moving_digits(30, split="train", frames=4, size=16, cache=False)
    b = moving_digits(30, split="test", frames=4, size=16, cache=False)
    def sprites(clips: VideoClips) -> set[bytes]:
        first = [int(np.argmax(clips.positions[i, 0, :, 0] >= 0)) for i in range(len(clips))]
        return {_ink(clips, i, 0, t).tobytes() for i, t in enumerate(first)}

    a_sprites, b_sprites = sprites(a), sprites(b)
    assert len(a_sprites) > 20 and not a_sprites & b_sprites


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=0), "n"), (dict(n=6, frames=2), "frames"), (dict(n=6, size=8), "size"),
    (dict(n=6, split="val"), "split")])
def test_clips_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        moving_digits(**kwargs, cache=False)


@pytest.mark.parametrize("name", sorted(video_models()))
def test_every_video_model_runs_and_learns_a_step(name):
    torch.manual_seed(0)
    model = video_models()[name]()
    x = torch.rand(4, 1, 8, 24, 24)
    assert model(x).shape == (4, len(CLIP_CLASSES))
    loss = torch.nn.functional.cross_entropy(model(x), torch.arange(4))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_c2d_is_blind_to_frame_order():
    """C2D's frames meet only in the final average, so reversing time changes nothing; the
    inflated kernels of I3D see the order."""
    torch.manual_seed(0)
    x = torch.rand(2, 1, 8, 24, 24)
    for arch, blind in (("c2d", True), ("i3d", False)):
        model = VideoNet(arch).eval()
        with torch.no_grad():
            same = torch.allclose(model(x), model(x.flip(2)), atol=1e-5)
        assert same == blind, arch


@pytest.mark.parametrize("affinity", ["space", "time"])
def test_video_nonlocal_restricted_affinities_match_a_masked_spacetime_block(affinity):
    """Space-only and time-only blocks equal the spacetime block with the affinities between
    other frames (space) or other positions (time) removed."""
    torch.manual_seed(0)
    c, t, h, w = 4, 3, 2, 3
    x = torch.randn(2, c, t, h, w, dtype=torch.float64)
    restricted = VideoNonLocal(c, affinity).double().eval()
    full = NonLocalBlock(c, dim=3).double().eval()
    shapes = {k: v.shape for k, v in full.state_dict().items()}        # 1x1 kernels, any rank
    full.load_state_dict({k: v.reshape(shapes[k])
                          for k, v in restricted.block.state_dict().items()})
    torch.nn.init.normal_(full.bn.weight)
    restricted.block.bn.weight.data = full.bn.weight.data.clone()
    frame, pos = torch.meshgrid(torch.arange(t), torch.arange(h * w), indexing="ij")
    frame, pos = frame.flatten(), pos.flatten()
    keep = (frame[:, None] == frame[None]) if affinity == "space" else (pos[:, None] == pos[None])
    tokens = x.flatten(2).transpose(1, 2)
    theta, phi = full.theta(x).flatten(2).transpose(1, 2), full.phi(x).flatten(2).transpose(1, 2)
    g = full.g(x).flatten(2).transpose(1, 2)
    scores = (theta @ phi.transpose(1, 2)).masked_fill(~keep, float("-inf"))
    y = torch.softmax(scores, -1) @ g
    expected = x + full.bn(full.w_z(y.transpose(1, 2).reshape(2, -1, t, h, w)))
    assert tokens.shape[1] == t * h * w
    torch.testing.assert_close(restricted(x), expected)


def test_video_models_reject_bad_input():
    with pytest.raises(ValueError, match="arch"):
        VideoNet("c3d")
    with pytest.raises(ValueError, match="attention"):
        VideoNet("i3d", "gc")
    with pytest.raises(ValueError, match="affinity"):
        VideoNonLocal(8, "frame")
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        VideoNet()(torch.rand(2, 1, 24, 24))
    with pytest.raises(ValueError, match="segments"):
        SegmentPyramidNet(segments=9)(torch.rand(1, 1, 8, 24, 24))
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        FrameWise(torch.nn.Identity())(torch.rand(2, 3, 4, 4))


def test_segment_sampling_random_in_training_centred_in_testing():
    net = SegmentPyramidNet(segments=4)
    net.eval()
    assert net.frame_indices(16).tolist() == [2, 6, 10, 14]
    net.train()
    draws = torch.stack([net.frame_indices(16) for _ in range(50)])
    assert (draws // 4 == torch.arange(4)).all()                     # one per segment
    assert len({tuple(d.tolist()) for d in draws}) > 1


def test_torchrun_two_processes_agree_on_the_weights(tmp_path):
    """DistributedDataParallel on two CPU processes (gloo): after a few steps both hold the
    same weights, and those differ from the weights they started with."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "utils.train_video", "--model", "i3d+nl", "--fast", "--epochs", "1",
           "--seeds", "0", "--clips", "120", "--batch-size", "20", "--progress", "off",
           "--save", str(tmp_path)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    a = torch.load(tmp_path / "i3d-nl_seed0_fast_rank0.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "i3d-nl_seed0_fast_rank1.pt", weights_only=True)["state_dict"]
    torch.manual_seed(0)
    start = video_models()["i3d+nl"]().state_dict()
    params = [k for k in a if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert params and all(torch.equal(a[k], b[k]) for k in params)
    assert any(not torch.equal(a[k], start[k]) for k in params)


def test_the_position_code_compares_offsets_and_peaks_where_a_coordinate_is_shared():
    from utils.models import sinusoidal_position_code

    code = sinusoidal_position_code(32, 8, 8, 8).double()              # (C, T, H, W)
    assert code.shape == (32, 8, 8, 8)
    m = 32 // 6
    assert torch.all(code[6 * m:] == 0)                                # 2 spare channels
    t_part = code[:2 * m, :, 0, 0].T                                   # (T, 2m): codes of t
    gram = t_part @ t_part.T
    # the dot product depends only on the offset, and is largest (m) at offset 0
    for offset in range(8):
        diagonal = torch.diagonal(gram, offset)
        assert torch.allclose(diagonal, diagonal[0].expand_as(diagonal))
    assert torch.allclose(torch.diagonal(gram), torch.full((8,), float(m), dtype=gram.dtype))
    assert torch.all(gram - torch.diag(torch.diagonal(gram)) < m - 1e-3)
    # each third of the channels varies along its own axis only
    assert torch.all(code[:2 * m].diff(dim=2) == 0) and torch.all(code[:2 * m].diff(dim=3) == 0)
    assert torch.all(code[2 * m:4 * m].diff(dim=1) == 0)
    assert torch.all(code[4 * m:6 * m].diff(dim=2) == 0)
    # every (t, h, w) gets its own code
    flat = code.reshape(32, -1).T
    assert torch.cdist(flat, flat).add(torch.eye(512, dtype=flat.dtype)).min() > 1e-3


def test_a_block_with_position_code_adds_it_to_its_input_first():
    from utils.models import sinusoidal_position_code

    torch.manual_seed(0)
    x = torch.randn(2, 12, 4, 3, 3, dtype=torch.float64)
    plain = VideoNonLocal(12).double().eval()
    coded = VideoNonLocal(12, position=True).double().eval()
    coded.load_state_dict(plain.state_dict())
    with torch.no_grad():
        plain.block.bn.weight.fill_(0.7)                 # not the identity, so content matters
        coded.block.bn.weight.fill_(0.7)
        expected = plain(x + sinusoidal_position_code(12, 4, 3, 3).double())
        assert torch.allclose(coded(x), expected, atol=1e-12)
        assert not torch.allclose(coded(x), plain(x))
    # content alone: a block without the code cannot tell two positions of equal content apart
    same = torch.ones(1, 12, 2, 2, 2, dtype=torch.float64)
    with torch.no_grad():
        out_plain, out_coded = plain(same), coded(same)
    assert torch.allclose(out_plain, out_plain[..., :1, :1, :1].expand_as(out_plain))
    assert not torch.allclose(out_coded, out_coded[..., :1, :1, :1].expand_as(out_coded))


def test_the_grid_position_code_falls_with_the_offset_and_never_wraps():
    from utils.models import grid_position_code, sinusoidal_position_code

    m = 32 // 6
    for size in (3, 8, 13):
        code = grid_position_code(32, size, 1, 1).double()[:2 * m, :, 0, 0]     # (2m, size)
        gram = code.T @ code
        for offset in range(size):                                         # offsets only
            diagonal = torch.diagonal(gram, offset)
            assert torch.allclose(diagonal, diagonal[0].expand_as(diagonal))
        assert torch.all(gram[0].diff() < 0)                               # falls strictly
    # the sinusoidal code on 8 cells: offset 6 as similar as offset 1 (what the grid code fixes)
    t = sinusoidal_position_code(32, 8, 1, 1).double()[:2 * m, :, 0, 0]
    similarity = t[:, 0] @ t
    assert abs(similarity[6] - similarity[1]) < 0.01
    code = grid_position_code(32, 4, 5, 6)
    assert code.shape == (32, 4, 5, 6) and torch.all(code[6 * m:] == 0)
    assert torch.all(code[:2 * m].diff(dim=2) == 0) and torch.all(code[2 * m:4 * m].diff(dim=1) == 0)


def test_a_block_with_the_grid_code_adds_it_and_refuses_unknown_codes():
    from utils.models import grid_position_code

    torch.manual_seed(0)
    x = torch.randn(2, 12, 4, 3, 3, dtype=torch.float64)
    plain = VideoNonLocal(12).double().eval()
    coded = VideoNonLocal(12, position=True, code="grid").double().eval()
    coded.load_state_dict(plain.state_dict())
    with torch.no_grad():
        plain.block.bn.weight.fill_(0.7)
        coded.block.bn.weight.fill_(0.7)
        assert torch.allclose(coded(x), plain(x + grid_position_code(12, 4, 3, 3).double()),
                              atol=1e-12)
    with pytest.raises(ValueError, match="code must be one of"):
        VideoNonLocal(12, position=True, code="learned")
    assert "i3d+nl+gridpos" in video_models()


@pytest.mark.parametrize("affinity", ["space", "time", "spacetime"])
def test_folded_attention_equals_the_masked_explicit_form(affinity):
    from utils import reference

    x = np.random.default_rng(1).standard_normal((2, 3, 4, 2, 5))
    folded = reference.fold_attention(x, affinity)
    masked = reference.masked_attention(x, reference.affinity_mask(4, 2, 5, affinity))
    assert folded.shape == x.shape
    assert np.allclose(folded, masked, atol=1e-12)
    other = {"space": "time", "time": "space", "spacetime": "space"}[affinity]
    assert not np.allclose(folded, reference.fold_attention(x, other))
