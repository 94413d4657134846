"""Data sets the course builds from data that installed packages ship (no downloads).

``cluttered_digits``: scikit-learn's 8x8 handwritten digits (1,797 images, a copy of the
test set of the UCI ML hand-written digits, shipped inside scikit-learn), enlarged and
placed at a random position on a larger canvas strewn with fragments of other digits. To
classify, a network must work out *where* the digit is (the clutter looks like pieces of
digits) and *what* it is. Train and test use disjoint source digits.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .validate import positive_int

SPLITS = ("train", "test")


@dataclass
class DigitScenes:
    """images (N, C, S, S) float32 in [0, 1] (C = 1 but for ``cued_digits('channel')``);
    labels (N,) int64; boxes (N, 4) int as (top, left, bottom, right) of the digit to read,
    in pixels."""

    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray

    def __post_init__(self) -> None:
        _check_fields(self, {"images": 4, "labels": 1, "boxes": 2})
        if self.boxes.shape[1] != 4:
            raise ValueError(f"boxes must be (N, 4), got {self.boxes.shape}")


def _check_fields(data: object, ranks: dict[str, int]) -> None:
    """Each named field of a data set is an array of the given rank, all of one length."""
    for name, ndim in ranks.items():
        value = getattr(data, name)
        if not isinstance(value, np.ndarray) or value.ndim != ndim:
            shape = getattr(value, "shape", type(value).__name__)
            raise ValueError(f"{name} must be a numpy array with {ndim} dimensions, got {shape}")
    lengths = {name: len(getattr(data, name)) for name in ranks}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"every field must hold the same number of examples, got {lengths}")


def _source_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    digits = load_digits()
    order = np.random.default_rng(1234).permutation(len(digits.images))
    cut = int(0.7 * len(order))
    idx = order[:cut] if split == "train" else order[cut:]
    return digits.images[idx] / 16.0, digits.target[idx]


def _enlarge(img: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of an 8x8 digit to size x size (via scikit-image, anti-aliased)."""
    from skimage.transform import resize

    return resize(img, (size, size), order=1, anti_aliasing=False)


def cluttered_digits(n: int, *, split: str = "train", seed: int = 0, canvas: int = 40,
                     digit_size: int = 16, clutter: int = 8, fragment: int = 6) -> DigitScenes:
    """``n`` scenes of one digit among ``clutter`` digit fragments on a ``canvas``-pixel square.

    Deterministic for a given (split, seed, sizes). Fragments are random ``fragment``-pixel
    crops of other enlarged digits; the digit is drawn last (pixelwise maximum).
    """
    n = positive_int(n, "n")
    canvas = positive_int(canvas, "canvas", minimum=8)
    digit_size = positive_int(digit_size, "digit_size", minimum=8)
    clutter = positive_int(clutter, "clutter", minimum=0)
    fragment = positive_int(fragment, "fragment", minimum=2)
    if digit_size > canvas or fragment > digit_size:
        raise ValueError(f"need fragment ({fragment}) <= digit_size ({digit_size}) <= canvas "
                         f"({canvas})")
    sources, targets = _source_digits(split)
    big = np.stack([_enlarge(d, digit_size) for d in sources])        # (M, s, s)
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    images = np.zeros((n, 1, canvas, canvas), dtype=np.float32)
    labels = np.empty(n, dtype=np.int64)
    boxes = np.empty((n, 4), dtype=np.int64)
    span = canvas - digit_size + 1
    for i in range(n):
        scene = images[i, 0]
        for _ in range(clutter):
            src = big[rng.integers(len(big))]
            r, c = rng.integers(0, digit_size - fragment + 1, size=2)
            y, x = rng.integers(0, canvas - fragment + 1, size=2)
            np.maximum(scene[y:y + fragment, x:x + fragment], src[r:r + fragment, c:c + fragment],
                       out=scene[y:y + fragment, x:x + fragment])
        k = rng.integers(len(big))
        y, x = rng.integers(0, span, size=2)
        np.maximum(scene[y:y + digit_size, x:x + digit_size], big[k],
                   out=scene[y:y + digit_size, x:x + digit_size])
        labels[i] = targets[k]
        boxes[i] = (y, x, y + digit_size, x + digit_size)
    return DigitScenes(images, labels, boxes)


CUES = ("channel", "location")


def cued_digits(n: int, cue: str, *, split: str = "train", seed: int = 0, canvas: int = 24,
                digit_size: int = 12, others: int = 2) -> DigitScenes:
    """``n`` scenes of 1 + ``others`` digits of different classes, one of which is the label;
    a cue says which. Deterministic for given arguments.

    - ``cue='channel'`` ("what"): 1 + ``others`` channels, each holding one digit, all at the
      same place; the channel to read carries a frame along the canvas border, away from the
      digits. Every position shows every digit: which one counts is a property of a whole
      channel, the kind of thing SE's squeeze (a channel's mean) and excitation (a gain per
      channel) compute.
    - ``cue='location'`` ("where"): one channel, 1 + ``others`` digits at different places;
      the digit to read carries a frame around it. Every digit is a whole digit: which one
      counts is a matter of place, the kind of thing a spatial attention map selects.

    boxes give the digit to read (for 'channel', the shared place of all digits).
    """
    n = positive_int(n, "n")
    if cue not in CUES:
        raise ValueError(f"cue must be one of {CUES}, got {cue!r}")
    canvas = positive_int(canvas, "canvas", minimum=8)
    digit_size = positive_int(digit_size, "digit_size", minimum=6)
    others = positive_int(others, "others", minimum=1)
    if others > 9:
        raise ValueError(f"others must be at most 9 (the digits differ in class), got {others}")
    room = digit_size + 2                            # a digit with its frame
    if cue == "location" and (canvas // room) ** 2 < others + 1:
        raise ValueError(f"canvas ({canvas}) has room for {(canvas // room) ** 2} framed "
                         f"digits of {digit_size} px, fewer than 1 + others = {others + 1}")
    if cue == "channel" and digit_size > canvas - 6:
        raise ValueError(f"digit_size ({digit_size}) must be at most canvas - 6 "
                         f"({canvas - 6}), so that the digits stay clear of the frame")
    sources, targets = _source_digits(split)
    big = np.stack([_enlarge(d, digit_size) for d in sources])
    by_class = [np.flatnonzero(targets == k) for k in range(10)]
    rng = np.random.default_rng([seed, SPLITS.index(split), CUES.index(cue), 13])
    channels = others + 1 if cue == "channel" else 1
    images = np.zeros((n, channels, canvas, canvas), dtype=np.float32)
    labels = np.empty(n, dtype=np.int64)
    boxes = np.empty((n, 4), dtype=np.int64)
    cells = [(r * room, c * room) for r in range(canvas // room) for c in range(canvas // room)]
    for i in range(n):
        classes = rng.choice(10, size=others + 1, replace=False)
        picks = [big[rng.choice(by_class[k])] for k in classes]
        which = int(rng.integers(others + 1))
        labels[i] = classes[which]
        if cue == "channel":
            y, x = rng.integers(3, canvas - digit_size - 2, size=2)   # clear of the frame
            for ch, digit in enumerate(picks):
                images[i, ch, y:y + digit_size, x:x + digit_size] = digit
            frame = images[i, which]
            frame[0, :] = frame[-1, :] = frame[:, 0] = frame[:, -1] = 1.0
            boxes[i] = (y, x, y + digit_size, x + digit_size)
        else:
            spare = canvas - room * (canvas // room)
            for j, cell in enumerate(rng.choice(len(cells), size=others + 1, replace=False)):
                y0, x0 = cells[cell]
                y, x = (np.array([y0, x0]) + 1 + rng.integers(0, spare + 1, size=2))
                images[i, 0, y:y + digit_size, x:x + digit_size] = picks[j]
                if j == which:
                    box = images[i, 0, y - 1:y + digit_size + 1, x - 1:x + digit_size + 1]
                    box[0, :] = box[-1, :] = box[:, 0] = box[:, -1] = 1.0
                    boxes[i] = (y, x, y + digit_size, x + digit_size)
    return DigitScenes(images, labels, boxes)


def box_mask(boxes: np.ndarray, map_shape: tuple[int, int], image_size: int) -> np.ndarray:
    """(N, h, w) boolean masks of the map cells whose centres lie inside each box.

    boxes: (N, 4) as (top, left, bottom, right) in pixels of an image_size-pixel square image.
    """
    boxes = np.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {boxes.shape}")
    if (not isinstance(map_shape, tuple | list) or len(map_shape) != 2
            or not all(isinstance(v, int | np.integer) and v > 0 for v in map_shape)):
        raise ValueError(f"map_shape must be a pair of positive integers (h, w), got {map_shape!r}")
    image_size = positive_int(image_size, "image_size")
    h, w = map_shape
    rows = (np.arange(h) + 0.5) * image_size / h
    cols = (np.arange(w) + 0.5) * image_size / w
    inside_r = (rows >= boxes[:, 0:1]) & (rows < boxes[:, 2:3])           # (N, h)
    inside_c = (cols >= boxes[:, 1:2]) & (cols < boxes[:, 3:4])           # (N, w)
    return inside_r[:, :, None] & inside_c[:, None, :]


def attention_in_box(maps: np.ndarray, boxes: np.ndarray, image_size: int) -> np.ndarray:
    """Fraction of each map's total weight that falls on the digit's box: (N,) in [0, 1].

    maps: (N, h, w) non-negative attention maps over an image_size-pixel square image.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3 or np.any(maps < 0):
        raise ValueError(f"maps must be non-negative with shape (N, h, w), got {maps.shape}")
    if len(maps) != len(boxes):
        raise ValueError(f"maps ({len(maps)}) and boxes ({len(boxes)}) must have equal length")
    if np.any(maps.sum(axis=(1, 2)) <= 0):
        raise ValueError("maps must each have a positive total weight (an all-zero map has "
                         "no fraction on the box)")
    image_size = positive_int(image_size, "image_size")
    mask = box_mask(boxes, maps.shape[1:], image_size)
    return (maps * mask).sum(axis=(1, 2)) / maps.sum(axis=(1, 2))


def segment_indices(num_frames: int, segments: int,
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """TSN-style sampling: split the frames into equal segments and take one frame from each,
    at random within the segment (training, with ``rng``) or at its centre (testing)."""
    num_frames = positive_int(num_frames, "num_frames")
    segments = positive_int(segments, "segments")
    if segments > num_frames:
        raise ValueError(f"segments ({segments}) must not exceed num_frames ({num_frames})")
    edges = np.linspace(0, num_frames, segments + 1)
    if rng is None:
        return ((edges[:-1] + edges[1:]) / 2).astype(int)
    starts = np.ceil(edges[:-1]).astype(int)
    stops = np.maximum(np.ceil(edges[1:]).astype(int), starts + 1)
    return np.array([int(rng.integers(lo, hi)) for lo, hi in zip(starts, stops, strict=True)])


# ---------------------------------------------------------------------------------------------
# Moving digits: short clips for the video notebook (06)

CLIP_CLASSES = ("moves right", "moves left", "together", "in turn", "returns", "jumps")
"""The six classes of ``moving_digits``. 0-1 need the order of frames (local motion); 2-3 need
to relate two far-apart corners within a frame; 4-5 need to relate the same corner across a
long gap in time."""
LONG_RANGE = (2, 3, 4, 5)
SPRITE = 8                                  # the digits keep scikit-learn's 8x8 size
CACHE_VERSION = 2                           # bump whenever the clips change


@dataclass
class VideoClips:
    """clips (N, 1, T, S, S) float32 in [0, 1]; labels (N,) int64 (indices into
    ``CLIP_CLASSES``); positions (N, 2, T, 2) int: (top, left) of digit 0 and digit 1 in
    every frame, -1 where that digit is not shown. Digits are ``SPRITE`` pixels square."""

    clips: np.ndarray
    labels: np.ndarray
    positions: np.ndarray

    def __post_init__(self) -> None:
        _check_fields(self, {"clips": 5, "labels": 1, "positions": 4})
        if self.clips.shape[1] != 1 or self.positions.shape[1:] != (2, self.clips.shape[2], 2):
            raise ValueError(f"clips must be (N, 1, T, S, S) and positions (N, 2, T, 2), got "
                             f"{self.clips.shape} and {self.positions.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> VideoClips:
        """The clips at ``index`` (an index array or boolean mask)."""
        return VideoClips(self.clips[index], self.labels[index], self.positions[index])


def _far_corners(rng: np.random.Generator, span: int) -> np.ndarray:
    """Two distinct corners of the frame, (2, 2) as (top, left); ``span`` is the largest top
    or left a sprite can have."""
    corners = np.array([(0, 0), (0, span), (span, 0), (span, span)])
    return corners[rng.choice(4, size=2, replace=False)]


def _draw_clip(label: int, sprites: np.ndarray, rng: np.random.Generator, frames: int,
               size: int) -> tuple[np.ndarray, np.ndarray]:
    """One clip (T, S, S) of class ``label`` and its digit positions (2, T, 2)."""
    clip = np.zeros((frames, size, size), dtype=np.float32)
    pos = np.full((2, frames, 2), -1, dtype=np.int64)
    span = size - SPRITE
    drawn = rng.choice(len(sprites), size=2, replace=False)
    if label in (0, 1):                                   # one digit crossing the frame
        lefts = np.rint(np.linspace(0, span, frames)).astype(int)
        pos[0, :, 0], pos[0, :, 1] = rng.integers(0, span + 1), lefts if label == 0 else lefts[::-1]
    elif label in (2, 3):                                 # two digits, each for half the clip
        where = _far_corners(rng, span)
        halves = np.array_split(np.arange(frames), 2)
        first = int(rng.integers(2))
        second = first if label == 2 else 1 - first       # the same half, or the other one
        pos[0, halves[first]], pos[1, halves[second]] = where[0], where[1]
    else:                                                 # one digit, shown early and late
        where = _far_corners(rng, span)
        if label == 4:
            where[1] = where[0]                           # back at the same place
        quarter = max(frames // 4, 1)
        pos[0, :quarter], pos[1, frames - quarter:] = where[0], where[1]
        drawn[1] = drawn[0]
    for d in range(2):
        for t in np.flatnonzero(pos[d, :, 0] >= 0):
            y, x = pos[d, t]
            np.maximum(clip[t, y:y + SPRITE, x:x + SPRITE], sprites[drawn[d]],
                       out=clip[t, y:y + SPRITE, x:x + SPRITE])
    return clip, pos


def _cache_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "data" / "cache"


def _read_clip_cache(path: Path, shape: tuple[int, ...]) -> VideoClips | None:
    """The clips stored at ``path``, or None (with a warning) when the file is unreadable
    or holds arrays of the wrong shape: the caller then rebuilds it."""
    try:
        with open(path, "rb") as handle, np.load(handle) as stored:
            clips, labels, positions = stored["clips"], stored["labels"], stored["positions"]
        if (clips.shape != shape or clips.dtype != np.uint8 or labels.shape != shape[:1]
                or positions.shape != (shape[0], 2, shape[2], 2)):
            raise ValueError(f"it holds clips of shape {clips.shape} ({clips.dtype}), "
                             f"expected {shape} (uint8)")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(f"The data cache {path} could not be read ({exc}); rebuilding it.",
                      stacklevel=3)
        return None
    return VideoClips(clips.astype(np.float32) / 255, labels, positions)


def moving_digits(n: int, *, split: str = "train", seed: int = 0, frames: int = 16,
                  size: int = 32, cache: bool = True) -> VideoClips:
    """``n`` clips of ``frames`` frames of ``size`` x ``size`` pixels, classes balanced.

    Classes (``CLIP_CLASSES``): 0/1 a digit crosses the frame left to right / right to left;
    2/3 two digits in two corners, each shown for one half of the clip: the same half
    ("together") or different halves ("in turn"); 4/5 a digit in a corner for the first
    quarter of the clip, gone for the middle half, and back for the last quarter at the same
    place ("returns") or in another corner ("jumps"). Which digits are drawn plays no part in
    the class. Deterministic for given arguments; with ``cache`` the clips are stored in
    ``data/cache/`` (ignored by git) and loaded from there next time.
    """
    n = positive_int(n, "n")
    frames = positive_int(frames, "frames", minimum=4)
    size = positive_int(size, "size", minimum=2 * SPRITE)
    path = _cache_dir() / f"moving_digits_v{CACHE_VERSION}_{split}_{n}_{seed}_{frames}_{size}.npz"
    if cache and path.exists():
        stored = _read_clip_cache(path, (n, 1, frames, size, size))
        if stored is not None:
            return stored
    sources, _ = _source_digits(split)
    rng = np.random.default_rng([seed, SPLITS.index(split), 6])
    labels = rng.permutation(np.arange(n) % len(CLIP_CLASSES)).astype(np.int64)
    clips = np.empty((n, 1, frames, size, size), dtype=np.float32)
    positions = np.empty((n, 2, frames, 2), dtype=np.int64)
    for i, label in enumerate(labels):
        clips[i, 0], positions[i] = _draw_clip(int(label), sources, rng, frames, size)
    clips = np.rint(clips * 255) / 255                   # what the uint8 cache stores
    clips = clips.astype(np.float32)
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
            np.savez_compressed(partial, clips=np.rint(clips * 255).astype(np.uint8),
                                labels=labels, positions=positions)
            os.replace(partial, path)                    # atomic: safe under torchrun
        except OSError:                                  # a read-only checkout still works
            pass
    return VideoClips(clips, labels, positions)


# ---------------------------------------------------------------------------------------------
# Brief events: clips in which only a few frames matter (notebook 08)

EVENT_DIGITS = (0, 1, 4, 7)
EVENT_CLASSES = tuple(str(d) for d in EVENT_DIGITS)
"""The classes of ``brief_event_clips``: the digit shown during the clip's brief event."""
EVENT_FLAG = 3                              # side of the bright square that marks the event


def brief_event_clips(n: int, *, split: str = "train", seed: int = 0, frames: int = 16,
                      size: int = 24, event: int = 2) -> VideoClips:
    """``n`` clips of ``frames`` frames of ``size`` x ``size`` pixels in which only a brief
    event matters; classes balanced.

    Every frame shows one digit (``SPRITE`` pixels, scikit-learn's) with its top-left corner
    at a random place in [size // 2, size - SPRITE - 1] in both axes, the lower right of the
    frame. Outside the event it is a distractor: a digit of any of the ten classes, drawn anew
    in every frame. During the event, ``event`` consecutive frames at a random time, the
    frame shows the target digit, one source image at one place for the whole event, and is
    marked by a bright ``EVENT_FLAG`` x ``EVENT_FLAG`` square in its top-left corner, far
    from the digits. The label is the target's class, an index into ``EVENT_CLASSES`` (the
    digits ``EVENT_DIGITS``).

    What makes the task: distractors of every class appear too, so the event's frames must
    be told from the others by the flag. Pooling the features of all frames alike mixes in
    ``frames - event`` distractors; the flag and the digit lie too far apart for a small
    convolutional unit to see both (at size 24 the video networks' units, 15 x 15 pixels, see
    at most a corner of a digit together with the flag), so a network without frame
    selection has to read the label from its digit counts; weights over the frames computed
    from each frame's global content (the mean of a flag detector) can pick the event out.

    positions (N, 2, T, 2): (top, left) of the distractor (slot 0) and of the target
    (slot 1) in every frame, -1 where that slot is empty; the event's frames are those where
    ``positions[:, 1, :, 0] >= 0``. Deterministic for given arguments; train and test draw
    from disjoint source digits. Vectorised, so quick to build (no cache).
    """
    n = positive_int(n, "n")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    event = positive_int(event, "event")
    frames = positive_int(frames, "frames", minimum=2 * event)
    size = positive_int(size, "size", minimum=2 * SPRITE + 2)
    sources, targets = _source_digits(split)
    rng = np.random.default_rng([seed, SPLITS.index(split), 8])
    labels = rng.permutation(np.arange(n) % len(EVENT_CLASSES)).astype(np.int64)
    start = rng.integers(0, frames - event + 1, size=n)                       # first event frame
    in_event = np.arange(frames) - start[:, None]
    in_event = (in_event >= 0) & (in_event < event)                           # (N, T)
    by_class = [np.flatnonzero(targets == d) for d in EVENT_DIGITS]
    draw = rng.random(n)                                                      # which image
    target = np.array([by_class[k][int(u * len(by_class[k]))]
                       for k, u in zip(labels, draw, strict=True)])
    sprite = np.where(in_event, target[:, None], rng.integers(len(sources), size=(n, frames)))
    corner = rng.integers(size // 2, size - SPRITE, size=(n, frames, 2))    # (top, left)
    corner = np.where(in_event[..., None], corner[np.arange(n), start][:, None], corner)
    clips = np.zeros((n, frames, size, size), dtype=np.float32)
    offsets = np.arange(SPRITE)
    rows = (corner[..., 0, None] + offsets)[..., :, None]                    # (N, T, 8, 1)
    cols = (corner[..., 1, None] + offsets)[..., None, :]                    # (N, T, 1, 8)
    ii, tt = np.indices((n, frames))
    clips[ii[..., None, None], tt[..., None, None], rows, cols] = sources[sprite]
    clips[:, :, :EVENT_FLAG, :EVENT_FLAG] = in_event[..., None, None]        # the flag
    positions = np.full((n, 2, frames, 2), -1, dtype=np.int64)
    positions[:, 0] = np.where(in_event[..., None], -1, corner)
    positions[:, 1] = np.where(in_event[..., None], corner, -1)
    return VideoClips(clips[:, None], labels, positions)


def event_experiment(fast: bool | None = None) -> dict:
    """The set-up of notebook 08's temporal-attention experiment, sized by the mode
    (``fast=None``: from ``ACV_FAST``, as ``runtime.pick`` decides): train and test clips of
    ``brief_event_clips`` (8 frames of 24 x 24 pixels, a 2-frame event), the seeds, and the
    epochs, batch size, learning rate and ``history=False`` (no learning curves: they would
    cost a third more time), the other keyword arguments of ``training.compare_models``
    besides the models (``models.event_models``). Full size (2,000 training clips, 10
    epochs): 4 models x 5 seeds take about 10 minutes on one core, so notebook 08 plots the
    recorded study (``python -m utils.event_study``) and re-trains two runs live."""
    from .runtime import fast_mode

    fast = fast_mode() if fast is None else fast
    if not isinstance(fast, bool):
        raise ValueError(f"fast must be True, False or None, got {fast!r}")
    n_train, n_test = (300, 200) if fast else (2000, 600)
    return {"train": brief_event_clips(n_train, split="train", frames=8),
            "test": brief_event_clips(n_test, split="test", frames=8),
            "seeds": [0, 1] if fast else [0, 1, 2, 3, 4], "epochs": 2 if fast else 10,
            "batch_size": 20, "lr": 0.01, "history": False}
