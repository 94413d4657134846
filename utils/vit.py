"""A tiny Vision Transformer (Dosovitskiy et al., ICLR 2021), built from the course's parts.

The link to the rest of the course, in three steps:

1. A non-local block with the embedded-Gaussian pairwise function and the 1/sqrt(C_i)
   scale (notebook 04) computes ``z = x + BN(W_z softmax(theta phi^T / sqrt(C_i)) g)`` over
   the N positions of x: that is **single-head self-attention** over positions (queries
   theta, keys phi, values g, output projection W_z) with a residual connection.
2. **Multi-head** attention on D channels runs h such operations side by side, each on its
   own d = D/h channels of theta, phi and g with the scale 1/sqrt(d), concatenates their
   outputs (h times d = D channels) and projects them with one W_z (``MultiHeadAttention``).
3. A **ViT** cuts the image into P x P patches, projects each to a D-dimensional token
   (``PatchEmbedding``), prepends a learned class token, adds a learned position embedding,
   and runs L pre-norm transformer encoder blocks (``EncoderBlock``); the class token's
   final state, layer-normalised, is classified (``TinyViT``). The paper's equations 1-4.

The attention has the same two backends as ``utils.modules.NonLocalBlock``: 'matmul' (the
explicit N x N matrix, which ``keep_attention`` can keep for plots) and 'sdpa' (PyTorch's
fused ``scaled_dot_product_attention``). Tokens are batch-first, (B, N, D).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .modules import NL_BACKENDS, _Attention, _copy, _get
from .validate import positive_int

MHA_PARAMS = ("theta", "phi", "g", "z")     # the projections: queries, keys, values, output


def _pair(value: object, name: str) -> tuple[int, int]:
    """An int or a pair of ints, as (height, width), each >= 1."""
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"{name} must be an integer or a pair (height, width), "
                             f"got {value!r}")
        return positive_int(value[0], name), positive_int(value[1], name)
    side = positive_int(value, name)
    return side, side


def _check_backend(backend: object) -> str:
    if backend not in NL_BACKENDS:
        raise ValueError(f"backend must be one of {NL_BACKENDS}, got {backend!r}")
    return backend


def _check_tokens(x: object, dim: int, name: str) -> None:
    """x must be a (B, N, D) tensor with D = dim and at least one token."""
    if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[1] == 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} expects tokens x of shape (B, N, D) with N >= 1, got {shape}")
    if x.shape[2] != dim:
        raise ValueError(f"{name} was built for D = {dim} channels per token, got x with "
                         f"{x.shape[2]} (shape {tuple(x.shape)})")


class PatchEmbedding(nn.Module):
    """Cut (B, C, H, W) into P x P patches and project each to D numbers: (B, N, D).

    N = (H/P)(W/P), patches in row-major order. The paper flattens every patch to P*P*C
    numbers and multiplies by a (P*P*C, D) matrix E (eq. 1); a convolution with kernel P
    and stride P computes exactly that, one patch per output position, which is how the
    authors' code writes it. H and W must be multiples of P.
    """

    def __init__(self, patch_size: int, in_channels: int, dim: int):
        super().__init__()
        self.patch_size = positive_int(patch_size, "patch_size")
        self.in_channels = positive_int(in_channels, "in_channels")
        self.dim = positive_int(dim, "dim")
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"PatchEmbedding expects x of shape (B, C, H, W), got {shape}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"PatchEmbedding was built for {self.in_channels} channels, got x "
                             f"with {x.shape[1]} (shape {tuple(x.shape)})")
        h, w = x.shape[2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"x's height and width must be multiples of patch_size "
                             f"({self.patch_size}), got {h} x {w}")
        return self.proj(x).flatten(2).transpose(1, 2)               # (B, N, D)


class MultiHeadAttention(_Attention):
    """Multi-head self-attention over tokens (B, N, D): h embedded-Gaussian non-local
    operations, each on its own d = D/h channels, concatenated and projected.

    For head k, with theta, phi, g linear maps D -> D whose channels k*d ... (k+1)*d - 1
    belong to that head:

        y_k = softmax(theta_k phi_k^T / sqrt(d)) g_k        (B, N, d), the non-local operation
        out = W_z [y_1, ..., y_h] + b_z                     (B, N, D)

    With ``heads=1`` this is the non-local block of notebook 04 (embedded Gaussian,
    ``scale=True``, C_i = C) on a 1-D sequence of positions, minus its residual and its
    batch norm: ``NonLocalBlock(x) = x + BN(MultiHeadAttention(x))``. In a transformer the
    residual and the normalisation live in the encoder block instead. The names follow the
    non-local paper (theta, phi, g, W_z); transformers call them queries, keys, values and
    the output projection.

    backend: 'matmul' (explicit (B, h, N, N) attention, kept in ``attention`` when
    ``keep_attention`` is set) or 'sdpa' (fused ``scaled_dot_product_attention``, the same
    call as ``NonLocalBlock(backend='sdpa')``, with the heads as its second axis).
    """

    def __init__(self, dim: int, heads: int = 1, backend: str = "matmul"):
        super().__init__()
        self.dim = positive_int(dim, "dim")
        self.heads = positive_int(heads, "heads")
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads}): every head "
                             "gets dim / heads channels")
        self.head_dim = dim // heads
        self.backend = _check_backend(backend)
        self.theta = nn.Linear(dim, dim)
        self.phi = nn.Linear(dim, dim)
        self.g = nn.Linear(dim, dim)
        self.w_z = nn.Linear(dim, dim)

    def _split(self, t: torch.Tensor) -> torch.Tensor:            # (B, N, D) -> (B, h, N, d)
        b, n, _ = t.shape
        return t.reshape(b, n, self.heads, self.head_dim).transpose(1, 2).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_tokens(x, self.dim, "MultiHeadAttention")
        b, n, _ = x.shape
        theta, phi, g = (self._split(proj(x)) for proj in (self.theta, self.phi, self.g))
        scale = self.head_dim ** -0.5
        if self.backend == "sdpa":
            y = F.scaled_dot_product_attention(theta, phi, g, scale=scale)
        else:
            f = torch.softmax(theta @ phi.transpose(-1, -2) * scale, dim=-1)   # (B, h, N, N)
            self._keep(f)
            y = f @ g
        return self.w_z(y.transpose(1, 2).reshape(b, n, self.dim))   # heads concatenated

    def load_reference(self, params: dict[str, np.ndarray]) -> MultiHeadAttention:
        """Copy NumPy weights in: 'w_theta', 'w_phi', 'w_g', 'w_z' (D, D) as (out, in), and
        'b_theta', 'b_phi', 'b_g', 'b_z' (D,), the names of ``reference.nl_param_shapes``."""
        for name in MHA_PARAMS:
            layer = self.w_z if name == "z" else getattr(self, name)
            _copy(layer.weight, _get(params, f"w_{name}"), f"params['w_{name}']")
            _copy(layer.bias, _get(params, f"b_{name}"), f"params['b_{name}']")
        return self


class EncoderBlock(nn.Module):
    """A pre-norm transformer encoder block on tokens (B, N, D), the paper's eqs. 2-3:

        z' = MSA(LN(z)) + z
        out = MLP(LN(z')) + z'          MLP: Linear D -> mlp_dim, GELU, Linear mlp_dim -> D

    No dropout (the course's runs are short; the paper uses it when training from scratch).
    """

    def __init__(self, dim: int, heads: int, mlp_dim: int, backend: str = "matmul"):
        super().__init__()
        self.dim = positive_int(dim, "dim")
        mlp_dim = positive_int(mlp_dim, "mlp_dim")
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads, backend)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_tokens(x, self.dim, "EncoderBlock")
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """A small Vision Transformer: x (B, in_channels, H, W) -> logits (B, num_classes).

    Eq. 1: z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos, with N = HW / P^2 patch tokens
    (``PatchEmbedding``), a learned class token x_class (D,) and a learned 1-D position
    embedding E_pos (N + 1, D). Eqs. 2-3: ``depth`` pre-norm ``EncoderBlock``s. Eq. 4:
    y = LN(z_L^0), the class token's final state, then a linear classifier (the paper's head
    at fine-tuning; pre-training used an MLP with one hidden layer).

    image_size: H = W, or (H, W); both multiples of patch_size. The position embedding is
    made for that size, so other sizes are refused (the paper interpolates E_pos in 2-D to
    fine-tune at a higher resolution). backend: 'sdpa' (the fused kernel, the default) or
    'matmul' (explicit attention maps, which ``attention_layers()`` can keep); the two
    share parameter names, so a state dict moves between them. ``reset_parameters``
    initialises as the authors' released code does.
    """

    def __init__(self, image_size: int | tuple[int, int] = 40, patch_size: int = 5,
                 in_channels: int = 1, num_classes: int = 10, dim: int = 64, depth: int = 2,
                 heads: int = 4, mlp_dim: int = 128, backend: str = "sdpa"):
        super().__init__()
        self.image_size = _pair(image_size, "image_size")
        patch_size = positive_int(patch_size, "patch_size")
        if any(s % patch_size for s in self.image_size):
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch_size "
                             f"({patch_size}) in both height and width")
        self.grid = (self.image_size[0] // patch_size, self.image_size[1] // patch_size)
        num_classes = positive_int(num_classes, "num_classes")
        depth = positive_int(depth, "depth")
        _check_backend(backend)
        self.embed = PatchEmbedding(patch_size, in_channels, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1] + 1, dim))
        self.blocks = nn.Sequential(*(EncoderBlock(dim, heads, mlp_dim, backend)
                                      for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The initialisation of the authors' code (``vit_jax/models_vit.py``): attention and
        MLP weights Xavier-uniform, biases zero (the authors' MLP biases: normal, standard
        deviation 1e-6), E_pos normal with standard deviation 0.02, the class token and the
        classifier at zero (every class starts equally likely), the patch projection normal
        with standard deviation 1/sqrt(P^2 C) (LeCun's; the authors' is truncated), and
        LayerNorms at scale 1 and shift 0."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()
        conv = self.embed.proj
        nn.init.normal_(conv.weight, std=conv.weight[0].numel() ** -0.5)
        nn.init.zeros_(conv.bias)
        nn.init.normal_(self.pos_embed, std=0.02)
        nn.init.zeros_(self.cls_token)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """z_0 of eq. 1: (B, N + 1, D), the class token first."""
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[2:]) != self.image_size:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"TinyViT was built for images (B, C, {self.image_size[0]}, "
                             f"{self.image_size[1]}) (its position embedding has one entry "
                             f"per patch), got x of shape {shape}")
        patches = self.embed(x)                                      # (B, N, D)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        return torch.cat([cls, patches], dim=1) + self.pos_embed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.blocks(self.tokens(x))
        return self.head(self.norm(z[:, 0]))

    def attention_layers(self) -> list[MultiHeadAttention]:
        """The attention module of every block, first to last (set ``keep_attention``)."""
        return [block.attn for block in self.blocks]


def _vit_sizes(image_size: int | tuple[int, int], patch_size: int, in_channels: int,
               num_classes: int, dim: int, depth: int,
               mlp_dim: int) -> tuple[int, int, int, int, int, int, int]:
    """The checked sizes (N patches, P, C, K, D, M, depth) of a ``TinyViT``."""
    h, w = _pair(image_size, "image_size")
    p = positive_int(patch_size, "patch_size")
    if h % p or w % p:
        raise ValueError(f"image_size ({h}, {w}) must be a multiple of patch_size ({p})")
    c, k = positive_int(in_channels, "in_channels"), positive_int(num_classes, "num_classes")
    d, m = positive_int(dim, "dim"), positive_int(mlp_dim, "mlp_dim")
    depth = positive_int(depth, "depth")
    n = (h // p) * (w // p)
    return n, p, c, k, d, m, depth


def vit_parameter_count(image_size: int | tuple[int, int], patch_size: int, in_channels: int,
                        num_classes: int, dim: int, depth: int, mlp_dim: int) -> int:
    """Parameters of ``TinyViT`` with these sizes (the number of heads does not change it):

    patch embedding P^2 C D + D; class token D; position embedding (N + 1) D;
    per block: two LayerNorms 4D, attention 4(D^2 + D), MLP 2 D M + M + D;
    final LayerNorm 2D; head D K + K.
    """
    n, p, c, k, d, m, depth = _vit_sizes(image_size, patch_size, in_channels, num_classes, dim,
                                         depth, mlp_dim)
    block = 4 * d + 4 * (d * d + d) + 2 * d * m + m + d
    return p * p * c * d + d + d + (n + 1) * d + depth * block + 2 * d + d * k + k


def vit_macs(image_size: int | tuple[int, int], patch_size: int, in_channels: int,
             num_classes: int, dim: int, depth: int, mlp_dim: int) -> int:
    """Multiply-adds of one image through ``TinyViT``, counted as ``utils.counting`` does
    (matrix products and convolutions only): patch embedding N P^2 C D; per block, with
    T = N + 1 tokens, projections 4 T D^2, attention 2 T^2 D (scores and weighted sum,
    all heads together), MLP 2 T D M; head D K."""
    n, p, c, k, d, m, depth = _vit_sizes(image_size, patch_size, in_channels, num_classes, dim,
                                         depth, mlp_dim)
    t = n + 1
    return n * p * p * c * d + depth * (4 * t * d * d + 2 * t * t * d + 2 * t * d * m) + d * k
