"""Data sets the course builds from data that installed packages ship (no downloads).

``cluttered_digits``: scikit-learn's 8x8 handwritten digits (1,797 images, a copy of the
test set of the UCI ML hand-written digits, shipped inside scikit-learn), enlarged and
placed at a random position on a larger canvas strewn with fragments of other digits. To
classify, a network must work out *where* the digit is (the clutter looks like pieces of
digits) and *what* it is. Train and test use disjoint source digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validate import positive_int

SPLITS = ("train", "test")


@dataclass
class DigitScenes:
    """images (N, 1, S, S) float32 in [0, 1]; labels (N,) int64; boxes (N, 4) int as
    (top, left, bottom, right) of the digit in pixels."""

    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray


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


def box_mask(boxes: np.ndarray, map_shape: tuple[int, int], image_size: int) -> np.ndarray:
    """(N, h, w) boolean masks of the map cells whose centres lie inside each box.

    boxes: (N, 4) as (top, left, bottom, right) in pixels of an image_size-pixel square image.
    """
    boxes = np.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {boxes.shape}")
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
