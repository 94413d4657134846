"""Notebook 08, Attention in practice: temporal attention over frames, in NumPy and as a module."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .. import reference
from .core import Case, check_exercise, exercise
from .module_check import _new_block_output, check_module

if TYPE_CHECKING:
    from pathlib import Path

    import torch
    from torch import nn


def _temporal_case(rng: np.random.Generator, b: int, c: int, r: int, t: int,
                   scale: float = 1.0) -> Case:
    return Case((rng.normal(size=(b, c, t)), reference.init_temporal(c, r, rng, scale)))


@exercise(
    points=2,
    idea="one small network, shared by all frames, turns each frame's descriptor (a column "
         "of s: s is channels first) into one score; the scores of one clip then compete for "
         "a budget that sums to 1, and must not overflow when they are large.",
    hint="z = s.transpose(0, 2, 1) is (B, T, C) (transpose, not reshape); e = "
         "(np.maximum(z @ w1.T + b1, 0) @ w2.T + b2)[..., 0] is (B, T); subtract "
         "e.max(axis=1, keepdims=True) before np.exp (large scores!), then divide by the sum "
         "over axis 1. No factor T here: a sums to 1.")
def temporal_weights(fn: Callable) -> Callable:
    """Notebook 08: temporal attention's frame weights ``fn(s, params) -> a (B, T)`` from
    frame descriptors s (B, C, T)."""
    rng = np.random.default_rng(22)
    big = reference.init_temporal(4, 2, rng)
    big["w2"] = big["w2"] * 400.0                       # scores in the hundreds: exp overflows
    cases = [_temporal_case(rng, 3, 8, 2, 5), _temporal_case(rng, 2, 6, 3, 4),
             _temporal_case(rng, 1, 12, 4, 7), _temporal_case(rng, 2, 5, 1, 1),
             Case((rng.normal(size=(2, 4, 6)) * 3.0, big))]
    return check_exercise(fn, reference.temporal_weights, cases, title="temporal_weights")


def _temporal_starts_as_identity(module: nn.Module, shape: tuple[int, ...]) -> str | None:
    """A new temporal-attention block returns its input unchanged, through a zero fc2, and
    its fc1 is not zero as well."""
    import torch

    try:
        w1, w2, b2 = module.fc1.weight, module.fc2.weight, module.fc2.bias
        if not all(isinstance(p, torch.Tensor) for p in (w1, w2, b2)):
            return None
    except Exception:  # the structure check that follows names what is missing
        return None
    if not (torch.equal(w2, torch.zeros_like(w2)) and torch.equal(b2, torch.zeros_like(b2))):
        return ("a new block must start as the identity: set fc2's weight and bias to zero in "
                "__init__ (nn.init.zeros_), so that every frame scores 0 and gets weight 1/T.")
    if not bool(w1.detach().abs().sum() > 0):
        return ("fc1.weight is all zeros as well as fc2: then every frame gets the same hidden "
                "vector and fc1 no gradient until fc2 moves. Zero only fc2; keep fc1's default "
                "initialisation.")
    ran = _new_block_output(module, shape)
    if ran is None:
        return None
    x, out = ran
    if torch.allclose(out, x, rtol=1e-5, atol=1e-6):
        return None
    frames = shape[2]
    why = {frames: "each frame was scaled by T: its weight came out as 1, not 1/T; take the "
                   "softmax over the T frames of each clip (dim=1 of the (B, T) scores), not "
                   "over an axis of size 1",
           1 / frames: "each frame was scaled by 1/T: multiply by T * a_t, not a_t alone",
           0.5: "each frame was scaled by 0.5, a sigmoid of 0: use a softmax over the frames",
           frames / 2: "each frame was scaled by T/2, T times a sigmoid of 0: use a softmax "
                       "over the frames"}
    reason = next((text for factor, text in why.items()
                   if torch.allclose(out, x * factor, rtol=1e-5, atol=1e-6)),
                  "with fc2 at zero every score is 0, the softmax over the T frames gives each "
                  "1/T, and T * a_t * x_t = x_t")
    return (f"a new block must return its input unchanged (largest change "
            f"{(out - x).abs().max().item():.1e}): {reason}.")


@exercise(
    points=2,
    idea="the module is Exercise 1's weights wrapped around a squeeze and a rescale: one "
         "descriptor per frame, the same scoring network for every frame, weights that compete "
         "across the frames of one clip, and each frame scaled so that equal weights leave "
         "the clip unchanged; a new block must start as the identity.",
    hint="in __init__: super().__init__(); self.fc1 = nn.Linear(channels, channels // "
         "reduction); self.fc2 = nn.Linear(channels // reduction, 1); nn.init.zeros_ on "
         "self.fc2.weight and self.fc2.bias. In forward: s = x.mean((3, 4)).transpose(1, 2) is "
         "(B, T, C); e = self.fc2(F.relu(self.fc1(s)))[..., 0] is (B, T); a = torch.softmax(e, "
         "dim=1); return x * (x.shape[2] * a)[:, None, :, None, None].")
def TemporalAttention(cls: Callable) -> Callable:
    """Notebook 08: ``class TemporalAttention(nn.Module)``, ``(channels, reduction=4)`` with
    ``fc1``/``fc2``; x (B, C, T, H, W) -> T * softmax_t(fc2(relu(fc1(mean_hw x)))) * x,
    starting as the identity."""
    from .. import modules

    builds = [Case((8,), {"reduction": 2}), Case((16,)), Case((6,), {"reduction": 3}),
              Case((4,), {"reduction": 1})]
    shapes = [[(3, 8, 5, 3, 4), (1, 8, 3, 2, 2)], [(2, 16, 4, 2, 3)], [(2, 6, 6, 1, 5)],
              [(2, 4, 1, 3, 3), (1, 4, 7, 2, 2)]]
    return check_module(cls, modules.TemporalAttention, builds, shapes,
                        title="TemporalAttention", fresh=_temporal_starts_as_identity,
                        large=3000.0)


# ---------------------------------------------------------------------------------------------
# Temporal attention's backward pass (NumPy)


def temporal_backward_variant(dout: np.ndarray, x: np.ndarray, params: dict, *,
                              through_weights: bool = True, direct: bool = True,
                              factor: bool = True, jacobian: str = "softmax",
                              spread: bool = True, relu_mask: bool = True,
                              transpose_w1: bool = False) -> tuple[np.ndarray, dict]:
    """The backward pass of temporal attention, right by default, each argument one way a
    learner gets it wrong (to name the mistake): ``through_weights=False`` drops x's path
    through the frame weights; ``direct=False`` drops its direct path; ``factor=False`` forgets
    the factor T in dL/da; ``jacobian`` 'diagonal' (de = a * da, the softmax's coupling
    forgotten) or 'sigmoid' (de = a(1 - a) da); ``spread=False`` forgets the 1/(HW) of the
    mean over space; ``relu_mask=False`` forgets the ReLU; ``transpose_w1`` returns dW1
    transposed."""
    b, c, t, h, w = x.shape
    z = x.mean(axis=(3, 4)).transpose(0, 2, 1)                        # (B, T, C)
    pre = z @ params["w1"].T + params["b1"]                           # (B, T, C/r)
    hidden = np.maximum(pre, 0)
    e = (hidden @ params["w2"].T + params["b2"])[..., 0]              # (B, T)
    a = np.exp(e - e.max(axis=1, keepdims=True))
    a = a / a.sum(axis=1, keepdims=True)
    da = (t if factor else 1) * (dout * x).sum(axis=(1, 3, 4))       # (B, T)
    if jacobian == "softmax":
        de = a * (da - (a * da).sum(axis=1, keepdims=True))
    elif jacobian == "diagonal":
        de = a * da
    else:
        de = a * (1 - a) * da
    dw2 = (de[..., None] * hidden).sum(axis=(0, 1))[None, :]           # (1, C/r)
    db2 = np.array([de.sum()])
    dhidden = de[..., None] * params["w2"][0]                          # (B, T, C/r)
    dpre = dhidden * (pre > 0) if relu_mask else dhidden
    dw1 = np.einsum("btk,btc->kc", dpre, z)
    db1 = dpre.sum(axis=(0, 1))
    dz = dpre @ params["w1"]                                          # (B, T, C)
    ds = dz.transpose(0, 2, 1)[..., None, None] / (h * w if spread else 1)
    dx = np.zeros_like(x)
    if direct:
        dx = dx + t * a[:, None, :, None, None] * dout
    if through_weights:
        dx = dx + ds
    return dx, {"w1": dw1.T if transpose_w1 else dw1, "b1": db1, "w2": dw2, "b2": db2}


_BACKWARD_MISTAKES = (
    ({"through_weights": False}, "dx holds only the direct path T a_t g_t: x also reaches the "
                                 "output through the frame weights (x -> descriptor -> score "
                                 "-> softmax -> a_t), and that second path adds a term"),
    ({"direct": False}, "dx holds only the path through the weights: x_t also multiplies its "
                        "weight directly in y_t = T a_t x_t, which sends T a_t g_t back"),
    ({"factor": False}, "dL/da_t lost the factor T of y_t = T a_t x_t"),
    ({"jacobian": "diagonal"}, "the softmax's backward was taken element by element (de = a "
                               "da): every weight depends on every score of its clip, so "
                               "each de_t also receives minus a_t times the clip's weighted "
                               "mean of da"),
    ({"jacobian": "sigmoid"}, "the softmax's backward was written as a sigmoid's, a(1 - a): "
                              "the weights of one clip are coupled through their shared sum"),
    ({"spread": False}, "the descriptor is a mean over H x W positions, so each position "
                        "receives 1/(HW) of ds_t, not all of it"),
    ({"relu_mask": False}, "the gradient went back through the ReLU unmasked: it passes only "
                           "where the pre-activation W1 s_t + b1 was positive"),
)


def _backward_mistake(fn: Callable, case: Case) -> str | None:
    """The named mistake whose variant the learner's answer equals on ``case``, if any."""
    import copy

    try:
        got = fn(*copy.deepcopy(case.args))
        dx, grads = got
        dx = np.asarray(dx, dtype=float)
    except Exception:
        return None
    if grads is None or not isinstance(grads, dict):
        return None
    right = temporal_backward_variant(*case.args)
    for kwargs, text in _BACKWARD_MISTAKES:
        wrong = temporal_backward_variant(*case.args, **kwargs)
        if dx.shape == wrong[0].shape and np.allclose(dx, wrong[0], rtol=1e-6, atol=1e-9) \
                and not np.allclose(wrong[0], right[0], rtol=1e-6, atol=1e-9):
            return text
        if kwargs in ({"relu_mask": False}, {"jacobian": "diagonal"}, {"factor": False}):
            try:
                dw1 = np.asarray(grads.get("w1"), dtype=float)
                if dw1.shape == wrong[1]["w1"].shape and np.allclose(
                        dw1, wrong[1]["w1"], rtol=1e-6, atol=1e-9) and not np.allclose(
                        dw1, right[1]["w1"], rtol=1e-6, atol=1e-9):
                    return text
            except Exception:
                pass
    try:
        dw1 = np.asarray(grads.get("w1"), dtype=float)
        if dw1.shape == right[1]["w1"].T.shape and dw1.shape != right[1]["w1"].shape:
            return ("dw1 has the shape of W1 transposed: a weight's gradient has the weight's "
                    "shape, (C/r, C) for W1")
    except Exception:
        pass
    return None


@exercise(
    points=3,
    idea="x reaches the output by two paths: directly, as the factor x_t of y_t = T a_t x_t, "
         "and through the weights (x -> mean over space -> shared MLP -> score -> softmax over "
         "the clip's frames -> a_t). Go back along both and add. The softmax couples the "
         "frames of a clip: every weight depends on every score, so its backward is not "
         "element by element. b2 shifts every score of a clip alike.",
    hint="recompute the forward: z = x.mean((3, 4)).transpose(0, 2, 1); pre = z @ w1.T + b1; "
         "hid = np.maximum(pre, 0); a = softmax over axis 1 of (hid @ w2.T + b2)[..., 0]. Then "
         "da = T * (dout * x).sum((1, 3, 4)); de = a * (da - (a * da).sum(1, keepdims=True)); "
         "dw2 = np.einsum('bt,btk->k', de, hid)[None]; db2 = np.array([de.sum()]); "
         "dpre = de[..., None] * w2[0] * (pre > 0); dw1 = np.einsum('btk,btc->kc', "
         "dpre, z); db1 = dpre.sum((0, 1)); ds = (dpre @ w1).transpose(0, 2, 1); "
         "dx = T * a[:, None, :, None, None] * dout + ds[..., None, None] / (H * W).")
def temporal_attention_backward(fn: Callable) -> Callable:
    """Notebook 08: temporal attention's backward ``fn(dout, x, params) -> (dx, grads)``,
    grads {'w1', 'b1', 'w2', 'b2'}, for x (B, C, T, H, W) and y_t = T a_t x_t."""
    rng = np.random.default_rng(57)
    cases = []
    for b, c, r, t, h, w in [(2, 8, 2, 5, 3, 4), (1, 6, 3, 4, 2, 2), (3, 4, 1, 3, 1, 5)]:
        x = rng.normal(size=(b, c, t, h, w))
        params = reference.init_temporal(c, r, rng, scale=2.0)
        cases.append(Case((rng.normal(size=x.shape), x, params)))

    def ref(dout, x, params):
        return reference.temporal_attention_backward(
            dout, reference.temporal_attention(x, params)[1])

    mistake = None
    if not getattr(fn, "__dict__", {}).get("acv_reference_for"):
        mistake = next((m for m in (_backward_mistake(fn, case) for case in cases) if m), None)
    idea = None if mistake is None else (
        f"{mistake}. (In general: go back along both paths of x, direct and through the "
        "weights, and add them.)")
    return check_exercise(fn, ref, cases, title="temporal_attention_backward", idea=idea,
                          rtol=1e-6, atol=1e-9)



# ---------------------------------------------------------------------------------------------
# Re-identification: CMC and mAP with the junk rule (NumPy)


def _retrieval(distances: np.ndarray, qid: np.ndarray, gid: np.ndarray, qcam: np.ndarray,
               gcam: np.ndarray, ranks: tuple[int, ...] = (1, 5), *, junk: str = "remove",
               ap_by: str = "relevant", keep_unmatched: bool = False, shift: int = 0,
               descending: bool = False) -> dict[str, float]:
    """The right metrics, and each plausible mistake by one argument (to name a mistake):
    junk 'remove' (right), 'keep' (same-camera matches kept and counted), 'wrong' (kept in the
    ranking but counted as wrong answers), 'camera' (every same-camera gallery clip removed);
    ap_by 'relevant' (right) or 'retrieved' (divided by the gallery's length); keep_unmatched:
    queries without a true match left in the mean as 0; shift 1: rank-k counts k + 1 clips;
    descending: the largest distance first."""
    same = qid[:, None] == gid[None, :]
    same_cam = qcam[:, None] == gcam[None, :]
    keep = {"remove": ~(same & same_cam), "keep": np.ones_like(same), "wrong": np.ones_like(same),
            "camera": ~same_cam}[junk]
    hit = same & ~(same & same_cam) if junk == "wrong" else same
    score = -distances if descending else distances
    order = np.argsort(np.where(keep, score, np.inf), axis=1, kind="stable")
    valid = np.take_along_axis(keep, order, axis=1)
    matches = np.take_along_axis(hit, order, axis=1) & valid
    has = matches.any(1)
    if not keep_unmatched:
        matches = matches[has]
    count = matches.sum(1)
    first = np.where(count > 0, matches.argmax(1), matches.shape[1])
    out = {f"rank-{k}": float(np.mean(first < k + shift)) for k in ranks}
    precision = np.cumsum(matches, 1) / np.arange(1, matches.shape[1] + 1)
    denominator = np.maximum(count, 1) if ap_by == "relevant" else matches.shape[1]
    out["mAP"] = float(((precision * matches).sum(1) / denominator).mean())
    return out


_RETRIEVAL_MISTAKES = (
    ({"junk": "keep"}, "same-camera clips of the query's identity were kept and counted as "
                       "matches: remove them from the query's ranking (the junk rule)"),
    ({"junk": "wrong"}, "same-camera clips of the query's identity stayed in the ranking as "
                        "wrong answers: remove them, so that they neither help nor hurt"),
    ({"junk": "camera"}, "every clip from the query's camera was removed, other identities' "
                         "too: remove only the query's own identity seen by its own camera"),
    ({"ap_by": "retrieved"}, "AP was divided by the number of gallery clips: divide the sum of "
                             "the precisions at the true matches by the number of true matches"),
    ({"keep_unmatched": True}, "queries with no true match left after the junk rule were "
                               "counted (as 0): leave them out of every mean"),
    ({"shift": 1}, "rank-k counted the first k + 1 clips (an off-by-one between 0-based "
                   "positions and 1-based ranks)"),
    ({"descending": True}, "the gallery was sorted with the largest distance first: the "
                           "nearest clip is rank 1"),
)


def retrieval_reference(distances: np.ndarray, query_ids: np.ndarray, gallery_ids: np.ndarray,
                        query_cams: np.ndarray, gallery_cams: np.ndarray,
                        ranks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """The course's answer: ``utils.reid.evaluate_retrieval`` without its two counts."""
    from .. import reid

    out = reid.evaluate_retrieval(distances, query_ids, gallery_ids, query_cams, gallery_cams,
                                  ranks)
    return {k: v for k, v in out.items() if k not in ("queries", "excluded")}


def _retrieval_cases() -> list[Case]:
    rng = np.random.default_rng(81)
    cases = []
    for q, g, ids, cams, ranks in ((6, 24, 5, 2, (1, 5)), (9, 30, 6, 3, (1, 3, 10)),
                                   (5, 12, 4, 2, (1, 2))):
        gid = rng.integers(ids, size=g)
        gcam = rng.integers(cams, size=g)
        qid = rng.integers(ids, size=q)
        qcam = rng.integers(cams, size=q)
        d = rng.random((q, g)) + 0.5
        # a same-camera clip of the query's identity, and another identity's clip from the
        # query's camera, nearest of all
        for i in range(q):
            junk = np.flatnonzero((gid == qid[i]) & (gcam == qcam[i]))
            if len(junk):
                d[i, junk[0]] = 0.05 + 0.01 * i
            other = np.flatnonzero((gid != qid[i]) & (gcam == qcam[i]))
            if len(other):
                d[i, other[0]] = 0.1 + 0.01 * i
        cases.append(Case((d, qid, gid, qcam, gcam), {"ranks": ranks}))
    # the last query's identity is seen only by its own camera: no true match left
    d = rng.random((3, 8)) + 0.2
    cases.append(Case((d, np.array([0, 1, 2]), np.array([0, 0, 1, 1, 2, 0, 1, 2]),
                       np.array([0, 0, 1]), np.array([1, 0, 0, 1, 1, 0, 0, 1])),
                      {"ranks": (1, 5)}))
    return cases


@exercise(
    points=2,
    idea="for each query: sort its gallery by distance, drop the clips of its own identity "
         "taken by its own camera (the junk: they neither count nor block), and look at where "
         "the true matches now stand. Rank-k is the share of queries with a match among the "
         "first k; AP averages the precision at each true match over the true matches. A "
         "query with no true match left is left out of both means.",
    hint="same = query_ids[:, None] == gallery_ids[None]; junk = same & (query_cams[:, None] "
         "== gallery_cams[None]); order = np.argsort(np.where(junk, np.inf, distances), axis=1, "
         "kind='stable'); matches = np.take_along_axis(same & ~junk, order, 1) (junk sorted "
         "last is never a match); keep the rows with matches.any(1); first = "
         "matches.argmax(1) (0-based); rank-k = np.mean(first < k); precision = "
         "np.cumsum(matches, 1) / np.arange(1, G + 1); AP = (precision * matches).sum(1) / "
         "matches.sum(1); mAP = its mean. Return {'rank-1': ..., ..., 'mAP': ...} as floats.")
def retrieval_metrics(fn: Callable) -> Callable:
    """Notebook 08: ``fn(distances, query_ids, gallery_ids, query_cams, gallery_cams,
    ranks=(1, 5)) -> {'rank-k': float for k in ranks, 'mAP': float}`` with the MARS junk
    rule."""
    from .core import _begin, _Blank, compare

    attempt = _begin(fn, retrieval_reference, "retrieval_metrics", None)
    if attempt is None:
        return fn
    cases = _retrieval_cases()
    try:
        for number, case in enumerate(cases, start=1):
            where = f"test case {number} of {len(cases)}, inputs {case.describe()}"
            import copy
            import functools

            args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
            got = attempt.run(functools.partial(fn, *args, **kwargs), where, first=number == 1)
            expected = retrieval_reference(*case.args, **case.kwargs)
            if not all(np.array_equal(a, b) for a, b in zip(args, case.args, strict=True)):
                raise attempt.wrong(where, "your function modified an input array in place; "
                                           "compute in new variables")
            try:
                compare(got, expected, rtol=1e-9, atol=1e-12)
            except AssertionError as exc:
                named = next((why for change, why in _RETRIEVAL_MISTAKES
                              if _matches(got, _retrieval(*case.args, **case.kwargs, **change))),
                             None)
                raise attempt.wrong(where, str(exc) + (f". It looks like this mistake: {named}"
                                                       if named else "")) from None
    except _Blank:
        return attempt.still_open()
    return attempt.right(f"correct on {len(cases)} test cases: junk rule, ranks and AP.")


def _matches(got: object, expected: dict[str, float]) -> bool:
    from .core import compare

    try:
        compare(got, expected, rtol=1e-9, atol=1e-12)
    except Exception:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Re-identification: the batch-hard triplet loss (PyTorch)


def triplet_reference(embeddings: torch.Tensor, labels: torch.Tensor,
                      margin: float = 0.3) -> torch.Tensor:
    """The course's answer: ``utils.reid.batch_hard_triplet_loss``."""
    from .. import reid

    return reid.batch_hard_triplet_loss(embeddings, labels, margin)


def _triplet_variant(x: torch.Tensor, y: torch.Tensor, margin: float = 0.3, *,
                     squared: bool = False, easiest: bool = False, outside: bool = False,
                     reduce: str = "usable", self_positive: bool = False) -> torch.Tensor:
    """The loss and its plausible mistakes, one argument each (to name a learner's)."""
    import torch

    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    d = d2 if squared else d2.clamp_min(1e-12).sqrt()
    same = y[:, None] == y[None]
    eye = torch.eye(len(y), dtype=torch.bool)
    pos = same if self_positive else same & ~eye
    neg = ~same
    usable = pos.any(1) & neg.any(1)
    if easiest:
        hp = d.masked_fill(~pos, float("inf")).amin(1)
        hn = d.masked_fill(~neg, float("-inf")).amax(1)
    else:
        hp = d.masked_fill(~pos, float("-inf")).amax(1)
        hn = d.masked_fill(~neg, float("inf")).amin(1)
    gap = (hp - hn)[usable]
    loss = torch.relu(gap) + margin if outside else torch.relu(margin + gap)
    return loss.sum() if reduce == "sum" else loss.mean()


_TRIPLET_MISTAKES = (
    ({"squared": True}, "the distances were squared: Hermans et al. (and the margin 0.3) use "
                        "the Euclidean distance itself"),
    ({"easiest": True}, "the nearest positive and the farthest negative were used (the easiest "
                        "triplet): batch-hard takes the farthest positive and the nearest "
                        "negative"),
    ({"outside": True}, "the margin was added outside the hinge: it belongs inside, "
                        "max(0, m + d_ap - d_an)"),
    ({"reduce": "sum"}, "the losses were summed: take their mean over the anchors"),
    ({"self_positive": True}, "an anchor counted as its own positive: the positives are the "
                              "other clips of its identity, and an anchor without one is left "
                              "out"),
)


def _triplet_cases() -> list[tuple[np.ndarray, np.ndarray, float]]:
    rng = np.random.default_rng(83)
    cases = [(rng.normal(size=(8, 5)), np.repeat(np.arange(4), 2), 0.3),
             (rng.normal(size=(12, 3)) * 0.2, np.repeat(np.arange(3), 4), 0.3),
             (rng.normal(size=(6, 4)) * 3.0, np.array([0, 0, 1, 1, 2, 2]), 1.0),
             (rng.normal(size=(7, 4)), np.array([0, 0, 0, 1, 1, 2, 3]), 0.3)]
    dup = np.empty((6, 4))
    dup[0] = dup[1] = rng.normal(size=4)   # two identical clips (a zero distance) of an
    dup[2] = dup[0] + 1.0                  # identity whose farther clips are the hardest
    dup[3] = dup[0] - 3.0                  # positives (no ties anywhere)
    dup[4] = dup[2] + 0.3 * rng.normal(size=4)
    dup[5] = dup[3] + 0.3 * rng.normal(size=4)
    cases.append((dup, np.array([5, 5, 5, 5, 7, 7]), 0.5))
    return cases


@exercise(
    points=2,
    idea="from the matrix of Euclidean distances between all embeddings of the batch, each "
         "anchor takes its hardest positive (the farthest other clip of its identity) and its "
         "hardest negative (the nearest clip of another identity); the hinge asks the negative "
         "to be farther by the margin. Average over the anchors that have both, and keep the "
         "gradient finite where two embeddings coincide.",
    hint="d2 = ((e[:, None] - e[None]) ** 2).sum(-1); d = d2.clamp_min(1e-12).sqrt(); same = "
         "labels[:, None] == labels[None]; positive = same & ~torch.eye(B, dtype=torch.bool); "
         "negative = ~same; usable = positive.any(1) & negative.any(1); hp = "
         "d.masked_fill(~positive, float('-inf')).amax(1); hn = d.masked_fill(~negative, "
         "float('inf')).amin(1); return torch.relu(margin + hp - hn)[usable].mean().")
def batch_hard_triplet_loss(fn: Callable) -> Callable:
    """Notebook 08: ``fn(embeddings (B, D), labels (B,), margin=0.3) -> scalar tensor``, the
    batch-hard triplet loss of Hermans et al. (2017); its value and its gradient are checked
    in float64."""
    import functools

    import torch

    from .core import _begin, _Blank, compare

    attempt = _begin(fn, triplet_reference, "batch_hard_triplet_loss", None)
    if attempt is None:
        return fn
    cases = _triplet_cases()
    worst = 0.0
    try:
        for number, (x, y, margin) in enumerate(cases, start=1):
            where = (f"test case {number} of {len(cases)}: embeddings {x.shape}, labels "
                     f"{y.tolist()}, margin {margin}")
            mine = torch.tensor(x, requires_grad=True)
            labels = torch.tensor(y)
            loss = attempt.run(functools.partial(fn, mine, labels, margin), where,
                               first=number == 1)
            if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
                raise attempt.wrong(where, f"expected a scalar tensor (0-d), got "
                                           f"{getattr(loss, 'shape', type(loss).__name__)}")
            if not loss.requires_grad:
                raise attempt.wrong(where, "the loss does not depend on the embeddings "
                                           "through autograd (no .detach(), .item() or NumPy)")
            ref_x = torch.tensor(x, requires_grad=True)
            expected = triplet_reference(ref_x, torch.tensor(y), margin)
            try:
                worst = max(worst, compare(loss.detach().numpy(), expected.detach().numpy(),
                                           name="loss", rtol=1e-9, atol=1e-12))
            except AssertionError as exc:
                probe = torch.tensor(x)
                value = float(loss.detach())
                named = next((why for change, why in _TRIPLET_MISTAKES if abs(float(
                    _triplet_variant(probe, labels, margin, **change)) - value) < 1e-9), None)
                raise attempt.wrong(where, str(exc) + (f". It looks like this mistake: {named}"
                                                       if named else "")) from None
            attempt.run(loss.backward, where, "backward through your loss")
            expected.backward()
            try:
                worst = max(worst, compare(mine.grad.numpy() if mine.grad is not None else None,
                                           ref_x.grad.numpy(), name="gradient of the embeddings",
                                           rtol=1e-7, atol=1e-10))
            except AssertionError as exc:
                raise attempt.wrong(where, str(exc) + " (a square root at a distance of 0 has "
                                    "an infinite slope: clamp before the root)") from None
    except _Blank:
        return attempt.still_open()
    return attempt.right(f"correct on {len(cases)} test cases: loss and gradient in float64 "
                         f"(largest error {worst:.1e}).")


# ---------------------------------------------------------------------------------------------
# Deployment: export to ONNX and quantise to int8 with a calibration reader


def export_reference(model: nn.Module, example: torch.Tensor, calibration: np.ndarray,
                     folder: str) -> tuple[Path, Path]:
    """The course's answer, through ``utils.deploy``: ``export_onnx`` (TorchScript exporter,
    symbolic batch axis) to ``folder/model.onnx``, then ``quantize_int8`` (static QDQ, int8
    weights per output channel, MinMax ranges from ``calibration``) to
    ``folder/model.int8.onnx``."""
    from pathlib import Path

    from .. import deploy

    folder = Path(folder)
    fp32 = deploy.export_onnx(model, example, folder / "model.onnx")
    return fp32, deploy.quantize_int8(fp32, folder / "model.int8.onnx", calibration,
                                      keep_float=())


def _probe_net() -> nn.Module:
    import torch
    from torch import nn

    torch.manual_seed(8)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 5))
    with torch.no_grad():                       # running statistics that are not 0 and 1
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


def _onnx_ops(path: object) -> list[str]:
    import onnx

    return [node.op_type for node in onnx.load(str(path)).graph.node]


def _input_scale(path: object) -> float | None:
    """The scale of the QuantizeLinear that reads the graph's input, or None."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    name = model.graph.input[0].name
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] == name:
            scale = values.get(node.input[1])
            return None if scale is None else float(np.asarray(scale).reshape(-1)[0])
    return None


@exercise(
    points=2,
    idea="three steps, each with the standard tool: write the network (in evaluation mode) to "
         "an ONNX file with a batch axis that stays symbolic; give ONNX Runtime's static "
         "quantiser an object that hands it the calibration images, one batch per call, and "
         "then says it is done; quantise in the QDQ format (quantise/dequantise pairs around "
         "float operators) with int8 weights and activations, so that every activation's "
         "range comes from all the calibration images.",
    hint="torch.onnx.export(model.eval(), (example,), fp32, dynamo=False, input_names=['x'], "
         "output_names=['y'], dynamic_axes={'x': {0: 'batch'}, 'y': {0: 'batch'}}); class "
         "Reader(CalibrationDataReader) whose get_next returns {'x': images[i:i + 16]} (float32) "
         "and then None; quantize_static(str(fp32), str(int8), Reader(calibration), "
         "quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8, "
         "weight_type=QuantType.QInt8); return the two paths.")
def export_and_quantise(fn: Callable) -> Callable:
    """Notebook 08: ``fn(model, example, calibration, folder) -> (fp32 path, int8 path)``:
    export to ONNX with a symbolic batch axis, static int8 quantisation in the QDQ format
    with a calibration reader. Checked on a small CNN: ONNX Runtime reproduces PyTorch in
    float32 at another batch size; the int8 graph is QDQ; its input's range is the whole
    calibration set's; int8 stays close to float32."""
    import functools
    import logging
    import tempfile
    import warnings

    import torch

    from .. import deploy
    from .core import _begin, _Blank

    attempt = _begin(fn, export_reference, "export_and_quantise", None)
    if attempt is None:
        return fn
    rng = np.random.default_rng(84)
    calibration = np.concatenate([rng.random((1, 3, 8, 8)) * 0.1,      # a quiet first image
                                  rng.random((47, 3, 8, 8)) * 3.0 - 1.0]).astype(np.float32)
    test = (rng.random((6, 3, 8, 8)) * 3.0 - 1.0).astype(np.float32)
    net = _probe_net()
    with torch.no_grad():
        expected = net(torch.from_numpy(test)).numpy()
    where = "test case 1 of 1: the check's small CNN, 8 x 8 colour images, 48 calibration images"

    def call(folder: str) -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", UserWarning)
            logging.disable(logging.WARNING)
            try:
                return fn(net, torch.from_numpy(test[:1]), calibration.copy(), folder)
            except NotImplementedError:
                raise
            except Exception as exc:             # ONNX Runtime's messages run to pages
                text = re.sub(r"tensor\((\w+)\)", r"\1", str(exc).replace("\n", " "))
                raise RuntimeError(f"{type(exc).__name__}: {text[:150]}") from exc
            finally:
                logging.disable(logging.NOTSET)

    try:
        with tempfile.TemporaryDirectory(prefix="acv-check-") as folder:
            got = attempt.run(functools.partial(call, folder), where, first=True)
            from pathlib import Path

            if (not isinstance(got, tuple | list) or len(got) != 2
                    or not all(isinstance(p, str | Path) and Path(p).is_file() for p in got)):
                raise attempt.wrong(where, f"expected (float32 path, int8 path), two files "
                                           f"that exist, got {got!r}")
            fp32, int8 = (Path(p) for p in got)
            ops32, ops8 = _onnx_ops(fp32), _onnx_ops(int8)
            if any(op in deploy.QUANTISED_OPS for op in ops32):
                raise attempt.wrong(where, "the first file holds quantisation operators: return "
                                           "(float32 file, int8 file) in that order")
            session = deploy.onnx_session(fp32)
            if isinstance(session.get_inputs()[0].shape[0], int):
                raise attempt.wrong(where, f"the float32 graph's input has a fixed batch size "
                                           f"({session.get_inputs()[0].shape[0]}): make the "
                                           "batch axis symbolic (dynamic_axes), so that the "
                                           "runtime takes any batch")
            try:
                out = deploy.run_onnx(session, test)
            except Exception as exc:
                raise attempt.wrong(where, f"ONNX Runtime could not run the float32 file on a "
                                           f"batch of {len(test)} images ({type(exc).__name__}: "
                                           f"{str(exc)[:200]}): the export fixed the batch "
                                           "size of the example; make the batch axis symbolic "
                                           "(dynamic_axes)") from None
            gap = float(np.abs(out - expected).max())
            if gap > 1e-4:
                raise attempt.wrong(where, f"ONNX Runtime's float32 outputs differ from "
                                           f"PyTorch's (evaluation mode) by {gap:.2g}: export "
                                           "the network in evaluation mode (batch norm with its "
                                           "running statistics)")
            if any(op in ("DynamicQuantizeLinear", "ConvInteger", "MatMulInteger")
                   for op in ops8):
                raise attempt.wrong(where, "the int8 file is quantised dynamically (activations "
                                           "at run time, no calibration): use static "
                                           "quantisation with the calibration reader")
            if "QLinearConv" in ops8 or "QuantizeLinear" not in ops8 or (
                    "DequantizeLinear" not in ops8) or "Conv" not in ops8:
                raise attempt.wrong(where, f"the int8 graph is not in the QDQ format (its "
                                           f"operators: {sorted(set(ops8))}): quantise with "
                                           "QuantFormat.QDQ, which keeps Conv and puts "
                                           "QuantizeLinear / DequantizeLinear around it")
            scale = _input_scale(int8)
            low, high = min(float(calibration.min()), 0.0), max(float(calibration.max()), 0.0)
            want = (high - low) / 255
            if scale is None or not 0.9 * want <= scale <= 1.1 * want:
                seen = "no quantised input" if scale is None else (
                    f"a range of about {255 * scale:.2f}")
                raise attempt.wrong(where, f"the int8 graph's input has {seen}, but the "
                                           f"calibration images span {high - low:.2f} ({low:.2f} "
                                           f"to {high:.2f}): the reader must hand over every "
                                           "calibration image (in batches), then None")
            try:
                out8 = deploy.run_onnx(deploy.onnx_session(int8), test)
            except Exception as exc:
                raise attempt.wrong(where, f"ONNX Runtime could not run the int8 file on a "
                                           f"batch of {len(test)} ({type(exc).__name__}: "
                                           f"{str(exc)[:200]})") from None
            spread = float(expected.max() - expected.min())
            error = float(np.abs(out8 - expected).max())
            if error > 0.1 * spread:
                raise attempt.wrong(where, f"the int8 outputs differ from float32 by {error:.2g}, "
                                           f"{error / spread:.0%} of the logits' spread: int8 "
                                           "weights and activations with ranges from the "
                                           "calibration images keep them within a few per cent")
    except _Blank:
        return attempt.still_open()
    return attempt.right(f"float32 file matches PyTorch at batch {len(test)} (largest "
                         f"difference {gap:.1e}); int8 file in QDQ format, input range from "
                         f"all {len(calibration)} calibration images, int8 within "
                         f"{error / spread:.1%} of float32.")
