"""PyTorch attention modules of the course, batch-first (B, C, H, W), any H and W.

One constructor style: ``Module(channels, reduction=16, kernel_size=7, ...)``. Each module
is the NumPy reference of ``utils.reference`` as an ``nn.Module``; ``load_reference(params)``
copies NumPy parameters in, so that tests can compare the two in float64. Pooling uses
``x.mean((2, 3))`` / ``amax`` rather than pooling layers, which keeps channels-last inputs
and low-precision dtypes working.

Set ``module.keep_attention = True`` to keep the last attention weights in
``module.attention`` (for plots).
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .validate import boolean, positive_int

ORDERS = ("channel-spatial", "spatial-channel", "parallel")
VARIANTS = ("paper", "official")


def _check_input(x: torch.Tensor, channels: int | None, name: str, ndim: int | None = 4,
                 expected: str = "(B, C, H, W)") -> None:
    """x must be a tensor of rank ``ndim`` (None: any rank of at least 3) with ``channels``."""
    rank_ok = isinstance(x, torch.Tensor) and (x.ndim == ndim if ndim else x.ndim >= 3)
    if not rank_ok:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} expects x of shape {expected}, got {shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} was built for {channels} channels, got x with {x.shape[1]} "
                         f"(shape {tuple(x.shape)})")


def _hidden(channels: int, reduction: int) -> int:
    channels = positive_int(channels, "channels")
    reduction = positive_int(reduction, "reduction")
    if reduction > channels:
        raise ValueError(f"reduction ({reduction}) must not exceed channels ({channels})")
    return channels // reduction


def _get(params: object, key: str) -> object:
    """params[key] for load_reference, with a clear error for a missing key or a non-dict."""
    if not isinstance(params, dict) or key not in params:
        have = f"keys {sorted(params)}" if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"params must be a dict holding {key!r} (the NumPy reference's "
                         f"parameter names), got {have}")
    return params[key]


def _copy(param: torch.Tensor, value: np.ndarray, name: str) -> None:
    value = torch.as_tensor(np.asarray(value), dtype=param.dtype, device=param.device)
    if value.shape != param.shape:
        raise ValueError(f"{name} must have shape {tuple(param.shape)}, got {tuple(value.shape)}")
    with torch.no_grad():
        param.copy_(value)


class _Attention(nn.Module):
    keep_attention: bool = False
    attention: torch.Tensor | None = None

    def _keep(self, weights: torch.Tensor) -> None:
        if self.keep_attention:
            self.attention = weights.detach()


class SqueezeExcitation(_Attention):
    """SE block: x * sigmoid(W2 ReLU(W1 mean_hw(x) + b1) + b2). x: (B, C, H, W)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = _hidden(channels, reduction)
        self.channels, self.reduction = channels, reduction
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The excitation s: (B, C), values in (0, 1)."""
        _check_input(x, self.channels, type(self).__name__)
        return torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(x)
        self._keep(s)
        return x * s[:, :, None, None]

    def load_reference(self, params: dict[str, np.ndarray]) -> SqueezeExcitation:
        for name, param in (("w1", self.fc1.weight), ("b1", self.fc1.bias),
                            ("w2", self.fc2.weight), ("b2", self.fc2.bias)):
            _copy(param, _get(params, name), f"params[{name!r}]")
        return self


class ChannelAttention(SqueezeExcitation):
    """CBAM channel attention: x * sigmoid(MLP(avg_hw x) + MLP(max_hw x)), one shared MLP."""

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.channels, type(self).__name__)

        def mlp(z: torch.Tensor) -> torch.Tensor:
            return self.fc2(F.relu(self.fc1(z)))

        return torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))


class SpatialAttention(_Attention):
    """CBAM spatial attention: x * sigmoid(conv_k([mean_c x; max_c x])). x: (B, C, H, W).

    variant='paper': conv with bias, pooled maps stacked [mean; max] (the paper's equation).
    variant='official': bias-free conv followed by batch norm, stacked [max; mean], as in the
    authors' released code. ``channels`` is accepted for a uniform constructor and unused.
    """

    def __init__(self, channels: int | None = None, kernel_size: int = 7, variant: str = "paper"):
        super().__init__()
        kernel_size = positive_int(kernel_size, "kernel_size")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd so that the map keeps its size, "
                             f"got {kernel_size}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.kernel_size, self.variant = kernel_size, variant
        official = variant == "official"
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=not official)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01) if official else nn.Identity()

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial map Ms: (B, H, W), values in (0, 1)."""
        _check_input(x, None, type(self).__name__)
        pooled = [x.mean(1, keepdim=True), x.amax(1, keepdim=True)]
        if self.variant == "official":
            pooled.reverse()
        return torch.sigmoid(self.bn(self.conv(torch.cat(pooled, dim=1))))[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.gate(x)
        self._keep(m)
        return x * m[:, None]

    def load_reference(self, params: dict[str, np.ndarray]) -> SpatialAttention:
        _copy(self.conv.weight, _get(params, "w"), "params['w']")
        if self.conv.bias is not None:
            _copy(self.conv.bias, _get(params, "b"), "params['b']")
        return self


class CBAM(nn.Module):
    """Convolutional Block Attention Module: channel then spatial attention (the paper).

    order: 'channel-spatial' (the paper), 'spatial-channel', or 'parallel' (both maps from the
    same input, applied together: x * Mc(x) * Ms(x)).
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7,
                 order: str = "channel-spatial", variant: str = "paper"):
        super().__init__()
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self.order = order
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(channels, kernel_size, variant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order == "channel-spatial":
            return self.spatial(self.channel(x))
        if self.order == "spatial-channel":
            return self.channel(self.spatial(x))
        mc, ms = self.channel.gate(x), self.spatial.gate(x)
        self.channel._keep(mc)
        self.spatial._keep(ms)
        return x * mc[:, :, None, None] * ms[:, None]

    def load_reference(self, params: dict[str, dict[str, np.ndarray]]) -> CBAM:
        self.channel.load_reference(_get(params, "channel"))
        self.spatial.load_reference(_get(params, "spatial"))
        return self


class GlobalContext(_Attention):
    """Global context block (Cao et al., GCNet, 2019), channel-add fusion. x: (B, C, H, W).

    Context modelling: one 1x1 convolution C -> 1 and a softmax over the H*W positions give a
    single attention map, shared by every query position; it pools x into a context vector
    (B, C). Transform: 1x1 C -> C/r, LayerNorm, ReLU, 1x1 C/r -> C. Fusion: added to x at
    every position. As in the authors' code, the last convolution starts at zero (the block
    starts as the identity) and the context convolution uses Kaiming (fan-in) initialisation.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = _hidden(channels, reduction)
        self.channels, self.reduction = channels, reduction
        self.context = nn.Conv2d(channels, 1, 1)
        self.transform = nn.Sequential(nn.Conv2d(channels, hidden, 1),
                                       nn.LayerNorm([hidden, 1, 1]), nn.ReLU(inplace=True),
                                       nn.Conv2d(hidden, channels, 1))
        nn.init.kaiming_normal_(self.context.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.context.bias)
        nn.init.zeros_(self.transform[-1].weight)
        nn.init.zeros_(self.transform[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.channels, type(self).__name__)
        b, c = x.shape[:2]
        a = torch.softmax(self.context(x).flatten(1), dim=1)        # (B, N), one map
        self._keep(a.reshape(b, *x.shape[2:]))
        context = torch.bmm(x.flatten(2), a[:, :, None])             # (B, C, 1)
        return x + self.transform(context[..., None])                # (B, C, 1, 1) broadcast

    def load_reference(self, params: dict[str, np.ndarray]) -> GlobalContext:
        _copy(self.context.weight, np.asarray(_get(params, "w_k")).reshape(1, -1, 1, 1),
              "params['w_k']")
        _copy(self.context.bias, np.asarray(_get(params, "b_k")).reshape(1), "params['b_k']")
        conv1, norm, _, conv2 = self.transform
        _copy(conv1.weight, np.asarray(_get(params, "w1"))[:, :, None, None], "params['w1']")
        _copy(conv1.bias, _get(params, "b1"), "params['b1']")
        _copy(norm.weight, np.asarray(_get(params, "ln_gamma"))[:, None, None],
              "params['ln_gamma']")
        _copy(norm.bias, np.asarray(_get(params, "ln_beta"))[:, None, None], "params['ln_beta']")
        _copy(conv2.weight, np.asarray(_get(params, "w2"))[:, :, None, None], "params['w2']")
        _copy(conv2.bias, _get(params, "b2"), "params['b2']")
        return self


class EfficientChannelAttention(_Attention):
    """ECA (Wang et al., CVPR 2020): x * sigmoid(conv1d_k(mean_hw x)) across channels, no
    bias, no reduction. kernel_size=None picks k from C with ``eca_kernel_size`` (gamma=2,
    b=1). x: (B, C, H, W)."""

    def __init__(self, channels: int, kernel_size: int | None = None):
        super().__init__()
        from .reference import eca_kernel_size

        self.channels = positive_int(channels, "channels")
        k = eca_kernel_size(channels) if kernel_size is None else positive_int(kernel_size,
                                                                               "kernel_size")
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {k}")
        self.kernel_size = k
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The channel weights s: (B, C), values in (0, 1)."""
        _check_input(x, self.channels, type(self).__name__)
        return torch.sigmoid(self.conv(x.mean((2, 3))[:, None])[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(x)
        self._keep(s)
        return x * s[:, :, None, None]

    def load_reference(self, w: np.ndarray) -> EfficientChannelAttention:
        _copy(self.conv.weight, np.asarray(w).reshape(1, 1, -1), "w")
        return self


NL_MODES = ("gaussian", "embedded", "dot", "concat")
NL_BACKENDS = ("matmul", "sdpa")
AFFINITY_MEMORY_FRACTION = 0.5   # the explicit N x N affinity may use this share of free memory


def available_memory_bytes(device: torch.device) -> int:
    """Free memory on ``device``: CUDA's free bytes, else the machine's available RAM."""
    if isinstance(device, str):
        try:
            device = torch.device(device)
        except RuntimeError:
            raise ValueError(f"device must be a torch.device or a device name such as 'cpu', "
                             f"got {device!r}") from None
    if not isinstance(device, torch.device):
        raise ValueError(f"device must be a torch.device, got {type(device).__name__}")
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) if hasattr(
        os, "sysconf") else 8 * 2**30


class NonLocalBlock(_Attention):
    """Non-local block (Wang et al., CVPR 2018) for 1-D, 2-D or 3-D inputs (B, C, *S).

    mode: the pairwise function ('gaussian', 'embedded', 'dot', 'concat'); inter_channels:
    C_i (default C/2); subsample: max-pool phi and g spatially by 2 (time is never pooled);
    scale: divide theta.phi by sqrt(C_i) (the official code's choice; the paper's text has
    no scale); backend: 'matmul' (explicit N x N affinity) or 'sdpa'
    (``scaled_dot_product_attention``, fused, for the softmax modes only). The output batch
    norm starts with weight 0, so the block starts as the identity. With the 'matmul' backend
    the block refuses an input whose N x N affinity would need more than
    ``max_affinity_bytes`` (default: half of the free memory of the input's device).
    """

    def __init__(self, channels: int, inter_channels: int | None = None, mode: str = "embedded",
                 dim: int = 2, subsample: bool = False, scale: bool = False,
                 backend: str = "matmul"):
        super().__init__()
        channels = positive_int(channels, "channels")
        inter = positive_int(inter_channels if inter_channels is not None
                             else max(channels // 2, 1), "inter_channels")
        if mode not in NL_MODES:
            raise ValueError(f"mode must be one of {NL_MODES}, got {mode!r}")
        if dim not in (1, 2, 3):
            raise ValueError(f"dim must be 1, 2 or 3 (the number of spatial axes), got {dim!r}")
        if backend not in NL_BACKENDS:
            raise ValueError(f"backend must be one of {NL_BACKENDS}, got {backend!r}")
        if backend == "sdpa" and mode not in ("gaussian", "embedded"):
            raise ValueError(f"backend='sdpa' computes a softmax; mode {mode!r} normalises by N "
                             "instead, so use backend='matmul'")
        self.channels, self.inter, self.mode, self.dim = channels, inter, mode, dim
        self.scale, self.backend = scale, backend
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dim]
        norm = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dim]
        self.g = conv(channels, inter, 1)
        if mode != "gaussian":
            self.theta = conv(channels, inter, 1)
            self.phi = conv(channels, inter, 1)
        if mode == "concat":
            self.w_f = nn.Linear(2 * inter, 1, bias=False)
        self.w_z = conv(inter, channels, 1)
        self.bn = norm(channels)
        nn.init.zeros_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        pool = {1: nn.MaxPool1d(2), 2: nn.MaxPool2d(2), 3: nn.MaxPool3d((1, 2, 2))}[dim]
        self.pool = pool if subsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.channels, f"NonLocalBlock(dim={self.dim})", ndim=self.dim + 2,
                     expected=f"(B, C, {('L', 'H, W', 'T, H, W')[self.dim - 1]}) with "
                              f"{self.dim} spatial axes")
        b = x.shape[0]
        keys = self.pool(x) if self.pool is not None else x

        def tokens(t: torch.Tensor) -> torch.Tensor:                # (B, C', *S) -> (B, N, C')
            return t.flatten(2).transpose(1, 2)

        g = tokens(self.g(keys))
        if self.mode == "gaussian":
            theta, phi = tokens(x), tokens(keys)
        else:
            theta, phi = tokens(self.theta(x)), tokens(self.phi(keys))
        factor = theta.shape[-1] ** -0.5 if self.scale else 1.0
        if self.backend == "matmul":
            self._check_affinity_memory(b, theta.shape[1], phi.shape[1], x)
        if self.backend == "sdpa":
            # Contiguous (B, 1, N, d) tensors, so that the fused kernel is used rather than a
            # fallback that materialises the N x N matrix.
            y = F.scaled_dot_product_attention(theta.unsqueeze(1).contiguous(),
                                               phi.unsqueeze(1).contiguous(),
                                               g.unsqueeze(1).contiguous(), scale=factor)[:, 0]
        else:
            if self.mode in ("gaussian", "embedded"):
                f = torch.softmax(theta @ phi.transpose(1, 2) * factor, dim=-1)
            elif self.mode == "dot":
                f = theta @ phi.transpose(1, 2) / phi.shape[1]
            else:
                w = self.w_f.weight[0]
                f = F.relu((theta @ w[:self.inter])[:, :, None]
                           + (phi @ w[self.inter:])[:, None, :]) / phi.shape[1]
            self._keep(f)
            y = f @ g
        z = self.w_z(y.transpose(1, 2).reshape(b, self.inter, *x.shape[2:]))
        return x + self.bn(z)

    max_affinity_bytes: int | None = None   # None: AFFINITY_MEMORY_FRACTION of free memory

    def _check_affinity_memory(self, batch: int, n: int, keys: int, x: torch.Tensor) -> None:
        """Refuse, before allocating, an explicit affinity larger than the memory limit."""
        need = 2 * batch * n * keys * x.element_size()   # the scores and their normalised copy
        limit = self.max_affinity_bytes
        if limit is None:
            limit = int(AFFINITY_MEMORY_FRACTION * available_memory_bytes(x.device))
        if need > limit:
            raise ValueError(
                f"x of shape {tuple(x.shape)} gives N = {n} positions and {keys} keys: the "
                f"explicit affinity needs about {need / 2**30:.2f} GiB, over the limit of "
                f"{limit / 2**30:.2f} GiB (max_affinity_bytes). Use subsample=True, the fused "
                "backend='sdpa' (softmax modes), or a smaller input.")

    def load_reference(self, params: dict[str, np.ndarray]) -> NonLocalBlock:
        """Copy NumPy parameters in (``utils.reference.nl_param_shapes``); the batch norm's
        running statistics are reset to mean 0 and variance 1, as the reference assumes."""
        def conv_weight(name: str, conv: nn.Module) -> None:
            _copy(conv.weight, np.asarray(_get(params, name)).reshape(conv.weight.shape),
                  f"params[{name!r}]")

        conv_weight("w_g", self.g)
        _copy(self.g.bias, _get(params, "b_g"), "params['b_g']")
        if self.mode != "gaussian":
            for name in ("theta", "phi"):
                conv_weight(f"w_{name}", getattr(self, name))
                _copy(getattr(self, name).bias, _get(params, f"b_{name}"),
                      f"params['b_{name}']")
        if self.mode == "concat":
            _copy(self.w_f.weight, np.asarray(_get(params, "w_f"))[None], "params['w_f']")
        conv_weight("w_z", self.w_z)
        _copy(self.w_z.bias, _get(params, "b_z"), "params['b_z']")
        _copy(self.bn.weight, _get(params, "gamma"), "params['gamma']")
        _copy(self.bn.bias, _get(params, "beta"), "params['beta']")
        self.bn.reset_running_stats()
        return self


def interaction_terms(maps: torch.Tensor, features: torch.Tensor,
                      normalise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The two terms of eq. (6) of Du et al. (ECCV 2018) per example, batched (see
    ``utils.reference.interaction_terms``): maps (B, K, N) over the N = prod(S) positions of
    features (B, C, *S). Rows of the maps are L2-normalised (a_k); variance (B,) is
    sum_k |a_k X|^2, divided by tr(X X^T) = |X|^2 with ``normalise`` (the course's
    deviation); overlap (B,) is the sum of the squared off-diagonal entries of a a^T."""
    if not isinstance(maps, torch.Tensor) or maps.ndim != 3:
        shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise ValueError(f"maps must be a tensor (B, K, N), got {shape}")
    if (not isinstance(features, torch.Tensor) or features.ndim < 3
            or features.shape[0] != maps.shape[0] or features[0, 0].numel() != maps.shape[2]):
        shape = (tuple(features.shape) if isinstance(features, torch.Tensor)
                 else type(features).__name__)
        raise ValueError(f"features must be a tensor (B, C, *S) with B = {maps.shape[0]} and "
                         f"prod(S) = N = {maps.shape[2]} positions, got {shape}")
    boolean(normalise, "normalise")
    flat = features.flatten(2)                                       # (B, C, N)
    unit = F.normalize(maps, dim=-1)                                 # (B, K, N)
    variance = (unit @ flat.transpose(1, 2)).pow(2).sum((1, 2))
    if normalise:
        variance = variance / flat.pow(2).sum((1, 2)).clamp_min(torch.finfo(flat.dtype).tiny)
    eye = torch.eye(maps.shape[1], dtype=unit.dtype, device=unit.device)
    overlap = (unit @ unit.transpose(1, 2) - eye).pow(2).sum((1, 2))
    return variance, overlap


def interaction_loss(maps: torch.Tensor, features: torch.Tensor,
                     normalise: bool = True) -> torch.Tensor:
    """The interaction-aware loss, eq. (6) of Du et al. (ECCV 2018), on attention maps
    (B, K, N) and the features (B, C, *S) they attend over: -variance + overlap of
    ``interaction_terms``, averaged over the batch (see ``utils.reference.interaction_loss``)."""
    variance, overlap = interaction_terms(maps, features, normalise)
    return (overlap - variance).mean()


class InteractionAwareAttention(_Attention):
    """K attention maps over the positions of (B, C, *S) features, each pooling them:
    A = softmax_positions(W x + b) (B, K, N), pooled = A x^T (B, K, C)."""

    def __init__(self, channels: int, maps: int = 4):
        super().__init__()
        self.channels = positive_int(channels, "channels")
        self.maps = positive_int(maps, "maps")
        self.score = nn.Linear(channels, maps)

    def attend(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pooled (B, K, C) and the maps (B, K, N) that pooled it, with their gradients."""
        _check_input(x, self.channels, type(self).__name__, ndim=None, expected="(B, C, *S)")
        flat = x.flatten(2)                                          # (B, C, N)
        maps = torch.softmax(torch.einsum("kc,bcn->bkn", self.score.weight, flat)
                             + self.score.bias[None, :, None], dim=-1)
        self._keep(maps)
        return maps @ flat.transpose(1, 2), maps                     # (B, K, C), (B, K, N)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attend(x)[0]

    def load_reference(self, w: np.ndarray, b: np.ndarray) -> InteractionAwareAttention:
        _copy(self.score.weight, w, "w")
        _copy(self.score.bias, b, "b")
        return self


class TemporalAttention(_Attention):
    """Temporal attention: reweight the T frames of clips x (B, C, T, H, W) by their content.

    Each frame is squeezed to its mean over space, s_t = mean_hw x[:, :, t] (B, C, T); one
    small MLP shared by all frames scores it, e_t = fc2(ReLU(fc1(s_t))) with fc1 C -> C/r and
    fc2 C/r -> 1 (SE's bottleneck with a single output); the scores become weights over the
    frames, a = softmax over t of e (B, T); the output is y_t = T * a_t * x_t. The factor T
    makes equal weights (a_t = 1/T) the identity. The NumPy reference is
    ``utils.reference.temporal_attention``.

    Why a softmax over the frames and not a sigmoid gate per frame, as SE and CBAM gate
    channels and positions (notebooks 02 and 03): the frames compete for a fixed budget of
    weight (their weights sum to T), so raising the few frames that matter lowers all the
    others, and a frame's weight depends on the other frames of its clip; a sigmoid gate would
    judge each frame on its own content alone and could open (or shut) every gate at once.

    fc2's weight and bias start at zero, so a new block is the identity (every score 0, every
    weight 1/T), as the course starts non-local blocks (the batch norm's gamma after W_z) and
    GC blocks: inserted into a network, the block changes nothing until training finds frames
    worth weighting, and the layers after it start from the features they would see without
    it. fc1 keeps its default initialisation, so fc2 gets a gradient from the first step. The
    bias fc2.bias adds the same number to every frame's score, which the softmax ignores: its
    gradient is always zero (it is kept so that the MLP is SE's, as the formula writes it).

    Weights learned over the frames of a clip are the "temporal attention" that Gao and
    Nevatia (2018, "Revisiting temporal modeling for video-based person ReID") compare with
    temporal pooling, RNNs and 3-D convolutions; there the weights pool the frame features
    into one vector. This block is the course's formulation: it reweights the frames inside
    the network and keeps them, so that it can sit after CBAM in any stage.

    With ``keep_attention = True`` the last weights a (B, T) are kept in ``attention``.
    """

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = _hidden(channels, reduction)
        self.channels, self.reduction = channels, reduction
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, 1)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The frame weights a: (B, T), positive, each row summing to 1."""
        _check_input(x, self.channels, type(self).__name__, ndim=5,
                     expected="(B, C, T, H, W), a batch of clips")
        s = x.mean((3, 4)).transpose(1, 2)                            # (B, T, C)
        return torch.softmax(self.fc2(F.relu(self.fc1(s)))[..., 0], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.weights(x)
        self._keep(a)
        return x * (a * a.shape[1])[:, None, :, None, None]

    def load_reference(self, params: dict[str, np.ndarray]) -> TemporalAttention:
        """Copy NumPy parameters in (``utils.reference.temporal_param_shapes``)."""
        for name, param in (("w1", self.fc1.weight), ("b1", self.fc1.bias),
                            ("w2", self.fc2.weight), ("b2", self.fc2.bias)):
            _copy(param, _get(params, name), f"params[{name!r}]")
        return self
