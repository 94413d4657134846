"""NumPy references of the CNN attention modules: forward and backward, float64, vectorised.

- Squeeze-and-Excitation (Hu, Shen, Sun, CVPR 2018): squeeze (global average pool),
  excitation (FC -> ReLU -> FC -> sigmoid with reduction r), scale.
- CBAM (Woo, Park, Lee, Kweon, ECCV 2018): channel attention
  sigma(MLP(AvgPool F) + MLP(MaxPool F)) with one shared MLP, then spatial attention
  sigma(conv7x7([AvgPool_c F; MaxPool_c F])).

Every forward returns ``(out, cache)`` and every backward takes ``(dout, cache)`` and returns
``(dx, grads)`` with ``grads`` keyed like the parameters, in the style of CS231n. Shapes are
batch-first: x is (B, C, H, W). Parameters are dicts of arrays:

- SE / channel attention: w1 (C/r, C), b1 (C/r,), w2 (C, C/r), b2 (C,). The papers write the
  FCs without biases "to simplify the notation"; their code has them, and so does the course.
- spatial attention: w (1, 2, k, k), b (1,) for the paper's form; the official CBAM code puts
  batch norm after a bias-free convolution and stacks [max; mean] rather than [mean; max]:
  ``pool_order="max-mean"`` gives that order (the batch norm lives in the PyTorch module).
"""

from __future__ import annotations

import numpy as np

from .functional import sigmoid
from .validate import as_float_array, boolean, positive_float, positive_int

Params = dict[str, np.ndarray]


# --------------------------------------------------------------------------- helpers

def _check_x(x: np.ndarray, name: str = "x") -> np.ndarray:
    return as_float_array(x, name, ndim=4)


def _check_params(params: Params, shapes: dict[str, tuple[int, ...]], name: str) -> Params:
    if not isinstance(params, dict):
        raise ValueError(f"{name} must be a dict of arrays with keys {sorted(shapes)}")
    out = {}
    for key, shape in shapes.items():
        if key not in params:
            raise ValueError(f"{name} is missing {key!r} (expected shape {shape})")
        value = as_float_array(params[key], f"{name}[{key!r}]")
        if value.shape != shape:
            raise ValueError(f"{name}[{key!r}] must have shape {shape}, got {value.shape}")
        out[key] = value
    return out


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy Generator (np.random.default_rng(seed)), "
                         f"got {type(rng).__name__}")
    return rng


def _unpack_cache(cache: object, size: int, forward: str) -> tuple:
    """The cache a forward pass returned, checked to be the right kind before unpacking."""
    if not isinstance(cache, tuple) or len(cache) != size:
        raise ValueError(f"cache must be the cache that {forward} returned (a tuple of {size}), "
                         f"got {type(cache).__name__}"
                         + (f" of {len(cache)}" if isinstance(cache, tuple) else ""))
    return cache


def _check_dout(dout: object, x: np.ndarray) -> np.ndarray:
    dout = as_float_array(dout, "dout", ndim=x.ndim)
    if dout.shape != x.shape:
        raise ValueError(f"dout must have the shape of x, {x.shape}, got {dout.shape}")
    return dout


def mlp_shapes(channels: int, reduction: int) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of the bottleneck MLP C -> C/r -> C shared by SE and CBAM."""
    channels = positive_int(channels, "channels")
    reduction = positive_int(reduction, "reduction")
    hidden = channels // reduction
    if hidden < 1:
        raise ValueError(f"reduction ({reduction}) must not exceed channels ({channels})")
    return {"w1": (hidden, channels), "b1": (hidden,), "w2": (channels, hidden), "b2": (channels,)}


def init_mlp(channels: int, reduction: int, rng: np.random.Generator, scale: float = 0.5) -> Params:
    """Random MLP parameters (normal, std scale/sqrt(fan_in)) for tests and exercises."""
    shapes = mlp_shapes(channels, reduction)
    rng = _check_rng(rng)
    scale = positive_float(scale, "scale")
    return {k: rng.normal(size=s) * scale / np.sqrt(s[-1] if len(s) > 1 else 1)
            for k, s in shapes.items()}


def _mlp_forward(z: np.ndarray, p: Params) -> tuple[np.ndarray, tuple]:
    """z (B, C) -> W2 ReLU(W1 z + b1) + b2, (B, C)."""
    h = z @ p["w1"].T + p["b1"]
    a = np.maximum(h, 0.0)
    return a @ p["w2"].T + p["b2"], (z, h, a)


def _mlp_backward(du: np.ndarray, cache: tuple, p: Params) -> tuple[np.ndarray, Params]:
    z, h, a = cache
    grads = {"w2": du.T @ a, "b2": du.sum(axis=0)}
    dh = (du @ p["w2"]) * (h > 0)
    grads.update(w1=dh.T @ z, b1=dh.sum(axis=0))
    return dh @ p["w1"], grads


def _add_grads(g1: Params, g2: Params) -> Params:
    return {k: g1[k] + g2[k] for k in g1}


# --------------------------------------------------------------------------- SE

def se_forward(x: np.ndarray, params: Params) -> tuple[np.ndarray, tuple]:
    """Squeeze-and-Excitation. x: (B, C, H, W) -> out (B, C, H, W) = x * s[:, :, None, None].

    squeeze z = mean over H, W (B, C); excitation s = sigmoid(W2 ReLU(W1 z + b1) + b2) (B, C).
    """
    x = _check_x(x)
    p = _mlp_params(params, x.shape[1])
    z = x.mean(axis=(2, 3))
    u, mlp_cache = _mlp_forward(z, p)
    s = sigmoid(u)
    return x * s[:, :, None, None], (x, s, mlp_cache, p)


def se_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, Params]:
    """Gradients of SE: dx (B, C, H, W) and {w1, b1, w2, b2}."""
    x, s, mlp_cache, p = _unpack_cache(cache, 4, "se_forward")
    dout = _check_dout(dout, x)
    ds = (dout * x).sum(axis=(2, 3))                 # through the scale
    du = ds * s * (1 - s)                            # through the sigmoid
    dz, grads = _mlp_backward(du, mlp_cache, p)
    h, w = x.shape[2:]
    dx = dout * s[:, :, None, None] + dz[:, :, None, None] / (h * w)   # scale + squeeze
    return dx, grads


def _mlp_params(params: Params, channels: int) -> Params:
    """Check MLP parameters against x's channel count; the hidden size is read from w1."""
    w1 = params.get("w1") if isinstance(params, dict) else None
    if w1 is None or np.ndim(w1) != 2 or np.shape(w1)[0] < 1:
        raise ValueError("params must be a dict holding 'w1' of shape (C/r, C), 'b1', 'w2', 'b2'")
    hidden = np.shape(w1)[0]
    shapes = {"w1": (hidden, channels), "b1": (hidden,), "w2": (channels, hidden),
              "b2": (channels,)}
    return _check_params(params, shapes, "params")


# --------------------------------------------------------------------------- CBAM: channel

def channel_attention_forward(x: np.ndarray, params: Params) -> tuple[np.ndarray, tuple]:
    """CBAM channel attention. Returns out = x * Mc[:, :, None, None] (B, C, H, W) and a cache.

    Mc = sigmoid(MLP(avg) + MLP(max)), avg and max over H, W, one MLP shared by both.
    """
    x = _check_x(x)
    p = _mlp_params(params, x.shape[1])
    b, c = x.shape[:2]
    flat = x.reshape(b, c, -1)
    avg = flat.mean(axis=2)
    arg = flat.argmax(axis=2)
    mx = np.take_along_axis(flat, arg[..., None], axis=2)[..., 0]
    u_avg, cache_avg = _mlp_forward(avg, p)
    u_max, cache_max = _mlp_forward(mx, p)
    mc = sigmoid(u_avg + u_max)
    return x * mc[:, :, None, None], (x, mc, arg, cache_avg, cache_max, p)


def channel_attention_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, Params]:
    """Gradients of CBAM channel attention: dx and {w1, b1, w2, b2}."""
    x, mc, arg, cache_avg, cache_max, p = _unpack_cache(cache, 6, "channel_attention_forward")
    dout = _check_dout(dout, x)
    b, c, h, w = x.shape
    dmc = (dout * x).sum(axis=(2, 3))
    du = dmc * mc * (1 - mc)
    d_avg, g_avg = _mlp_backward(du, cache_avg, p)
    d_max, g_max = _mlp_backward(du, cache_max, p)
    dx = dout * mc[:, :, None, None] + d_avg[:, :, None, None] / (h * w)
    dflat = dx.reshape(b, c, -1)                     # a view: max's gradient goes to its argmax
    np.put_along_axis(dflat, arg[..., None],
                      np.take_along_axis(dflat, arg[..., None], axis=2) + d_max[..., None], axis=2)
    return dx, _add_grads(g_avg, g_max)


# --------------------------------------------------------------------------- CBAM: spatial

def conv2d_same(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """'Same' 2-D cross-correlation with zero padding, stride 1, odd kernel.

    x: (B, Cin, H, W), w: (Cout, Cin, k, k), b: (Cout,). Returns out (B, Cout, H, W) and the
    patches (B, Cin, H, W, k, k) that the backward pass reuses.
    """
    x = _check_x(x)
    w = as_float_array(w, "w", ndim=4)
    b = as_float_array(b, "b", ndim=1)
    if w.shape[1] != x.shape[1] or w.shape[2] != w.shape[3] or w.shape[2] % 2 == 0:
        raise ValueError(f"w must be (Cout, {x.shape[1]}, k, k) with odd k for x of shape "
                         f"{x.shape}, got {w.shape}")
    if b.shape != (w.shape[0],):
        raise ValueError(f"b must have shape ({w.shape[0]},), got {b.shape}")
    k = w.shape[-1]
    pad = k // 2
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    patches = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(2, 3))
    out = np.einsum("bchwij,ocij->bohw", patches, w, optimize=True) + b[None, :, None, None]
    return out, patches


def conv2d_same_backward(dout: np.ndarray, patches: np.ndarray,
                         w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of ``conv2d_same``: dx (B, Cin, H, W), dw (Cout, Cin, k, k), db (Cout,).

    dx is the 'same' convolution of dout with the kernel rotated by 180 degrees.
    """
    w = as_float_array(w, "w", ndim=4)
    patches = as_float_array(patches, "patches", ndim=6)
    dout = as_float_array(dout, "dout", ndim=4)
    b, cin, h, wd, k, _ = patches.shape
    if w.shape[1:] != (cin, k, k):
        raise ValueError(f"w must be (Cout, {cin}, {k}, {k}) to match patches {patches.shape}, "
                         f"got {w.shape}")
    if dout.shape != (b, w.shape[0], h, wd):
        raise ValueError(f"dout must have shape {(b, w.shape[0], h, wd)}, got {dout.shape}")
    pad = k // 2
    dw = np.einsum("bchwij,bohw->ocij", patches, dout, optimize=True)
    db = dout.sum(axis=(0, 2, 3))
    dpad = np.pad(dout, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dpatches = np.lib.stride_tricks.sliding_window_view(dpad, (k, k), axis=(2, 3))
    dx = np.einsum("bohwij,ocij->bchw", dpatches, w[:, :, ::-1, ::-1], optimize=True)
    return dx, dw, db


POOL_ORDERS = ("mean-max", "max-mean")


def spatial_attention_forward(x: np.ndarray, params: Params,
                              pool_order: str = "mean-max") -> tuple[np.ndarray, tuple]:
    """CBAM spatial attention: out = x * Ms[:, None] with Ms = sigmoid(conv([mean_c; max_c])).

    x: (B, C, H, W); params w (1, 2, k, k) with odd k, b (1,). pool_order: 'mean-max' (the
    paper) or 'max-mean' (the official code's stacking order). Ms: (B, H, W).
    """
    x = _check_x(x)
    if pool_order not in POOL_ORDERS:
        raise ValueError(f"pool_order must be one of {POOL_ORDERS}, got {pool_order!r}")
    w = np.asarray(params.get("w") if isinstance(params, dict) else None)
    if w.ndim != 4 or w.shape[:2] != (1, 2) or w.shape[2] != w.shape[3] or w.shape[2] % 2 == 0:
        raise ValueError(f"params['w'] must have shape (1, 2, k, k) with odd k, got {w.shape}")
    p = _check_params(params, {"w": w.shape, "b": (1,)}, "params")
    arg = x.argmax(axis=1)                                            # (B, H, W)
    mx = np.take_along_axis(x, arg[:, None], axis=1)[:, 0]
    pooled = np.stack([x.mean(axis=1), mx], axis=1)                    # (B, 2, H, W)
    if pool_order == "max-mean":
        pooled = pooled[:, ::-1]
    logits, patches = conv2d_same(pooled, p["w"], p["b"])
    ms = sigmoid(logits[:, 0])
    return x * ms[:, None], (x, ms, arg, patches, p, pool_order)


def spatial_attention_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, Params]:
    """Gradients of CBAM spatial attention: dx (B, C, H, W) and {w, b}."""
    x, ms, arg, patches, p, pool_order = _unpack_cache(cache, 6, "spatial_attention_forward")
    dout = _check_dout(dout, x)
    dms = (dout * x).sum(axis=1)                                       # (B, H, W)
    dlogits = (dms * ms * (1 - ms))[:, None]
    dpooled, dw, db = conv2d_same_backward(dlogits, patches, p["w"])
    if pool_order == "max-mean":
        dpooled = dpooled[:, ::-1]
    dx = dout * ms[:, None] + dpooled[:, 0][:, None] / x.shape[1]     # through the mean
    np.put_along_axis(dx, arg[:, None],
                      np.take_along_axis(dx, arg[:, None], axis=1) + dpooled[:, 1][:, None], axis=1)
    return dx, {"w": dw, "b": db}


# --------------------------------------------------------------------------- CBAM

def cbam_forward(x: np.ndarray, params: dict[str, Params],
                 pool_order: str = "mean-max") -> tuple[np.ndarray, tuple]:
    """CBAM, channel then spatial (the paper's order): F' = Mc(F) F, F'' = Ms(F') F'.

    params: {'channel': MLP parameters, 'spatial': {'w', 'b'}}.
    """
    if not isinstance(params, dict) or not {"channel", "spatial"} <= set(params):
        raise ValueError("params must be a dict with 'channel' and 'spatial' parameter dicts")
    f1, cache_c = channel_attention_forward(x, params["channel"])
    f2, cache_s = spatial_attention_forward(f1, params["spatial"], pool_order)
    return f2, (cache_c, cache_s)


def cbam_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, dict[str, Params]]:
    """Gradients of CBAM: dx and {'channel': {...}, 'spatial': {...}}."""
    cache_c, cache_s = _unpack_cache(cache, 2, "cbam_forward")
    d1, g_s = spatial_attention_backward(dout, cache_s)
    dx, g_c = channel_attention_backward(d1, cache_c)
    return dx, {"channel": g_c, "spatial": g_s}


# --------------------------------------------------------------------------- non-local block

NL_MODES = ("gaussian", "embedded", "dot", "concat")
BN_EPS = 1e-5


def max_pool_spatial(x: np.ndarray) -> np.ndarray:
    """Max-pool the spatial axes by 2 (kernel (2,), (2, 2) or (1, 2, 2) for 1-, 2-, 3-D inputs:
    time is never pooled). x: (B, C, *S); odd sizes drop their last row/column."""
    x = as_float_array(x, "x", ndim=(3, 4, 5), finite=False)
    if min(x.shape[-2:] if x.ndim > 3 else x.shape[-1:]) < 2:
        raise ValueError(f"x must be at least 2 wide in each pooled axis, got shape {x.shape}")
    dims = x.ndim - 2
    if dims == 1:
        n = x.shape[2] // 2 * 2
        return x[:, :, :n].reshape(*x.shape[:2], n // 2, 2).max(axis=3)
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return x.reshape(*x.shape[:-2], h // 2, 2, w // 2, 2).max(axis=(-3, -1))


def _check_qkv(theta: np.ndarray, phi: np.ndarray, g: np.ndarray,
               names: tuple[str, str, str] = ("theta", "phi", "g"),
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """theta (B, N, d), phi (B, N_p, d) and g (B, N_p, d_v) as float64, shapes checked; the
    messages call them by ``names``."""
    q, k, v = names
    theta = as_float_array(theta, q, ndim=3)
    phi = as_float_array(phi, k, ndim=3)
    g = as_float_array(g, v, ndim=3)
    b, _, d = theta.shape
    if phi.shape[0] != b or phi.shape[2] != d:
        raise ValueError(f"{k} must be (B, N_p, d) = ({b}, N_p, {d}) to match {q} "
                         f"{theta.shape}, got {phi.shape}")
    if g.shape[:2] != phi.shape[:2]:
        raise ValueError(f"{v} must be (B, N_p, d_v) with (B, N_p) = {phi.shape[:2]} as in "
                         f"{k}, got {g.shape}")
    if phi.shape[1] == 0:
        raise ValueError(f"{k} must hold at least one key position (N_p >= 1)")
    return theta, phi, g


def embedded_attention(theta: np.ndarray, phi: np.ndarray, g: np.ndarray,
                       scale: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Embedded-Gaussian pairwise function: f = softmax_j(theta_i . phi_j), y = f g.

    theta: (B, N, d), phi: (B, N_p, d), g: (B, N_p, d_v). Returns y (B, N, d_v), f (B, N, N_p).
    With ``scale`` the scores are divided by sqrt(d) first (scaled dot-product attention).
    """
    theta, phi, g = _check_qkv(theta, phi, g)
    scores = theta @ phi.transpose(0, 2, 1)
    if scale:
        scores = scores / np.sqrt(theta.shape[-1])
    scores = scores - scores.max(axis=-1, keepdims=True)
    f = np.exp(scores)
    f /= f.sum(axis=-1, keepdims=True)
    return f @ g, f


def dot_attention(theta: np.ndarray, phi: np.ndarray,
                  g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dot-product pairwise function normalised by the number of keys: f = theta phi^T / N_p.

    Shapes as in ``embedded_attention``. Returns y = f g and f.
    """
    theta, phi, g = _check_qkv(theta, phi, g)
    f = theta @ phi.transpose(0, 2, 1) / phi.shape[1]
    return f @ g, f


def tiled_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                    tile: int = 64) -> np.ndarray:
    """softmax(q k^T) v, computed one tile of keys at a time (the online softmax).

    q: (B, N, d), k: (B, M, d), v: (B, M, e); returns (B, N, e). For every query row it keeps
    a running maximum m, a running sum l of exp(score - m) and a running output; a new tile
    with a larger maximum rescales the old sum and output by exp(m_old - m_new). Only one
    (B, N, tile) block of scores exists at a time, never the (B, N, M) matrix.
    """
    q, k, v = _check_qkv(q, k, v, ("q", "k", "v"))
    tile = positive_int(tile, "tile")
    b, n, _ = q.shape
    running_max = np.full((b, n, 1), -np.inf)
    running_sum = np.zeros((b, n, 1))
    out = np.zeros((b, n, v.shape[-1]))
    for start in range(0, k.shape[1], tile):
        scores = q @ k[:, start:start + tile].transpose(0, 2, 1)        # (B, N, tile)
        new_max = np.maximum(running_max, scores.max(axis=-1, keepdims=True))
        rescale = np.exp(running_max - new_max)                         # 0 on the first tile
        weights = np.exp(scores - new_max)
        running_sum = running_sum * rescale + weights.sum(axis=-1, keepdims=True)
        out = out * rescale + weights @ v[:, start:start + tile]
        running_max = new_max
    return out / running_sum


def nl_param_shapes(channels: int, inter: int, mode: str) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of a non-local block on ``channels`` with ``inter`` inner channels."""
    channels = positive_int(channels, "channels")
    inter = positive_int(inter, "inter")
    if mode not in NL_MODES:
        raise ValueError(f"mode must be one of {NL_MODES}, got {mode!r}")
    shapes = {"w_g": (inter, channels), "b_g": (inter,), "w_z": (channels, inter),
              "b_z": (channels,), "gamma": (channels,), "beta": (channels,)}
    if mode != "gaussian":
        shapes.update(w_theta=(inter, channels), b_theta=(inter,), w_phi=(inter, channels),
                      b_phi=(inter,))
    if mode == "concat":
        shapes["w_f"] = (2 * inter,)
    return shapes


def init_nonlocal(channels: int, inter: int, mode: str, rng: np.random.Generator,
                  zero_gamma: bool = False) -> Params:
    """Random parameters for tests; ``zero_gamma`` gives the paper's initialisation of the
    output batch norm (scale 0, shift 0), which makes the block the identity."""
    shapes = nl_param_shapes(channels, inter, mode)
    rng = _check_rng(rng)
    params = {k: rng.normal(size=s) / np.sqrt(s[-1]) for k, s in shapes.items()}
    if zero_gamma:
        params["gamma"], params["beta"] = np.zeros(channels), np.zeros(channels)
    return params


def nonlocal_forward(x: np.ndarray, params: Params, mode: str = "embedded",
                     subsample: bool = False, scale: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The non-local block of Wang, Girshick, Gupta & He (CVPR 2018), the matmul recipe.

    x: (B, C, *S) with S = (L,), (H, W) or (T, H, W); N = prod(S).
    1. theta, phi, g: 1x1(x1) convolutions to C_i channels (gaussian mode uses x itself for
       theta and phi); with ``subsample``, phi and g are max-pooled spatially (N_p = N / 4 for
       2-D and 3-D inputs, N / 2 for 1-D).
    2. f(x_i, x_j): gaussian / embedded: softmax_j(theta_i . phi_j) (divided by sqrt(C_i) first
       when ``scale``, as the official code does); dot: theta_i . phi_j / N_p;
       concat: ReLU(w_f . [theta_i; phi_j]) / N_p.
    3. y = f g (B, N, C_i); z = W_z y + b_z back to C channels; batch norm (inference form
       with running mean 0 and variance 1: gamma z / sqrt(1 + eps) + beta); out = z + x.
    Returns out (B, C, *S) and the attention f (B, N, N_p).
    """
    x = as_float_array(x, "x", ndim=(3, 4, 5))
    if mode not in NL_MODES:
        raise ValueError(f"mode must be one of {NL_MODES}, got {mode!r}")
    b, c = x.shape[:2]
    w_g = np.asarray(params.get("w_g") if isinstance(params, dict) else None)
    if w_g.ndim != 2:
        raise ValueError("params must be a dict holding 'w_g' of shape (C_i, C) and the rest "
                         "of nl_param_shapes(C, C_i, mode)")
    p = _check_params(params, nl_param_shapes(c, w_g.shape[0], mode), "params")
    flat = x.reshape(b, c, -1)                                           # (B, C, N)

    def project(w, bias, inp):                                          # -> (B, N', C_i)
        return np.einsum("oc,bcn->bno", w, inp.reshape(b, c, -1)) + bias

    keys_input = max_pool_spatial(x) if subsample else x
    g = project(p["w_g"], p["b_g"], keys_input)
    if mode == "gaussian":
        theta, phi = flat.transpose(0, 2, 1), keys_input.reshape(b, c, -1).transpose(0, 2, 1)
    else:
        theta = project(p["w_theta"], p["b_theta"], x)
        phi = project(p["w_phi"], p["b_phi"], keys_input)
    n_keys = phi.shape[1]
    if mode in ("gaussian", "embedded"):
        y, f = embedded_attention(theta, phi, g, scale)                 # y: (B, N, C_i)
    elif mode == "dot":
        y, f = dot_attention(theta, phi, g)
    else:
        ci = theta.shape[-1]
        f = np.maximum((theta @ p["w_f"][:ci])[:, :, None] + (phi @ p["w_f"][ci:])[:, None, :],
                       0.0) / n_keys
        y = f @ g
    z = np.einsum("oc,bnc->bon", p["w_z"], y) + p["b_z"][None, :, None]  # (B, C, N)
    z = p["gamma"][None, :, None] * z / np.sqrt(1 + BN_EPS) + p["beta"][None, :, None]
    return (z + flat).reshape(x.shape), f


# --------------------------------------------------------------------------- interaction-aware

def fix_signs(components: np.ndarray) -> np.ndarray:
    """Flip each row so that its largest-magnitude entry is positive (PCA's sign is arbitrary)."""
    components = as_float_array(components, "components", ndim=2)
    idx = np.abs(components).argmax(axis=1)
    signs = np.sign(components[np.arange(len(components)), idx])
    return components * np.where(signs == 0, 1.0, signs)[:, None]


def covariance(x: np.ndarray) -> np.ndarray:
    """Covariance of samples in rows: x (M, C) -> (C, C) = (x - mean)^T (x - mean) / (M - 1)."""
    x = as_float_array(x, "x", ndim=2, min_shape=(2, 1))
    centred = x - x.mean(axis=0)
    return centred.T @ centred / (len(x) - 1)


def top_components(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA from scratch: the k leading eigenvectors of the covariance (rows, signs fixed) and
    their eigenvalues (the variance along each), largest first. x: (M, C)."""
    sigma = covariance(x)
    k = positive_int(k, "k")
    if k > sigma.shape[0]:
        raise ValueError(f"k ({k}) must not exceed the number of features ({sigma.shape[0]})")
    values, vectors = np.linalg.eigh(sigma)                      # ascending
    order = np.argsort(values)[::-1][:k]
    return fix_signs(vectors[:, order].T), values[order]


def _unit_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of w (K, C) scaled to unit length, and the norms (K, 1) they were divided by."""
    norms = np.linalg.norm(w, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("w must not have an all-zero row (its direction is undefined)")
    return w / norms, norms


def _through_unit_rows(du: np.ndarray, u: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """Back-propagate a gradient with respect to the unit rows u = w / |w| to w."""
    return (du - u * np.sum(du * u, axis=1, keepdims=True)) / norms


def orthogonality_penalty(w: np.ndarray) -> tuple[float, np.ndarray]:
    """sum_{k != l} (w_k . w_l / (|w_k| |w_l|))^2 and its gradient with respect to w (K, C).

    With rows normalised to unit length, the diagonal of W W^T is 1, so this is
    ||W_hat W_hat^T - I||_F^2: zero exactly when the rows are orthogonal.
    """
    u, norms = _unit_rows(as_float_array(w, "w", ndim=2))
    gram = u @ u.T
    off = gram - np.eye(len(w))
    value = float(np.sum(off**2))
    du = 4 * off @ u                                             # d/du of sum off^2 (symmetric)
    return value, _through_unit_rows(du, u, norms)


def _interaction_parts(maps: np.ndarray, x: np.ndarray, normalise: bool,
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float,
                                  np.ndarray]:
    """Checked inputs of eq. (6) and what both its value and its gradient need: x as float64,
    the unit rows u (K, N), their norms (K, 1), u x (K, C), the variance's divisor and
    u u^T - I (K, K)."""
    maps = as_float_array(maps, "maps", ndim=2)
    x = as_float_array(x, "x", ndim=2)
    if x.shape[0] != maps.shape[1]:
        raise ValueError(f"x must have one row per position of the maps, N = {maps.shape[1]}, "
                         f"got shape {x.shape}")
    if np.any(np.linalg.norm(maps, axis=1) == 0):
        raise ValueError("maps must not have an all-zero row (it cannot be L2-normalised)")
    scale = 1.0
    if boolean(normalise, "normalise"):
        scale = float(np.sum(x**2))
        if scale == 0:
            raise ValueError("x must not be all zero when normalise=True (tr(x x^T) = 0)")
    u, norms = _unit_rows(maps)
    return x, u, norms, u @ x, scale, u @ u.T - np.eye(len(u))


def interaction_terms(maps: np.ndarray, x: np.ndarray,
                      normalise: bool = True) -> tuple[float, float]:
    """The two terms of the interaction-aware loss, Du et al. (ECCV 2018) eq. (6), for one
    example: maps A (K, N) over N positions, local features x (N, C).

    Rows of A are L2-normalised first (A_hat). variance = sum of the diagonal of
    A_hat x x^T A_hat^T (PCA's objective with S replaced by A_hat); overlap = the sum of the
    squared off-diagonal entries of A_hat A_hat^T (the soft form of S S^T = I). With
    ``normalise`` (the course's deviation) the variance is divided by tr(x x^T), which makes
    it independent of the scale of x. Returns (variance, overlap).
    """
    _, _, _, ux, scale, off = _interaction_parts(maps, x, normalise)
    return float(np.sum(ux**2)) / scale, float(np.sum(off**2))


def interaction_loss(maps: np.ndarray, x: np.ndarray,
                     normalise: bool = True) -> tuple[float, np.ndarray]:
    """Eq. (6) of Du et al. (ECCV 2018) on attention maps, with its gradient:

        l = -sum_k a_k x x^T a_k^T / s  +  sum_{k != l} (a_k . a_l)^2 ,   a_k = A_k / |A_k|

    maps A (K, N): K maps over N positions (softmax maps, or any rows that are not all zero);
    x (N, C): the features at the positions. s = tr(x x^T) with ``normalise`` (the course's
    deviation: the paper's first term grows with the square of the features' scale), else 1.
    Returns the loss and dl/dA (K, N).
    """
    x, u, norms, ux, scale, off = _interaction_parts(maps, x, normalise)
    loss = -float(np.sum(ux**2)) / scale + float(np.sum(off**2))
    du = -2 * ux @ x.T / scale + 4 * off @ u
    return loss, _through_unit_rows(du, u, norms)


def ia_attention_forward(x: np.ndarray, w: np.ndarray,
                         b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interaction-aware attention pooling: K maps over positions, each pooling the features.

    x: (B, C, *S) local features at N = prod(S) positions; w: (K, C); b: (K,).
    scores = w x + b (B, K, N); maps A = softmax over positions; pooled = A x^T (B, K, C).
    The bias adds one constant per map (the paper's b_attn), which a softmax over positions
    cancels: it cannot change the maps.
    """
    x = as_float_array(x, "x", ndim=(3, 4, 5))
    w = as_float_array(w, "w", ndim=2)
    b = as_float_array(b, "b", ndim=1)
    if w.shape[1] != x.shape[1] or b.shape != (w.shape[0],):
        raise ValueError(f"w must be (K, {x.shape[1]}) and b (K,), got {w.shape} and {b.shape}")
    flat = x.reshape(x.shape[0], x.shape[1], -1)                     # (B, C, N)
    scores = np.einsum("kc,bcn->bkn", w, flat) + b[None, :, None]
    scores -= scores.max(axis=-1, keepdims=True)
    maps = np.exp(scores)
    maps /= maps.sum(axis=-1, keepdims=True)
    return maps @ flat.transpose(0, 2, 1), maps


def map_diversity(maps: np.ndarray) -> float:
    """Mean |off-diagonal| of A_hat A_hat^T for L2-normalised maps A (B, K, N): 0 when the K maps
    never overlap, 1 when they are all the same."""
    maps = as_float_array(maps, "maps", ndim=3)
    if np.any(np.linalg.norm(maps, axis=-1) == 0):
        raise ValueError("maps has an all-zero map; the overlap needs non-zero maps")
    u = maps / np.linalg.norm(maps, axis=-1, keepdims=True)
    gram = u @ u.transpose(0, 2, 1)
    k = maps.shape[1]
    if k < 2:
        raise ValueError("maps must hold at least two maps per sample to compare")
    return float(np.abs(gram[:, ~np.eye(k, dtype=bool)]).mean())


# ---------------------------------------------------------------------------------------------
# Attention across space and time (notebook 06)

AFFINITIES = ("spacetime", "space", "time")


def affinity_mask(frames: int, height: int, width: int, affinity: str) -> np.ndarray:
    """Which positions may attend to which, (N, N) bool with N = T*H*W in (t, h, w) order.

    'spacetime': all pairs; 'space': pairs in the same frame; 'time': pairs at the same
    (h, w) in any frame.
    """
    for name, value in (("frames", frames), ("height", height), ("width", width)):
        positive_int(value, name)
    if affinity not in AFFINITIES:
        raise ValueError(f"affinity must be one of {AFFINITIES}, got {affinity!r}")
    t, p = np.divmod(np.arange(frames * height * width), height * width)
    if affinity == "space":
        return t[:, None] == t[None, :]
    if affinity == "time":
        return p[:, None] == p[None, :]
    return np.ones((t.size, t.size), dtype=bool)


def _self_attention(z: np.ndarray) -> np.ndarray:
    """softmax(z z^T / sqrt(C)) z on tokens z (G, n, C), the softmax over the keys (last axis)."""
    scores = z @ z.transpose(0, 2, 1) / np.sqrt(z.shape[-1])
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (scores / scores.sum(axis=-1, keepdims=True)) @ z


def fold_attention(x: np.ndarray, affinity: str) -> np.ndarray:
    """Parameter-free self-attention over the positions of a clip that ``affinity`` lets
    compare, by folding the other axes into the batch: x (B, C, T, H, W) -> same shape.

    Every position's feature vector (C,) is a token; within each group of tokens the output
    is ``softmax(z z^T / sqrt(C)) z`` (rows: queries, softmax over keys). Groups: the whole
    clip ('spacetime', B groups of T*H*W), one frame ('space', B*T groups of H*W), one place
    across frames ('time', B*H*W groups of T). Equal to ``masked_attention`` with
    ``affinity_mask``, without building the (T*H*W)^2 matrix.
    """
    x = as_float_array(x, "x", ndim=5)
    if affinity not in AFFINITIES:
        raise ValueError(f"affinity must be one of {AFFINITIES}, got {affinity!r}")
    b, c, t, h, w = x.shape
    if affinity == "spacetime":
        z = x.reshape(b, c, t * h * w).transpose(0, 2, 1)                   # (B, THW, C)
        return _self_attention(z).transpose(0, 2, 1).reshape(b, c, t, h, w)
    if affinity == "space":
        z = x.transpose(0, 2, 3, 4, 1).reshape(b * t, h * w, c)             # (BT, HW, C)
        return _self_attention(z).reshape(b, t, h, w, c).transpose(0, 4, 1, 2, 3)
    z = x.transpose(0, 3, 4, 2, 1).reshape(b * h * w, t, c)                 # (BHW, T, C)
    return _self_attention(z).reshape(b, h, w, t, c).transpose(0, 4, 3, 1, 2)


def masked_attention(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The explicit form of ``fold_attention``: all T*H*W tokens of each clip of
    x (B, C, T, H, W) in one (N, N) score matrix, the pairs where ``mask`` (N, N) is False
    removed before the softmax (score -inf), then ``weights @ z``."""
    x = as_float_array(x, "x", ndim=5)
    b, c, t, h, w = x.shape
    n = t * h * w
    mask = np.asarray(mask)
    if mask.shape != (n, n) or mask.dtype != bool:
        raise ValueError(f"mask must be a ({n}, {n}) bool array, got {mask.dtype} {mask.shape}")
    z = x.reshape(b, c, n).transpose(0, 2, 1)
    scores = np.where(mask, z @ z.transpose(0, 2, 1) / np.sqrt(c), -np.inf)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    y = (scores / scores.sum(axis=-1, keepdims=True)) @ z
    return y.transpose(0, 2, 1).reshape(b, c, t, h, w)


def attention_similarity(weights: np.ndarray) -> float:
    """How alike the attention maps of different queries are: the mean cosine similarity
    between the rows of ``weights`` (Nq, Nk), over all pairs of distinct rows. 1 when every
    query attends the same way (query-independent attention)."""
    weights = as_float_array(weights, "weights", ndim=2)
    if weights.shape[0] < 2:
        raise ValueError(f"weights must hold at least two queries (rows), got {weights.shape}")
    norms = np.linalg.norm(weights, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("weights has an all-zero row; a cosine similarity needs non-zero maps")
    u = weights / norms
    gram = u @ u.T
    n = len(u)
    return float((gram.sum() - np.trace(gram)) / (n * (n - 1)))


def top_attended(weights: np.ndarray, shape: tuple[int, int, int], k: int) -> np.ndarray:
    """The ``k`` most attended positions of one query's map ``weights`` (T*H*W,) as (k, 3)
    integer (t, h, w) coordinates, largest weight first (ties: lower index first)."""
    weights = as_float_array(weights, "weights", ndim=1)
    if len(shape) != 3 or int(np.prod(shape)) != weights.size:
        raise ValueError(f"shape must be (T, H, W) with T*H*W = {weights.size}, got {shape}")
    k = positive_int(k, "k")
    if k > weights.size:
        raise ValueError(f"k ({k}) must not exceed the number of positions ({weights.size})")
    order = np.argsort(-weights, kind="stable")[:k]
    return np.stack(np.unravel_index(order, shape), axis=1)


# ---------------------------------------------------------------------------------------------
# GCNet and ECA (notebook 07)

def gc_param_shapes(channels: int, reduction: int) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of a global context block with bottleneck C -> C/r -> C."""
    channels = positive_int(channels, "channels")
    reduction = positive_int(reduction, "reduction")
    if reduction > channels:
        raise ValueError(f"reduction ({reduction}) must not exceed channels ({channels})")
    return _gc_shapes(channels, channels // reduction)


def _gc_shapes(channels: int, hidden: int) -> dict[str, tuple[int, ...]]:
    return {"w_k": (channels,), "b_k": (), "w1": (hidden, channels), "b1": (hidden,),
            "ln_gamma": (hidden,), "ln_beta": (hidden,), "w2": (channels, hidden),
            "b2": (channels,)}


def init_gc(channels: int, reduction: int, rng: np.random.Generator) -> Params:
    """Random global-context parameters (all non-zero, unlike the block's initialisation)."""
    shapes = gc_param_shapes(channels, reduction)
    rng = _check_rng(rng)
    return {k: rng.normal(size=s) / np.sqrt(s[-1] if len(s) > 1 else 1)
            for k, s in shapes.items()}


def _gc_params(x: np.ndarray, params: Params) -> Params:
    """The global-context parameters for x (B, C, H, W), as float64 arrays of checked shapes."""
    if not isinstance(params, dict) or "w1" not in params:
        raise ValueError("params must hold 'w_k', 'b_k', 'w1', 'b1', 'ln_gamma', 'ln_beta', "
                         "'w2' and 'b2' (see gc_param_shapes)")
    shapes = _gc_shapes(x.shape[1], np.shape(params["w1"])[0])
    missing = set(shapes) - set(params)
    if missing:
        raise ValueError(f"params is missing {sorted(missing)} (see gc_param_shapes)")
    p = {k: np.asarray(params[k], dtype=np.float64) for k in shapes}
    for k, s in shapes.items():
        if p[k].shape != s:
            raise ValueError(f"params[{k!r}] must have shape {s}, got {p[k].shape}")
    return p


def gc_forward(x: np.ndarray, params: Params, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Global context block (Cao et al., 2019), the channel-add form. x: (B, C, H, W).

    context modelling: a = softmax_positions(w_k . x_j + b_k) (B, N); c = sum_j a_j x_j (B, C);
    transform: t = W2 ReLU(LayerNorm(W1 c + b1)) + b2 (B, C); fusion: out = x + t at every
    position. Returns (out, a).
    """
    x = _check_x(x)
    p = _gc_params(x, params)
    context, a = gc_context(x, p["w_k"], p["b_k"])
    h = context @ p["w1"].T + p["b1"]
    h = (h - h.mean(axis=1, keepdims=True)) / np.sqrt(h.var(axis=1, keepdims=True) + eps)
    h = np.maximum(h * p["ln_gamma"] + p["ln_beta"], 0.0)
    t = h @ p["w2"].T + p["b2"]
    return x + t[:, :, None, None], a


def gc_context(x: np.ndarray, w_k: np.ndarray, b_k: float) -> tuple[np.ndarray, np.ndarray]:
    """GCNet's context modelling: one attention map a = softmax over positions of
    w_k . x_j + b_k, shared by every query, and the context c = sum_j a_j x_j.

    x: (B, C, H, W); w_k: (C,). Returns (context (B, C), a (B, H*W)).
    """
    x = _check_x(x)
    w_k = as_float_array(w_k, "w_k", ndim=1)
    if w_k.shape != (x.shape[1],):
        raise ValueError(f"w_k must have shape ({x.shape[1]},), got {w_k.shape}")
    b_k = as_float_array(b_k, "b_k", ndim=0)
    flat = x.reshape(x.shape[0], x.shape[1], -1)                     # (B, C, N)
    scores = np.einsum("c,bcn->bn", w_k, flat) + float(b_k)
    scores -= scores.max(axis=1, keepdims=True)
    a = np.exp(scores)
    a /= a.sum(axis=1, keepdims=True)                                # (B, N)
    return np.einsum("bcn,bn->bc", flat, a), a


def gc_as_nonlocal(x: np.ndarray, params: Params,
                   eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """The global context block computed the non-local way, with the same attention row for
    every query: GCNet's starting point, O(N^2 C) where :func:`gc_forward` is O(N C).

    A[b, i, :] = softmax_j(w_k . x_j + b_k) for every query i, an explicit (B, N, N) matrix;
    each query aggregates its own context y_i = sum_j A_ij x_j and transforms it,
    t_i = W2 ReLU(LayerNorm(W1 y_i + b1)) + b2; z_i = x_i + t_i. The output equals
    gc_forward's. x: (B, C, H, W). Returns (z (B, C, H, W), A (B, N, N)).
    """
    x = _check_x(x)
    p = _gc_params(x, params)
    eps = positive_float(eps, "eps")
    b, c, h, w = x.shape
    n = h * w
    tokens = x.reshape(b, c, n).transpose(0, 2, 1)                  # (B, N, C), one row a position
    scores = tokens @ p["w_k"] + p["b_k"]                            # (B, N), one score per key
    row = np.exp(scores - scores.max(axis=1, keepdims=True))
    row /= row.sum(axis=1, keepdims=True)
    attention = np.repeat(row[:, None, :], n, axis=1)               # (B, N, N), equal rows
    y = attention @ tokens                                           # (B, N, C), per query
    hidden = y @ p["w1"].T + p["b1"]                                 # (B, N, C/r)
    hidden = (hidden - hidden.mean(axis=-1, keepdims=True)) / np.sqrt(
        hidden.var(axis=-1, keepdims=True) + eps)                    # LayerNorm per query
    hidden = np.maximum(hidden * p["ln_gamma"] + p["ln_beta"], 0.0)
    t = hidden @ p["w2"].T + p["b2"]                                 # (B, N, C)
    return x + t.transpose(0, 2, 1).reshape(b, c, h, w), attention


def query_free_nonlocal(x: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """The embedded-Gaussian non-local block (:func:`nonlocal_forward`, no scale, no
    subsampling) with W_theta = 0, computed in O(N C): the derivation behind GCNet.

    With W_theta = 0 every query is theta_i = b_theta, so the score of key j,
    b_theta . (W_phi x_j + b_phi) = (W_phi^T b_theta) . x_j + const, is the same for every
    query: one map a = softmax_j(w_k . x_j) with w_k = W_phi^T b_theta (the constant cancels
    in the softmax). The weights sum to 1, so every query's aggregate is the same vector,
    y = W_g c + b_g with the context c = sum_j a_j x_j; then z = W_z y + b_z, the batch norm
    (gamma z / sqrt(1 + eps) + beta) and the residual add that one vector at every position.
    ``params`` as :func:`init_nonlocal` makes them for 'embedded' (``w_theta`` is not read).
    x: (B, C, H, W). Returns (out (B, C, H, W), a (B, H*W)).
    """
    x = _check_x(x)
    b, c = x.shape[:2]
    w_g = np.asarray(params.get("w_g") if isinstance(params, dict) else None)
    if w_g.ndim != 2:
        raise ValueError("params must be a dict holding 'w_g' of shape (C_i, C) and the rest "
                         "of nl_param_shapes(C, C_i, 'embedded')")
    p = _check_params(params, nl_param_shapes(c, w_g.shape[0], "embedded"), "params")
    context, a = gc_context(x, p["w_phi"].T @ p["b_theta"], 0.0)        # (B, C), (B, N)
    y = context @ p["w_g"].T + p["b_g"]                                  # (B, C_i)
    t = (y @ p["w_z"].T + p["b_z"]) * p["gamma"] / np.sqrt(1 + BN_EPS) + p["beta"]
    return x + t[:, :, None, None], a


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA's adaptive kernel size k = |log2(C)/gamma + b/gamma|_odd, as the PyTorch listing in
    the ECA paper computes it: truncate to an integer, then add 1 if even. This is the nearest
    odd number except at even values, where the paper's "nearest odd" is a tie and the listing
    rounds up."""
    channels = positive_int(channels, "channels")
    gamma = positive_int(gamma, "gamma")
    b = positive_int(b, "b", minimum=0)
    t = int(abs((np.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


def eca_forward(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Efficient channel attention (Wang et al., CVPR 2020). x: (B, C, H, W); w: (k,) odd.

    y = mean over H, W (B, C); s = sigmoid(conv1d(y, w)) across channels with zero padding
    (k - 1)/2 and no bias; out = x * s. Returns (out, s).
    """
    x = _check_x(x)
    w = as_float_array(w, "w", ndim=1)
    if w.size % 2 == 0:
        raise ValueError(f"w must have an odd length so that the channels keep their count, "
                         f"got {w.size}")
    y = x.mean(axis=(2, 3))                                          # (B, C)
    pad = w.size // 2
    padded = np.pad(y, ((0, 0), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, w.size, axis=1)  # (B, C, k)
    s = sigmoid(windows @ w)
    return x * s[:, :, None, None], s


# ---------------------------------------------------------------------------------------------
# Temporal attention over the frames of a clip (notebook 08)

def temporal_param_shapes(channels: int, reduction: int) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of the frame-scoring MLP C -> C/r -> 1 of temporal attention:
    w1 (C/r, C), b1 (C/r,), w2 (1, C/r), b2 (1,) -- SE's MLP with a single output."""
    channels = positive_int(channels, "channels")
    reduction = positive_int(reduction, "reduction")
    if reduction > channels:
        raise ValueError(f"reduction ({reduction}) must not exceed channels ({channels})")
    return _temporal_shapes(channels, channels // reduction)


def _temporal_shapes(channels: int, hidden: int) -> dict[str, tuple[int, ...]]:
    return {"w1": (hidden, channels), "b1": (hidden,), "w2": (1, hidden), "b2": (1,)}


def init_temporal(channels: int, reduction: int, rng: np.random.Generator,
                  scale: float = 1.0) -> Params:
    """Random temporal-attention parameters (normal, std scale/sqrt(fan_in); biases std
    scale) for tests and exercises. Unlike a new ``modules.TemporalAttention``, whose w2
    and b2 start at zero, every entry is non-zero, so that the frames get unequal weights."""
    shapes = temporal_param_shapes(channels, reduction)
    rng = _check_rng(rng)
    scale = positive_float(scale, "scale")
    return {k: rng.normal(size=s) * scale / np.sqrt(s[-1] if len(s) > 1 else 1)
            for k, s in shapes.items()}


def _temporal_params(params: Params, channels: int) -> Params:
    """Check temporal-attention parameters against the channel count; C/r is read from w1."""
    w1 = params.get("w1") if isinstance(params, dict) else None
    if w1 is None or np.ndim(w1) != 2 or np.shape(w1)[0] < 1:
        raise ValueError("params must be a dict holding 'w1' of shape (C/r, C), 'b1' (C/r,), "
                         "'w2' (1, C/r) and 'b2' (1,) (see temporal_param_shapes)")
    return _check_params(params, _temporal_shapes(channels, np.shape(w1)[0]), "params")


def _frame_weights(s: np.ndarray, p: Params) -> tuple[np.ndarray, tuple]:
    """Descriptors s (B, C, T) -> frame weights a (B, T) (softmax over T) and the MLP cache."""
    b, c, t = s.shape
    e, mlp_cache = _mlp_forward(s.transpose(0, 2, 1).reshape(b * t, c), p)   # (B*T, 1)
    e = e.reshape(b, t)
    a = np.exp(e - e.max(axis=1, keepdims=True))                              # stable softmax
    return a / a.sum(axis=1, keepdims=True), mlp_cache


def temporal_weights(s: np.ndarray, params: Params) -> np.ndarray:
    """The frame weights of temporal attention: a = softmax over t of e_t (B, T).

    s: per-frame descriptors (B, C, T), s_t = mean of frame t over (H, W); the shared MLP
    scores each frame, e_t = w2 . ReLU(W1 s_t + b1) + b2 (params as in
    ``temporal_param_shapes``). Each row of a is positive and sums to 1.
    """
    s = as_float_array(s, "s", ndim=3)
    return _frame_weights(s, _temporal_params(params, s.shape[1]))[0]


def temporal_attention(x: np.ndarray, params: Params) -> tuple[np.ndarray, tuple]:
    """Temporal attention over the T frames of clips x (B, C, T, H, W).

    s_t = mean over (H, W) of x[:, :, t] (B, C, T); e_t = w2 . ReLU(W1 s_t + b1) + b2, one
    MLP shared by all frames (B, T); a = softmax over t of e (B, T); out y_t = T a_t x_t
    (B, C, T, H, W). The factor T makes equal weights (a_t = 1/T) the identity. Returns
    (y, cache) with a = cache[1].
    """
    x = as_float_array(x, "x", ndim=5)
    p = _temporal_params(params, x.shape[1])
    a, mlp_cache = _frame_weights(x.mean(axis=(3, 4)), p)
    t = x.shape[2]
    return t * a[:, None, :, None, None] * x, (x, a, mlp_cache, p)


def temporal_attention_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, Params]:
    """Gradients of temporal attention: dx (B, C, T, H, W) and {w1, b1, w2, b2}.

    b2 shifts every frame's score alike and the softmax ignores such a shift, so its
    gradient is zero (to rounding) whatever the input.
    """
    x, a, mlp_cache, p = _unpack_cache(cache, 4, "temporal_attention")
    dout = _check_dout(dout, x)
    b, c, t, h, w = x.shape
    da = t * (dout * x).sum(axis=(1, 3, 4))                           # (B, T), through y = T a x
    de = a * (da - (a * da).sum(axis=1, keepdims=True))               # through the softmax
    dz, grads = _mlp_backward(de.reshape(b * t, 1), mlp_cache, p)    # (B*T, C)
    ds = dz.reshape(b, t, c).transpose(0, 2, 1)                       # (B, C, T)
    dx = t * a[:, None, :, None, None] * dout + ds[..., None, None] / (h * w)
    return dx, grads
