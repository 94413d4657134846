"""Checker corpus of notebook 07's exercises ``query_free_nonlocal`` (deriving the block with
one map) and ``MultiHeadAttention`` (the core of a vision transformer): right answers written
in other ways, and the mistakes a learner would plausibly make."""

from __future__ import annotations

import math

import numpy as np
import scipy.special
import torch
import torch.nn.functional as F
from torch import nn

from utils import reference

EPS = reference.BN_EPS


def _softmax(scores, stable=True):
    if stable:
        return scipy.special.softmax(scores, axis=1)
    e = np.exp(scores)
    return e / e.sum(axis=1, keepdims=True)


def _qf(x, p, *, key="phi_T_b_theta", stable=True, map_="softmax", bias_g=True, norm=True,
        bn_sqrt=True, residual=True, matrix=False, transform_first=False):
    """A learner's query_free_nonlocal: right by default, each argument one way to go wrong."""
    b, c = x.shape[:2]
    flat = x.reshape(b, c, -1)                                           # (B, C, N)
    n = flat.shape[2]
    w_k = {"phi_T_b_theta": lambda: p["w_phi"].T @ p["b_theta"],
           "phi_b_theta": lambda: p["w_phi"] @ p["b_theta"],           # fails unless C_i = C
           "phi_sum": lambda: p["w_phi"].sum(0)}[key]()                 # b_theta left out
    scores = np.einsum("c,bcn->bn", w_k, flat)
    a = _softmax(scores, stable) if map_ == "softmax" else np.full((b, n), 1.0 / n)
    if matrix:                                       # right numbers, an N x N matrix on the way
        full = np.repeat(a[:, None, :], n, axis=1)                      # (B, N, N)
        context = (full @ flat.transpose(0, 2, 1))[:, 0]                # (B, C)
    else:
        context = np.einsum("bcn,bn->bc", flat, a)
    if transform_first:                              # W_g on every x_j, then the weighted sum
        g = np.einsum("oc,bcn->bno", p["w_g"], flat) + p["b_g"]
        y = np.einsum("bno,bn->bo", g, a)
    else:
        y = context @ p["w_g"].T + (p["b_g"] if bias_g else 0.0)
    t = y @ p["w_z"].T + p["b_z"]
    if norm:
        t = t * p["gamma"] / (np.sqrt(1 + EPS) if bn_sqrt else 1.0) + p["beta"]
    out = (x if residual else 0.0) + t[:, :, None, None]
    return out, a


def _qf_with_constant(x, p):
    """Right: the scores through phi_j, the constant b_theta . b_phi kept (the softmax drops
    it), scipy's softmax."""
    b, c = x.shape[:2]
    flat = x.reshape(b, c, -1)
    phi = np.einsum("oc,bcn->bno", p["w_phi"], flat) + p["b_phi"]      # (B, N, C_i)
    a = scipy.special.softmax(phi @ p["b_theta"], axis=1)               # (B, N)
    y = np.einsum("bcn,bn->bc", flat, a) @ p["w_g"].T + p["b_g"]
    z = (y @ p["w_z"].T + p["b_z"]) * p["gamma"] / np.sqrt(1 + EPS) + p["beta"]
    return x + z[:, :, None, None], a


def _mha(*, way="sdpa", split="right", merge="right", scale="sqrt_d", softmax_dim=-1,
         project=True):
    """A learner's MultiHeadAttention: right by default, each argument one way to go wrong."""

    class MultiHeadAttention(nn.Module):
        def __init__(self, dim, heads=1):
            super().__init__()
            self.heads = heads
            self.theta, self.phi, self.g, self.w_z = (nn.Linear(dim, dim) for _ in range(4))

        def _split(self, u):
            b, t, dim = u.shape
            d = dim // self.heads
            if split == "none":                       # one head over all D channels
                return u[:, None]
            if split == "no_transpose":               # (B, T, D) read as (B, h, T, d)
                return u.reshape(b, self.heads, t, d)
            if split == "interleaved":                # head k gets channels k, k + h, ...
                return u.reshape(b, t, d, self.heads).permute(0, 3, 1, 2)
            return u.reshape(b, t, self.heads, d).transpose(1, 2)

        def forward(self, x):
            b, t, dim = x.shape
            d = dim // self.heads
            q, k, v = (self._split(f(x)) for f in (self.theta, self.phi, self.g))
            factor = {"sqrt_d": 1 / math.sqrt(d), "d": 1 / d, "sqrt_D": 1 / math.sqrt(dim),
                      "none": 1.0}[scale]
            if way == "sdpa":
                y = F.scaled_dot_product_attention(q, k, v, scale=factor)
            elif way == "einsum":
                a = torch.einsum("bhid,bhjd->bhij", q, k) * factor
                y = torch.einsum("bhij,bhjd->bhid", a.softmax(dim=softmax_dim), v)
            else:
                a = torch.softmax(q @ k.transpose(-1, -2) * factor, dim=softmax_dim)
                y = a @ v
            if merge == "no_transpose":               # (B, h, T, d) read as (B, T, D)
                y = y.reshape(b, t, dim)
            else:
                y = y.transpose(1, 2).reshape(b, t, dim)
            return self.w_z(y) if project else y

    return MultiHeadAttention


class _MHALoop(nn.Module):
    """Right: a loop over the heads, each a slice of channels, softmax written out."""

    def __init__(self, dim, heads=1):
        super().__init__()
        self.heads = heads
        self.theta = nn.Linear(dim, dim)
        self.phi = nn.Linear(dim, dim)
        self.g = nn.Linear(dim, dim)
        self.w_z = nn.Linear(dim, dim)

    def forward(self, x):
        d = x.shape[-1] // self.heads
        q, k, v = self.theta(x), self.phi(x), self.g(x)
        outs = []
        for h in range(self.heads):
            s = slice(h * d, (h + 1) * d)
            scores = q[..., s] @ k[..., s].transpose(1, 2) / d ** 0.5
            scores = scores - scores.amax(-1, keepdim=True)
            w = scores.exp()
            outs.append((w / w.sum(-1, keepdim=True)) @ v[..., s])
        return self.w_z(torch.cat(outs, dim=-1))


CORPUS = {
    "query_free_nonlocal": (
        [lambda x, p: _qf(x, p),
         _qf_with_constant,
         lambda x, p: _qf(x, p, transform_first=True)],                 # W_g is linear
        [lambda x, p: _qf(x, p, key="phi_sum"),                         # b_theta left out
         lambda x, p: _qf(x, p, key="phi_b_theta"),                     # W_phi b_theta
         lambda x, p: _qf(x, p, map_="uniform"),                        # SE's average
         lambda x, p: _qf(x, p, stable=False),                          # exp overflows
         lambda x, p: _qf(x, p, bias_g=False),                          # b_g dropped
         lambda x, p: _qf(x, p, norm=False),                            # batch norm left out
         lambda x, p: _qf(x, p, bn_sqrt=False),                         # gamma z + beta
         lambda x, p: _qf(x, p, residual=False),                        # no residual
         lambda x, p: _qf(x, p, matrix=True),                           # an N x N matrix
         lambda x, p: _qf(x, p)[0]]),                                   # the map not returned
    "MultiHeadAttention": (
        [_mha(), _mha(way="einsum"), _mha(way="matmul"), _MHALoop],
        [_mha(split="none"),                                             # heads not split
         _mha(scale="d"),                                                # 1/d, not 1/sqrt(d)
         _mha(scale="sqrt_D"),                                           # all D channels' scale
         _mha(scale="none", way="matmul"),                               # no scale at all
         _mha(split="no_transpose"),                                     # reshape, no transpose
         _mha(merge="no_transpose"),                                     # merged the wrong way
         _mha(split="interleaved"),                                      # strided channels
         _mha(way="matmul", softmax_dim=-2),                             # softmax over queries
         _mha(project=False)]),                                          # w_z never applied
}
