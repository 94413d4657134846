"""Video person re-identification with non-local attention (notebook 08, section 2).

Re-identification (ReID) is retrieval: given a *query* clip of a person seen by one camera,
rank the *gallery* clips seen by the other cameras so that the same person comes first.
A network maps every clip to an embedding; the ranking is by Euclidean distance.

What the paper says (Liao, He & Yang, "Video-based Person Re-identification via 3D
Convolutional Networks and Non-local Attention", ACCV 2018, arXiv:1807.05073):
- 3-D convolutions over the video volume replace 2-D convolutions applied frame by frame,
  to extract spatial and temporal features together (abstract; Sec. 1);
- non-local blocks (Wang et al., CVPR 2018) make every feature a weighted sum of the features
  at all space-time positions, against spatial misalignment between frames and for long-range
  dependencies (abstract; Sec. 1). The paper's Fig. 1 sets this against the usual aggregation
  of per-frame features by temporal average or max pooling, RNNs or temporal attention;
- its backbone is a 3-D ResNet-50 and its clip feature the backbone's output averaged over
  time ("ResNet50-3D + avg pooling", as a public list of video-ReID results summarises it);
  the reported results, as that list quotes them: MARS rank-1 84.3 %, mAP 77.0 %; iLIDS-VID
  rank-1 81.3 %; PRID2011 rank-1 91.2 %.
Evaluation on these data sets follows their standard protocols: on MARS (Zheng et al., ECCV
2016) the CMC curve (rank-k accuracy) and mAP over queries, ignoring gallery clips of the
query's own identity taken by the query's own camera; on iLIDS-VID and PRID2011, CMC over
random half/half splits of the identities.
Which stages carry the blocks, how many, the exact loss and the paper's own evaluation
section could not be verified from the text we could read (abstract and introduction only).
The course follows the recipe that the paper builds on (Wang et al. 2018 put the blocks into
the two middle stages, res3 and res4, of a 3-D ResNet-50) and the usual training of video
ReID networks of that time: identity cross-entropy plus the batch-hard triplet loss of
Hermans, Beyer & Leibe (2017, "In Defense of the Triplet Loss") on P x K batches.

Where the course deliberately differs: a four-layer 3-D network on 24 x 24 synthetic clips of
"identities" (a handwritten digit with a colour and a texture) replaces a 3-D ResNet-50 on
pedestrian videos, so that a run trains on a laptop CPU in seconds.

Contents: ``reid_clips`` (the data), ``query_gallery`` (the split), ``cmc`` /
``mean_average_precision`` / ``evaluate_retrieval`` (NumPy metrics), ``batch_hard_triplet_loss``
and ``PKSampler`` (the metric loss and its batches), ``ReidNet`` (the network),
``train_reid`` / ``evaluate_reid`` / ``reid_experiment`` (the experiment) and
``draw_retrieval`` (the figure).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .datasets import SPLITS, _check_fields, _source_digits
from .models import VideoNonLocal, _check_clips, conv_bn3d
from .plotting import LINE_COLOURS
from .runtime import get_device
from .training import Progress
from .validate import as_float_array, boolean, positive_float, positive_int

# ---------------------------------------------------------------------------------------------
# Data: synthetic identities seen by two cameras

REID_SPRITE = 12        # pixels: the 8 x 8 digit enlarged, so that its texture can be seen
CAMERAS = 2
PALETTE = ((0.90, 0.20, 0.15), (0.95, 0.55, 0.10), (0.90, 0.85, 0.15), (0.20, 0.70, 0.25),
           (0.15, 0.80, 0.85), (0.20, 0.40, 0.95), (0.60, 0.30, 0.85), (0.95, 0.45, 0.70))
"""The identities' colours (RGB): with the textures, 32 kinds of clothing, so that many
identities share colour and texture and only the handwriting tells them apart."""
TEXTURES = ("solid", "rows", "columns", "checks")
CAMERA_GAIN = ((1.00, 0.95, 0.90), (0.90, 0.95, 1.00))
"""Per-camera colour gain (R, G, B): camera 0 sees warm light, camera 1 cool light."""
CLUTTER = 1             # fragments of other digits strewn on every clip's background
FRAGMENT = 5            # pixels: side of a fragment
OCCLUSION = 0.5         # share of clips with a grey bar over some of their frames
OCCLUDED_FRAMES = 0.375  # share of a clip's frames that the bar hides (a contiguous run)
BAR = 4                 # pixels: width of the occluding bar
BACKGROUND = (0.33, 0.39)   # background grey level seen by camera 0 and camera 1


@dataclass
class ReidClips:
    """clips (N, 3, T, S, S) float32 in [0, 1]; ids (N,) int64 identity of each clip; camera
    (N,) int64 the camera (0 or 1) that took it."""

    clips: np.ndarray
    ids: np.ndarray
    camera: np.ndarray

    def __post_init__(self) -> None:
        _check_fields(self, {"clips": 5, "ids": 1, "camera": 1})
        if self.clips.shape[1] != 3:
            raise ValueError(f"clips must be (N, 3, T, S, S) colour clips, got {self.clips.shape}")

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray) -> ReidClips:
        """The clips at ``index`` (an index array or boolean mask)."""
        return ReidClips(self.clips[index], self.ids[index], self.camera[index])


def _texture(name: str) -> np.ndarray:
    """A (REID_SPRITE, REID_SPRITE) multiplier in [0.4, 1]: the pattern of the clothing."""
    r, c = np.indices((REID_SPRITE, REID_SPRITE))
    stripes = {"solid": np.zeros_like(r), "rows": r % 2, "columns": c % 2,
               "checks": (r // 2 + c // 2) % 2}[name]
    return 1.0 - 0.6 * stripes


def _identity_sprites(split: str, identities: int, seed: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per identity: its alpha mask (I, P, P) (the digit), its colour index, its texture index,
    and the pool of all sprites of the split (for the clutter), each P = REID_SPRITE."""
    from scipy import ndimage

    sources, _ = _source_digits(split)
    if identities > len(sources):
        raise ValueError(f"identities must be at most {len(sources)} for split {split!r} (one "
                         f"handwritten digit each), got {identities}")
    rng = np.random.default_rng([seed, SPLITS.index(split), 8])
    pool = ndimage.zoom(sources, (1, REID_SPRITE / 8, REID_SPRITE / 8), order=1)
    pool = np.clip(pool / pool.max(axis=(1, 2), keepdims=True), 0, 1)
    chosen = rng.choice(len(sources), size=identities, replace=False)
    colour = rng.integers(len(PALETTE), size=identities)
    texture = rng.integers(len(TEXTURES), size=identities)
    return pool[chosen], colour, texture, pool


def identity_clothing(identities: int, *, split: str = "train", seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """What the identities of ``reid_clips(identities, ..., split=split, seed=seed)`` wear:
    the colour (I,) as an index into ``PALETTE`` and the texture (I,) as an index into
    ``TEXTURES``, identity i at index i."""
    identities = positive_int(identities, "identities")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _, colour, texture, _ = _identity_sprites(split, identities, int(seed))
    return colour, texture


def reid_clips(identities: int, clips_per_identity: int, *, split: str = "train",
               seed: int = 0, frames: int = 8, size: int = 24, occlusion: float = OCCLUSION,
               bar: int = BAR) -> ReidClips:
    """``identities`` x ``clips_per_identity`` clips (N, 3, frames, size, size), identity-major.

    An identity is one handwritten digit of scikit-learn's data set (enlarged to
    ``REID_SPRITE`` pixels; train and test identities come from disjoint digits) worn in one
    colour of ``PALETTE`` with one texture of ``TEXTURES``. Its clips alternate between the
    two cameras (clip j is taken by camera j % 2), and differ in everything but the identity:
    the digit moves in a straight line between two random points (direction and speed vary),
    jitters by up to a pixel per frame, crosses a noisy background of camera-dependent
    brightness (``BACKGROUND``) strewn with ``CLUTTER`` coloured fragment(s) of other digits,
    is partly hidden behind a grey ``BAR``-pixel bar for a run of ``OCCLUDED_FRAMES`` of the
    frames in ``OCCLUSION`` of the clips, and the camera's colour gain (``CAMERA_GAIN``) tints
    the whole frame. Pixel noise is added last. Vectorised; deterministic for given arguments.

    ``occlusion`` (share of clips with the bar, 0 to 1) and ``bar`` (its width in pixels) set
    the occluder; the study of notebook 08 compares ``occlusion=0`` with ``occlusion=1,
    bar=8``: a bar two thirds as wide as the digit over 3 of the 8 frames of every clip, so
    that the identity's shape is hidden in some frames only. The random draws do not depend
    on these two, so clips with and without the bar differ only by the bar.
    """
    identities = positive_int(identities, "identities")
    clips_per_identity = positive_int(clips_per_identity, "clips_per_identity", minimum=2)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    frames = positive_int(frames, "frames", minimum=2)
    size = positive_int(size, "size", minimum=REID_SPRITE + 4)
    occlusion = positive_float(occlusion, "occlusion", allow_zero=True)
    if occlusion > 1:
        raise ValueError(f"occlusion must be a share of clips in [0, 1], got {occlusion}")
    bar = positive_int(bar, "bar")
    if bar > REID_SPRITE:
        raise ValueError(f"bar must be at most the digit's {REID_SPRITE} pixels, got {bar}")
    alpha, colour, texture, pool = _identity_sprites(split, identities, int(seed))
    rng = np.random.default_rng([int(seed), SPLITS.index(split), 9])

    n, t_len, p = identities * clips_per_identity, frames, REID_SPRITE
    ids = np.repeat(np.arange(identities), clips_per_identity).astype(np.int64)
    camera = np.tile(np.arange(clips_per_identity) % CAMERAS, identities).astype(np.int64)
    span = size - p

    # background: camera-dependent grey level, static texture noise, fragments of other digits
    level = np.asarray(BACKGROUND)[camera][:, None, None, None]
    canvas = np.broadcast_to(level + 0.12 * rng.random((n, size, size, 3)),
                             (n, size, size, 3)).copy()
    palette = np.asarray(PALETTE)
    rows_n = np.arange(n)[:, None, None]
    span_f = np.arange(FRAGMENT)
    for _ in range(CLUTTER):
        src = rng.integers(len(pool), size=n)
        off = rng.integers(0, p - FRAGMENT + 1, size=(n, 2))
        at = rng.integers(0, size - FRAGMENT + 1, size=(n, 2))
        frag = pool[src[:, None, None], off[:, 0, None, None] + span_f[:, None],
                    off[:, 1, None, None] + span_f[None, :]][..., None]          # (n, F, F, 1)
        tint = palette[rng.integers(len(palette), size=n)][:, None, None, :]
        rr = at[:, 0, None, None] + span_f[:, None]
        cc = at[:, 1, None, None] + span_f[None, :]
        canvas[rows_n, rr, cc] = canvas[rows_n, rr, cc] * (1 - frag) + tint * frag
    video = np.repeat(canvas[:, None], t_len, axis=1)                            # (n, T, S, S, 3)

    # the identity: a textured, coloured digit moving from one random point to another
    start = rng.integers(0, span + 1, size=(n, 2))
    stop = rng.integers(0, span + 1, size=(n, 2))
    path = start[:, None] + (stop - start)[:, None] * np.linspace(0, 1, t_len)[None, :, None]
    jitter = rng.integers(-1, 2, size=(n, t_len, 2))
    pos = np.clip(np.rint(path).astype(np.int64) + jitter, 0, span)               # (n, T, 2)
    textures = np.stack([_texture(name) for name in TEXTURES])
    person_alpha = np.repeat(alpha, clips_per_identity, axis=0)                   # (n, P, P)
    person_rgb = (palette[np.repeat(colour, clips_per_identity)][:, None, None, :]
                  * textures[np.repeat(texture, clips_per_identity)][..., None])  # (n, P, P, 3)
    ar = np.arange(p)
    rr = pos[:, :, 0, None, None] + ar[:, None]                                    # (n, T, P, 1)
    cc = pos[:, :, 1, None, None] + ar[None, :]                                    # (n, T, 1, P)
    ni = np.arange(n)[:, None, None, None]
    ti = np.arange(t_len)[None, :, None, None]
    a = person_alpha[:, None, :, :, None]
    video[ni, ti, rr, cc] = video[ni, ti, rr, cc] * (1 - a) + person_rgb[:, None] * a

    # occlusion: a grey bar across the digit's mean position for a run of frames
    hidden = rng.random(n) < occlusion
    run = max(int(round(OCCLUDED_FRAMES * t_len)), 1)
    first = rng.integers(0, t_len - run + 1, size=n)
    t_idx = np.arange(t_len)
    in_time = hidden[:, None] & (t_idx >= first[:, None]) & (t_idx < (first + run)[:, None])
    vertical = rng.random(n) < 0.5
    centre = np.rint(pos.mean(axis=1)).astype(np.int64)                          # (n, 2)
    where = centre[np.arange(n), vertical.astype(int)] + np.floor(
        rng.random(n) * (p - bar + 1)).astype(np.int64)
    s_idx = np.arange(size)
    band = (s_idx >= where[:, None]) & (s_idx < (where + bar)[:, None])           # (n, S)
    across = np.where(vertical[:, None, None], band[:, None, :], band[:, :, None])  # (n, S, S)
    video[in_time[:, :, None, None] & across[:, None]] = 0.5

    # the camera's colour gain, pixel noise
    video *= np.asarray(CAMERA_GAIN)[camera][:, None, None, None, :]
    video += rng.normal(0.0, 0.03, size=video.shape)
    clips = np.clip(video, 0, 1).astype(np.float32).transpose(0, 4, 1, 2, 3)      # (n, 3, T, S, S)
    return ReidClips(np.ascontiguousarray(clips), ids, camera)


# ---------------------------------------------------------------------------------------------
# Query / gallery split and the retrieval metrics (NumPy)


def _integer_vector(x: object, name: str, length: int | None = None) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        got = f"dtype {arr.dtype}" if arr.ndim == 1 else f"shape {arr.shape}"
        raise ValueError(f"{name} must be a 1-D array of integers, got {got}")
    if length is not None and len(arr) != length:
        raise ValueError(f"{name} must hold {length} values (one per row or column of "
                         f"distances), got {len(arr)}")
    return arr.astype(np.int64, copy=False)


def query_gallery(ids: np.ndarray, camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The MARS / iLIDS-VID style split of a test set into queries and gallery.

    ids, camera: (N,) integers. For every identity and every camera that saw it, the first
    clip (in array order) is a query; all other clips form the gallery. Returns (query
    indices, gallery indices), each sorted. When ranking, ``cmc`` and friends ignore gallery
    clips of the query's identity taken by the query's camera (as MARS does), so a match
    must come from another camera.
    """
    ids = _integer_vector(ids, "ids")
    camera = _integer_vector(camera, "camera", len(ids))
    if len(ids) == 0:
        raise ValueError("ids must hold at least one clip")
    _, first = np.unique(np.stack([ids, camera], axis=1), axis=0, return_index=True)
    query = np.sort(first)
    gallery = np.setdiff1d(np.arange(len(ids)), query)
    return query, gallery


def _match_table(distances: object, query_ids: object, gallery_ids: object,
                 query_cams: object, gallery_cams: object) -> tuple[np.ndarray, np.ndarray]:
    """Rank the gallery for every query; returns ``matches`` (Q', G) bool, True where the
    item at that rank is a true match, and ``valid`` (Q', G) bool, True where the rank holds a
    gallery item at all (ignored items are moved past the end), for the Q' queries that have
    at least one true match. Ties keep gallery order (a stable sort)."""
    d = as_float_array(distances, "distances", ndim=2)
    q, g = d.shape
    if q == 0 or g == 0:
        raise ValueError(f"distances must have at least one query and one gallery item, got "
                         f"shape {d.shape}")
    qid = _integer_vector(query_ids, "query_ids", q)
    gid = _integer_vector(gallery_ids, "gallery_ids", g)
    if (query_cams is None) != (gallery_cams is None):
        raise ValueError("query_cams and gallery_cams must be given together (or both None)")
    keep = np.ones((q, g), dtype=bool)
    same = qid[:, None] == gid[None, :]
    if query_cams is not None:
        qcam = _integer_vector(query_cams, "query_cams", q)
        gcam = _integer_vector(gallery_cams, "gallery_cams", g)
        keep = ~(same & (qcam[:, None] == gcam[None, :]))    # same person, same camera: ignored
    order = np.argsort(np.where(keep, d, np.inf), axis=1, kind="stable")
    valid = np.take_along_axis(keep, order, axis=1)
    matches = np.take_along_axis(same, order, axis=1) & valid
    has = matches.any(axis=1)
    if not has.any():
        raise ValueError("no query has a true match in the gallery (after ignoring same-camera "
                         "clips of its identity): nothing to evaluate")
    return matches[has], valid[has]


def _ranks(ranks: object) -> tuple[int, ...]:
    if not isinstance(ranks, Sequence) or isinstance(ranks, str) or len(ranks) == 0:
        raise ValueError(f"ranks must be a non-empty sequence of positive integers, got {ranks!r}")
    return tuple(positive_int(k, "ranks") for k in ranks)


def cmc(distances: np.ndarray, query_ids: np.ndarray, gallery_ids: np.ndarray,
        query_cams: np.ndarray | None = None, gallery_cams: np.ndarray | None = None,
        ranks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """The cumulative matching characteristic at ``ranks``: for each k, the fraction of
    queries whose first true match is among the k nearest gallery items.

    distances (Q, G); query_ids (Q,), gallery_ids (G,) integers; with query_cams (Q,) and
    gallery_cams (G,), gallery items of the query's identity taken by the query's camera are
    ignored (removed from its ranking, as in MARS). Queries with no true match left in the
    gallery are excluded from the mean (``evaluate_retrieval`` reports how many). Ties are
    broken by gallery order (a stable sort): deterministic, but an item earlier in the
    gallery wins a tie.
    """
    ranks = _ranks(ranks)
    matches, _ = _match_table(distances, query_ids, gallery_ids, query_cams, gallery_cams)
    first = matches.argmax(axis=1)                          # 0-based rank of the first match
    return {k: float(np.mean(first < k)) for k in ranks}


def mean_average_precision(distances: np.ndarray, query_ids: np.ndarray,
                           gallery_ids: np.ndarray, query_cams: np.ndarray | None = None,
                           gallery_cams: np.ndarray | None = None) -> float:
    """Mean over queries of the average precision of the ranked gallery: for one query with m
    true matches at ranks r_1 < ... < r_m (1-based), AP = (1/m) sum_j j / r_j, the area under
    its precision-recall curve. Arguments, ignored items, excluded queries and ties as in
    ``cmc``."""
    matches, _ = _match_table(distances, query_ids, gallery_ids, query_cams, gallery_cams)
    hits = np.cumsum(matches, axis=1)
    precision = hits / np.arange(1, matches.shape[1] + 1)
    ap = (precision * matches).sum(axis=1) / matches.sum(axis=1)
    return float(ap.mean())


def evaluate_retrieval(distances: np.ndarray, query_ids: np.ndarray, gallery_ids: np.ndarray,
                       query_cams: np.ndarray | None = None,
                       gallery_cams: np.ndarray | None = None,
                       ranks: Sequence[int] = (1, 5)) -> dict[str, float | int]:
    """``cmc`` and ``mean_average_precision`` at once: a dict with 'rank-k' for every k in
    ``ranks``, 'mAP', 'queries' (the number evaluated) and 'excluded' (queries without a
    true match in the gallery, left out of every mean). Arguments as in ``cmc``."""
    ranks = _ranks(ranks)
    d = as_float_array(distances, "distances", ndim=2)
    matches, _ = _match_table(d, query_ids, gallery_ids, query_cams, gallery_cams)
    out: dict[str, float | int] = {f"rank-{k}": v for k, v in cmc(
        d, query_ids, gallery_ids, query_cams, gallery_cams, ranks).items()}
    out["mAP"] = mean_average_precision(d, query_ids, gallery_ids, query_cams, gallery_cams)
    out["queries"] = int(len(matches))
    out["excluded"] = int(d.shape[0] - len(matches))
    return out


# ---------------------------------------------------------------------------------------------
# The metric loss and its batches (PyTorch)


def _pairwise_distances(x: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (B, B) between the rows of x (B, D); the square root is taken of
    at least 1e-12 so that the gradient stays finite for identical rows."""
    sq = (x * x).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2 * x @ x.T
    return d2.clamp_min(1e-12).sqrt()


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor,
                            margin: float = 0.3, soft: bool = False) -> torch.Tensor:
    """The batch-hard triplet loss of Hermans, Beyer & Leibe (2017).

    embeddings (B, D); labels (B,) integers. For every anchor a, the hardest positive (the
    farthest clip of its identity, other than itself) and the hardest negative (the nearest
    clip of another identity), by Euclidean distance; the loss of a is
    max(0, margin + d(a, p) - d(a, n)), or with ``soft`` the soft margin
    log(1 + exp(d(a, p) - d(a, n))). Returns the mean over anchors that have both a positive
    and a negative in the batch (a scalar tensor).
    """
    if not isinstance(embeddings, torch.Tensor) or embeddings.ndim != 2:
        shape = tuple(embeddings.shape) if isinstance(embeddings, torch.Tensor) else type(
            embeddings).__name__
        raise ValueError(f"embeddings must be a tensor (B, D), got {shape}")
    if (not isinstance(labels, torch.Tensor) or labels.shape != embeddings.shape[:1]
            or labels.is_floating_point() or labels.is_complex()):
        got = (f"{tuple(labels.shape)} {labels.dtype}" if isinstance(labels, torch.Tensor)
               else type(labels).__name__)
        raise ValueError(f"labels must be an integer tensor ({embeddings.shape[0]},), one per "
                         f"embedding, got {got}")
    margin = positive_float(margin, "margin", allow_zero=True)
    soft = boolean(soft, "soft")
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive, negative = same & ~eye, ~same
    usable = positive.any(1) & negative.any(1)
    if not usable.any():
        raise ValueError("labels must give at least one anchor both a positive (another clip of "
                         "its identity) and a negative (a clip of another identity)")
    d = _pairwise_distances(embeddings)[usable]
    hardest_positive = d.masked_fill(~positive[usable], float("-inf")).amax(1)
    hardest_negative = d.masked_fill(~negative[usable], float("inf")).amin(1)
    gap = hardest_positive - hardest_negative
    return (F.softplus(gap) if soft else F.relu(margin + gap)).mean()


class PKSampler:
    """Batches of P identities x K clips each (Hermans et al. 2017), seeded.

    labels: (N,) integer identity of every clip. Each pass (``iter``) shuffles the identities
    and cuts them into len(self) = (number of identities) // p groups of p; from each identity
    it draws k of its clips, without replacement when it has at least k, with replacement
    otherwise. Every batch is an index array (p * k,), identity-major. The generator carries
    on from pass to pass, so epochs differ, and two samplers with one seed agree.
    """

    def __init__(self, labels: np.ndarray, p: int, k: int, seed: int = 0):
        labels = _integer_vector(labels, "labels")
        self.p = positive_int(p, "p", minimum=2)
        self.k = positive_int(k, "k", minimum=2)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.identities = np.unique(labels)
        if self.p > len(self.identities):
            raise ValueError(f"p ({self.p}) must not exceed the number of identities "
                             f"({len(self.identities)})")
        self.members = {int(i): np.flatnonzero(labels == i) for i in self.identities}
        self.generator = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.identities) // self.p

    def __iter__(self) -> Iterator[np.ndarray]:
        order = self.generator.permutation(self.identities)
        for b in range(len(self)):
            yield np.concatenate([
                self.generator.choice(self.members[int(i)], size=self.k,
                                      replace=len(self.members[int(i)]) < self.k)
                for i in order[b * self.p:(b + 1) * self.p]])


# ---------------------------------------------------------------------------------------------
# The network


class ReidNet(nn.Module):
    """A small 3-D convolutional embedding network for clips (B, 3, T, S, S).

    i3d-style like ``utils.models.VideoNet``, but with colour input and an embedding output:
    a 3x3x3 stem (stride 2 in time and space), a 3x3x3 stage 1 (stride 2 in space), a 1x3x3
    stage 2 and a 1x1x1 stage 3, so the last map is (B, widths[2], T/2, S/4, S/4).
    ``non_local`` spacetime non-local blocks (``VideoNonLocal``: embedded Gaussian, fused
    ``sdpa`` backend, keys and values max-pooled by 2 in space as in Wang et al. 2018,
    zero-initialised so each starts as the identity): 1 after stage 2, 2 after stages 1 and 2
    -- the blocks in the two middle stages of a 3-D ResNet, scaled down (on one CPU thread the
    two add about 70 % to a training step). The clip feature is the frame features
    (spatial means) averaged over time: that is the embedding (B, widths[2]), compared by
    Euclidean distance and trained by the triplet loss. A BN-neck (Luo et al. 2019: batch norm
    between the embedding and the classifier) feeds the identity classifier (B,
    num_identities), which only training uses. forward returns (embedding, logits).
    """

    def __init__(self, non_local: int = 0, num_identities: int = 100,
                 widths: Sequence[int] = (16, 32, 64)):
        super().__init__()
        if isinstance(non_local, bool) or non_local not in (0, 1, 2):
            raise ValueError(f"non_local must be 0, 1 or 2 (the number of blocks), got "
                             f"{non_local!r}")
        self.num_identities = positive_int(num_identities, "num_identities", minimum=2)
        if not isinstance(widths, Sequence) or len(widths) != 3:
            raise ValueError(f"widths must have three entries, got {widths!r}")
        w0, w1, w2 = (positive_int(w, "widths") for w in widths)
        self.non_local = int(non_local)

        def block(channels: int, wanted: bool) -> nn.Module:
            if not wanted:
                return nn.Identity()
            return VideoNonLocal(channels, "spacetime", backend="sdpa", subsample=True)

        self.stem = conv_bn3d(3, w0, (3, 3, 3), (2, 2, 2))
        self.stage1 = conv_bn3d(w0, w1, (3, 3, 3), (1, 2, 2))
        self.attend1 = block(w1, non_local == 2)
        self.stage2 = conv_bn3d(w1, w1, (1, 3, 3))
        self.attend2 = block(w1, non_local >= 1)
        self.stage3 = conv_bn3d(w1, w2, (1, 1, 1))
        self.neck = nn.BatchNorm1d(w2)
        self.classifier = nn.Linear(w2, self.num_identities, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.01)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame features (B, widths[2], T/2): the last map averaged over space."""
        _check_clips(x, "ReidNet")
        if x.shape[1] != 3 or x.shape[2] < 2:
            raise ValueError(f"ReidNet expects colour clips (B, 3, T, S, S) with T >= 2, got "
                             f"{tuple(x.shape)}")
        h = self.attend1(self.stage1(self.stem(x)))
        return self.stage3(self.attend2(self.stage2(h))).mean((3, 4))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.frame_features(x).mean(2)                   # temporal average pooling
        return embedding, self.classifier(self.neck(embedding))


# ---------------------------------------------------------------------------------------------
# Training and evaluation


@dataclass
class ReidResult:
    """One training run: the mean loss of each epoch (cross-entropy plus weighted triplet, as
    the optimiser saw it), training time in seconds, the model and its seed."""

    losses: list[float]
    seconds: float
    model: nn.Module = field(repr=False)
    seed: int = 0
    curve: list[tuple[int, float, float]] = field(default_factory=list)
    """(epoch, training loss, test mAP) at every epoch ``train_reid``'s ``evaluate_on`` scored."""


def _check_model(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module returning (embedding, logits), got "
                         f"{type(model).__name__}")


def train_reid(model: nn.Module, train: ReidClips, *, epochs: int, p: int, k: int,
               lr: float = 3e-3, seed: int = 0, triplet_weight: float = 1.0,
               margin: float = 0.3, progress: str = "off",
               device: torch.device | None = None, evaluate_on: ReidClips | None = None,
               every: int = 5) -> ReidResult:
    """Train ``model`` (clips -> (embedding, logits)) on ``train`` for ``epochs`` passes of a
    ``PKSampler`` (p identities x k clips per batch, seeded by ``seed``): Adam with a one-cycle
    learning-rate schedule peaking at ``lr`` (as ``utils.training.train_classifier``); the loss
    is the cross-entropy of the logits over the training identities plus ``triplet_weight``
    times ``batch_hard_triplet_loss`` (``margin``) of the embeddings. ``progress`` ('auto',
    'bar', 'text', 'off') reports each epoch. With ``evaluate_on`` (test clips), the embedding's
    mAP on them is measured after every ``every``-th epoch and the last one, into the result's
    ``curve`` (evaluation draws no random numbers, so the training run is the same with or
    without it). Returns a ReidResult."""
    _check_model(model)
    if evaluate_on is not None and not isinstance(evaluate_on, ReidClips):
        raise ValueError(f"evaluate_on must be ReidClips or None, got "
                         f"{type(evaluate_on).__name__}")
    every = positive_int(every, "every")
    if not isinstance(train, ReidClips):
        raise ValueError(f"train must be ReidClips (from reid_clips), got {type(train).__name__}")
    epochs = positive_int(epochs, "epochs")
    lr = positive_float(lr, "lr")
    triplet_weight = positive_float(triplet_weight, "triplet_weight", allow_zero=True)
    margin = positive_float(margin, "margin", allow_zero=True)
    _, labels = np.unique(train.ids, return_inverse=True)
    classes = int(labels.max()) + 1
    outputs = getattr(model, "num_identities", None)
    if outputs is not None and outputs < classes:
        raise ValueError(f"model has {outputs} identity outputs but train holds {classes} "
                         f"identities (build it with num_identities={classes})")
    sampler = PKSampler(labels, p, k, seed)
    bar = Progress(epochs, "epoch", progress)
    device = device or get_device()
    model = model.to(device)
    x = torch.as_tensor(train.clips, device=device)
    y = torch.as_tensor(labels, device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr,
                                                   total_steps=epochs * len(sampler))
    losses, seconds, curve = [], 0.0, []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        total = 0.0
        for index in sampler:
            idx = torch.as_tensor(index, device=device)
            embedding, logits = model(x[idx])
            loss = F.cross_entropy(logits, y[idx])
            if triplet_weight > 0:
                loss = loss + triplet_weight * batch_hard_triplet_loss(embedding, y[idx], margin)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        losses.append(total / len(sampler))
        seconds += time.perf_counter() - start
        if evaluate_on is not None and (epoch % every == 0 or epoch == epochs):
            curve.append((epoch, losses[-1], evaluate_reid(model, evaluate_on)["mAP"]))
        bar.step(f"loss {losses[-1]:.3f}, {seconds:.0f} s")
    bar.close()
    return ReidResult(losses, seconds, model, int(seed), curve)


FEATURES = ("embedding", "bnneck")
"""What ``embed_clips`` returns: the embedding the triplet loss trains (before the BN-neck,
compared by Euclidean distance) or the BN-neck's output (after the batch norm, compared by
cosine distance, as Luo et al. 2019 retrieve)."""


@torch.no_grad()
def embed_clips(model: nn.Module, data: ReidClips, batch_size: int = 128,
                device: torch.device | None = None, feature: str = "embedding") -> np.ndarray:
    """The features (N, D) of every clip of ``data``, in evaluation mode, as float64:
    ``feature='embedding'`` the model's first output, ``'bnneck'`` that output passed
    through the model's ``neck`` (a ``ReidNet``'s batch norm, with its running statistics)."""
    _check_model(model)
    if not isinstance(data, ReidClips):
        raise ValueError(f"data must be ReidClips (from reid_clips), got {type(data).__name__}")
    batch_size = positive_int(batch_size, "batch_size")
    if feature not in FEATURES:
        raise ValueError(f"feature must be one of {FEATURES}, got {feature!r}")
    if feature == "bnneck" and not isinstance(getattr(model, "neck", None), nn.Module):
        raise ValueError("feature='bnneck' needs a model with a `neck` module (ReidNet)")
    device = device or next(model.parameters()).device
    model.eval()
    x = torch.as_tensor(data.clips)
    parts = []
    for i in range(0, len(x), batch_size):
        embedding = model(x[i:i + batch_size].to(device))[0]
        if feature == "bnneck":
            embedding = model.neck(embedding)
        parts.append(embedding.double().cpu())
    return torch.cat(parts).numpy()


def cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine distances 1 - cos(a_i, b_j) (Q, G) between the rows of a (Q, D) and b (G, D)."""
    a = as_float_array(a, "a", ndim=2)
    b = as_float_array(b, "b", ndim=2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same width D, got {a.shape} and {b.shape}")
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return 1.0 - a @ b.T


def retrieval_per_query(distances: np.ndarray, query_ids: np.ndarray, gallery_ids: np.ndarray,
                        query_cams: np.ndarray | None = None,
                        gallery_cams: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per evaluated query (Q',): 'ap', its average precision, and 'rank-1', 1.0 where its
    nearest gallery item is a true match; arguments and ignored items as in ``cmc``. Their
    means are ``mean_average_precision`` and rank-1; per query they feed
    ``utils.stats.bootstrap_interval`` (test-set noise)."""
    matches, _ = _match_table(distances, query_ids, gallery_ids, query_cams, gallery_cams)
    hits = np.cumsum(matches, axis=1)
    precision = hits / np.arange(1, matches.shape[1] + 1)
    ap = (precision * matches).sum(axis=1) / matches.sum(axis=1)
    return {"ap": ap, "rank-1": matches[:, 0].astype(np.float64)}


def euclidean_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (Q, G) between the rows of a (Q, D) and b (G, D)."""
    a = as_float_array(a, "a", ndim=2)
    b = as_float_array(b, "b", ndim=2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same width D, got {a.shape} and {b.shape}")
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(d2, 0))


def evaluate_reid(model: nn.Module, test: ReidClips, ranks: Sequence[int] = (1, 5),
                  device: torch.device | None = None, feature: str = "embedding",
                  per_query: bool = False) -> dict:
    """Embed every clip of ``test`` once, split it with ``query_gallery``, rank the gallery
    and score it with ``evaluate_retrieval`` (same-camera clips of the query's identity
    ignored): a dict with 'rank-1', 'rank-5' (one per ``ranks``), 'mAP', 'queries' and
    'excluded'. ``feature='embedding'`` ranks by Euclidean distance between embeddings,
    ``'bnneck'`` by cosine distance between the BN-neck's outputs (Luo et al. 2019). With
    ``per_query`` the dict also holds 'ap' and 'hit' (Q',) arrays (``retrieval_per_query``)."""
    _check_model(model)
    if not isinstance(test, ReidClips):
        raise ValueError(f"test must be ReidClips (from reid_clips), got {type(test).__name__}")
    ranks = _ranks(ranks)
    per_query = boolean(per_query, "per_query")
    query, gallery = query_gallery(test.ids, test.camera)
    features = embed_clips(model, test, device=device, feature=feature)
    measure = cosine_distances if feature == "bnneck" else euclidean_distances
    distances = measure(features[query], features[gallery])
    args = (distances, test.ids[query], test.ids[gallery], test.camera[query],
            test.camera[gallery])
    out: dict = evaluate_retrieval(*args, ranks)
    if per_query:
        each = retrieval_per_query(*args)
        out["ap"], out["hit"] = each["ap"], each["rank-1"]
    return out


STUDY_BAR = 8           # pixels: the occluder of the study, two thirds of the digit's width
STUDY_MODELS = {"3-D CNN": 0, "3-D CNN + 2 non-local": 2}
"""The study's networks by name: the number of non-local blocks of their ``ReidNet``."""


def reid_experiment(occluder: bool = True, fast: bool | None = None) -> dict:
    """The set-up of notebook 08's re-identification experiment, sized by the mode
    (``fast=None``: from ``ACV_FAST``): training and test clips (disjoint identities), with
    the study's occluder on every clip (``occluder=True``: a ``STUDY_BAR``-pixel bar over
    3 of the 8 frames) or none, the number of training identities (the classifier's width),
    the seeds, epochs, P, K and the peak learning rate for ``train_reid``."""
    from .runtime import fast_mode

    fast = fast_mode() if fast is None else fast
    if not isinstance(fast, bool):
        raise ValueError(f"fast must be True, False or None, got {fast!r}")
    occluder = boolean(occluder, "occluder")
    n_train, n_test, per_train, per_test = (32, 24, 4, 4) if fast else (128, 80, 8, 6)
    bar = {"occlusion": 1.0 if occluder else 0.0, "bar": STUDY_BAR}
    train = reid_clips(n_train, per_train, split="train", seed=0, **bar)
    test = reid_clips(n_test, per_test, split="test", seed=0, **bar)
    return {"train": train, "test": test, "identities": n_train,
            "seeds": [0, 1] if fast else [0, 1, 2, 3, 4], "epochs": 4 if fast else STUDY_EPOCHS,
            "p": 8, "k": 4, "lr": 3e-3}


STUDY_EPOCHS = 40
STUDY_FIELDS = ("occluder", "model", "non_local", "seed", "mode", "epochs", "rank1", "rank5",
                "mAP", "rank1_bnneck", "rank5_bnneck", "mAP_bnneck", "final_loss", "seconds",
                "threads", "device", "torch", "date")
QUERY_FIELDS = ("occluder", "model", "seed", "query", "ap", "hit", "ap_bnneck", "hit_bnneck")
CURVE_FIELDS = ("occluder", "model", "seed", "epoch", "loss", "mAP")


def study_run(occluder: bool, model: str, seed: int, fast: bool | None = None,
              setup: dict | None = None, epochs: int | None = None,
              every: int = 0) -> tuple[dict, dict, ReidResult]:
    """Train and evaluate one run of the study: (the CSV row as a dict of
    ``STUDY_FIELDS``, per-query arrays {'ap', 'hit', 'ap_bnneck', 'hit_bnneck'}, the
    ReidResult). ``setup`` (from ``reid_experiment(occluder, fast)``) saves rebuilding the
    clips; ``epochs`` replaces its number of epochs; ``every`` > 0 records the test mAP
    every ``every`` epochs in the ReidResult's ``curve``."""
    import datetime

    from .measure import device_name
    from .runtime import fast_mode, seed_everything

    if model not in STUDY_MODELS:
        raise ValueError(f"model must be one of {tuple(STUDY_MODELS)}, got {model!r}")
    fast = fast_mode() if fast is None else fast
    setup = setup or reid_experiment(occluder, fast)
    epochs = setup["epochs"] if epochs is None else positive_int(epochs, "epochs")
    every = positive_int(every, "every", minimum=0)
    seed_everything(seed)
    net = ReidNet(STUDY_MODELS[model], num_identities=setup["identities"])
    run = train_reid(net, setup["train"], epochs=epochs, p=setup["p"], k=setup["k"],
                     lr=setup["lr"], seed=seed, device=torch.device("cpu"),
                     evaluate_on=setup["test"] if every else None, every=every or 1)
    euclid = evaluate_reid(run.model, setup["test"], per_query=True)
    neck = evaluate_reid(run.model, setup["test"], feature="bnneck", per_query=True)
    row = {"occluder": int(occluder), "model": model, "non_local": STUDY_MODELS[model],
           "seed": seed, "mode": "fast" if fast else "full", "epochs": epochs,
           "rank1": euclid["rank-1"], "rank5": euclid["rank-5"], "mAP": euclid["mAP"],
           "rank1_bnneck": neck["rank-1"], "rank5_bnneck": neck["rank-5"],
           "mAP_bnneck": neck["mAP"], "final_loss": run.losses[-1], "seconds": run.seconds,
           "threads": torch.get_num_threads(), "device": device_name(torch.device("cpu")),
           "torch": torch.__version__, "date": datetime.date.today().isoformat()}
    row = {k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}
    per_query = {"ap": euclid["ap"], "hit": euclid["hit"], "ap_bnneck": neck["ap"],
                 "hit_bnneck": neck["hit"]}
    return row, per_query, run


RECORDED = Path(__file__).resolve().parents[1] / "data"


def _csv_path(path: object) -> Path:
    if not isinstance(path, str | Path) or not Path(path).is_file():
        raise ValueError(f"path must be an existing CSV file of the study, got {path!r}")
    return Path(path)


def load_study(path: str | Path = RECORDED / "reid_study.csv") -> list[dict]:
    """The rows of a study CSV (``#`` lines skipped; by default the course's recording,
    ``data/reid_study.csv``), numbers converted."""
    import csv

    with open(_csv_path(path)) as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    for row in rows:
        for key in ("occluder", "non_local", "seed", "epochs", "threads"):
            row[key] = int(row[key])
        for key in ("rank1", "rank5", "mAP", "rank1_bnneck", "rank5_bnneck", "mAP_bnneck",
                    "final_loss", "seconds"):
            row[key] = float(row[key])
    return rows


def load_queries(path: str | Path = RECORDED / "reid_study_queries.csv") -> dict:
    """Per-query scores of a study: {(occluder, model): {field: (seeds, queries) array}} for
    the fields 'ap', 'hit', 'ap_bnneck', 'hit_bnneck', seeds in increasing order."""
    import csv

    with open(_csv_path(path)) as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    out: dict = {}
    keys = sorted({(int(r["occluder"]), r["model"]) for r in rows})
    for key in keys:
        mine = [r for r in rows if (int(r["occluder"]), r["model"]) == key]
        seeds = sorted({int(r["seed"]) for r in mine})
        queries = sorted({int(r["query"]) for r in mine})
        out[key] = {}
        for name in ("ap", "hit", "ap_bnneck", "hit_bnneck"):
            table = np.full((len(seeds), len(queries)), np.nan)
            for r in mine:
                table[seeds.index(int(r["seed"])), queries.index(int(r["query"]))] = float(r[name])
            out[key][name] = table
    return out


def load_curves(path: str | Path = RECORDED / "reid_long_curve.csv") -> dict:
    """Training curves of a study run with ``--curve``: {(occluder, model): {'epoch': (E,),
    'loss': (seeds, E), 'mAP': (seeds, E)}}, seeds in increasing order."""
    import csv

    with open(_csv_path(path)) as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    out: dict = {}
    for key in sorted({(int(r["occluder"]), r["model"]) for r in rows}):
        mine = [r for r in rows if (int(r["occluder"]), r["model"]) == key]
        seeds = sorted({int(r["seed"]) for r in mine})
        epochs = sorted({int(r["epoch"]) for r in mine})
        table = {name: np.full((len(seeds), len(epochs)), np.nan) for name in ("loss", "mAP")}
        for r in mine:
            for name in table:
                table[name][seeds.index(int(r["seed"])), epochs.index(int(r["epoch"]))] = \
                    float(r[name])
        out[key] = {"epoch": np.array(epochs), **table}
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.reid``: the re-identification study of notebook 08 (occluder off/on
    x non-local off/on x seeds), one CSV row per run and one row per run and query."""
    import argparse
    import csv
    import shlex
    import sys

    parser = argparse.ArgumentParser(prog="python -m utils.reid", description=main.__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--occluder", type=int, nargs="+", default=[1, 0], choices=[0, 1])
    parser.add_argument("--model", nargs="+", default=list(STUDY_MODELS),
                        choices=list(STUDY_MODELS))
    parser.add_argument("--csv", default="data/reid_study.csv")
    parser.add_argument("--queries", default="data/reid_study_queries.csv")
    parser.add_argument("--fast", action="store_true", help="the fast mode's sizes")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs per run (default: the mode's, {STUDY_EPOCHS} in full mode)")
    parser.add_argument("--curve", default=None,
                        help="also write (epoch, loss, test mAP) rows of every run to this CSV")
    parser.add_argument("--every", type=int, default=10, help="epochs between curve points")
    args = parser.parse_args(argv)
    command = "OMP_NUM_THREADS=1 python -m utils.reid " + shlex.join(
        argv if argv is not None else sys.argv[1:])
    outputs = [(args.csv, STUDY_FIELDS), (args.queries, QUERY_FIELDS)]
    if args.curve:
        outputs.append((args.curve, CURVE_FIELDS))
    for path, fields in outputs:
        try:
            new = open(path).read() == ""
        except FileNotFoundError:
            new = True
        if new:
            with open(path, "w") as handle:
                handle.write(f"# {command}\n")
                csv.writer(handle, lineterminator="\n").writerow(fields)
    for occluder in args.occluder:
        setup = reid_experiment(bool(occluder), args.fast)
        for model in args.model:
            for seed in args.seeds:
                row, per_query, run = study_run(bool(occluder), model, seed, args.fast, setup,
                                                epochs=args.epochs,
                                                every=args.every if args.curve else 0)
                if args.curve:
                    with open(args.curve, "a") as handle:
                        writer = csv.writer(handle, lineterminator="\n")
                        for epoch, loss, score in run.curve:
                            writer.writerow([occluder, model, seed, epoch, f"{loss:.6f}",
                                             f"{score:.6f}"])
                with open(args.csv, "a") as handle:
                    csv.DictWriter(handle, STUDY_FIELDS, lineterminator="\n").writerow(row)
                with open(args.queries, "a") as handle:
                    writer = csv.writer(handle, lineterminator="\n")
                    for q in range(len(per_query["ap"])):
                        writer.writerow([occluder, model, seed, q, f"{per_query['ap'][q]:.6f}",
                                         int(per_query["hit"][q]),
                                         f"{per_query['ap_bnneck'][q]:.6f}",
                                         int(per_query["hit_bnneck"][q])])
                print(f"occluder {occluder}, {model}, seed {seed}: rank-1 {row['rank1']:.3f}, "
                      f"mAP {row['mAP']:.3f}; BN-neck cosine rank-1 {row['rank1_bnneck']:.3f}, "
                      f"mAP {row['mAP_bnneck']:.3f}; loss {row['final_loss']:.3f}, "
                      f"{row['seconds']:.0f} s", flush=True)
    return 0


# ---------------------------------------------------------------------------------------------
# The figure

RIGHT, WRONG = LINE_COLOURS[0], LINE_COLOURS[3]     # Okabe-Ito blue and vermillion


def draw_retrieval(query_clip: np.ndarray, gallery_clips: np.ndarray, correct: np.ndarray, *,
                   frames: int = 3, distances: np.ndarray | None = None,
                   title: str = "") -> plt.Figure:
    """A query clip and its top-ranked gallery clips, each shown as ``frames`` frames (rows).

    query_clip (3, T, S, S); gallery_clips (K, 3, T, S, S) in rank order; correct (K,) bool,
    True where the gallery clip shows the query's identity; distances (K,) optional, printed
    under each rank. A right match is framed by a solid blue box and titled with a tick
    ("✓ same"), a wrong one by a dashed vermillion box and a cross ("✗ other"), so colour is
    never the only cue. Returns the figure.
    """
    query = as_float_array(query_clip, "query_clip", ndim=4)
    gallery = as_float_array(gallery_clips, "gallery_clips", ndim=5)
    if query.shape[0] != 3 or gallery.shape[1:] != query.shape:
        raise ValueError(f"query_clip must be (3, T, S, S) and gallery_clips (K, 3, T, S, S) of "
                         f"the same clip shape, got {query.shape} and {gallery.shape}")
    k = len(gallery)
    if k == 0:
        raise ValueError("gallery_clips must hold at least one clip")
    right = np.asarray(correct)
    if right.dtype != bool or right.shape != (k,):
        raise ValueError(f"correct must be a bool array ({k},), one per gallery clip, got "
                         f"{right.dtype} {right.shape}")
    frames = positive_int(frames, "frames")
    if frames > query.shape[1]:
        raise ValueError(f"frames ({frames}) must not exceed the clip's {query.shape[1]} frames")
    if distances is not None:
        distances = as_float_array(distances, "distances", ndim=1)
        if distances.shape != (k,):
            raise ValueError(f"distances must be ({k},), one per gallery clip, got "
                             f"{distances.shape}")
    from matplotlib.patches import Rectangle

    shown = np.rint(np.linspace(0, query.shape[1] - 1, frames)).astype(int)
    fig, axes = plt.subplots(frames, k + 1, figsize=(1.45 * (k + 1), 1.5 * frames + 0.9),
                             squeeze=False, layout="constrained")
    for col in range(k + 1):
        clip = query if col == 0 else gallery[col - 1]
        for row, t in enumerate(shown):
            ax = axes[row, col]
            ax.imshow(np.clip(clip[:, t].transpose(1, 2, 0), 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if col == 0:
                ax.set_ylabel(f"frame {t}", fontsize=9)
                style = {"ec": "black", "ls": "-"}
            else:
                good = bool(right[col - 1])
                style = {"ec": RIGHT if good else WRONG, "ls": "-" if good else "--"}
            ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False, lw=3,
                                   clip_on=False, **style))
        top = axes[0, col]
        if col == 0:
            top.set_title("query", fontsize=10)
        else:
            good = bool(right[col - 1])
            mark = "✓ same" if good else "✗ other"
            top.set_title(f"#{col} {mark}", fontsize=10, color=RIGHT if good else WRONG)
            if distances is not None:
                axes[-1, col].set_xlabel(f"d = {distances[col - 1]:.2f}", fontsize=9)
    fig.suptitle((title + "\n" if title else "") + "✓ solid blue box: same identity;  "
                 "✗ dashed vermillion box: another identity", fontsize=10)
    return fig


if __name__ == "__main__":
    raise SystemExit(main())
