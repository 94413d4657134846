"""Every checker against a corpus of plausible learner bugs and correct alternatives.

Each wrong answer is a mistake a learner is likely to make; each must be rejected with an
AssertionError that names the exercise and the test case. Each correct alternative is a
different, right implementation and must be accepted. Answers are functions, or for the
PyTorch module exercises nn.Module classes; the checkers take and return either alike.
"""

import contextlib
import copy
import math
import os
import tracemalloc
from collections import OrderedDict
from functools import partial

import numpy as np
import pytest
import scipy.special
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from utils import check, counting, datasets, denoising, functional, modules, reference, saliency

R = reference


def softmax_last(x, axis=-1):
    return functional.softmax(x, axis=axis)


def _se(x, p, pool=np.mean, gate=functional.sigmoid, relu=True, bias=True):
    z = pool(x, axis=(2, 3))
    h = z @ p["w1"].T + (p["b1"] if bias else 0)
    a = np.maximum(h, 0) if relu else h
    s = gate(a @ p["w2"].T + (p["b2"] if bias else 0))
    return x * s[:, :, None, None]


def _torch_se(x, p):
    t = {k: torch.tensor(v) for k, v in p.items()}
    xt = torch.tensor(x)
    s = torch.sigmoid(torch.relu(xt.mean((2, 3)) @ t["w1"].T + t["b1"]) @ t["w2"].T + t["b2"])
    return (xt * s[:, :, None, None]).numpy()


def _torch_se_backward(dout, x, p):
    t = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    xt = torch.tensor(x, requires_grad=True)
    s = torch.sigmoid(torch.relu(xt.mean((2, 3)) @ t["w1"].T + t["b1"]) @ t["w2"].T + t["b2"])
    (xt * s[:, :, None, None] * torch.tensor(dout)).sum().backward()
    return xt.grad.numpy(), {k: v.grad.numpy() for k, v in t.items()}


def _se_backward_with(dout, x, p, change):
    dx, grads = R.se_backward(dout, R.se_forward(x, p)[1])
    return change(dx, dict(grads), x)


def _cbam_channel(x, p, pools=(np.mean, np.max), combine="sum"):
    def mlp(z):
        return np.maximum(z @ p["w1"].T + p["b1"], 0) @ p["w2"].T + p["b2"]
    outs = [mlp(pool(x, axis=(2, 3))) for pool in pools]
    if combine == "sum":
        s = functional.sigmoid(sum(outs))
    else:
        s = sum(functional.sigmoid(o) for o in outs) / len(outs)
    return x * s[:, :, None, None]


def _spatial(x, p, order=("mean", "max"), gate=functional.sigmoid):
    pools = {"mean": x.mean(axis=1), "max": x.max(axis=1), "sum": x.sum(axis=1)}
    pooled = np.stack([pools[o] for o in order], axis=1)
    logits, _ = R.conv2d_same(pooled, p["w"], p["b"])
    return x * gate(logits[:, 0])[:, None]


def _torch_spatial(x, p):
    xt = torch.tensor(x)
    pooled = torch.stack([xt.mean(1), xt.amax(1)], 1)
    k = p["w"].shape[-1]
    logits = torch.nn.functional.conv2d(pooled, torch.tensor(p["w"]), torch.tensor(p["b"]),
                                        padding=k // 2)
    return (xt * torch.sigmoid(logits)).numpy()


def _normalize(m, M=1.0, floor=0.1, drop_max=True, square=True, rescale=True):
    lo, span = m.min(), np.ptp(m)
    if rescale:
        scaled = (m - lo) / span * M if span > saliency.FLAT_SPAN else np.zeros_like(m)
    else:
        scaled = m.copy()
    peaks = np.sort(scaled[saliency.local_maxima(scaled, threshold=floor * M)])
    if drop_max:
        peaks = peaks[:-1]
    m_bar = peaks.mean() if peaks.size else 0.0
    return scaled * ((M - m_bar) ** 2 if square else (M - m_bar))


def _spectral(image, size=3, mode="wrap", log=True, square=True):
    f = np.fft.fft2(image)
    amp = np.abs(f)
    la = np.log(amp + 1e-12) if log else amp
    resid = la - ndimage.uniform_filter(la, size=size, mode=mode)
    out = np.abs(np.fft.ifft2(np.exp(resid + 1j * np.angle(f))))
    return out ** 2 if square else out


def _overhead(blocks, channels, r, biases=True, both=True):
    total = 0
    for n, c in zip(blocks, channels, strict=True):
        per = c * (c // r) * (2 if both else 1) + ((c // r + c) if biases else 0)
        total += n * per
    return total


def _in_box(maps, boxes, size, normalise=True, scale=True):
    shape = maps.shape[1:]
    mask = datasets.box_mask(boxes, shape, size if scale else shape[0])
    inside = (maps * mask).sum(axis=(1, 2))
    return inside / maps.sum(axis=(1, 2)) if normalise else inside


def _embedded(t, p, g, axis=-1, scale=1.0, stable=True):
    scores = t @ p.transpose(0, 2, 1) * scale
    if stable:
        f = functional.softmax(scores, axis=axis)
    else:
        e = np.exp(scores)
        f = e / e.sum(axis=axis, keepdims=True)
    return f @ g


def _pca(x, k, centre=True, ddof=1, order="desc", signs=True):
    xc = x - x.mean(axis=0) if centre else x
    values, vectors = np.linalg.eigh(xc.T @ xc / (len(x) - ddof))
    idx = np.argsort(values)[::-1][:k] if order == "desc" else np.arange(k)
    comps = vectors[:, idx].T
    return (R.fix_signs(comps) if signs else comps), values[idx]


def _svd_pca(x, k):
    xc = x - x.mean(axis=0)
    _, sv, vt = np.linalg.svd(xc, full_matrices=False)
    return R.fix_signs(vt[:k]), (sv[:k] ** 2) / (len(x) - 1)


def _ortho(w, normalise=True, diagonal=False, power=2):
    u = w / np.linalg.norm(w, axis=1, keepdims=True) if normalise else w
    gram = u @ u.T
    off = gram if diagonal else gram - np.diag(np.diag(gram))
    return float((np.abs(off) ** power).sum())


def _torch_ortho(w):
    u = torch.nn.functional.normalize(torch.tensor(w), dim=1)
    gram = u @ u.T
    return ((gram - torch.eye(len(w), dtype=gram.dtype)) ** 2).sum()   # a 0-d tensor




def _mask_kron(t, h, w, a):
    hw = h * w
    if a == "space":
        return np.kron(np.eye(t), np.ones((hw, hw))).astype(bool)
    if a == "time":
        return np.kron(np.ones((t, t)), np.eye(hw)).astype(bool)
    return np.ones((t * hw, t * hw), dtype=bool)


def _gc(x, w_k, b_k, stable=True, axis=-1, bias=True):
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    scores = np.einsum("c,bcn->bn", w_k, flat) + (b_k if bias else 0.0)
    if stable:
        a = functional.softmax(scores, axis=axis)
    else:
        e = np.exp(scores)
        a = e / e.sum(axis=axis, keepdims=True)
    return np.einsum("bcn,bn->bc", flat, a), a


def _gc_nl(x, p, softmax_over="keys", transform_first=False, norm_axis=-1, layer_norm=True,
           fuse="add", reshape="transpose", matrix=True, stable=True):
    """A learner's gc_as_nonlocal: right by default, each argument one way to get it wrong."""
    b, c, h, w = x.shape
    n = h * w
    tokens = x.reshape(b, c, n).transpose(0, 2, 1)                          # (B, N, C)
    scores = tokens @ p["w_k"] + p["b_k"]
    if softmax_over == "queries":                      # a (B, N, N) of scores, softmax over i
        a = scipy.special.softmax(np.repeat(scores[:, None, :], n, axis=1), axis=1)
    elif softmax_over == "columns":                    # the map down the columns: A_ij = a_i
        a = np.repeat(scipy.special.softmax(scores, axis=1)[:, :, None], n, axis=2)
    elif not stable:                                   # exp of the raw scores
        e = np.exp(scores)
        a = np.repeat((e / e.sum(axis=1, keepdims=True))[:, None, :], n, axis=1)
    else:
        a = np.repeat(scipy.special.softmax(scores, axis=1)[:, None, :], n, axis=1)

    def transform(v):
        hid = v @ p["w1"].T + p["b1"]
        if layer_norm:
            hid = (hid - hid.mean(axis=norm_axis, keepdims=True)) / np.sqrt(
                hid.var(axis=norm_axis, keepdims=True) + 1e-5)
        hid = np.maximum(hid * p["ln_gamma"] + p["ln_beta"], 0)
        return hid @ p["w2"].T + p["b2"]

    t = a @ transform(tokens) if transform_first else transform(a @ tokens)   # (B, N, C)
    t = t.transpose(0, 2, 1).reshape(x.shape) if reshape == "transpose" else t.reshape(x.shape)
    z = {"add": x + t, "multiply": x * t, "replace": t}[fuse]
    return z, (a if matrix else a[:, 0])


def _gc_nl_cheap(x, p):
    """Right: GC's order (one context, one transform) and the matrix built by np.tile."""
    context, a = R.gc_context(x, p["w_k"], p["b_k"])
    hid = context @ p["w1"].T + p["b1"]
    hid = (hid - hid.mean(1, keepdims=True)) / np.sqrt(hid.var(1, keepdims=True) + 1e-5)
    t = np.maximum(hid * p["ln_gamma"] + p["ln_beta"], 0) @ p["w2"].T + p["b2"]
    n = a.shape[1]
    return x + t[:, :, None, None], np.tile(a[:, None, :], (1, n, 1))


def _gc_nl_torch(x, p):
    """Right: PyTorch, an einsum per query, F.layer_norm, and b_k left out (it cancels)."""
    t = {k: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in p.items()}
    xt = torch.as_tensor(x)
    flat = xt.flatten(2)                                                     # (B, C, N)
    row = torch.softmax(torch.einsum("c,bcn->bn", t["w_k"], flat), dim=1)
    a = row[:, None, :].expand(-1, flat.shape[2], -1)
    y = torch.einsum("bij,bcj->bic", a, flat)                                # (B, N, C)
    hid = F.layer_norm(y @ t["w1"].T + t["b1"], t["b1"].shape, t["ln_gamma"], t["ln_beta"])
    out = torch.relu(hid) @ t["w2"].T + t["b2"]
    return (xt + out.transpose(1, 2).reshape(xt.shape)).numpy(), a.contiguous().numpy()


def _eca_k(c, gamma=2, b=1, how="code"):
    t = (math.log2(c) + b) / gamma
    if how == "round":
        return int(round(t))
    if how == "nearest_odd":
        k = int(round(t))
        return k if k % 2 else k + 1 if t > k else k - 1
    if how == "natural_log":
        t = (math.log(c) + b) / gamma
    t = int(abs(t)) if how != "no_abs" else int(t)
    if how == "even_down":
        return t if t % 2 else t - 1
    if how == "no_odd":
        return t
    return t if t % 2 else t + 1


def _eca(x, w, flip=False, gate=True, pad="same"):
    y = x.mean(axis=(2, 3))
    k = len(w)
    kernel = w[::-1] if flip else w
    if pad == "same":
        padded = np.pad(y, ((0, 0), (k // 2, k // 2)))
    else:
        padded = np.pad(y, ((0, 0), (k - 1, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, k, axis=1)
    out = windows @ kernel
    return functional.sigmoid(out) if gate else out


# --- PyTorch exercises: learners' nn.Module classes and training loops --------------------

def _se_module(squeeze=lambda x: x.mean((2, 3)), gate=torch.sigmoid, hidden=lambda c, r: c // r,
               bias=True, names=("fc1", "fc2"), scale=lambda x, s: x * s[:, :, None, None]):
    """A learner's SqueezeExcitation: right by default, each argument one way to get it wrong."""
    class SqueezeExcitation(nn.Module):
        def __init__(self, channels, reduction=16):
            super().__init__()
            h = hidden(channels, reduction)
            setattr(self, names[0], nn.Linear(channels, h, bias=bias))
            setattr(self, names[1], nn.Linear(h, channels, bias=bias))

        def forward(self, x):
            first, second = getattr(self, names[0]), getattr(self, names[1])
            return scale(x, gate(second(F.relu(first(squeeze(x))))))

    return SqueezeExcitation


class _SEModules(nn.Module):
    """Right: pooling and activations as modules (they hold no parameters), views by hand."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(channels // reduction, channels)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        b, c, _, _ = x.shape
        s = self.gate(self.fc2(self.relu(self.fc1(self.pool(x).view(b, c)))))
        return x * s.view(b, c, 1, 1)


class _SEConv(nn.Module):
    """Wrong: 1 x 1 convolutions compute the same thing but have other parameter shapes."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


class _SEInPlace(_se_module()):
    """Wrong: scales the caller's tensor in place."""

    def forward(self, x):
        x *= torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))[:, :, None, None]
        return x


def _ia_module(softmax_over="positions", gate="softmax", bias=True, pool="weighted",
               layout="BKC", detach=False, flatten=True):
    """A learner's InteractionAware: right by default, each argument one way to get it wrong."""
    class InteractionAware(nn.Module):
        def __init__(self, channels, maps=4):
            super().__init__()
            self.score = nn.Linear(channels, maps)

        def forward(self, x):
            flat = x.flatten(2) if flatten else x.reshape(*x.shape[:2], -1, x.shape[-1])
            tokens = flat.transpose(1, 2) if flatten else flat.movedim(1, -1)
            scores = (self.score(tokens) if bias else tokens @ self.score.weight.T)
            scores = scores.movedim(-1, 1)                       # (B, K, N) or (B, K, *, last)
            if gate == "sigmoid":
                maps = torch.sigmoid(scores)
            else:
                maps = torch.softmax(scores, dim=1 if softmax_over == "maps" else -1)
            if detach:
                maps = maps.detach()
            if not flatten:                                      # softmax over the last axis only
                maps, flat = maps.flatten(2), x.flatten(2)
            if pool == "mean":
                pooled = flat.mean(-1, keepdim=True).transpose(1, 2).expand(-1, maps.shape[1], -1)
            elif pool == "normalised":                           # the L2-normalised maps pool
                pooled = F.normalize(maps, dim=-1) @ flat.transpose(1, 2)
            else:
                pooled = maps @ flat.transpose(1, 2)             # (B, K, C)
            return pooled.transpose(1, 2) if layout == "BCK" else pooled

    return InteractionAware


class _IAEinsum(nn.Module):
    """Right: weight and bias by einsum, log-softmax then exp, einsum for the pooling."""

    def __init__(self, channels, maps=4):
        super().__init__()
        self.score = nn.Linear(channels, maps)

    def forward(self, x):
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        scores = torch.einsum("kc,bcn->bkn", self.score.weight, flat) + self.score.bias[:, None]
        return torch.einsum("bkn,bcn->bkc", F.log_softmax(scores, dim=2).exp(), flat)


class _IALinear(nn.Module):
    """Right: scores (B, N, K) from F.linear, softmax over N, then a batched product."""

    def __init__(self, channels, maps=4):
        super().__init__()
        self.score = nn.Linear(channels, maps)

    def forward(self, x):
        tokens = x.flatten(2).transpose(1, 2)                        # (B, N, C)
        weights = torch.softmax(F.linear(tokens, self.score.weight, self.score.bias), dim=1)
        return torch.bmm(weights.transpose(1, 2), tokens)


def _tiled(q, k, v, tile=64, rescale_sum=True, rescale_out=True, tail=True, running=True,
           per_tile=False):
    """A learner's online softmax over key tiles: right by default."""
    b, n, _ = q.shape
    m, total, out = np.full((b, n, 1), -np.inf), np.zeros((b, n, 1)), np.zeros((b, n, v.shape[-1]))
    stop = k.shape[1] if tail else k.shape[1] // tile * tile
    parts = []
    for start in range(0, stop, tile):
        s = q @ k[:, start:start + tile].transpose(0, 2, 1)
        if per_tile:                              # softmax inside each tile, then averaged
            w = scipy.special.softmax(s, axis=-1)
            parts.append(w @ v[:, start:start + tile])
            continue
        new = np.maximum(m, s.max(-1, keepdims=True)) if running else (
            s.max(-1, keepdims=True) if start == 0 else m)
        r = np.exp(m - new)
        w = np.exp(s - new)
        total = (total * r if rescale_sum else total) + w.sum(-1, keepdims=True)
        out = (out * r if rescale_out else out) + w @ v[:, start:start + tile]
        m = new
    if per_tile:
        return np.mean(parts, axis=0)
    return out / total


def _tiled_two_pass(q, k, v, tile=64):
    """Right: a first pass for the row maxima, a second for sums and outputs (still tiled)."""
    spans = [slice(s, s + tile) for s in range(0, k.shape[1], tile)]
    m = np.max([(q @ k[:, sp].transpose(0, 2, 1)).max(-1) for sp in spans], axis=0)[..., None]
    total, out = 0.0, 0.0
    for sp in spans:
        w = np.exp(q @ k[:, sp].transpose(0, 2, 1) - m)
        total, out = total + w.sum(-1, keepdims=True), out + w @ v[:, sp]
    return out / total


def _nl_module(scale_by=lambda ci: ci ** -0.5, softmax_dim=-1, pool_time=False, residual=True,
               zero=("bn",), reshape="transpose", shared_theta_phi=False, pool_queries=False):
    """A learner's embedded-Gaussian NonLocal: right by default, each argument one way to get
    it wrong."""
    class NonLocal(nn.Module):
        def __init__(self, channels, inter_channels=None, dim=2, subsample=False, scale=False):
            super().__init__()
            ci = inter_channels or max(channels // 2, 1)
            conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dim]
            self.theta, self.g = conv(channels, ci, 1), conv(channels, ci, 1)
            self.phi = self.theta if shared_theta_phi else conv(channels, ci, 1)
            self.w_z = conv(ci, channels, 1)
            self.bn = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dim](channels)
            if "bn" in zero:
                nn.init.zeros_(self.bn.weight)
                nn.init.zeros_(self.bn.bias)
            if "w_z" in zero:
                nn.init.zeros_(self.w_z.weight)
            time_pool = (2, 2, 2) if pool_time else (1, 2, 2)
            self.pool = ({1: nn.MaxPool1d(2), 2: nn.MaxPool2d(2), 3: nn.MaxPool3d(time_pool)}[dim]
                         if subsample else None)
            self.ci, self.scale = ci, scale

        def forward(self, x):
            b = x.shape[0]
            keys = self.pool(x) if self.pool is not None else x
            queries = self.pool(x) if pool_queries and self.pool is not None else x
            def t(m):
                return m.flatten(2).transpose(1, 2)
            s = t(self.theta(queries)) @ t(self.phi(keys)).transpose(1, 2)
            if self.scale:
                s = s * scale_by(self.ci)
            y = torch.softmax(s, dim=softmax_dim) @ t(self.g(keys))
            if reshape == "transpose":
                y = y.transpose(1, 2).reshape(b, self.ci, *x.shape[2:])
            else:                                      # a reshape that scrambles the positions
                y = y.reshape(b, self.ci, *x.shape[2:])
            z = self.bn(self.w_z(y))
            return x + z if residual else z

    return NonLocal


class _NonLocalSDPA(_nl_module()):
    """Right: PyTorch's fused attention with the scale passed explicitly."""

    def forward(self, x):
        b = x.shape[0]
        keys = self.pool(x) if self.pool is not None else x
        def t(m):
            return m.flatten(2).transpose(1, 2).unsqueeze(1)
        y = F.scaled_dot_product_attention(t(self.theta(x)), t(self.phi(keys)), t(self.g(keys)),
                                           scale=self.ci ** -0.5 if self.scale else 1.0)[:, 0]
        return x + self.bn(self.w_z(y.transpose(1, 2).reshape(b, self.ci, *x.shape[2:])))


def _gc_module(pool="softmax", norm="layer", fuse="add", zero=("last",), skip_norm=False,
               names=("context", "transform")):
    """A learner's GlobalContext: right by default, each argument one way to get it wrong."""
    class GlobalContext(nn.Module):
        def __init__(self, channels, reduction=16):
            super().__init__()
            hidden = channels // reduction
            norm_layer = (nn.LayerNorm([hidden, 1, 1]) if norm == "layer"
                          else nn.BatchNorm2d(hidden))
            transform = nn.Sequential(nn.Conv2d(channels, hidden, 1), norm_layer,
                                      nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))
            for index in (0, -1):
                if {0: "first", -1: "last"}[index] in zero:
                    nn.init.zeros_(transform[index].weight)
                    nn.init.zeros_(transform[index].bias)
            setattr(self, names[0], nn.Conv2d(channels, 1, 1))
            setattr(self, names[1], transform)

        def forward(self, x):
            scores = getattr(self, names[0])(x)                              # (B, 1, H, W)
            if pool == "channels":                       # softmax over the one score channel
                a = torch.softmax(scores, dim=1).flatten(1)
            elif pool == "batch":
                a = torch.softmax(scores.flatten(1), dim=0)
            elif pool == "mean":                         # SE's squeeze: context never used
                a = torch.full_like(scores.flatten(1), 1.0 / scores[0, 0].numel())
            else:
                a = torch.softmax(scores.flatten(1), dim=1)
            c = (x.flatten(2) @ a[:, :, None])[..., None]                    # (B, C, 1, 1)
            transform = getattr(self, names[1])
            if skip_norm:
                conv1, _, relu, conv2 = transform
                t = conv2(relu(conv1(c)))
            else:
                t = transform(c)
            return {"add": x + t, "multiply": x * t, "gate": x * torch.sigmoid(t)}[fuse]

    return GlobalContext


class _GCEinsum(nn.Module):
    """Right: the score by F.conv2d, log-softmax then exp, the pooling by einsum."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        hidden = channels // reduction
        self.context = nn.Conv2d(channels, 1, 1)
        self.transform = nn.Sequential(nn.Conv2d(channels, hidden, 1),
                                       nn.LayerNorm([hidden, 1, 1]), nn.ReLU(),
                                       nn.Conv2d(hidden, channels, 1))
        nn.init.constant_(self.transform[3].weight, 0.0)
        nn.init.constant_(self.transform[3].bias, 0.0)

    def forward(self, x):
        scores = F.conv2d(x, self.context.weight, self.context.bias).flatten(1)
        a = F.log_softmax(scores, dim=-1).exp()
        c = torch.einsum("bcn,bn->bc", x.flatten(2), a)
        return x + self.transform(c[:, :, None, None])


class _GCOfficial(nn.Module):
    """Right: the authors' code, with its spatial_pool (matmul of (B, 1, C, N) and
    (B, 1, N, 1)), under the exercise's names."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        planes = channels // reduction
        self.context = nn.Conv2d(channels, 1, kernel_size=1)
        self.softmax = nn.Softmax(dim=2)
        self.transform = nn.Sequential(nn.Conv2d(channels, planes, kernel_size=1),
                                       nn.LayerNorm([planes, 1, 1]), nn.ReLU(inplace=True),
                                       nn.Conv2d(planes, channels, kernel_size=1))
        nn.init.kaiming_normal_(self.context.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.transform[-1].weight)
        nn.init.zeros_(self.transform[-1].bias)

    def forward(self, x):
        batch, channel, height, width = x.size()
        input_x = x.view(batch, channel, height * width).unsqueeze(1)
        mask = self.softmax(self.context(x).view(batch, 1, height * width)).unsqueeze(-1)
        context = torch.matmul(input_x, mask).view(batch, channel, 1, 1)
        return x + self.transform(context)


def _eca_module(kernel=lambda c, k: k if k is not None else _eca_k(c), bias=False,
                squeeze=lambda x: x.mean((2, 3)), gate=torch.sigmoid, pad="same"):
    """A learner's ECA: right by default, each argument one way to get it wrong."""
    class ECA(nn.Module):
        def __init__(self, channels, kernel_size=None):
            super().__init__()
            k = kernel(channels, kernel_size)
            self.conv = nn.Conv1d(1, 1, k, padding=k // 2 if pad == "same" else 0, bias=bias)

        def forward(self, x):
            y = squeeze(x)[:, None, :]                                       # (B, 1, C)
            if pad == "causal":                          # all k - 1 zeros at one end
                y = F.pad(y, (self.conv.kernel_size[0] - 1, 0))
            s = gate(self.conv(y))[:, 0]
            return x * s[:, :, None, None]

    return ECA


class _ECAOfficial(nn.Module):
    """Right: the authors' eca_layer (pooling layer, squeeze and transposes), k from C by
    math.log and an odd step written another way."""

    def __init__(self, channels, kernel_size=None):
        super().__init__()
        t = int(abs((math.log(channels, 2) + 1) / 2))
        k = kernel_size or t + 1 - t % 2
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=(k - 1) // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        y = self.avg_pool(x)
        y = self.conv(y.squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)
        return x * self.sigmoid(y).expand_as(x)


class _ECAFunctional(nn.Module):
    """Right: F.conv1d on the pooled vector, explicit zero padding with F.pad."""

    def __init__(self, channels, kernel_size=None):
        super().__init__()
        t = int((np.log2(channels) + 1) // 2)
        k = kernel_size if kernel_size is not None else (t if t % 2 == 1 else t + 1)
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x):
        k = self.conv.weight.shape[-1]
        y = F.pad(F.adaptive_avg_pool2d(x, 1).flatten(1)[:, None], (k // 2, k // 2))
        return x * torch.sigmoid(F.conv1d(y, self.conv.weight)).transpose(1, 2)[..., None]


def _mean_hw(x):
    return x.mean((2, 3))


def _max_hw(x):
    return x.amax((2, 3))


def _ca_module(pools=(_mean_hw, _max_hw), combine="sum", shared=True, relu_out=False):
    """A learner's ChannelAttention: right by default."""
    class ChannelAttention(nn.Module):
        def __init__(self, channels, reduction=16):
            super().__init__()
            h = channels // reduction
            self.fc1, self.fc2 = nn.Linear(channels, h), nn.Linear(h, channels)
            if not shared:   # a second MLP for the max branch
                self.fc1_max, self.fc2_max = nn.Linear(channels, h), nn.Linear(h, channels)

        def mlp(self, z, branch=0):
            fc1, fc2 = (self.fc1, self.fc2) if shared or branch == 0 else (self.fc1_max,
                                                                           self.fc2_max)
            out = fc2(F.relu(fc1(z)))
            return F.relu(out) if relu_out else out

        def forward(self, x):
            if combine == "pool_first":
                s = torch.sigmoid(self.mlp(sum(pool(x) for pool in pools)))
            elif combine == "stacked":
                s = torch.sigmoid(self.mlp(torch.stack([pool(x) for pool in pools])).sum(0))
            else:
                outs = [self.mlp(pool(x), i) for i, pool in enumerate(pools)]
                s = (torch.sigmoid(sum(outs)) if combine == "sum"
                     else sum(torch.sigmoid(o) for o in outs) / len(outs))
            return x * s[:, :, None, None]

    return ChannelAttention


_POOL_C = {"mean": lambda x: x.mean(1, keepdim=True), "max": lambda x: x.amax(1, keepdim=True),
           "sum": lambda x: x.sum(1, keepdim=True)}


def _sa_module(order=("mean", "max"), padding=lambda k: k // 2, bias=True, gate=torch.sigmoid,
               fixed_kernel=None):
    """A learner's SpatialAttention: right by default."""
    class SpatialAttention(nn.Module):
        def __init__(self, kernel_size=7):
            super().__init__()
            k = fixed_kernel or kernel_size
            self.conv = nn.Conv2d(2, 1, k, padding=padding(k), bias=bias)

        def forward(self, x):
            return x * gate(self.conv(torch.cat([_POOL_C[o](x) for o in order], dim=1)))

    return SpatialAttention


class _SAStack(nn.Module):
    """Right: torch.stack of the two (B, H, W) maps, .max(...).values, nn.Sigmoid."""

    def __init__(self, kernel_size=7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        pooled = torch.stack([x.mean(dim=1), x.max(dim=1).values], dim=1)
        return self.sigmoid(self.conv(pooled)) * x


ChannelAttention, SpatialAttention = _ca_module(), _sa_module()   # the learner's, as in notebook 03


def _cbam_module(order="channel-spatial", names=("channel", "spatial"),
                 spatial_argument=lambda reduction, kernel_size: kernel_size):
    """A learner's CBAM built from their ChannelAttention and SpatialAttention."""
    class CBAM(nn.Module):
        def __init__(self, channels, reduction=16, kernel_size=7):
            super().__init__()
            setattr(self, names[0], ChannelAttention(channels, reduction))
            setattr(self, names[1], SpatialAttention(spatial_argument(reduction, kernel_size)))

        def forward(self, x):
            channel, spatial = getattr(self, names[0]), getattr(self, names[1])
            if order == "channel-spatial":
                return spatial(channel(x))
            if order == "loop":
                for attend in (channel, spatial):
                    x = attend(x)
                return x
            if order == "spatial-channel":
                return channel(spatial(x))
            if order == "sum":
                return channel(x) + spatial(x)
            if order == "residual":
                return x + spatial(channel(x))
            channel(x)   # "unchained": the channel-refined tensor is computed and dropped
            return spatial(x)

    return CBAM


class _CBAMFromLibrary(nn.Module):
    """Right: the course library's two modules, with the parameter names of the exercise."""

    def __init__(self, channels, reduction=16, kernel_size=7):
        super().__init__()
        self.channel = modules.ChannelAttention(channels, reduction)
        self.spatial = modules.SpatialAttention(kernel_size=kernel_size)

    def forward(self, x):
        return self.spatial(self.channel(x))


def _train(model, batches, optimizer, scheduler=None, *, train_mode=True, zero_grad="before",
           step_first=False, schedule="batch", result="mean"):
    """A learner's train_one_epoch: right by default."""
    if train_mode:
        model.train()
    losses = []
    for x, y in batches:
        if zero_grad == "before":
            optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        if step_first:
            optimizer.step()
            loss.backward()
        else:
            loss.backward()
            if zero_grad == "between":
                optimizer.zero_grad()
            optimizer.step()
        if scheduler is not None and schedule == "batch":
            scheduler.step()
        losses.append(loss if result == "tensor" else loss.item())
    if scheduler is not None and schedule == "epoch":
        scheduler.step()
    if result == "sum":
        return sum(losses)
    if result == "last":
        return losses[-1]
    return sum(losses) / len(losses)


def _train_by_hand(model, batches, optimizer, scheduler=None):
    """Right: a loss module, zero_grad(set_to_none=False) after each step, np.mean."""
    criterion = nn.CrossEntropyLoss()
    model.train()
    losses = []
    for inputs, labels in batches:
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)
        if scheduler:
            scheduler.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def _train_running(model, batches, optimizer, scheduler=None):
    """Right: log-softmax and NLL (the same as cross-entropy), a running sum and a step count."""
    model.train(True)
    running, steps = 0.0, 0
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = F.nll_loss(F.log_softmax(model(x), dim=1), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        running, steps = running + loss.item(), steps + 1
    return running / steps


def _evaluate(model, batches, *, eval_mode=True, no_grad=True, loss_over="examples",
              accuracy="float", accuracy_over="examples", swap=False):
    """A learner's evaluate_epoch: right by default."""
    if eval_mode:
        model.eval()
    total, correct, count, batch_losses, batch_accuracies = 0.0, 0, 0, [], []
    with torch.no_grad() if no_grad else contextlib.nullcontext():
        for x, y in batches:
            logits = model(x)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            batch_losses.append(F.cross_entropy(logits, y).item())
            hits = (logits.argmax(1) == y).sum()
            correct += hits if accuracy == "tensor" else hits.item()
            batch_accuracies.append(hits.item() / len(y))
            count += len(y)
    loss = {"examples": total / count, "total": total,
            "batches": sum(batch_losses) / len(batch_losses)}[loss_over]
    acc = correct / count if accuracy_over == "examples" else float(np.mean(batch_accuracies))
    return (acc, loss) if swap else (loss, acc)


@torch.no_grad()
def _evaluate_at_once(model, batches):
    """Right: every batch's logits first, then one loss and one accuracy over all examples."""
    model.eval()
    outputs = [(model(x), y) for x, y in batches]
    logits, labels = torch.cat([o for o, _ in outputs]), torch.cat([y for _, y in outputs])
    return F.cross_entropy(logits, labels).item(), (logits.argmax(1) == labels).float().mean().item()


def _evaluate_inference_mode(model, batches):
    """Right: torch.inference_mode, the batch mean times the batch size."""
    model.eval()
    loss_sum, hits, seen = 0.0, 0, 0
    with torch.inference_mode():
        for x, y in batches:
            out = model(x)
            loss_sum += float(F.cross_entropy(out, y)) * y.numel()
            hits += int((out.argmax(dim=-1) == y).sum())
            seen += y.numel()
    return loss_sum / seen, hits / seen


def _temporal_w(s, p, axis=1, gate="softmax", relu=True, bias=True, transpose=True,
                factor=False, stable=True):
    """A learner's temporal_weights: right by default, each argument one way to get it wrong."""
    b, c, t = s.shape
    z = s.transpose(0, 2, 1) if transpose else s.reshape(b, t, c)
    h = z @ p["w1"].T + (p["b1"] if bias else 0)
    e = (np.maximum(h, 0) if relu else h) @ p["w2"].T + p["b2"]           # (B, T, 1)
    if gate == "sigmoid":
        a = functional.sigmoid(e[..., 0])
    elif gate == "singleton":                    # softmax over the score's axis of size 1
        a = functional.softmax(e, axis=-1)[..., 0]
    elif stable:
        a = functional.softmax(e[..., 0], axis=axis)
    else:
        ex = np.exp(e[..., 0])
        a = ex / ex.sum(axis=axis, keepdims=True)
    return a * t if factor else a


def _temporal_w_einsum(s, p):
    """Right: einsum over the channels, SciPy's softmax over the frames."""
    h = np.maximum(np.einsum("bct,hc->bth", s, p["w1"]) + p["b1"], 0)
    return scipy.special.softmax(h @ p["w2"][0] + p["b2"][0], axis=1)


def _temporal_w_torch(s, p):
    """Right: the same in PyTorch (float64), back to NumPy."""
    t = {k: torch.tensor(v) for k, v in p.items()}
    z = torch.tensor(s).permute(0, 2, 1)
    e = F.linear(F.relu(F.linear(z, t["w1"], t["b1"])), t["w2"], t["b2"]).squeeze(-1)
    return torch.softmax(e, dim=-1).numpy()


def _ta_module(squeeze=lambda x: x.mean((3, 4)), gate="softmax", dim=1, factor=True,
               relu=True, zero=("fc2",), bias=True, transpose=True, output="reweight"):
    """A learner's TemporalAttention: right by default, each argument one way to get it wrong."""
    class TemporalAttention(nn.Module):
        def __init__(self, channels, reduction=4):
            super().__init__()
            hidden = channels // reduction
            self.fc1 = nn.Linear(channels, hidden)
            self.fc2 = nn.Linear(hidden, 1, bias=bias)
            for name in zero:
                layer = getattr(self, name)
                nn.init.zeros_(layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)

        def forward(self, x):
            s = squeeze(x)                                                   # (B, C, T)
            s = s.transpose(1, 2) if transpose else s
            h = self.fc1(s)
            e = self.fc2(F.relu(h) if relu else h)                           # (B, T, 1)
            if gate == "sigmoid":
                a = torch.sigmoid(e[..., 0])
            elif dim == -1:                      # softmax over the score's axis of size 1
                a = torch.softmax(e, dim=-1)[..., 0]
            else:
                a = torch.softmax(e[..., 0], dim=dim)
            w = a * x.shape[2] if factor else a
            if output == "pool":                 # pooled over the frames, like Gao & Nevatia
                return (x * w[:, None, :, None, None]).mean(2)
            return x * w[:, None, :, None, None]

    return TemporalAttention


class _TAEinsum(nn.Module):
    """Right: adaptive pooling, einsum with the layers' weights, log-softmax then exp."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, 1)
        nn.init.constant_(self.fc2.weight, 0.0)
        nn.init.constant_(self.fc2.bias, 0.0)

    def forward(self, x):
        s = F.adaptive_avg_pool3d(x, (x.shape[2], 1, 1)).flatten(2)         # (B, C, T)
        h = F.relu(torch.einsum("bct,hc->bth", s, self.fc1.weight) + self.fc1.bias)
        e = F.linear(h, self.fc2.weight, self.fc2.bias)[..., 0]
        a = F.log_softmax(e, dim=1).exp()
        return torch.einsum("bcthw,bt->bcthw", x, a * x.shape[2])


class _TAPermute(nn.Module):
    """Right: flatten the space, permute, softmax over the last axis of (B, T), view."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, 1)
        self.fc2.weight.data.zero_()
        self.fc2.bias.data.zero_()

    def forward(self, x):
        b, c, t = x.shape[:3]
        s = x.flatten(3).mean(-1).permute(0, 2, 1)                           # (B, T, C)
        a = torch.softmax(self.fc2(torch.relu(self.fc1(s))).squeeze(-1), dim=-1)
        return x * (t * a).view(b, 1, t, 1, 1)


CORPUS = {
    "softmax": (
        [lambda x, axis=-1: scipy.special.softmax(x, axis=axis),
         lambda x, axis=-1: np.exp(x - scipy.special.logsumexp(x, axis=axis, keepdims=True))],
        [lambda x, axis=-1: np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True),
         lambda x, axis=-1: np.exp(x - x.max()) / np.exp(x - x.max()).sum(axis=axis,
                                                                           keepdims=True),
         lambda x, axis=-1: functional.softmax(x, axis=-1),
         lambda x, axis=-1: np.exp(x - x.max(axis=axis, keepdims=True)),
         lambda x, axis=-1: np.exp(x - x.max()) / np.exp(x - x.max()).sum(),
         lambda x, axis=-1: functional.softmax(x, axis=axis).astype(np.float32)]),
    "center_surround": (
        [lambda c, s: np.abs(saliency.upsample(s, c.shape) - c)],
        [lambda c, s: c - saliency.upsample(s, c.shape),
         lambda c, s: (c - saliency.upsample(s, c.shape)) ** 2,
         lambda c, s: np.abs(c - np.resize(s, c.shape)),
         lambda c, s: np.abs(c - s.mean()),
         lambda c, s: np.abs(c - saliency.upsample(s, c.shape)).mean()]),
    "normalize_map": (
        [lambda m, M=1.0: _normalize(m, M)],
        [lambda m, M=1.0: _normalize(m, M, floor=0.0),
         lambda m, M=1.0: _normalize(m, M, drop_max=False),
         lambda m, M=1.0: _normalize(m, M, square=False),
         lambda m, M=1.0: _normalize(m, M, rescale=False),
         lambda m, M=1.0: _normalize(m, 1.0)]),
    "spectral_residual": (
        [lambda im: _spectral(im)],
        [lambda im: _spectral(im, log=False), lambda im: _spectral(im, square=False),
         lambda im: _spectral(im, size=5), lambda im: _spectral(im, mode="reflect"),
         lambda im: np.abs(np.fft.ifft2(np.exp(np.log(np.abs(np.fft.fft2(im)) + 1e-12)))) ** 2]),
    "se_forward": (
        [_torch_se, lambda x, p: x * functional.sigmoid(
            np.maximum(np.einsum("bc,rc->br", x.mean((2, 3)), p["w1"]) + p["b1"], 0)
            @ p["w2"].T + p["b2"])[..., None, None]],
        [lambda x, p: _se(x, p, pool=np.max), lambda x, p: _se(x, p, gate=lambda a: a),
         lambda x, p: _se(x, p, gate=lambda a: functional.softmax(a, axis=1)),
         lambda x, p: _se(x, p, bias=False), lambda x, p: _se(x, p, relu=False),
         lambda x, p: _se(x, p, pool=np.sum)]),
    "se_backward": (
        [_torch_se_backward],
        [lambda d, x, p: _se_backward_with(d, x, p, lambda dx, g, x_: (
            d * R.se_forward(x_, p)[1]["s"][:, :, None, None], g)),
         lambda d, x, p: _se_backward_with(d, x, p, lambda dx, g, x_: (
            dx, dict(g, w1=g["w1"].T))),
         lambda d, x, p: _se_backward_with(d, x, p, lambda dx, g, x_: (
            dx, dict(g, b1=g["b1"] * 2))),
         lambda d, x, p: _se_backward_with(d, x, p, lambda dx, g, x_: (dx * 1.0001, g)),
         lambda d, x, p: _se_backward_with(d, x, p, lambda dx, g, x_: (
            dx, {k: v for k, v in g.items() if k != "b2"})),
         lambda d, x, p: _se_backward_with(d, x, p, lambda dx, g, x_: (g, dx))]),
    "channel_attention": (
        [lambda x, p: x * functional.sigmoid(
            (np.maximum(np.stack([x.mean((2, 3)), x.max((2, 3))]) @ p["w1"].T + p["b1"], 0)
             @ p["w2"].T + p["b2"]).sum(0))[..., None, None]],
        [lambda x, p: _cbam_channel(x, p, pools=(np.mean,)),
         lambda x, p: _cbam_channel(x, p, pools=(np.max,)),
         lambda x, p: _cbam_channel(x, p, combine="mean_of_gates"),
         lambda x, p: _se(x, p),
         lambda x, p: _cbam_channel(x, p, pools=(np.mean, np.min))]),
    "spatial_attention": (
        [_torch_spatial],
        [lambda x, p: _spatial(x, p, order=("max", "mean")),
         lambda x, p: _spatial(x, p, gate=lambda a: a),
         lambda x, p: _spatial(x, p, order=("sum", "max")),
         lambda x, p: _spatial(x, p, order=("mean", "mean")),
         lambda x, p: _spatial(x, p, gate=lambda a: functional.softmax(a, axis=-1))]),
    "se_overhead": (
        [lambda b, c, r: int(sum(n * (2 * ci * (ci // r) + ci // r + ci)
                                 for n, ci in zip(b, c, strict=True)))],
        [lambda b, c, r: _overhead(b, c, r, biases=False),
         lambda b, c, r: _overhead(b, c, r, both=False),
         lambda b, c, r: _overhead((1,) * len(b), c, r),
         lambda b, c, r: sum(2 * ci * ci / r for ci in c),
         lambda b, c, r: np.array([_overhead((n,), (ci,), r) for n, ci in zip(b, c,
                                                                               strict=True)]),
         lambda b, c, r: None]),
    "attention_in_box": (
        [lambda m, b, s: np.array([_in_box(m[i:i + 1], b[i:i + 1], s)[0]
                                   for i in range(len(m))])],
        [lambda m, b, s: _in_box(m, b, s, normalise=False),
         lambda m, b, s: _in_box(m, b, s, scale=False),
         lambda m, b, s: (m * datasets.box_mask(b, m.shape[1:], s)).mean(axis=(1, 2)),
         lambda m, b, s: float(_in_box(m, b, s).mean()),
         lambda m, b, s: 1 - _in_box(m, b, s)]),
    "nlmeans_weights": (
        [lambda d2, h, sigma=0.0: np.exp(-np.clip(d2 - 2 * sigma ** 2, 0, None) / h ** 2)],
        [lambda d2, h, sigma=0.0: np.exp(-(d2 - 2 * sigma ** 2) / h ** 2),
         lambda d2, h, sigma=0.0: np.exp(-d2 / h ** 2),
         lambda d2, h, sigma=0.0: np.exp(-np.maximum(d2 - 2 * sigma ** 2, 0) / h),
         lambda d2, h, sigma=0.0: np.exp(-np.maximum(d2 - sigma ** 2, 0) / h ** 2),
         lambda d2, h, sigma=0.0: np.exp(np.maximum(d2 - 2 * sigma ** 2, 0) / h ** 2)]),
    "embedded_attention": (
        [lambda t, p, g: scipy.special.softmax(np.einsum("bnd,bmd->bnm", t, p), axis=-1) @ g],
        [lambda t, p, g: _embedded(t, p, g, axis=1),
         lambda t, p, g: _embedded(t, p, g, stable=False),
         lambda t, p, g: t @ p.transpose(0, 2, 1) @ g,
         lambda t, p, g: _embedded(t, p, g, scale=1 / np.sqrt(t.shape[-1])),
         lambda t, p, g: _embedded(t, p, g) / g.shape[1]]),
    "dot_attention": (
        [lambda t, p, g: np.einsum("bnd,bmd,bme->bne", t, p, g) / p.shape[1]],
        [lambda t, p, g: t @ p.transpose(0, 2, 1) @ g / t.shape[1],
         lambda t, p, g: _embedded(t, p, g),
         lambda t, p, g: t @ p.transpose(0, 2, 1) @ g,
         lambda t, p, g: t @ p.transpose(0, 2, 1) @ g / t.shape[-1],
         lambda t, p, g: t @ p.transpose(0, 2, 1) @ g / (p.shape[1] * t.shape[1])]),
    "max_pool_2x2": (
        [lambda x: np.maximum.reduce([x[..., i:x.shape[2] // 2 * 2:2, j:x.shape[3] // 2 * 2:2]
                                      for i in (0, 1) for j in (0, 1)])],
        [lambda x: x[..., :x.shape[2] // 2 * 2, :x.shape[3] // 2 * 2].reshape(
            *x.shape[:2], x.shape[2] // 2, 2, x.shape[3] // 2, 2).mean(axis=(3, 5)),
         lambda x: x[..., ::2, ::2],
         lambda x: x.reshape(*x.shape[:2], x.shape[2] // 2, 2, x.shape[3] // 2, 2).max(
             axis=(3, 5)),
         lambda x: x[..., :x.shape[2] // 2 * 2, :x.shape[3] // 2 * 2].reshape(
             *x.shape[:2], x.shape[2] // 2, 2, x.shape[3] // 2, 2).max(axis=(2, 4)),
         lambda x: x[..., :x.shape[2] // 2, :x.shape[3] // 2]]),
    "tiled_attention": (
        [_tiled, _tiled_two_pass],
        [partial(_tiled, rescale_sum=False), partial(_tiled, rescale_out=False),
         partial(_tiled, tail=False), partial(_tiled, running=False),
         partial(_tiled, per_tile=True),
         lambda q, k, v, tile=64: R.embedded_attention(q, k, v)[0],          # no tiles at all
         lambda q, k, v, tile=64: _tiled(q, k, v, tile) * 1.0 + 0.0 * np.zeros(
             (q.shape[0], q.shape[1], k.shape[1])).sum()]),                  # a full matrix
    "NonLocal": (
        [_nl_module(), _NonLocalSDPA],
        [_nl_module(scale_by=lambda ci: 1.0),                           # scale ignored
         _nl_module(scale_by=lambda ci: (2 * ci) ** -0.5),              # sqrt(C), not sqrt(C_i)
         _nl_module(softmax_dim=1),                                     # over the queries
         _nl_module(pool_time=True),                                    # pools time as well
         _nl_module(residual=False),
         _nl_module(zero=()),                                           # not the identity
         _nl_module(zero=("bn", "w_z")),                                # a dead block
         _nl_module(zero=("w_z",)),                                     # identity, wrong weight
         _nl_module(reshape="plain"),
         _nl_module(shared_theta_phi=True),
         _nl_module(pool_queries=True)]),
    "top_components": (
        [_svd_pca],
        [lambda x, k: _pca(x, k, centre=False), lambda x, k: _pca(x, k, order="asc"),
         lambda x, k: _pca(x, k, ddof=0), lambda x, k: _pca(x, k, signs=False),
         lambda x, k: (lambda c, v: (c.T, v))(*_pca(x, k))]),
    "orthogonality_penalty": (
        [_torch_ortho, lambda w: _ortho(w)],
        [lambda w: _ortho(w, normalise=False), lambda w: _ortho(w, diagonal=True),
         lambda w: _ortho(w, power=1),
         lambda w: (lambda u: u @ u.T - np.eye(len(w)))(
             w / np.linalg.norm(w, axis=1, keepdims=True)) ** 2,
         lambda w: _ortho(w) / 2,
         lambda w: torch.tensor([_ortho(w)])]),
    "InteractionAware": (
        [_ia_module(), _IAEinsum, _IALinear],
        [_ia_module(softmax_over="maps"),                                # softmax across K
         _ia_module(gate="sigmoid"),                                     # a gate, not a softmax
         _ia_module(bias=False),                                         # score.bias never used
         _ia_module(layout="BCK"),                                       # pooled transposed
         _ia_module(pool="mean"),                                        # plain average pooling
         _ia_module(detach=True),                                        # no gradient to score
         _ia_module(pool="normalised"),                                  # L2-normalised weights
         _ia_module(flatten=False)]),                                    # softmax over W only
    "affinity_mask": (
        [_mask_kron],
        [lambda t, h, w, a: _mask_kron(t, h, w, {"space": "time", "time": "space"}.get(a, a)),
         lambda t, h, w, a: _mask_kron(t, h, w, a).astype(int),
         lambda t, h, w, a: np.asmatrix(_mask_kron(t, h, w, a)),
         lambda t, h, w, a: _mask_kron(t, h, w, a) if a != "spacetime" else np.eye(
             t * h * w, dtype=bool),
         lambda t, h, w, a: _mask_kron(t, h, w, a).tolist(),
         lambda t, h, w, a: torch.tensor(_mask_kron(t, h, w, a))]),
    "eca_gate": (
        [lambda x, w: functional.sigmoid(np.stack([np.convolve(r, w[::-1], mode="same")
                                                   for r in x.mean(axis=(2, 3))]))],
        [lambda x, w: _eca(x, w, flip=True), lambda x, w: _eca(x, w, gate=False),
         lambda x, w: _eca(x, w, pad="causal"),
         lambda x, w: functional.sigmoid(x.mean(axis=(2, 3)) * w.sum()),
         lambda x, w: functional.sigmoid(np.stack([np.convolve(r, w, mode="valid")
                                                   for r in x.mean(axis=(2, 3))]))]),
    "GlobalContext": (
        [_gc_module(), _GCEinsum, _GCOfficial],
        [_gc_module(pool="channels"),                                   # softmax over channels
         _gc_module(pool="batch"),                                      # softmax over the batch
         _gc_module(pool="mean"),                                       # SE's average pooling
         _gc_module(skip_norm=True),                                    # LayerNorm left out
         _gc_module(norm="batch"),                                      # BatchNorm, not LayerNorm
         _gc_module(fuse="multiply"),                                   # SE's fusion
         _gc_module(fuse="gate"),                                       # sigmoid gate, multiply
         _gc_module(zero=()),                                           # not the identity
         _gc_module(zero=("last", "first")),                            # a dead transform
         _gc_module(fuse="multiply", zero=()),                          # multiply, trained weights
         _gc_module(names=("conv_mask", "channel_add_conv")),           # the authors' names
         ]),
    "ECA": (
        [_eca_module(), _ECAOfficial, _ECAFunctional],
        [_eca_module(bias=True),
         _eca_module(pad="causal"),                                     # window shifted by k // 2
         _eca_module(pad="none"),                                       # C - k + 1 outputs
         _eca_module(kernel=lambda c, k: k or _eca_k(c, how="no_odd")),  # k not made odd
         _eca_module(kernel=lambda c, k: k or _eca_k(c, how="round")),
         _eca_module(kernel=lambda c, k: k or _eca_k(c, how="natural_log")),
         _eca_module(kernel=lambda c, k: _eca_k(c)),                    # kernel_size ignored
         _eca_module(gate=lambda a: a),                                 # sigmoid missing
         _eca_module(gate=lambda a: torch.softmax(a, dim=-1)),          # softmax over channels
         _eca_module(squeeze=lambda x: x.amax((2, 3))),                 # max, not average
         ]),
    "SqueezeExcitation": (
        [_se_module(squeeze=lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1)),
         _se_module(squeeze=lambda x: x.flatten(2).mean(-1),
                    scale=lambda x, s: x * s.view(*s.shape, 1, 1)),
         _SEModules],
        [_se_module(gate=lambda a: a),                                   # forgot the sigmoid
         _se_module(squeeze=lambda x: x.amax((2, 3))),                   # max, not mean
         _se_module(squeeze=lambda x: x.mean(2)),                        # mean over H only
         _se_module(squeeze=lambda x: x.mean((0, 2, 3)),                 # batch elements mix
                    scale=lambda x, s: x * s.view(1, -1, 1, 1)),
         _se_module(squeeze=lambda x: x.reshape(*x.shape[:2], x.shape[2] * x.shape[2]).mean(-1)),
         _se_module(scale=lambda x, s: x * s.reshape(x.shape[1], x.shape[0], 1, 1).transpose(0, 1)),
         _se_module(hidden=lambda c, r: c * r),                          # C * r hidden units
         _se_module(names=("squeeze", "excite")),                        # other attribute names
         _se_module(bias=False),
         _se_module(gate=lambda a: torch.softmax(a, dim=1)),
         _se_module(gate=lambda a: torch.sigmoid(a).detach()),           # gradients stop here
         _SEConv, _SEInPlace]),
    "ChannelAttention": (
        [_ca_module(pools=(lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1),
                           lambda x: F.adaptive_max_pool2d(x, 1).flatten(1))),
         _ca_module(pools=(_mean_hw, lambda x: x.flatten(2).max(-1).values)),
         _ca_module(combine="stacked")],
        [_ca_module(shared=False),                                       # one MLP per branch
         _ca_module(pools=(_mean_hw,)),                                  # SE: average only
         _ca_module(pools=(_max_hw,)),
         _ca_module(combine="mean_of_gates"),
         _ca_module(combine="pool_first"),                               # MLP(avg + max)
         _ca_module(pools=(_mean_hw, lambda x: x.amax(2).mean(2))),      # max over H only
         _ca_module(relu_out=True)]),
    "SpatialAttention": (
        [_sa_module(padding=lambda k: "same"), _SAStack],
        [_sa_module(order=("max", "mean")),                              # the official code's order
         _sa_module(padding=lambda k: 0),
         _sa_module(padding=lambda k: k - 1),
         _sa_module(bias=False),
         _sa_module(order=("sum", "max")),
         _sa_module(gate=lambda a: a),
         _sa_module(fixed_kernel=7),                                     # kernel_size ignored
         _sa_module(gate=lambda a: torch.softmax(a.flatten(1), 1).view_as(a))]),
    "CBAM": (
        [_cbam_module(order="loop"), _CBAMFromLibrary],
        [_cbam_module(order="spatial-channel"),
         _cbam_module(order="sum"),
         _cbam_module(order="residual"),
         _cbam_module(order="unchained"),
         _cbam_module(names=("ca", "sa")),
         _cbam_module(spatial_argument=lambda reduction, kernel_size: reduction),
         _cbam_module(spatial_argument=lambda reduction, kernel_size: 7)]),
    "train_one_epoch": (
        [_train, _train_by_hand, _train_running],
        [partial(_train, zero_grad="never"),
         partial(_train, train_mode=False),
         partial(_train, step_first=True),
         partial(_train, schedule="never"),
         partial(_train, schedule="epoch"),
         partial(_train, zero_grad="between"),
         partial(_train, result="sum"),
         partial(_train, result="last"),
         partial(_train, result="tensor")]),
    "evaluate_epoch": (
        [_evaluate, _evaluate_at_once, _evaluate_inference_mode],
        [partial(_evaluate, eval_mode=False),
         partial(_evaluate, no_grad=False),
         partial(_evaluate, loss_over="batches"),
         partial(_evaluate, loss_over="total"),
         partial(_evaluate, accuracy="tensor"),
         partial(_evaluate, accuracy_over="batches"),
         partial(_evaluate, swap=True)]),
    "temporal_weights": (
        [_temporal_w, _temporal_w_einsum, _temporal_w_torch],
        [partial(_temporal_w, axis=0),                                  # over the batch
         partial(_temporal_w, gate="sigmoid"),                          # a gate per frame
         partial(_temporal_w, gate="singleton"),                        # over the size-1 axis
         partial(_temporal_w, relu=False),
         partial(_temporal_w, bias=False),                              # b1 forgotten
         partial(_temporal_w, transpose=False),                         # reshape, not transpose
         partial(_temporal_w, factor=True),                             # the module's T here
         partial(_temporal_w, stable=False)]),                          # exp overflows
    "TemporalAttention": (
        [_ta_module(), _TAEinsum, _TAPermute],
        [_ta_module(gate="sigmoid"),                                    # a gate per frame
         _ta_module(dim=-1),                                            # over the size-1 axis
         _ta_module(dim=0),                                             # over the batch
         _ta_module(factor=False),                                      # forgot the factor T
         _ta_module(squeeze=lambda x: x.amax((3, 4))),                  # max, not mean
         _ta_module(relu=False),
         _ta_module(zero=()),                                           # not the identity
         _ta_module(zero=("fc1", "fc2")),                               # fc1 zeroed too
         _ta_module(bias=False),                                        # fc2 without its bias
         _ta_module(transpose=False),                                   # channels as frames
         _ta_module(output="pool")]),                                   # frames pooled away
}



def _notebook_corpora() -> dict:
    """The corpora kept beside this file, one per notebook (tests/corpus_nbNN.py, each with a
    dict CORPUS of the same form), merged into this one; a name defined twice is an error."""
    import importlib.util
    from pathlib import Path

    merged = {}
    for path in sorted(Path(__file__).parent.glob("corpus_nb*.py")):
        spec = importlib.util.spec_from_file_location(f"_corpus_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        twice = set(module.CORPUS) & (set(CORPUS) | set(merged))
        assert not twice, f"{path.name} defines {sorted(twice)} again"
        merged.update(module.CORPUS)
    return merged


CORPUS.update(_notebook_corpora())

def test_the_corpus_covers_every_exercise_with_enough_answers():
    assert set(CORPUS) == set(check.EXERCISES)
    for name, (right, wrong) in CORPUS.items():
        assert len(right) >= 1 and len(wrong) >= 5, name


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_plausible_bug_is_rejected_and_every_correct_alternative_accepted(name, capsys):
    right, wrong = CORPUS[name]
    checker = getattr(check, name)
    for number, fn in enumerate(right):
        assert checker(fn) is fn, f"{name}: correct alternative {number} was not accepted"
        assert f"✅ {name}" in capsys.readouterr().out
    for number, fn in enumerate(wrong):
        with np.errstate(all="ignore"), _no_warning_filter():
            try:
                checker(fn)
            except AssertionError as err:
                text = str(err)
            else:
                pytest.fail(f"{name}: wrong answer {number} was accepted")
        assert text.startswith(f"❌ {name} (test case "), (name, number, text[:200])
        assert "Idea:" in text and len(text.splitlines()[0]) < 400, (name, number)
        assert "tensor(" not in text and "array([" not in text, (name, number)  # no dumps


class _no_warning_filter:
    """Let a learner's numerical warnings happen (they are part of the bug being tested)."""

    def __enter__(self):
        import warnings
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._catch.__exit__(*exc)


def test_counting_and_denoising_references_are_the_ones_checked():
    assert check.se_overhead(counting.se_parameter_overhead) is counting.se_parameter_overhead
    assert check.nlmeans_weights(denoising.nlmeans_weights) is denoising.nlmeans_weights

# =============================================================================================
# Round two: a corpus written afresh for the PyTorch, training-loop and numerically delicate
# exercises, of kinds round one lacks: tensors made in forward on the CPU or in float32, state
# kept across forward passes or left in a tensor on the graph, settings of the whole notebook
# left changed, softmaxes that overflow in float32 or share one maximum among rows or batch
# elements, ECA's kernel-size rules at the channel counts where they part, tiles whose every
# score is very negative, and loops and evaluations that spoil the model or autograd.
# =============================================================================================

# --- SqueezeExcitation ------------------------------------------------------------------------


class _SEBase(nn.Module):
    """The exercise's layers; each subclass below writes its own forward."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def excite(self, z):
        return torch.sigmoid(self.fc2(F.relu(self.fc1(z))))


class _SEEinsum(nn.Module):
    """Right: einsum for the squeeze and the scaling, F.linear with the layers' own weights."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x):
        z = torch.einsum("bchw->bc", x) / (x.shape[2] * x.shape[3])
        a = F.relu(F.linear(z, self.fc1.weight, self.fc1.bias))
        s = torch.sigmoid(F.linear(a, self.fc2.weight, self.fc2.bias))
        return torch.einsum("bchw,bc->bchw", x, s)


class _SEAccumulate(_SEBase):
    """Right: the squeeze summed row by row into x.new_zeros (the input's dtype and device), a
    detached copy of the gate kept for plotting, a call counter that changes nothing."""

    def __init__(self, channels, reduction=16):
        super().__init__(channels, reduction)
        self.calls, self.last_gate = 0, None

    def forward(self, x):
        self.calls += 1
        z = x.new_zeros(x.shape[:2])
        for i in range(x.shape[2]):
            z = z + x[:, :, i].sum(-1)
        s = self.excite(z / (x.shape[2] * x.shape[3]))
        self.last_gate = s.detach()
        return x * s.unsqueeze(-1).unsqueeze(-1)


class _SEAddmm(_SEBase):
    """Right: torch.addmm with the transposed weights, the sigmoid written out, a ones tensor
    made like x (torch.ones_like) to broadcast the gate."""

    def forward(self, x):
        z = torch.mean(x, dim=[-1, -2])
        a = torch.addmm(self.fc1.bias, z, self.fc1.weight.t()).clamp(min=0)
        s = 1 / (1 + torch.exp(-torch.addmm(self.fc2.bias, a, self.fc2.weight.t())))
        return x * (torch.ones_like(x) * s[:, :, None, None])


class _SEZerosOnCPU(_SEBase):
    """Wrong: the squeeze accumulated in torch.zeros(..., dtype=x.dtype), made on the CPU."""

    def forward(self, x):
        z = torch.zeros(x.shape[0], x.shape[1], dtype=x.dtype)
        for i in range(x.shape[2]):
            z = z + x[:, :, i].sum(-1)
        return x * self.excite(z / (x.shape[2] * x.shape[3]))[:, :, None, None]


class _SEFloatCount(_SEBase):
    """Wrong: divides by torch.tensor([H * W]).float(), a float32 tensor made in forward."""

    def forward(self, x):
        z = x.sum((2, 3)) / torch.tensor([x.shape[2] * x.shape[3]]).float()
        return x * self.excite(z)[:, :, None, None]


class _SEKeepsGate(_SEBase):
    """Wrong: keeps the gate as an attribute, still attached to the graph."""

    def forward(self, x):
        s = self.excite(x.mean((2, 3)))
        self.last_gate = s
        return x * s[:, :, None, None]


class _SECachedGate(_SEBase):
    """Wrong: computes the gate once and reuses its detached copy on later calls."""

    def __init__(self, channels, reduction=16):
        super().__init__(channels, reduction)
        self.cache = None

    def forward(self, x):
        if self.cache is None or self.cache.shape[0] != x.shape[0]:
            self.cache = self.excite(x.mean((2, 3))).detach()
        return x * self.cache[:, :, None, None]


class _SEWarmUp(_SEBase):
    """Wrong: a call counter sharpens the gate as calls go by (a 'temperature warm-up')."""

    def __init__(self, channels, reduction=16):
        super().__init__(channels, reduction)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        t = 1 + 0.1 * (self.calls - 1)
        s = torch.sigmoid(t * self.fc2(F.relu(self.fc1(x.mean((2, 3))))))
        return x * s[:, :, None, None]


class _SERunningGate(_SEBase):
    """Wrong: like batch norm, a running average of the gate replaces it in evaluation mode."""

    def __init__(self, channels, reduction=16):
        super().__init__(channels, reduction)
        self.running_gate = None

    def forward(self, x):
        if self.training or self.running_gate is None:
            s = self.excite(x.mean((2, 3)))
            mean = s.detach().mean(0, keepdim=True)
            self.running_gate = mean if self.running_gate is None else (
                0.9 * self.running_gate + 0.1 * mean)
        else:
            s = self.running_gate
        return x * s[:, :, None, None]


class _SERunningGateBuffer(_SEBase):
    """Wrong: as _SERunningGate, the running gate a non-persistent buffer (it follows .to and
    .double(), and stays out of the state dict): evaluation mode uses it for every input."""

    def __init__(self, channels, reduction=16):
        super().__init__(channels, reduction)
        self.register_buffer("running_gate", None, persistent=False)

    def forward(self, x):
        if self.training or self.running_gate is None:
            s = self.excite(x.mean((2, 3)))
            mean = s.detach().mean(0, keepdim=True)
            self.running_gate = mean if self.running_gate is None else (
                0.9 * self.running_gate + 0.1 * mean)
        else:
            s = self.running_gate
        return x * s[:, :, None, None]


class _SEGradFollowsMode(_SEBase):
    """Wrong: torch.set_grad_enabled(self.training) in forward, left as it set it."""

    def forward(self, x):
        torch.set_grad_enabled(self.training)
        return x * self.excite(x.mean((2, 3)))[:, :, None, None]


class _SETracemalloc(_SEBase):
    """Wrong: starts tracemalloc in forward to measure the block's memory, never stops it."""

    def forward(self, x):
        if not tracemalloc.is_tracing():
            tracemalloc.start()
        return x * self.excite(x.mean((2, 3)))[:, :, None, None]


class _SESqueezeNoGrad(_SEBase):
    """Wrong: the squeeze under torch.no_grad(): x's gradient loses its second term."""

    def forward(self, x):
        with torch.no_grad():
            z = x.mean((2, 3))
        return x * self.excite(z)[:, :, None, None]


class _SESum(_SEBase):
    """Wrong: squeezes with the sum over H and W, not the mean."""

    def forward(self, x):
        return x * self.excite(x.sum((2, 3)))[:, :, None, None]


class _SEDefaultDtype(_SEBase):
    """Wrong: sets the default dtype to float64 in __init__ 'for precision'."""

    def __init__(self, channels, reduction=16):
        torch.set_default_dtype(torch.float64)
        super().__init__(channels, reduction)

    def forward(self, x):
        return x * self.excite(x.mean((2, 3)))[:, :, None, None]


class _SEThreads(_SEBase):
    """Wrong: torch.set_num_threads(1) in forward 'for reproducible sums'."""

    def forward(self, x):
        torch.set_num_threads(torch.get_num_threads() % 2 + 1)   # 1 <-> 2: always a change
        return x * self.excite(x.mean((2, 3)))[:, :, None, None]


class _SEDefaultReduction(_SEBase):
    """Wrong: reduction defaults to 4, not 16."""

    def __init__(self, channels, reduction=4):
        super().__init__(channels, reduction)

    def forward(self, x):
        return x * self.excite(x.mean((2, 3)))[:, :, None, None]


class _SECpuOutput(_SEBase):
    """Wrong: returns out.cpu() 'for plotting': on a GPU the block's output leaves the device."""

    def forward(self, x):
        return (x * self.excite(x.mean((2, 3)))[:, :, None, None]).cpu()


# --- ChannelAttention -------------------------------------------------------------------------


class _CABase(_SEBase):
    def mlp(self, z):
        return self.fc2(F.relu(self.fc1(z)))


class _CABatchCat(_CABase):
    """Right: both descriptors through the MLP in one pass, stacked along the batch."""

    def forward(self, x):
        b = x.shape[0]
        out = self.mlp(torch.cat([x.mean((2, 3)), x.amax((2, 3))], dim=0))
        s = torch.sigmoid(out[:b] + out[b:])
        return x * s[:, :, None, None]


class _CAPooling(_CABase):
    """Right: F.avg_pool2d and F.max_pool2d over the whole map, F.linear with the weights."""

    def forward(self, x):
        b, c = x.shape[:2]

        def mlp(z):
            a = F.relu(F.linear(z, self.fc1.weight, self.fc1.bias))
            return F.linear(a, self.fc2.weight, self.fc2.bias)

        avg = F.avg_pool2d(x, x.shape[2:]).flatten(1)
        mx = F.max_pool2d(x, x.shape[2:]).flatten(1)
        return x * torch.sigmoid(mlp(avg) + mlp(mx)).view(b, c, 1, 1)


class _CAEinsum(_CABase):
    """Right: the MLP as einsums with the layers' weights, maxima by torch.max over a flat map,
    the gate's logits summed into torch.zeros made on the input's device with its dtype."""

    def forward(self, x):
        flat = x.flatten(2)
        logits = torch.zeros(x.shape[:2], dtype=x.dtype, device=x.device)
        for z in (flat.mean(-1), torch.max(flat, dim=-1).values):
            h = torch.einsum("bc,hc->bh", z, self.fc1.weight) + self.fc1.bias
            logits = logits + torch.einsum("bh,ch->bc", F.relu(h), self.fc2.weight) + self.fc2.bias
        return x * torch.sigmoid(logits)[..., None, None]


class _CAZerosOnCPU(_CABase):
    """Wrong: the branches summed into torch.zeros(..., dtype=x.dtype), made on the CPU."""

    def forward(self, x):
        logits = torch.zeros(x.shape[0], x.shape[1], dtype=x.dtype)
        for z in (x.mean((2, 3)), x.amax((2, 3))):
            logits = logits + self.mlp(z)
        return x * torch.sigmoid(logits)[:, :, None, None]


class _CAZerosFloat32(_CABase):
    """Wrong: the branches summed into torch.zeros(..., device=x.device), a float32 tensor."""

    def forward(self, x):
        logits = torch.zeros(x.shape[0], x.shape[1], device=x.device)
        logits = logits + self.mlp(x.mean((2, 3))) + self.mlp(x.amax((2, 3)))
        return x * torch.sigmoid(logits)[:, :, None, None]


class _CAKeepsBranches(_CABase):
    """Wrong: keeps both branches' outputs as attributes, attached to the graph."""

    def forward(self, x):
        self.avg_out, self.max_out = self.mlp(x.mean((2, 3))), self.mlp(x.amax((2, 3)))
        return x * torch.sigmoid(self.avg_out + self.max_out)[:, :, None, None]


class _CAMaxNoGrad(_CABase):
    """Wrong: the max branch under torch.no_grad() ('max has no useful gradient')."""

    def forward(self, x):
        with torch.no_grad():
            mx = x.amax((2, 3))
        return x * torch.sigmoid(self.mlp(x.mean((2, 3))) + self.mlp(mx))[:, :, None, None]


class _CASumOfGates(_CABase):
    """Wrong: one sigmoid per branch, added (the gate reaches 2)."""

    def forward(self, x):
        s = torch.sigmoid(self.mlp(x.mean((2, 3)))) + torch.sigmoid(self.mlp(x.amax((2, 3))))
        return x * s[:, :, None, None]


class _CAMaxOfBranches(_CABase):
    """Wrong: the larger of the two branches, not their sum."""

    def forward(self, x):
        s = torch.sigmoid(torch.maximum(self.mlp(x.mean((2, 3))), self.mlp(x.amax((2, 3)))))
        return x * s[:, :, None, None]


class _CASeterr(_CABase):
    """Wrong: np.seterr(all='raise') in __init__ to catch overflow, never restored."""

    def __init__(self, channels, reduction=16):
        super().__init__(channels, reduction)
        np.seterr(all="raise")

    def forward(self, x):
        s = torch.sigmoid(self.mlp(x.mean((2, 3))) + self.mlp(x.amax((2, 3))))
        return x * s[:, :, None, None]


class _CADeterministic(_CABase):
    """Wrong: torch.use_deterministic_algorithms(True) in __init__, for the whole notebook."""

    def __init__(self, channels, reduction=16):
        super().__init__(channels, reduction)
        torch.use_deterministic_algorithms(True)

    def forward(self, x):
        s = torch.sigmoid(self.mlp(x.mean((2, 3))) + self.mlp(x.amax((2, 3))))
        return x * s[:, :, None, None]


class _CARunningMax(_CABase):
    """Wrong: the max descriptor smoothed by a running average across calls."""

    def __init__(self, channels, reduction=16):
        super().__init__(channels, reduction)
        self.running_max = None

    def forward(self, x):
        mx = x.amax((2, 3))
        if self.running_max is not None and self.running_max.shape == mx.shape:
            mx = 0.9 * self.running_max + 0.1 * mx
        self.running_max = mx.detach()
        return x * torch.sigmoid(self.mlp(x.mean((2, 3))) + self.mlp(mx))[:, :, None, None]


class _CASumPool(_CABase):
    """Wrong: the average branch squeezes with the sum over H and W."""

    def forward(self, x):
        s = torch.sigmoid(self.mlp(x.sum((2, 3))) + self.mlp(x.amax((2, 3))))
        return x * s[:, :, None, None]


# --- SpatialAttention -------------------------------------------------------------------------


def _pooled(x):
    return torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)


class _SABase(nn.Module):
    def __init__(self, kernel_size=7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)


class _SAFunctional(_SABase):
    """Right: F.conv2d with the layer's weight, bias and padding; mean as sum / C, max as
    .max(dim=1, keepdim=True)[0]."""

    def forward(self, x):
        mean = x.sum(1, keepdim=True) / x.shape[1]
        mx = x.max(dim=1, keepdim=True)[0]
        logits = F.conv2d(torch.cat([mean, mx], 1), self.conv.weight, self.conv.bias,
                          padding=self.conv.padding)
        return x * torch.sigmoid(logits)


class _SAPadFirst(_SABase):
    """Right: the zeros padded with F.pad, then an unpadded F.conv2d; the map expanded."""

    def forward(self, x):
        p = self.conv.kernel_size[0] // 2
        logits = F.conv2d(F.pad(_pooled(x), (p, p, p, p)), self.conv.weight, self.conv.bias)
        return torch.sigmoid(logits).expand_as(x) * x


class _SANewZerosPad(_SABase):
    """Right: the padding written by hand into x.new_zeros (the input's dtype and device)."""

    def forward(self, x):
        b, _, h, w = x.shape
        p = self.conv.kernel_size[0] // 2
        padded = x.new_zeros(b, 2, h + 2 * p, w + 2 * p)
        padded[:, :, p:p + h, p:p + w] = _pooled(x)
        return x * torch.sigmoid(F.conv2d(padded, self.conv.weight, self.conv.bias))


class _SAZerosPadOnCPU(_SABase):
    """Wrong: the padding written into torch.zeros(..., dtype=x.dtype), made on the CPU."""

    def forward(self, x):
        b, _, h, w = x.shape
        p = self.conv.kernel_size[0] // 2
        padded = torch.zeros(b, 2, h + 2 * p, w + 2 * p, dtype=x.dtype)
        padded[:, :, p:p + h, p:p + w] = _pooled(x)
        return x * torch.sigmoid(F.conv2d(padded, self.conv.weight, self.conv.bias))


class _SAOnesOnCPU(_SABase):
    """Wrong: a ones map made with torch.ones(..., dtype=x.dtype), on the CPU, as '1 + m'."""

    def forward(self, x):
        m = torch.sigmoid(self.conv(_pooled(x)))
        ones = torch.ones(x.shape[0], 1, x.shape[2], x.shape[3], dtype=x.dtype)
        return x * (ones * m)


class _SAZerosPadFloat32(_SABase):
    """Wrong: the padding written into torch.zeros(..., device=x.device), float32."""

    def forward(self, x):
        b, _, h, w = x.shape
        p = self.conv.kernel_size[0] // 2
        padded = torch.zeros(b, 2, h + 2 * p, w + 2 * p, device=x.device)
        padded[:, :, p:p + h, p:p + w] = _pooled(x)
        return x * torch.sigmoid(F.conv2d(padded, self.conv.weight, self.conv.bias))


class _SAReflect(nn.Module):
    """Wrong: reflection padding instead of zeros."""

    def __init__(self, kernel_size=7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2,
                              padding_mode="reflect")

    def forward(self, x):
        return x * torch.sigmoid(self.conv(_pooled(x)))


class _SADefaultKernel3(_SABase):
    """Wrong: kernel_size defaults to 3, not 7."""

    def __init__(self, kernel_size=3):
        super().__init__(kernel_size)

    def forward(self, x):
        return x * torch.sigmoid(self.conv(_pooled(x)))


class _SAKeepsMap(_SABase):
    """Wrong: keeps the attention map as an attribute, attached to the graph."""

    def forward(self, x):
        self.attention_map = torch.sigmoid(self.conv(_pooled(x)))
        return x * self.attention_map


class _SANoKeepdim(_SABase):
    """Wrong: pools without keepdim, so the cat along dim 1 stacks rows, not two maps."""

    def forward(self, x):
        return x * torch.sigmoid(self.conv(torch.cat([x.mean(1), x.amax(1)], dim=1)))


class _SAPooledNoGrad(_SABase):
    """Wrong: the pooling under torch.no_grad(): x's gradient loses the map's term."""

    def forward(self, x):
        with torch.no_grad():
            pooled = _pooled(x)
        return x * torch.sigmoid(self.conv(pooled))


class _SAAnomaly(_SABase):
    """Wrong: torch.autograd.set_detect_anomaly(True) in __init__ while debugging, left on."""

    def __init__(self, kernel_size=7):
        super().__init__(kernel_size)
        torch.autograd.set_detect_anomaly(True)

    def forward(self, x):
        return x * torch.sigmoid(self.conv(_pooled(x)))


class _SAFloat(_SABase):
    """Wrong: the pooled maps cast with .float() before the convolution."""

    def forward(self, x):
        return x * torch.sigmoid(self.conv(_pooled(x).float()))


class _SAMapOnly(_SABase):
    """Wrong: returns the attention map, not x scaled by it."""

    def forward(self, x):
        return torch.sigmoid(self.conv(_pooled(x)))


class _SAResidual(_SABase):
    """Wrong: x * (1 + map), a residual the exercise does not have."""

    def forward(self, x):
        return x * (1 + torch.sigmoid(self.conv(_pooled(x))))


# --- CBAM -------------------------------------------------------------------------------------

_CA, _SA = _CABatchCat, _SAFunctional        # the learner's own (right) classes


class _CBAMSequential(nn.Sequential):
    """Right: an nn.Sequential of the two named submodules (its forward chains them)."""

    def __init__(self, channels, reduction=16, kernel_size=7):
        super().__init__(OrderedDict(channel=_CA(channels, reduction),
                                     spatial=_SA(kernel_size)))


class _CBAMBase(nn.Module):
    def __init__(self, channels, reduction=16, kernel_size=7):
        super().__init__()
        self.channel = _CA(channels, reduction)
        self.spatial = _SA(kernel_size)


class _CBAMInline(_CBAMBase):
    """Right: both gates written out with the submodules' layers."""

    def forward(self, x):
        ca, sa = self.channel, self.spatial
        s = torch.sigmoid(ca.mlp(x.mean((2, 3))) + ca.mlp(x.amax((2, 3))))
        y = x * s[:, :, None, None]
        return y * torch.sigmoid(sa.conv(_pooled(y)))


class _CBAMSteps(_CBAMBase):
    """Right: one step per line, through the library's modules' types."""

    def forward(self, x):
        refined = self.channel(x)
        refined = self.spatial(refined)
        return refined


class _CBAMParallel(_CBAMBase):
    """Wrong: the spatial map is computed from x, not from the channel-refined tensor."""

    def forward(self, x):
        m = torch.sigmoid(self.spatial.conv(_pooled(x)))
        return self.channel(x) * m


class _CBAMTimesX(_CBAMBase):
    """Wrong: multiplies the refined tensor by x once more."""

    def forward(self, x):
        return x * self.spatial(self.channel(x))


class _CBAMDefaultKernel3(_CBAMBase):
    """Wrong: kernel_size defaults to 3."""

    def __init__(self, channels, reduction=16, kernel_size=3):
        super().__init__(channels, reduction, kernel_size)

    def forward(self, x):
        return self.spatial(self.channel(x))


class _CBAMDefaultReduction8(_CBAMBase):
    """Wrong: reduction defaults to 8."""

    def __init__(self, channels, reduction=8, kernel_size=7):
        super().__init__(channels, reduction, kernel_size)

    def forward(self, x):
        return self.spatial(self.channel(x))


class _CBAMKeepsRefined(_CBAMBase):
    """Wrong: keeps the channel-refined tensor as an attribute, attached to the graph."""

    def forward(self, x):
        self.refined = self.channel(x)
        return self.spatial(self.refined)


class _CBAMDefaultDtype(_CBAMBase):
    """Wrong: torch.set_default_dtype(torch.float64) in __init__."""

    def __init__(self, channels, reduction=16, kernel_size=7):
        torch.set_default_dtype(torch.float64)
        super().__init__(channels, reduction, kernel_size)

    def forward(self, x):
        return self.spatial(self.channel(x))


class _CBAMScaleOnCPU(_CBAMBase):
    """Wrong: a residual scale torch.ones(1, dtype=x.dtype), made on the CPU."""

    def forward(self, x):
        alpha = torch.ones(1, dtype=x.dtype)
        return alpha * self.spatial(self.channel(x))


class _CBAMScaleFloat32(_CBAMBase):
    """Wrong: a residual scale torch.tensor([1.0], device=x.device), float32."""

    def forward(self, x):
        alpha = torch.tensor([1.0], device=x.device)
        return alpha * self.spatial(self.channel(x))


class _CBAMWithSE(nn.Module):
    """Wrong: SqueezeExcitation as the channel attention (same fc1, fc2; no max branch)."""

    def __init__(self, channels, reduction=16, kernel_size=7):
        super().__init__()
        self.channel = modules.SqueezeExcitation(channels, reduction)
        self.spatial = _SA(kernel_size)

    def forward(self, x):
        return self.spatial(self.channel(x))


class _CBAMThreads(_CBAMBase):
    """Wrong: torch.set_num_threads(4) in __init__."""

    def __init__(self, channels, reduction=16, kernel_size=7):
        super().__init__(channels, reduction, kernel_size)
        torch.set_num_threads(4 if torch.get_num_threads() != 4 else 2)

    def forward(self, x):
        return self.spatial(self.channel(x))


# --- ECA --------------------------------------------------------------------------------------


def _eca_rule(rule):
    """An ECA whose k (when kernel_size is None) comes from ``rule(channels)``; the right
    forward. Each wrong rule below parts from the code listing's at C = 64, 1,024 or 6."""
    class ECA(nn.Module):
        def __init__(self, channels, kernel_size=None):
            super().__init__()
            k = kernel_size if kernel_size is not None else rule(channels)
            self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

        def forward(self, x):
            return x * torch.sigmoid(self.conv(x.mean((2, 3))[:, None]))[:, 0, :, None, None]

    return ECA


def _odd(t):
    return t if t % 2 else t + 1


def _psi(c):
    return (math.log2(c) + 1) / 2


class _ECABitLength(nn.Module):
    """Right: t from the bit length (floor of (log2 C + 1) / 2 without floats), t | 1 to make
    it odd; forward by unfold and einsum with the conv's weight."""

    def __init__(self, channels, kernel_size=None):
        super().__init__()
        k = kernel_size if kernel_size is not None else (channels.bit_length() // 2) | 1
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x):
        k = self.conv.weight.shape[-1]
        y = F.pad(x.mean((2, 3)), (k // 2, k // 2))
        a = torch.einsum("bck,k->bc", y.unfold(1, k, 1), self.conv.weight.view(-1))
        return x * torch.sigmoid(a)[:, :, None, None]


class _ECAZerosPadded(nn.Module):
    """Right: math.floor and k += 1 - k % 2; the padding made by torch.zeros with the input's
    dtype and device, then an unpadded F.conv1d."""

    def __init__(self, channels, kernel_size=None):
        super().__init__()
        t = math.floor((math.log2(channels) + 1) / 2)
        k = kernel_size if kernel_size is not None else t + 1 - t % 2
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x):
        b, p = x.shape[0], self.conv.weight.shape[-1] // 2
        pad = torch.zeros(b, 1, p, dtype=x.dtype, device=x.device)
        y = torch.cat([pad, x.mean((2, 3)).unsqueeze(1), pad], dim=2)
        return x * torch.sigmoid(F.conv1d(y, self.conv.weight)).squeeze(1)[..., None, None]


class _ECAPadOnCPU(_ECABitLength):
    """Wrong: the padding made by torch.zeros(..., dtype=x.dtype), on the CPU."""

    def forward(self, x):
        b, p = x.shape[0], self.conv.weight.shape[-1] // 2
        pad = torch.zeros(b, 1, p, dtype=x.dtype)
        y = torch.cat([pad, x.mean((2, 3)).unsqueeze(1), pad], dim=2)
        return x * torch.sigmoid(F.conv1d(y, self.conv.weight)).squeeze(1)[..., None, None]


class _ECAPadFloat32(_ECABitLength):
    """Wrong: the padding made by torch.zeros(..., device=x.device), float32 (cat promotes)."""

    def forward(self, x):
        b, p = x.shape[0], self.conv.weight.shape[-1] // 2
        pad = torch.zeros(b, 1, p, device=x.device)
        y = torch.cat([pad, x.mean((2, 3)).unsqueeze(1), pad], dim=2)
        return x * torch.sigmoid(F.conv1d(y, self.conv.weight)).squeeze(1)[..., None, None]


class _ECAKeepsGate(_ECABitLength):
    """Wrong: keeps the channel weights as an attribute, attached to the graph."""

    def forward(self, x):
        self.weights = torch.sigmoid(self.conv(x.mean((2, 3))[:, None]))[:, 0]
        return x * self.weights[:, :, None, None]


class _ECAThreads(_ECABitLength):
    """Wrong: torch.set_num_threads(1) in forward."""

    def forward(self, x):
        torch.set_num_threads(torch.get_num_threads() % 2 + 1)   # 1 <-> 2: always a change
        return x * torch.sigmoid(self.conv(x.mean((2, 3))[:, None]))[:, 0, :, None, None]


class _ECAArangeTaps(nn.Module):
    """Wrong: the conv's taps indexed by torch.arange(k).float() offsets (a float32 tensor)."""

    def __init__(self, channels, kernel_size=None):
        super().__init__()
        k = kernel_size if kernel_size is not None else (channels.bit_length() // 2) | 1
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x):
        k = self.conv.weight.shape[-1]
        offsets = torch.arange(k, device=x.device).float() - k // 2      # -p .. p
        y = F.pad(x.mean((2, 3)), (k // 2, k // 2))
        taps = [y[:, int(o) + k // 2:y.shape[1] - k // 2 + int(o)] for o in offsets]
        a = sum(w * t for w, t in zip(self.conv.weight.view(-1), taps, strict=True))
        return x * torch.sigmoid(a)[:, :, None, None]


class _ECASlicePadOnCPU(_ECABitLength):
    """Wrong: the padded sequence written by slice into torch.zeros(..., dtype=x.dtype), made on
    the CPU."""

    def forward(self, x):
        b, c = x.shape[:2]
        p = self.conv.weight.shape[-1] // 2
        y = torch.zeros(b, 1, c + 2 * p, dtype=x.dtype)
        y[:, 0, p:p + c] = x.mean((2, 3))
        return x * torch.sigmoid(F.conv1d(y, self.conv.weight))[:, 0, :, None, None]


# --- train_one_epoch --------------------------------------------------------------------------


def _train_closure(model, batches, optimizer, scheduler=None):
    """Right: optimizer.step(closure), the closure clearing, computing and back-propagating."""
    model.train()
    losses = []
    for x, y in batches:
        def closure(x=x, y=y):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            return loss
        losses.append(optimizer.step(closure).item())
        if scheduler is not None:
            scheduler.step()
    return sum(losses) / len(losses)


def _train_np_mean(model, batches, optimizer, scheduler=None):
    """Right: model.train(mode=True), detached loss tensors stacked, np.mean (an np.float64,
    which is a Python float)."""
    model.train(mode=True)
    losses = []
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if scheduler:
            scheduler.step()
        losses.append(loss.detach())
    return np.mean(torch.stack(losses).numpy())


def _train_running_mean(model, batches, optimizer, scheduler=None):
    """Right: enumerate from 1 and a running mean updated in place of a sum."""
    model.train()
    mean = 0.0
    for step, (x, y) in enumerate(batches, start=1):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        mean += (loss.item() - mean) / step
    return mean


def _train_base(model, batches, optimizer, scheduler=None):
    losses = []
    for x, y in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def _train_grad_off_after(model, batches, optimizer, scheduler=None):
    """Wrong: switches autograd off at the end 'as training is over', never back on."""
    model.train()
    mean = _train_base(model, batches, optimizer, scheduler)
    torch.set_grad_enabled(False)
    return mean


def _train_default_dtype(model, batches, optimizer, scheduler=None):
    """Wrong: sets the default dtype to float64 because the batches are float64."""
    torch.set_default_dtype(torch.float64)
    model.train()
    return _train_base(model, batches, optimizer, scheduler)


def _train_reseed(model, batches, optimizer, scheduler=None):
    """Wrong: torch.manual_seed(0) at the start 'for reproducibility': every epoch draws the
    same dropout masks."""
    torch.manual_seed(0)
    model.train()
    return _train_base(model, batches, optimizer, scheduler)


def _train_schedule_first(model, batches, optimizer, scheduler=None):
    """Wrong: the scheduler stepped before the optimiser."""
    model.train()
    losses = []
    for x, y in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if scheduler is not None:
            scheduler.step()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def _train_tensor_sum(model, batches, optimizer, scheduler=None):
    """Wrong: adds up the loss tensors (keeping every batch's graph alive), .item() at the end."""
    model.train()
    total = 0
    for x, y in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total = total + loss
    return total.item() / len(batches)


def _train_mode_late(model, batches, optimizer, scheduler=None):
    """Wrong: model.train() after the first batch (the first runs in evaluation mode)."""
    losses = []
    for x, y in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
        model.train()
    return sum(losses) / len(losses)


def _train_mode_not_called(model, batches, optimizer, scheduler=None):
    """Wrong: model.train without parentheses: the model stays in evaluation mode."""
    model.train  # noqa: B018
    return _train_base(model, batches, optimizer, scheduler)


def _train_example_mean(model, batches, optimizer, scheduler=None):
    """Wrong: the mean over examples (batch losses weighted by size), not over batches."""
    model.train()
    total, count = 0.0, 0
    for x, y in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total, count = total + loss.item() * len(y), count + len(y)
    return total / count


def _train_second_forward(model, batches, optimizer, scheduler=None):
    """Wrong: a second forward pass for the batch accuracy (batch norm and dropout run twice)."""
    model.train()
    losses, hits = [], 0
    for x, y in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        with torch.no_grad():
            hits += int((model(x).argmax(1) == y).sum())
        losses.append(loss.item())
    return sum(losses) / len(losses)


def _train_chdir(model, batches, optimizer, scheduler=None):
    """Wrong: os.chdir('..') to save a checkpoint next to the notebooks' folder."""
    model.train()
    mean = _train_base(model, batches, optimizer, scheduler)
    os.chdir("..")
    return mean


def _train_tracemalloc(model, batches, optimizer, scheduler=None):
    """Wrong: tracemalloc.start() to report the peak memory, never stopped."""
    tracemalloc.start()
    model.train()
    mean = _train_base(model, batches, optimizer, scheduler)
    print(f"peak {tracemalloc.get_traced_memory()[1]} bytes")
    return mean


def _train_softmax_ce(model, batches, optimizer, scheduler=None):
    """Wrong: softmax before F.cross_entropy, which applies log-softmax itself."""
    model.train()
    losses = []
    for x, y in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(F.softmax(model(x), dim=1), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def _train_clip(model, batches, optimizer, scheduler=None):
    """Wrong: gradient clipping (max norm 1) the exercise does not ask for."""
    model.train()
    losses = []
    for x, y in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def _train_anomaly(model, batches, optimizer, scheduler=None):
    """Wrong: torch.autograd.set_detect_anomaly(True) while debugging, left on."""
    torch.autograd.set_detect_anomaly(True)
    model.train()
    return _train_base(model, batches, optimizer, scheduler)


def _train_copy(model, batches, optimizer, scheduler=None):
    """Wrong: trains copy.deepcopy(model) 'to keep the original', with the original's optimiser."""
    model = copy.deepcopy(model)
    model.train()
    return _train_base(model, batches, optimizer, scheduler)


# --- evaluate_epoch ---------------------------------------------------------------------------


def _evaluate_grad_context(model, batches):
    """Right: model.train(False) and `with torch.set_grad_enabled(False):`, which restores."""
    model.train(False)
    total, hits, count = 0.0, 0, 0
    with torch.set_grad_enabled(False):
        for x, y in batches:
            logits = model(x)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            hits += (logits.argmax(dim=1) == y).sum().item()
            count += y.shape[0]
    return total / count, hits / count


def _evaluate_on_copy(model, batches):
    """Right: a copy.deepcopy of the model in eval mode, inside torch.no_grad(); NLL of the
    log-softmax, torch.eq."""
    evaluator = copy.deepcopy(model).eval()
    total, hits, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in batches:
            logits = evaluator(x)
            total += F.nll_loss(F.log_softmax(logits, dim=1), y, reduction="sum").item()
            hits += torch.eq(logits.argmax(1), y).sum().item()
            count += len(y)
    return total / count, hits / count


@torch.inference_mode()
def _evaluate_restores_mode(model, batches):
    """Right: the decorator form of inference_mode, and the model's mode put back after."""
    was_training = model.training
    model.eval()
    total, hits, count = 0.0, 0, 0
    for x, y in batches:
        logits = model(x)
        total += float(F.cross_entropy(logits, y, reduction="sum"))
        hits += int((logits.argmax(-1) == y).sum())
        count += len(y)
    model.train(was_training)
    return total / count, hits / count


def _evaluate_base(model, batches):
    total, hits, count = 0.0, 0, 0
    for x, y in batches:
        logits = model(x)
        total += F.cross_entropy(logits, y, reduction="sum").item()
        hits += (logits.argmax(1) == y).sum().item()
        count += len(y)
    return total / count, hits / count


def _evaluate_copy_with_grad(model, batches):
    """Wrong: evaluates a copy.deepcopy of the model without torch.no_grad()."""
    evaluator = copy.deepcopy(model).eval()
    return _evaluate_base(evaluator, batches)


def _evaluate_grad_off(model, batches):
    """Wrong: torch.set_grad_enabled(False) on its own, never switched back on."""
    model.eval()
    torch.set_grad_enabled(False)
    return _evaluate_base(model, batches)


def _evaluate_no_grad_statement(model, batches):
    """Wrong: torch.no_grad() as a statement, which switches nothing off."""
    model.eval()
    torch.no_grad()
    return _evaluate_base(model, batches)


def _evaluate_eval_not_called(model, batches):
    """Wrong: model.eval without parentheses: batch norm keeps updating its statistics."""
    model.eval  # noqa: B018
    with torch.no_grad():
        return _evaluate_base(model, batches)


def _evaluate_default_dtype(model, batches):
    """Wrong: torch.set_default_dtype(torch.float64) because the batches are float64."""
    torch.set_default_dtype(torch.float64)
    model.eval()
    with torch.no_grad():
        return _evaluate_base(model, batches)


def _evaluate_reseed(model, batches):
    """Wrong: torch.manual_seed(0) 'for a reproducible evaluation', resetting the notebook's
    random stream (later training draws the same dropout masks again)."""
    torch.manual_seed(0)
    model.eval()
    with torch.no_grad():
        return _evaluate_base(model, batches)


def _evaluate_argmax_batch(model, batches):
    """Wrong: argmax over dim 0 (the batch), not over the classes."""
    model.eval()
    total, hits, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in batches:
            logits = model(x)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            hits += (logits.argmax(0)[:len(y)] == y[:logits.shape[1]]).sum().item()
            count += len(y)
    return total / count, hits / count


def _evaluate_softmax_ce(model, batches):
    """Wrong: softmax before F.cross_entropy."""
    model.eval()
    total, hits, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in batches:
            probs = F.softmax(model(x), dim=1)
            total += F.cross_entropy(probs, y, reduction="sum").item()
            hits += (probs.argmax(1) == y).sum().item()
            count += len(y)
    return total / count, hits / count


def _evaluate_nll_of_logits(model, batches):
    """Wrong: F.nll_loss on the logits, without the log-softmax."""
    model.eval()
    total, hits, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in batches:
            logits = model(x)
            total += F.nll_loss(logits, y, reduction="sum").item()
            hits += (logits.argmax(1) == y).sum().item()
            count += len(y)
    return total / count, hits / count


def _evaluate_count_first(model, batches):
    """Wrong: counts the examples as number of batches times the first batch's size."""
    model.eval()
    total, hits = 0.0, 0
    with torch.no_grad():
        for x, y in batches:
            logits = model(x)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            hits += (logits.argmax(1) == y).sum().item()
    count = len(batches) * len(batches[0][1])
    return total / count, hits / count


def _evaluate_loss_tensor(model, batches):
    """Wrong: the loss summed as a tensor (no .item()), returned as a 0-d tensor."""
    model.eval()
    total, hits, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in batches:
            logits = model(x)
            total = total + F.cross_entropy(logits, y, reduction="sum")
            hits += (logits.argmax(1) == y).sum().item()
            count += len(y)
    return total / count, hits / count


def _evaluate_frozen(model, batches):
    """Wrong: model.requires_grad_(False) in place of torch.no_grad() (freezes the model)."""
    model.eval()
    model.requires_grad_(False)
    return _evaluate_base(model, batches)


def _evaluate_frozen_no_grad(model, batches):
    """Wrong: model.requires_grad_(False) as well as torch.no_grad(), never undone: the model
    can no longer be trained."""
    model.eval()
    model.requires_grad_(False)
    with torch.no_grad():
        return _evaluate_base(model, batches)


def _evaluate_tracemalloc(model, batches):
    """Wrong: tracemalloc.start() to measure the evaluation's memory, never stopped."""
    tracemalloc.start()
    model.eval()
    with torch.no_grad():
        return _evaluate_base(model, batches)


def _evaluate_float32(model, batches):
    """Wrong: model.float() and x.float() 'for speed': the caller's model is left float32."""
    model.float().eval()
    total, hits, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in batches:
            logits = model(x.float())
            total += F.cross_entropy(logits, y, reduction="sum").item()
            hits += (logits.argmax(1) == y).sum().item()
            count += len(y)
    return total / count, hits / count


# --- the corpus -------------------------------------------------------------------------------

ROUND2_A: dict[str, tuple[list, list]] = {
    "SqueezeExcitation": (
        [_SEEinsum, _SEAccumulate, _SEAddmm],
        [_SEZerosOnCPU,                      # accumulator made on the CPU
         _SEFloatCount,                      # torch.tensor([H * W]).float(): float32
         _SEKeepsGate,                       # gate kept as an attached attribute
         _SECachedGate,                      # detached gate cached and reused
         _SEWarmUp,                          # call counter changes the output
         _SERunningGate,                     # running gate in a plain attribute: off-device
         _SETracemalloc,                     # tracemalloc started, never stopped
         _SESqueezeNoGrad,                   # squeeze under no_grad: x's gradient short
         _SESum,                             # sum, not mean
         _SEDefaultDtype,                    # default dtype changed in __init__
         _SEThreads,                         # thread count changed in forward
         _SEDefaultReduction]),              # reduction defaults to 4
    "ChannelAttention": (
        [_CABatchCat, _CAPooling, _CAEinsum],
        [_CAZerosOnCPU,                      # logits accumulated on the CPU
         _CAZerosFloat32,                    # logits accumulated in float32
         _CAKeepsBranches,                   # branch outputs kept as attributes
         _CAMaxNoGrad,                       # max branch under no_grad
         _CASumOfGates,                      # two sigmoids added
         _CAMaxOfBranches,                   # maximum of the branches, not the sum
         _CASeterr,                          # np.seterr(all="raise") left on
         _CADeterministic,                   # deterministic algorithms switched on
         _CARunningMax,                      # running average of the max across calls
         _CASumPool]),                       # sum pooling for the average branch
    "SpatialAttention": (
        [_SAFunctional, _SAPadFirst, _SANewZerosPad],
        [_SAOnesOnCPU,                       # ones map made on the CPU
         _SAZerosPadFloat32,                 # padding buffer float32
         _SAReflect,                         # reflection padding
         _SADefaultKernel3,                  # kernel_size defaults to 3
         _SAKeepsMap,                        # map kept as an attached attribute
         _SANoKeepdim,                       # pooled without keepdim
         _SAPooledNoGrad,                    # pooling under no_grad
         _SAAnomaly,                         # anomaly detection left on
         _SAFloat,                           # .float() before the convolution
         _SAMapOnly,                         # returns the map, not x * map
         _SAResidual]),                      # x * (1 + map)
    "CBAM": (
        [_CBAMSequential, _CBAMInline, _CBAMSteps],
        [_CBAMParallel,                      # spatial map from x, not the refined tensor
         _CBAMTimesX,                        # multiplies by x once more
         _CBAMDefaultKernel3,                # kernel_size defaults to 3
         _CBAMDefaultReduction8,             # reduction defaults to 8
         _CBAMKeepsRefined,                  # refined tensor kept as an attached attribute
         _CBAMDefaultDtype,                  # default dtype changed in __init__
         _CBAMScaleOnCPU,                    # scale tensor made on the CPU
         _CBAMScaleFloat32,                  # scale tensor float32
         _CBAMWithSE,                        # SE as the channel attention
         _CBAMThreads]),                     # thread count changed in __init__
    "ECA": (
        [_ECABitLength, _ECAZerosPadded,
         _eca_rule(lambda c: _odd(int(_psi(c))))],                # the listing's rule, spelled out
        [_eca_rule(lambda c: _odd(math.ceil(_psi(c)))),           # ceil, not truncate
         _eca_rule(lambda c: max(_odd(int(_psi(c))), 3)),         # at least 3
         _eca_rule(lambda c: int(_psi(c)) - 1 + int(_psi(c)) % 2),  # even made odd downwards
         _eca_rule(lambda c: 2 * int(_psi(c)) + 1),               # odd as 2t + 1
         _eca_rule(lambda c: _odd(int((math.log10(c) + 1) / 2))),  # log10, not log2
         _eca_rule(lambda c: _odd(int(math.log2(c) + 2))),        # gamma and b swapped
         _eca_rule(lambda c: 3),                                  # default k = 3 whatever C
         _eca_rule(lambda c: _odd(round(_psi(c)))),               # Python's round (to even)
         _ECAPadOnCPU,                       # padding made on the CPU
         _ECAPadFloat32,                     # padding float32
         _ECAKeepsGate,                      # gate kept as an attached attribute
         _ECAThreads,                        # thread count changed in forward
         _ECAArangeTaps]),                   # torch.arange(k).float() offsets
    "train_one_epoch": (
        [_train_closure, _train_np_mean, _train_running_mean],
        [_train_default_dtype,               # default dtype changed
         _train_reseed,                      # torch reseeded inside the loop
         _train_schedule_first,              # scheduler stepped before the optimiser
         _train_mode_late,                   # model.train() after the first batch
         _train_mode_not_called,             # model.train without ()
         _train_example_mean,                # mean over examples
         _train_second_forward,              # a second forward for the accuracy
         _train_chdir,                       # os.chdir left changed
         _train_tracemalloc,                 # tracemalloc left on
         _train_softmax_ce,                  # softmax before cross-entropy
         _train_clip,                        # gradient clipping
         _train_anomaly,                     # anomaly detection left on
         _train_copy]),                      # trains a deep copy
    "evaluate_epoch": (
        [_evaluate_grad_context, _evaluate_on_copy, _evaluate_restores_mode],
        [_evaluate_copy_with_grad,           # a deep copy evaluated with gradients
         _evaluate_grad_off,                 # autograd switched off, never back on
         _evaluate_no_grad_statement,        # torch.no_grad() without `with`
         _evaluate_eval_not_called,          # model.eval without ()
         _evaluate_default_dtype,            # default dtype changed
         _evaluate_argmax_batch,             # argmax over the batch
         _evaluate_softmax_ce,               # softmax before cross-entropy
         _evaluate_nll_of_logits,            # NLL of the logits
         _evaluate_count_first,              # count from the first batch's size
         _evaluate_loss_tensor,              # the loss returned as a tensor
         _evaluate_frozen,                   # requires_grad_(False) instead of no_grad
         _evaluate_reseed,                   # torch reseeded: later dropout masks repeat
         _evaluate_tracemalloc,              # tracemalloc left on
         _evaluate_frozen_no_grad,           # requires_grad_(False), never undone
         _evaluate_float32]),                # model.float() left in place
}
ROUND2_A["SqueezeExcitation"][1].extend([
    _SERunningGateBuffer,                    # a running gate of its own in evaluation mode
    _SECpuOutput,                            # out.cpu(): the output leaves the input's device
    _SEGradFollowsMode])                     # torch.set_grad_enabled(self.training) in forward
ROUND2_A["SpatialAttention"][1].append(_SAZerosPadOnCPU)   # padding written into a CPU zeros
ROUND2_A["ECA"][1].append(_ECASlicePadOnCPU)                # the same, on the pooled sequence
ROUND2_A["train_one_epoch"][1].append(_train_grad_off_after)  # autograd off after the loop


R = reference
_CHECK, _MODULES = check, modules          # imported as the brief asks; used by the runner

_TM_START, _TM_STOP = tracemalloc.start, tracemalloc.stop   # bound before any check patches them


# ------------------------------------------------------------------------------------------
# Softmax variants shared by the module answers: "how" names one way of normalising s over dim.

def _soft(s, dim, how="torch"):
    """softmax(s) over ``dim``, written the way ``how`` says (right or wrong)."""
    if how == "torch":
        return torch.softmax(s, dim)
    if how == "stable":                                   # right: per-row max, by hand
        e = torch.exp(s - s.amax(dim, keepdim=True))
        return e / e.sum(dim, keepdim=True)
    if how == "stable_detached":                          # right: the max needs no gradient
        e = torch.exp(s - s.max(dim, keepdim=True).values.detach())
        return e / e.sum(dim, keepdim=True)
    if how == "logsumexp":                                # right
        return torch.exp(s - torch.logsumexp(s, dim, keepdim=True))
    if how == "module":                                   # right: an nn.Softmax made here
        return nn.Softmax(dim=dim)(s)
    if how == "implicit":                                 # F.softmax without dim=
        return F.softmax(s)
    if how == "naive":                                    # no maximum subtracted
        e = torch.exp(s)
        return e / e.sum(dim, keepdim=True)
    if how == "global_max":                               # one max for the whole batch
        e = torch.exp(s - s.max())
        return e / e.sum(dim, keepdim=True)
    if how == "sample_max":                               # one max per sample, over all rows
        e = torch.exp(s - s.amax(tuple(range(1, s.ndim)), keepdim=True))
        return e / e.sum(dim, keepdim=True)
    if how == "batch_max":                                # max over the batch, per position
        e = torch.exp(s - s.amax(0, keepdim=True))
        return e / e.sum(dim, keepdim=True)
    if how == "min":                                      # the minimum, not the maximum
        e = torch.exp(s - s.amin(dim, keepdim=True))
        return e / e.sum(dim, keepdim=True)
    if how == "clamp":                                    # clamped scores instead of a shift
        e = torch.exp(s.clamp(-50.0, 50.0))
        return e / e.sum(dim, keepdim=True)
    if how == "float32":                                  # softmax in float32, cast back
        return torch.softmax(s.float(), dim).to(s.dtype)
    if how == "sum_other_axis":                           # max over dim, sum over another
        e = torch.exp(s - s.amax(dim, keepdim=True))
        return e / e.sum(0 if dim % s.ndim != 0 else 1, keepdim=True)
    if how == "dropout":                                  # attention dropout added
        return F.dropout(torch.softmax(s, dim), 0.1, training=True)
    raise ValueError(how)


# ------------------------------------------------------------------------------------------
# NonLocal

def _nl(how="torch", bug=None):
    """A learner's embedded-Gaussian NonLocal: right by default."""
    class NonLocal(nn.Module):
        def __init__(self, channels, inter_channels=None, dim=2, subsample=False, scale=False):
            super().__init__()
            ci = inter_channels or max(channels // 2, 1)
            conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dim]
            self.theta, self.phi, self.g = (conv(channels, ci, 1), conv(channels, ci, 1),
                                            conv(channels, ci, 1))
            self.w_z = conv(ci, channels, 1)
            self.bn = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dim](channels)
            nn.init.zeros_(self.bn.weight)
            nn.init.zeros_(self.bn.bias)
            self.pool = ({1: nn.MaxPool1d(2), 2: nn.MaxPool2d(2),
                          3: nn.MaxPool3d((1, 2, 2))}[dim] if subsample else None)
            self.ci, self.scale = ci, scale
            self._memo = {}

        def forward(self, x):
            b = x.shape[0]
            keys = self.pool(x) if self.pool is not None else x
            q = self.theta(x).flatten(2).transpose(1, 2)                     # (B, N, C_i)
            if bug == "memo" and tuple(x.shape) in self._memo:
                k, v = self._memo[tuple(x.shape)]
            else:
                k = self.phi(keys).flatten(2).transpose(1, 2)
                v = self.g(keys).flatten(2).transpose(1, 2)
                self._memo[tuple(x.shape)] = (k, v) if bug == "memo" else None
            factor = self.ci ** -0.5 if self.scale else 1.0
            if bug == "cpu_scale":
                factor = torch.full((1, 1, 1), factor, dtype=x.dtype)
            elif bug == "float32_scale":
                factor = torch.tensor([factor], device=x.device)
            elif bug == "scale_on_device":                               # right
                factor = x.new_full((1, 1, 1), factor)
            if bug == "set_dtype":
                torch.set_default_dtype(x.dtype)
            if bug == "einsum":
                s = torch.einsum("bnc,bmc->bnm", q, k) * factor
            else:
                s = q @ k.transpose(1, 2) * factor
            w = _soft(s, -1, how)
            if bug == "keep":
                self.attention = w
            elif bug == "keep_detached":                                 # right
                self.attention = w.detach()
            y = torch.einsum("bnm,bmc->bnc", w, v) if bug == "einsum" else w @ v
            return x + self.bn(self.w_z(y.transpose(1, 2).reshape(b, self.ci, *x.shape[2:])))

    return NonLocal


# ------------------------------------------------------------------------------------------
# InteractionAware

def _ia(how="torch", bug=None):
    """A learner's InteractionAware: right by default."""
    class InteractionAware(nn.Module):
        def __init__(self, channels, maps=4):
            super().__init__()
            self.score = nn.Linear(channels, maps)

        def forward(self, x):
            if bug == "normalise_in_place":               # the weight rows made unit length
                with torch.no_grad():
                    self.score.weight /= self.score.weight.norm(dim=1, keepdim=True)
            if bug == "set_threads":
                torch.set_num_threads(torch.get_num_threads() % 2 + 1)   # 1 <-> 2: always a change
            flat = x.flatten(2)                                              # (B, C, N)
            s = (torch.einsum("kc,bcn->bkn", self.score.weight, flat)
                 + self.score.bias[None, :, None])                           # (B, K, N)
            n = s.shape[-1]
            if bug == "cpu_ones":                         # the row sums by a ones vector
                e = torch.exp(s - s.amax(-1, keepdim=True))
                maps = e / (e @ torch.ones(n, 1, dtype=x.dtype))
            elif bug == "float32_ones":
                e = torch.exp(s - s.amax(-1, keepdim=True))
                maps = e / (e * torch.ones(n, device=x.device)).sum(-1, keepdim=True)
            elif bug == "ones_on_device":                 # right
                e = torch.exp(s - s.amax(-1, keepdim=True))
                maps = e / (e @ x.new_ones(n, 1))
            else:
                maps = _soft(s, -1, how)
            if bug == "keep":
                self.maps = maps
            return maps @ flat.transpose(1, 2)                               # (B, K, C)

    return InteractionAware


class _IASDPA(nn.Module):
    """Right: PyTorch's fused attention, the K weight rows as queries, the bias as a mask."""

    def __init__(self, channels, maps=4):
        super().__init__()
        self.score = nn.Linear(channels, maps)

    def forward(self, x):
        tokens = x.flatten(2).transpose(1, 2)                                # (B, N, C)
        q = self.score.weight.expand(x.shape[0], -1, -1)                     # (B, K, C)
        mask = self.score.bias[:, None].expand(-1, tokens.shape[1])          # (K, N)
        return F.scaled_dot_product_attention(q, tokens, tokens, attn_mask=mask, scale=1.0)


# ------------------------------------------------------------------------------------------
# GlobalContext

def _gcm(how="torch", bug=None):
    """A learner's GlobalContext: right by default."""
    class GlobalContext(nn.Module):
        def __init__(self, channels, reduction=16):
            super().__init__()
            hidden = channels // reduction
            self.context = nn.Conv2d(channels, 1, 1)
            self.transform = nn.Sequential(nn.Conv2d(channels, hidden, 1),
                                           nn.LayerNorm([hidden, 1, 1]), nn.ReLU(),
                                           nn.Conv2d(hidden, channels, 1))
            nn.init.zeros_(self.transform[-1].weight)
            nn.init.zeros_(self.transform[-1].bias)
            self.cached = None

        def forward(self, x):
            if bug == "seterr":                           # NumPy told to raise on overflow
                np.seterr(over="raise")
            if bug == "deterministic":
                torch.use_deterministic_algorithms(True)
            s = self.context(x).flatten(1)                                   # (B, N)
            b, n = s.shape
            if bug == "cpu_mask":                         # a padding mask, made on the CPU
                s = s.masked_fill(torch.ones(b, n, dtype=torch.bool) == 0, -math.inf)
            elif bug == "float32_mask":                   # a mask of ones in float32
                s = s + (torch.ones(b, n, device=x.device) - 1.0) * 1e9
            a = _soft(s, 1, how)
            if bug == "cache":                            # the map reused for the same shape
                if self.cached is None or self.cached.shape != a.shape:
                    self.cached = a.detach()
                a = self.cached
            if bug == "keep":
                self.attention = a
            c = torch.bmm(x.flatten(2), a[:, :, None])[..., None]            # (B, C, 1, 1)
            return x + self.transform(c)

    return GlobalContext


class _GCSDPA(nn.Module):
    """Right: the context convolution's weight as the one query of fused attention, its bias
    as an additive mask."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        hidden = channels // reduction
        self.context = nn.Conv2d(channels, 1, 1)
        self.transform = nn.Sequential(nn.Conv2d(channels, hidden, 1),
                                       nn.LayerNorm([hidden, 1, 1]), nn.ReLU(),
                                       nn.Conv2d(hidden, channels, 1))
        nn.init.zeros_(self.transform[-1].weight)
        nn.init.zeros_(self.transform[-1].bias)

    def forward(self, x):
        b, c = x.shape[:2]
        tokens = x.flatten(2).transpose(1, 2)                                # (B, N, C)
        q = self.context.weight.view(1, 1, c).expand(b, 1, c)
        mask = self.context.bias.view(1, 1).expand(1, tokens.shape[1])
        pooled = F.scaled_dot_product_attention(q, tokens, tokens, attn_mask=mask, scale=1.0)
        return x + self.transform(pooled.transpose(1, 2)[..., None])         # (B, C, 1, 1)


# ------------------------------------------------------------------------------------------
# TemporalAttention

def _tam(how="torch", bug=None):
    """A learner's TemporalAttention: right by default."""
    class TemporalAttention(nn.Module):
        def __init__(self, channels, reduction=4):
            super().__init__()
            self.fc1 = nn.Linear(channels, channels // reduction)
            self.fc2 = nn.Linear(channels // reduction, 1)
            nn.init.zeros_(self.fc2.weight)
            nn.init.zeros_(self.fc2.bias)
            self.frames = None

        def forward(self, x):
            t = x.shape[2]
            if bug == "remember_t":                       # T taken from the first call
                if self.frames is None:
                    self.frames = t
                t = self.frames
            if bug == "anomaly":
                torch.autograd.set_detect_anomaly(True)
            if bug == "manual_seed":                      # reseeds the global generator
                torch.manual_seed(0)
            if bug == "set_dtype":
                torch.set_default_dtype(torch.float64)
            s = x.mean((3, 4)).transpose(1, 2)                               # (B, T, C)
            e = self.fc2(F.relu(self.fc1(s)))[..., 0]                        # (B, T)
            a = _soft(e, 1, how)
            if bug == "keep":
                self.weights = [a]
            if bug == "cpu_factor":
                factor = torch.full((1, x.shape[2]), float(t), dtype=x.dtype)
            elif bug == "float32_factor":
                factor = torch.full((1, x.shape[2]), float(t), device=x.device)
            elif bug == "arange_cpu":                     # frame index, made on the CPU
                factor = torch.ones_like(a) * (torch.arange(x.shape[2]) * 0 + t)
            elif bug == "factor_on_device":               # right
                factor = torch.full((1, x.shape[2]), float(t), dtype=x.dtype, device=x.device)
            else:
                factor = t
            return x * (a * factor)[:, None, :, None, None]

    return TemporalAttention


# ------------------------------------------------------------------------------------------
# NumPy exercises

def _np_softmax(s, axis=-1, shift="max"):
    """A learner's softmax over ``axis``: ``shift`` says what is subtracted before np.exp."""
    if shift == "max":
        m = s.max(axis=axis, keepdims=True)
    elif shift == "min":
        m = s.min(axis=axis, keepdims=True)
    elif shift == "axis0":                                # max over axis 0 whatever the axis
        m = s.max(axis=0, keepdims=True)
    elif shift == "all_but_batch":                        # one max per batch element
        m = s.max(axis=tuple(range(1, s.ndim)), keepdims=True)
    elif shift == "all":                                  # one max for the whole array
        m = s.max()
    elif shift == "abs_max":                              # the largest |score| of the row
        m = np.abs(s).max(axis=axis, keepdims=True)
    elif shift == "other_axis":                           # max over axis 1 (the queries)
        m = s.max(axis=1, keepdims=True)
    else:
        raise ValueError(shift)
    e = np.exp(s - m)
    return e / e.sum(axis=axis, keepdims=True)


def _softmax_in_place(x, axis=-1):
    """Wrong: shifts, exponentiates and normalises the caller's array in place."""
    x -= x.max(axis=axis, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=axis, keepdims=True)
    return x


def _softmax_seterr(x, axis=-1):
    """Wrong: asks NumPy to raise on overflow with np.seterr and never restores it (the values
    are right)."""
    np.seterr(over="raise")
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _softmax_torch(x, axis=-1):
    """Right: PyTorch in float64, back to NumPy."""
    return torch.softmax(torch.from_numpy(np.asarray(x, dtype=np.float64)), dim=axis).numpy()


def _embedded_torch(t, p, g):
    """Right: the same in PyTorch (float64), back to NumPy."""
    tt, pt, gt = (torch.from_numpy(a) for a in (t, p, g))
    return (torch.softmax(tt @ pt.transpose(1, 2), dim=-1) @ gt).numpy()


def _gc_ctx(x, w, b, shift="max"):
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    scores = np.einsum("c,bcn->bn", w, flat) + b
    a = _np_softmax(scores, axis=1, shift=shift)
    return np.einsum("bcn,bn->bc", flat, a), a


def _gc_ctx_seterr(x, w, b):
    """Wrong: right values, but np.seterr(over="raise") left set for every later cell."""
    np.seterr(over="raise")
    return _gc_ctx(x, w, b)


def _gc_ctx_torch(x, w, b):
    """Right: PyTorch in float64; the map by F.conv2d with a 1 x 1 kernel."""
    xt = torch.from_numpy(x)
    s = F.conv2d(xt, torch.from_numpy(w).view(1, -1, 1, 1)).flatten(1) + float(b)
    a = torch.softmax(s, dim=1)
    return torch.einsum("bcn,bn->bc", xt.flatten(2), a).numpy(), a.numpy()


def _tiled_b(q, k, v, tile=64, start_max=-np.inf, shared=False):
    """A learner's online softmax: right by default; ``start_max`` the running maximum's first
    value, ``shared`` one running maximum for all the queries of a batch element."""
    b, n, _ = q.shape
    m = np.full((b, 1 if shared else n, 1), start_max)
    total, out = np.zeros((b, n, 1)), np.zeros((b, n, v.shape[-1]))
    for start in range(0, k.shape[1], tile):
        s = q @ k[:, start:start + tile].transpose(0, 2, 1)
        top = s.max(axis=(1, 2), keepdims=True) if shared else s.max(-1, keepdims=True)
        new = np.maximum(m, top)
        r = np.exp(m - new)
        w = np.exp(s - new)
        total = total * r + w.sum(-1, keepdims=True)
        out = out * r + w @ v[:, start:start + tile]
        m = new
    return out / total


def _tiled_lse(q, k, v, tile=64):
    """Right: a running log-sum-exp (np.logaddexp) instead of a running maximum and sum."""
    b, n, _ = q.shape
    lse, out = np.full((b, n, 1), -np.inf), np.zeros((b, n, v.shape[-1]))
    for start in range(0, k.shape[1], tile):
        s = q @ k[:, start:start + tile].transpose(0, 2, 1)
        m = s.max(-1, keepdims=True)
        tile_lse = m + np.log(np.exp(s - m).sum(-1, keepdims=True))
        new = np.logaddexp(lse, tile_lse)
        out = out * np.exp(lse - new) + np.exp(s - new) @ v[:, start:start + tile]
        lse = new
    return out


def _tiled_measured_politely(q, k, v, tile=64):
    """Right: tiled, and measures its own peak only when nobody else is tracing (and stops
    what it started)."""
    mine = not tracemalloc.is_tracing()
    if mine:
        tracemalloc.start()
    try:
        return _tiled_b(q, k, v, tile)
    finally:
        if mine:
            tracemalloc.stop()


def _tiled_torch_full(q, k, v, tile=64):
    """Wrong: PyTorch, the whole score matrix at once, back to NumPy."""
    qt, kt, vt = (torch.from_numpy(a) for a in (q, k, v))
    return (torch.softmax(qt @ kt.transpose(1, 2), dim=-1) @ vt).numpy()


def _tiled_self_measured_full(q, k, v, tile=64):
    """Wrong: measures itself with tracemalloc.start() and .stop() around a full matrix."""
    tracemalloc.start()
    y = R.embedded_attention(q, k, v)[0]
    tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return y


def _tiled_self_measured_bound(q, k, v, tile=64):
    """Wrong: as above, with start and stop bound to names beforehand (which a measurement
    around the function cannot switch off)."""
    _TM_START()
    y = R.embedded_attention(q, k, v)[0]
    _TM_STOP()
    return y


def _tiled_leaves_tracing(q, k, v, tile=64):
    """Wrong: tiled, but starts tracemalloc and never stops it."""
    if not tracemalloc.is_tracing():
        tracemalloc.start()
    return _tiled_b(q, k, v, tile)


# ------------------------------------------------------------------------------------------

ROUND2_B = {
    "NonLocal": (
        [_nl("stable_detached", "keep_detached"),       # by hand, kept only .detach()ed
         _nl("logsumexp", "scale_on_device"),           # log-sum-exp; scale by x.new_full
         _nl("module", "einsum")],                      # nn.Softmax and einsum
        [_nl("naive"),                                  # exp(s) / sum, no maximum subtracted
         _nl("global_max"),                             # s - s.max(): one max for the batch
         _nl("sample_max"),                             # one max over all rows of a sample
         _nl("min"),                                    # the minimum subtracted
         _nl("clamp"),                                  # scores clamped to [-50, 50]
         _nl("implicit"),                               # F.softmax(s), no dim: dim 0 (batch)
         _nl("float32"),                                # softmax in float32, cast back
         _nl("sum_other_axis"),                         # normalised over the queries
         _nl("dropout"),                                # attention dropout added
         _nl(bug="cpu_scale"),                          # scale tensor made on the CPU
         _nl(bug="float32_scale"),                      # scale as torch.tensor([...]): float32
         _nl(bug="keep"),                               # self.attention = weights (graph)
         _nl(bug="memo"),                               # keys and values memoised by shape
         _nl(bug="set_dtype")]),                        # torch.set_default_dtype(x.dtype)
    "InteractionAware": (
        [_ia("stable"),                                 # by hand, per-row max
         _IASDPA,                                       # fused attention, bias as a mask
         _ia(bug="ones_on_device")],                    # sums by x.new_ones
        [_ia("naive"),                                  # no maximum subtracted
         _ia("global_max"),                             # one max for the whole batch
         _ia("sample_max"),                             # one max over the K maps of a sample
         _ia("min"),                                    # the minimum subtracted
         _ia("clamp"),                                  # scores clamped
         _ia("implicit"),                               # F.softmax without dim: the batch
         _ia("sum_other_axis"),                         # max over N, sum over the batch
         _ia("float32"),                                # softmax in float32
         _ia(bug="cpu_ones"),                           # torch.ones(n, 1) on the CPU
         _ia(bug="float32_ones"),                       # torch.ones(n): float32
         _ia(bug="keep"),                               # self.maps = maps (graph)
         _ia(bug="normalise_in_place"),                 # weight renormalised every forward
         _ia(bug="set_threads")]),                      # torch.set_num_threads(1) left set
    "GlobalContext": (
        [_gcm("stable"),                                # by hand, per-row max
         _gcm("logsumexp"),                             # log-sum-exp
         _GCSDPA],                                      # fused attention
        [_gcm("naive"),                                 # no maximum subtracted
         _gcm("global_max"),                            # one max for the whole batch
         _gcm("batch_max"),                             # max over the batch per position
         _gcm("min"),                                   # the minimum subtracted
         _gcm("sum_other_axis"),                        # max over N, sum over the batch
         _gcm("float32"),                               # softmax in float32
         _gcm("dropout"),                               # dropout on the map
         _gcm(bug="cpu_mask"),                          # a mask made on the CPU
         _gcm(bug="float32_mask"),                      # a float32 mask of ones
         _gcm(bug="keep"),                              # self.attention = a (graph)
         _gcm(bug="cache"),                             # the map cached by shape, detached
         _gcm(bug="seterr"),                            # np.seterr left changed
         _gcm(bug="deterministic")]),                   # use_deterministic_algorithms(True)
    "TemporalAttention": (
        [_tam("stable_detached"),                       # by hand, detached max
         _tam("logsumexp", "factor_on_device")],        # log-sum-exp; T by torch.full on x's
        [_tam("naive"),                                 # no maximum subtracted
         _tam("global_max"),                            # one max for the whole batch
         _tam("batch_max"),                             # max over the batch per frame
         _tam("min"),                                   # the minimum subtracted
         _tam("sum_other_axis"),                        # max over T, sum over the batch
         _tam("float32"),                               # softmax in float32
         _tam(bug="cpu_factor"),                        # torch.full((1, T), T) on the CPU
         _tam(bug="float32_factor"),                    # torch.full without dtype: float32
         _tam(bug="arange_cpu"),                        # torch.arange(T) on the CPU
         _tam(bug="keep"),                              # self.weights = [a] (graph)
         _tam(bug="remember_t"),                        # T kept from the first call
         _tam(bug="set_dtype"),                         # set_default_dtype(float64) left set
         _tam(bug="anomaly")]),                         # anomaly detection left on
    "softmax": (
        [_softmax_torch],
        [lambda x, axis=-1: _np_softmax(x, axis, shift="min"),      # the minimum subtracted
         lambda x, axis=-1: _np_softmax(x, axis, shift="axis0"),    # max over axis 0 always
         lambda x, axis=-1: np.exp(x - x.max(axis=axis)[..., None])
         / np.exp(x - x.max(axis=axis)[..., None]).sum(axis=axis, keepdims=True),  # last axis
         _softmax_in_place,                                         # modifies x in place
         _softmax_seterr,                                           # np.seterr left changed
         lambda x, axis=-1: functional.softmax(x.astype(np.float32), axis).astype(
             np.float64)]),                                         # float32 inside
    "embedded_attention": (
        [_embedded_torch],
        [lambda t, p, g: _np_softmax(t @ p.transpose(0, 2, 1), shift="min") @ g,   # minimum
         lambda t, p, g: _np_softmax(t @ p.transpose(0, 2, 1), shift="all_but_batch") @ g,
         lambda t, p, g: _np_softmax(t @ p.transpose(0, 2, 1), shift="all") @ g,   # batch max
         lambda t, p, g: _np_softmax(t @ p.transpose(0, 2, 1), shift="other_axis") @ g]),
    "tiled_attention": (
        [_tiled_lse, _tiled_measured_politely],
        [lambda q, k, v, tile=64: _tiled_b(q, k, v, tile, start_max=0.0),   # max starts at 0
         lambda q, k, v, tile=64: _tiled_b(q, k, v, tile, shared=True),     # one max per batch
         _tiled_torch_full,                                         # PyTorch, full matrix
         _tiled_self_measured_full,                                 # tracemalloc inside, full
         _tiled_self_measured_bound,                                # the same, names bound
         _tiled_leaves_tracing]),                                   # tracing left on
}

# Plausible wrong answers that the checkers accept (checked against the checkers of this
# worktree): each is rejected by nothing, and ``check.<name>(answer) is answer``.
ROUND2_B["GlobalContext"][1].append(_gcm("clamp"))       # scores clamped to [-50, 50]
ROUND2_B["TemporalAttention"][1].append(_tam("clamp"))   # the same


# Module exercises whose corpus lives beside this file join round two as they are.
ROUND_TWO = {**ROUND2_A, **ROUND2_B, "MultiHeadAttention": CORPUS["MultiHeadAttention"]}
MODULE_AND_LOOP_EXERCISES = {"SqueezeExcitation", "ChannelAttention", "SpatialAttention", "CBAM",
                             "NonLocal", "InteractionAware", "GlobalContext", "ECA",
                             "TemporalAttention", "MultiHeadAttention", "train_one_epoch",
                             "evaluate_epoch"}


def test_round_two_covers_every_pytorch_and_loop_exercise_with_enough_answers():
    assert MODULE_AND_LOOP_EXERCISES <= set(ROUND_TWO) <= set(check.EXERCISES)
    for name in MODULE_AND_LOOP_EXERCISES:
        right, wrong = ROUND_TWO[name]
        assert len(right) >= 2 and len(wrong) >= 8, name


@pytest.mark.parametrize("name", sorted(ROUND_TWO))
def test_round_two_rejects_every_wrong_answer_and_puts_every_setting_back(name, capsys):
    right, wrong = ROUND_TWO[name]
    for number, fn in enumerate(right):
        assert getattr(check, name)(fn) is fn, f"{name}: correct alternative {number} rejected"
        assert f"✅ {name}" in capsys.readouterr().out
    settings = (torch.is_grad_enabled(), torch.get_default_dtype(), torch.get_num_threads(),
                os.getcwd(), tracemalloc.is_tracing())
    for number, fn in enumerate(wrong):
        with np.errstate(all="ignore"), _no_warning_filter():
            try:
                getattr(check, name)(fn)
            except AssertionError as err:
                text = str(err)
            else:
                pytest.fail(f"{name}: wrong answer {number} was accepted")
        first = text.splitlines()[0]
        assert first.startswith(f"❌ {name} (test case "), (name, number, first[:200])
        assert "Idea:" in text and len(first) < 400, (name, number, len(first))
        assert "tensor(" not in text and "array([" not in text, (name, number)
        assert (torch.is_grad_enabled(), torch.get_default_dtype(), torch.get_num_threads(),
                os.getcwd(), tracemalloc.is_tracing()) == settings, (name, number)
