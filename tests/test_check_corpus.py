"""Every checker against a corpus of plausible learner bugs and correct alternatives.

Each wrong answer is a mistake a learner is likely to make; each must be rejected with an
AssertionError that names the exercise and the test case. Each correct alternative is a
different, right implementation and must be accepted. Answers are functions, or for the
PyTorch module exercises nn.Module classes; the checkers take and return either alike.
"""

import contextlib
import math
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


def _similarity(m, diagonal=False, normalise=True, denominator="pairs"):
    u = m / np.linalg.norm(m, axis=1, keepdims=True) if normalise else m
    gram = u @ u.T
    n = len(m)
    total = gram.sum() if diagonal else gram.sum() - np.trace(gram)
    return float(total / (n * (n - 1) if denominator == "pairs" else n * n))


def _top(weights, shape, k, order=-1, stack_axis=1):
    idx = np.argsort(order * weights, kind="stable")[:k]
    return np.stack(np.unravel_index(idx, shape), axis=stack_axis)


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
    "attention_similarity": (
        [lambda m: float(np.mean([m[i] @ m[j] / np.linalg.norm(m[i]) / np.linalg.norm(m[j])
                                  for i in range(len(m)) for j in range(len(m)) if i != j]))],
        [lambda m: _similarity(m, diagonal=True), lambda m: _similarity(m, normalise=False),
         lambda m: _similarity(m, denominator="square"), lambda m: _similarity(m.T),
         lambda m: (lambda u: u @ u.T)(m / np.linalg.norm(m, axis=1, keepdims=True)),
         lambda m: np.array([_similarity(m)])]),
    "top_attended": (
        [lambda wts, s, k: np.array([np.unravel_index(i, s) for i in sorted(
            range(wts.size), key=lambda i: -wts[i])[:k]], dtype=np.intp).reshape(k, 3)],
        [lambda wts, s, k: _top(wts, s, k, order=1),
         lambda wts, s, k: _top(wts, s, k, stack_axis=0),
         lambda wts, s, k: np.argsort(-wts, kind="stable")[:k],
         lambda wts, s, k: _top(wts, s, k - 1) if k > 1 else _top(wts, s, k, order=1),
         lambda wts, s, k: _top(wts, s, k)[:, ::-1],
         lambda wts, s, k: _top(wts, s, k).astype(float)]),
    "gc_context": (
        [lambda x, w, b: (lambda f, a: (np.einsum("bcn,bn->bc", f, a), a))(
            x.reshape(len(x), x.shape[1], -1),
            scipy.special.softmax(np.einsum("c,bcn->bn", w, x.reshape(len(x), x.shape[1], -1))
                                  + b, axis=1)),
         lambda x, w, b: _gc(x, w, b, bias=False)],   # b_k shifts every score: softmax ignores it
        [lambda x, w, b: _gc(x, w, b, stable=False), lambda x, w, b: _gc(x, w, b, axis=0),
         lambda x, w, b: _gc(x, w, b)[0],
         lambda x, w, b: (lambda c, a: (c / a.shape[1], a))(*_gc(x, w, b)),
         lambda x, w, b: (x.mean(axis=(2, 3)), _gc(x, w, b)[1]),
         lambda x, w, b: _gc(x, w, b)[::-1]]),
    "gc_as_nonlocal": (
        [lambda x, p: _gc_nl(x, p), _gc_nl_cheap, _gc_nl_torch],
        [lambda x, p: _gc_nl(x, p, softmax_over="queries"),             # uniform: SE's average
         lambda x, p: _gc_nl(x, p, softmax_over="columns"),             # A_ij = a_i, transposed
         lambda x, p: _gc_nl(x, p, transform_first=True),               # transform, then average
         lambda x, p: _gc_nl(x, p, norm_axis=1),                        # LayerNorm across queries
         lambda x, p: _gc_nl(x, p, layer_norm=False),
         lambda x, p: _gc_nl(x, p, fuse="multiply"),
         lambda x, p: _gc_nl(x, p, fuse="replace"),                     # no residual
         lambda x, p: _gc_nl(x, p, reshape="plain"),                    # scrambles the positions
         lambda x, p: _gc_nl(x, p, matrix=False),                       # the map, not the matrix
         lambda x, p: _gc_nl(x, p)[0],
         lambda x, p: _gc_nl(x, p, stable=False)]),                     # exp overflows
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
