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

``HybridViT`` is the paper's hybrid (patches of a CNN feature map). ``python -m utils.vit``
runs notebook 07's recorded study: the course's CNN, the ViT and the hybrid trained with one
recipe until they fit (``study_run``; ``data/vit_study.csv`` and ``_curves.csv``).
"""

from __future__ import annotations

import datetime

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


class HybridViT(TinyViT):
    """The paper's **hybrid** (Sec. 3.1, "Hybrid Architecture"): the patch embedding E of
    eq. 1 is applied to patches of a CNN feature map instead of raw pixels. Here the CNN is
    one 3x3 convolution (``stem_channels`` filters, 'same' padding, stride 1), batch norm and
    a ReLU, so the feature map keeps the image's size and the P x P patches, the tokens, the
    encoder and the head are those of ``TinyViT``. The convolution gives every token a local,
    translation-equivariant feature detector before the first attention layer."""

    def __init__(self, image_size: int | tuple[int, int] = 40, patch_size: int = 5,
                 in_channels: int = 1, num_classes: int = 10, dim: int = 64, depth: int = 2,
                 heads: int = 4, mlp_dim: int = 128, backend: str = "sdpa",
                 stem_channels: int = 8):
        stem_channels = positive_int(stem_channels, "stem_channels")
        super().__init__(image_size, patch_size, stem_channels, num_classes, dim, depth, heads,
                         mlp_dim, backend)
        in_channels = positive_int(in_channels, "in_channels")
        conv = nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False)
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        self.stem = nn.Sequential(conv, nn.BatchNorm2d(stem_channels), nn.ReLU())

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"HybridViT expects images (B, C, H, W), got {shape}")
        return super().tokens(self.stem(x))


# ---------------------------------------------------------------------------------------------
# The recorded study of notebook 07: CNN, ViT and hybrid trained until they fit

STUDY_MODELS = ("CNN", "ViT", "hybrid ViT")
STUDY_SIZE = dict(image_size=40, patch_size=5, in_channels=1, num_classes=10, dim=64, depth=2,
                  heads=4, mlp_dim=128)
STUDY_RECIPE = dict(epochs=30, batch_size=32, lr=1e-3, weight_decay=0.05, warmup=3)
STUDY_FIELDS = ("model", "seed", "epochs", "batch_size", "lr", "weight_decay", "warmup",
                "train_scenes", "test_scenes", "train_accuracy", "test_accuracy", "final_loss",
                "parameters", "seconds", "threads", "device", "torch", "date", "predictions")
CURVE_FIELDS = ("model", "seed", "epoch", "lr", "train_loss", "train_accuracy", "test_accuracy")


def study_model(name: str) -> nn.Module:
    """A new model of the study: the course's small ResNet ('CNN'), ``TinyViT`` ('ViT') or
    ``HybridViT`` ('hybrid ViT'), all at ``STUDY_SIZE``."""
    from .models import small_resnet

    if name == "CNN":
        return small_resnet()
    if name == "ViT":
        return TinyViT(**STUDY_SIZE)
    if name == "hybrid ViT":
        return HybridViT(**STUDY_SIZE)
    raise ValueError(f"model must be one of {STUDY_MODELS}, got {name!r}")


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int,
                  total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The learning rate rises linearly from lr / warmup_steps to lr over ``warmup_steps``
    steps, then falls to zero along half a cosine by ``total_steps`` (the paper's recipe:
    linear warm-up, then cosine decay)."""
    warmup_steps = positive_int(warmup_steps, "warmup_steps")
    total_steps = positive_int(total_steps, "total_steps")
    if warmup_steps >= total_steps:
        raise ValueError(f"warmup_steps ({warmup_steps}) must be fewer than total_steps "
                         f"({total_steps})")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return 0.5 * (1 + np.cos(np.pi * (step - warmup_steps) / (total_steps - warmup_steps)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def study_run(name: str, seed: int, train, test, *, epochs: int = STUDY_RECIPE["epochs"],
              batch_size: int = STUDY_RECIPE["batch_size"], lr: float = STUDY_RECIPE["lr"],
              weight_decay: float = STUDY_RECIPE["weight_decay"],
              warmup: int = STUDY_RECIPE["warmup"], stop_after: int | None = None,
              curve_examples: int = 1000, curve_every: int = 2,
              progress: str = "off") -> tuple[dict, list[dict], nn.Module]:
    """Train one model of the study on the CPU: AdamW (``weight_decay``), batches of
    ``batch_size`` in an order fixed by ``seed``, ``warmup`` epochs of linear warm-up to
    ``lr``, then cosine decay to zero at ``epochs``. After every ``curve_every``-th epoch (and
    the last) the model is evaluated on the first ``curve_examples`` training scenes and on
    the whole test set (the curves). ``progress`` ('auto', 'bar', 'text', 'off') reports each
    epoch.

    ``stop_after`` ends the run after that many epochs *of the same schedule*: the first k
    epochs of a recorded run, which is how a notebook or a test re-trains part of a run and
    compares it with the recorded curve. Returns (the run's row, its curve rows, the model);
    the row's accuracies are on every training scene and every test scene, and
    ``predictions`` holds the predicted class of each test scene as a string of digits.
    """
    import time

    from .measure import device_name
    from .runtime import seed_everything
    from .training import Progress, _chunks, evaluate, evaluate_epoch, train_one_epoch

    epochs = positive_int(epochs, "epochs")
    stop = epochs if stop_after is None else positive_int(stop_after, "stop_after")
    if stop > epochs:
        raise ValueError(f"stop_after ({stop}) must not exceed epochs ({epochs})")
    seed_everything(seed)
    model = study_model(name)
    x, y = torch.as_tensor(train.images), torch.as_tensor(train.labels)
    x_test, y_test = torch.as_tensor(test.images), torch.as_tensor(test.labels)
    steps = len(x) // batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = warmup_cosine(optimizer, warmup * steps, epochs * steps)
    generator = torch.Generator().manual_seed(seed)
    curve, seconds = [], 0.0
    bar = Progress(stop, f"{name} seed {seed} epoch", progress)
    for epoch in range(1, stop + 1):
        rate = optimizer.param_groups[0]["lr"]
        start = time.perf_counter()
        order = torch.randperm(len(x), generator=generator)
        batches = ((x[i], y[i]) for i in (order[k * batch_size:(k + 1) * batch_size]
                                          for k in range(steps)))
        loss = train_one_epoch(model, batches, optimizer, schedule)
        seconds += time.perf_counter() - start
        bar.step(f"training loss {loss:.3f}, {seconds:.0f} s")
        if epoch % curve_every and epoch != stop:
            continue
        _, seen = evaluate_epoch(model, _chunks(x[:curve_examples], y[:curve_examples], 250))
        _, acc = evaluate_epoch(model, _chunks(x_test, y_test, 250))
        curve.append({"model": name, "seed": seed, "epoch": epoch, "lr": rate,
                      "train_loss": loss, "train_accuracy": seen, "test_accuracy": acc})
    bar.close()
    train_accuracy = evaluate(model, train, device=torch.device("cpu"))[0]
    test_accuracy, _, predictions = evaluate(model, test, device=torch.device("cpu"))
    row = {"model": name, "seed": seed, "epochs": stop, "batch_size": batch_size, "lr": lr,
           "weight_decay": weight_decay, "warmup": warmup, "train_scenes": len(x),
           "test_scenes": len(x_test), "train_accuracy": train_accuracy,
           "test_accuracy": test_accuracy, "final_loss": curve[-1]["train_loss"],
           "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
           "seconds": seconds, "threads": torch.get_num_threads(),
           "device": device_name(torch.device("cpu")), "torch": torch.__version__,
           "date": datetime.date.today().isoformat(),
           "predictions": "".join(str(int(p)) for p in predictions)}
    return row, curve, model


def read_study(path) -> tuple[list[dict], list[dict]]:
    """The recorded study: (runs, curves) from ``path`` (the runs' CSV) and the curves' CSV
    beside it (``<stem>_curves.csv``), numbers converted; lines starting with '#' skipped."""
    import csv
    from pathlib import Path

    if not isinstance(path, str | Path) or not Path(path).is_file():
        raise ValueError(f"path must be the study's CSV file (data/vit_study.csv), got {path!r}")
    path = Path(path)

    def rows(p: Path) -> list[dict]:
        with open(p, newline="") as handle:
            lines = [line for line in handle if not line.startswith("#")]
        out = []
        for r in csv.DictReader(lines):
            for k, v in r.items():
                if k in ("model", "device", "torch", "date", "predictions"):
                    continue
                r[k] = float(v) if any(c in v for c in ".e") else int(v)
            out.append(r)
        return out

    return rows(path), rows(path.with_name(path.stem + "_curves.csv"))


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.vit``: notebook 07's recorded study. Trains the CNN, the ViT and the
    hybrid ViT for every seed on notebook 02's cluttered digits (3,000 training and 1,000
    test scenes) with one recipe (AdamW, warm-up, cosine decay) until they fit, one thread,
    and appends one row per run to ``--csv`` and one row per epoch to its ``_curves.csv``."""
    import argparse
    import csv
    import shlex
    import sys
    from pathlib import Path

    from .datasets import cluttered_digits

    parser = argparse.ArgumentParser(prog="python -m utils.vit", description=main.__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--model", nargs="+", default=list(STUDY_MODELS), choices=STUDY_MODELS)
    parser.add_argument("--epochs", type=int, default=STUDY_RECIPE["epochs"])
    parser.add_argument("--lr", type=float, default=STUDY_RECIPE["lr"])
    parser.add_argument("--csv", default="data/vit_study.csv")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    command = "OMP_NUM_THREADS=1 python -m utils.vit " + shlex.join(
        argv if argv is not None else sys.argv[1:])
    path = Path(args.csv)
    curves = path.with_name(path.stem + "_curves.csv")
    for p, fields in ((path, STUDY_FIELDS), (curves, CURVE_FIELDS)):
        if not p.exists() or p.read_text() == "":
            with open(p, "w") as handle:
                handle.write(f"# {command}\n")
                csv.writer(handle, lineterminator="\n").writerow(fields)
    train = cluttered_digits(3000, split="train", seed=0)
    test = cluttered_digits(1000, split="test", seed=0)
    for seed in args.seeds:
        for name in args.model:
            row, curve, _ = study_run(name, seed, train, test, epochs=args.epochs, lr=args.lr)
            with open(path, "a") as handle:
                csv.DictWriter(handle, STUDY_FIELDS, lineterminator="\n").writerow(row)
            with open(curves, "a") as handle:
                writer = csv.DictWriter(handle, CURVE_FIELDS, lineterminator="\n")
                writer.writerows(curve)
            print(f"{name}, seed {seed}: train {row['train_accuracy']:.3f}, test "
                  f"{row['test_accuracy']:.3f}, loss {row['final_loss']:.3f}, "
                  f"{row['seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
