"""Checker corpus of notebook 08's re-identification and deployment exercises
(``retrieval_metrics``, ``batch_hard_triplet_loss``, ``export_and_quantise``): right answers
written in other ways, and the mistakes a learner would plausibly make."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# --- retrieval_metrics ------------------------------------------------------------------------


def _retrieval_loop(distances, query_ids, gallery_ids, query_cams, gallery_cams, ranks=(1, 5),
                    *, junk="remove", ap_by="relevant", unmatched=False, one_based=False,
                    largest_first=False):
    """A learner's retrieval_metrics, query by query: right by default, each argument one way
    to get it wrong."""
    hits, aps = [], []
    for i in range(len(query_ids)):
        order = np.argsort(-distances[i] if largest_first else distances[i], kind="stable")
        same = gallery_ids[order] == query_ids[i]
        own_cam = gallery_cams[order] == query_cams[i]
        if junk == "remove":                   # right: drop same identity from the same camera
            keep = ~(same & own_cam)
        elif junk == "camera":                 # drops every clip from the query's camera
            keep = ~own_cam
        else:                                  # 'keep' or 'wrong': nothing dropped
            keep = np.ones_like(same)
        match = same[keep]
        if junk == "wrong":
            match = same[keep] & ~own_cam[keep]
        if not match.any():
            if unmatched:
                hits.append(len(match))
                aps.append(0.0)
            continue
        positions = np.flatnonzero(match) + 1                    # 1-based ranks
        hits.append(positions[0] - (1 if one_based else 0))
        precision = np.arange(1, len(positions) + 1) / positions
        aps.append(precision.sum() / (len(match) if ap_by == "retrieved" else len(positions)))
    hits = np.asarray(hits)
    out = {f"rank-{k}": float(np.mean(hits <= k)) for k in ranks}
    out["mAP"] = float(np.mean(aps))
    return out


def _retrieval_library(distances, query_ids, gallery_ids, query_cams, gallery_cams,
                       ranks=(1, 5)):
    """Right: the course's functions, which the exercise mirrors."""
    from utils import reid

    out = reid.cmc(distances, query_ids, gallery_ids, query_cams, gallery_cams, ranks)
    scores = {f"rank-{k}": v for k, v in out.items()}
    scores["mAP"] = reid.mean_average_precision(distances, query_ids, gallery_ids, query_cams,
                                                gallery_cams)
    return scores


def _retrieval_float32(distances, query_ids, gallery_ids, query_cams, gallery_cams,
                       ranks=(1, 5)):
    """Wrong: rank-k right, but mAP returned as a one-element array."""
    out = _retrieval_loop(distances, query_ids, gallery_ids, query_cams, gallery_cams, ranks)
    out["mAP"] = np.array([out["mAP"]])
    return out


RETRIEVAL = (
    [_retrieval_loop, _retrieval_library],
    [partial(_retrieval_loop, junk="keep"), partial(_retrieval_loop, junk="camera"),
     partial(_retrieval_loop, junk="wrong"), partial(_retrieval_loop, ap_by="retrieved"),
     partial(_retrieval_loop, unmatched=True), partial(_retrieval_loop, one_based=True),
     partial(_retrieval_loop, largest_first=True), _retrieval_float32],
)

# --- batch_hard_triplet_loss --------------------------------------------------------------------


def _triplet(embeddings, labels, margin=0.3, *, squared=False, easiest=False, outside=False,
             total=False, self_positive=False, no_clamp=False, all_anchors=False):
    """A learner's batch_hard_triplet_loss: right by default, each argument one mistake."""
    d2 = ((embeddings[:, None] - embeddings[None]) ** 2).sum(-1)
    if squared:
        d = d2
    elif no_clamp:
        d = d2.sqrt()                                   # NaN gradient at the zero diagonal
    else:
        d = d2.clamp_min(1e-12).sqrt()
    same = labels[:, None] == labels[None]
    eye = torch.eye(len(labels), dtype=torch.bool)
    positive = same if self_positive else same & ~eye
    negative = ~same
    if easiest:
        p = torch.where(positive, d, torch.full_like(d, float("inf"))).amin(1)
        n = torch.where(negative, d, torch.full_like(d, float("-inf"))).amax(1)
    else:
        p = torch.where(positive, d, torch.zeros_like(d)).amax(1)
        n = torch.where(negative, d, torch.full_like(d, float("inf"))).amin(1)
    usable = positive.any(1) & negative.any(1)
    loss = (F.relu(p - n) + margin) if outside else F.relu(margin + p - n)
    if not all_anchors:
        loss = loss[usable]
    return loss.sum() if total else loss.mean()


def _triplet_cdist(embeddings, labels, margin=0.3):
    """Right: torch.cdist, a loop over the anchors."""
    d = torch.cdist(embeddings, embeddings)
    losses = []
    for a in range(len(labels)):
        pos = (labels == labels[a]) & (torch.arange(len(labels)) != a)
        neg = labels != labels[a]
        if pos.any() and neg.any():
            losses.append(F.relu(margin + d[a][pos].max() - d[a][neg].min()))
    return torch.stack(losses).mean()


def _triplet_numpy(embeddings, labels, margin=0.3):
    """Wrong: computed in NumPy, so autograd cannot reach the embeddings."""
    e = embeddings.detach().numpy()
    d = np.sqrt(((e[:, None] - e[None]) ** 2).sum(-1))
    y = labels.numpy()
    out = []
    for a in range(len(y)):
        pos = (y == y[a]) & (np.arange(len(y)) != a)
        neg = y != y[a]
        if pos.any() and neg.any():
            out.append(max(0.0, margin + d[a][pos].max() - d[a][neg].min()))
    return torch.tensor(float(np.mean(out)), dtype=embeddings.dtype)


TRIPLET = (
    [_triplet, _triplet_cdist],
    [partial(_triplet, squared=True), partial(_triplet, easiest=True),
     partial(_triplet, outside=True), partial(_triplet, total=True),
     partial(_triplet, self_positive=True), partial(_triplet, no_clamp=True),
     partial(_triplet, all_anchors=True), _triplet_numpy],
)

# --- export_and_quantise ------------------------------------------------------------------------


def _export(model, example, calibration, folder, *, dynamic=True, reader="all", fmt="QDQ",
            dynamic_quant=False, dtype=np.float32, swap=False):
    """A learner's export_and_quantise: right by default, each argument one mistake."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    fp32, int8 = Path(folder) / "model.onnx", Path(folder) / "model.int8.onnx"
    axes = {"dynamic_axes": {"x": {0: "b"}, "y": {0: "b"}}} if dynamic else {}
    torch.onnx.export(model.eval(), (example,), str(fp32), dynamo=False, input_names=["x"],
                      output_names=["y"], **axes)

    class Reader(CalibrationDataReader):
        def __init__(self, images):
            self.images = images[:1] if reader == "first" else images
            self.step = 1 if not dynamic else 8
            self.at = 0

        def get_next(self):
            if self.at >= len(self.images):
                return None
            batch = self.images[self.at:self.at + self.step].astype(dtype)
            self.at += self.step
            return {"x": batch}

    if dynamic_quant:
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    else:
        quantize_static(str(fp32), str(int8), Reader(calibration),
                        quant_format=getattr(QuantFormat, fmt), per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return (int8, fp32) if swap else (fp32, int8)


def _export_per_tensor(model, example, calibration, folder):
    """Right: one image per batch, per-tensor weights, uint8 activations, paths as strings."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    fp32, int8 = str(Path(folder) / "model.onnx"), str(Path(folder) / "model.int8.onnx")
    torch.onnx.export(model, (example,), fp32, dynamo=False, input_names=["images"],
                      output_names=["logits"], dynamic_axes={"images": {0: "n"}})

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration)

        def get_next(self):
            image = next(self.items, None)
            return None if image is None else {"images": image[None].astype(np.float32)}

    quantize_static(fp32, int8, Reader(), quant_format=QuantFormat.QDQ, per_channel=False,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return fp32, int8


EXPORT = (
    [_export, _export_per_tensor],
    [partial(_export, dynamic=False), partial(_export, reader="first"),
     partial(_export, fmt="QOperator"), partial(_export, dynamic_quant=True),
     partial(_export, dtype=np.float64), partial(_export, swap=True)],
)

# --- temporal_attention_backward ------------------------------------------------------------


def _temporal_backward_loops(dout, x, params):
    """Right: clip by clip and frame by frame, the softmax's Jacobian as a matrix."""
    b, c, t, h, w = x.shape
    dx = np.zeros_like(x)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    for i in range(b):
        s = x[i].mean(axis=(2, 3)).T                                   # (T, C)
        pre = s @ params["w1"].T + params["b1"]
        hid = np.maximum(pre, 0)
        e = hid @ params["w2"][0] + params["b2"][0]
        a = np.exp(e - e.max())
        a /= a.sum()
        da = t * np.einsum("cthw,cthw->t", dout[i], x[i])
        de = (np.diag(a) - np.outer(a, a)) @ da                       # softmax Jacobian
        for k in range(t):
            dpre = de[k] * params["w2"][0] * (pre[k] > 0)
            grads["w2"][0] += de[k] * hid[k]
            grads["b2"][0] += de[k]
            grads["w1"] += np.outer(dpre, s[k])
            grads["b1"] += dpre
            dx[i, :, k] = t * a[k] * dout[i, :, k] + (dpre @ params["w1"])[:, None, None] / (h * w)
    return dx, grads


def _temporal_backward_autograd(dout, x, params):
    """Right: PyTorch's autograd in float64 (allowed: the checker compares values)."""
    xs = torch.tensor(x, requires_grad=True)
    ps = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    s = xs.mean((3, 4)).transpose(1, 2)
    e = (F.relu(s @ ps["w1"].T + ps["b1"]) @ ps["w2"].T + ps["b2"])[..., 0]
    y = xs * (x.shape[2] * torch.softmax(e, 1))[:, None, :, None, None]
    y.backward(torch.tensor(dout))
    return xs.grad.numpy(), {k: v.grad.numpy() for k, v in ps.items()}


def _temporal_backward(*args, **kwargs):
    from utils.check.nb08_attention_in_practice import temporal_backward_variant

    return temporal_backward_variant(*args, **kwargs)


BACKWARD = (
    [_temporal_backward, _temporal_backward_loops, _temporal_backward_autograd],
    [partial(_temporal_backward, through_weights=False),           # the direct path only
     partial(_temporal_backward, direct=False),                    # the weights' path only
     partial(_temporal_backward, factor=False),                    # T forgotten in dL/da
     partial(_temporal_backward, jacobian="diagonal"),             # softmax element-wise
     partial(_temporal_backward, jacobian="sigmoid"),              # a(1 - a)
     partial(_temporal_backward, spread=False),                    # 1/(HW) forgotten
     partial(_temporal_backward, relu_mask=False),                 # ReLU unmasked
     partial(_temporal_backward, transpose_w1=True)],              # dW1 transposed
)

CORPUS = {"retrieval_metrics": RETRIEVAL, "batch_hard_triplet_loss": TRIPLET,
          "export_and_quantise": EXPORT, "temporal_attention_backward": BACKWARD}
