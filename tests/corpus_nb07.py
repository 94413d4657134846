"""Checker corpus of notebook 07's derivation exercise ``query_free_nonlocal``: right answers
written in other ways, and the mistakes a learner deriving the block with one map would
plausibly make."""

from __future__ import annotations

import numpy as np
import scipy.special

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
}
