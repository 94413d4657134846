"""CBAM and friends deployed: ONNX export, ONNX Runtime, int8, and what they cost (notebook 08).

The claim to test is that CBAM (and SE) are "very light and easy to deploy on devices". The
course's networks are exported to ONNX, run with ONNX Runtime on the CPU, quantised to int8,
and measured: file size, batch-1 latency, the peak memory of a fresh process that loads and
runs the model, and accuracy (``deployment_study``); ``nonlocal_scaling`` shows where the
non-local block's N x N affinity bites at deployment resolutions.

Choices, and why (measured on the course's 2-core reference CPU, torch 2.13, onnx 1.23,
onnxruntime 1.32, onnxscript 0.7):

- **Exporter: TorchScript by default** (``torch.onnx.export(..., dynamo=False)``), the
  ``torch.export``-based one on request (``exporter='dynamo'``; it needs ``onnxscript``,
  pinned with the course). Both export these networks correctly (the same outputs to
  1e-6), but the dynamo exporter took 4 to 11 s per small ResNet here against
  0.2 to 0.6 s: four models and the non-local blocks would spend the notebook section's
  whole budget (60 s in fast mode, about 40 s in full mode) on exporting alone. The
  TorchScript exporter is deprecated and warns on every call; ``export_onnx`` silences
  exactly those warnings (two DeprecationWarnings, and the TracerWarnings of the course
  modules' input checks, which compare traced sizes with Python numbers and are constants
  in a deployed graph) and nothing else, so the course's ``filterwarnings = error`` still
  catches anything new (the dynamo path silences one FutureWarning raised inside
  ``torch.export``'s own code). When a later PyTorch removes it, ``exporter='dynamo'`` is the path.
- **Opset**: the newest each exporter writes (``OPSETS``): 20 for TorchScript, 23 for dynamo.
  The non-local block's fused backend (``scaled_dot_product_attention``) becomes MatMul,
  Softmax, MatMul under TorchScript (as the 'matmul' backend does) and one ONNX
  ``Attention`` operator (new in opset 23) under dynamo at opset 23; below 23 dynamo
  decomposes it too. Both export and run cleanly. ONNX Runtime's CPU kernels hold N x N
  matrices either way (``nonlocal_scaling``): at 56 x 56 (N = 3,136, 38 MiB per matrix) both
  backends as the TorchScript exporter writes them peaked at 92 MiB (scores and softmax),
  the dynamo exporter's graphs at opset 23 (explicit, and the Attention operator) at 52 MiB.
  The fused kernel's saving in PyTorch (notebook 04) does not survive export to ONNX Runtime
  on the CPU.
- **Batch axis** symbolic (a batch-1 example is repeated to 2 first: tracing fixes an axis
  of size 1); weights inside the ``.onnx`` file; the exporter's node metadata, doc strings
  and long hierarchical names dropped (``_strip_provenance``), so the file size is the
  model: float32 files were within 3 % of the bytes of the parameters and buffers.
- **Runtime**: ``onnx_session`` uses the CPU provider, ``threads`` intra-op threads (default
  1: repeatable latencies on a shared 2-core machine; the PyTorch baseline is timed with the
  same count), sequential execution and every graph optimisation.
- **Tolerance**: ONNX Runtime computes the same float32 function in another order (batch
  norm folded into the convolutions, other kernels). The logits agree with PyTorch's to
  ``ATOL + RTOL * |logit|``, ``RTOL = ATOL = 1e-5``: measured differences were at most
  8e-7 on logits up to 2 (at most 6 % of the tolerance): float32's rounding (6e-8 per
  operation) grown over ~10 layers of ~600-term sums. Another network's logits differ by
  orders of magnitude more (the tests check that the tolerance tells CBAM from the plain
  ResNet).
- **int8: static quantisation in the QDQ format** (``quantize_int8`` with calibration
  images): int8 weights per output channel, int8 activations with MinMax ranges from the
  calibration images, after ONNX Runtime's pre-processing. Dynamic quantisation (weights
  only; activations quantised at run time) mostly helps MatMul and Gemm, which these CNNs
  barely have; for their convolutions it gives ConvInteger, which ran 4 to 7 times slower
  than float32 here (e.g. 1.5 ms against 0.23 ms for the plain ResNet), and it is kept as
  ``calibration=None`` for comparison. Static int8 files are 30 % (plain ResNet) to 38 %
  (CBAM: many small layers, each with its quantisation nodes) of the float32 ones. On a
  CBAM ResNet trained to 75 % on uncluttered digits, int8 kept 68 % to 72 % (83 % to 92 % of
  predictions unchanged, over calibration sets of 64 to 256 images, per-channel or
  per-tensor weights, MinMax, percentile or entropy ranges, int8 or uint8 activations),
  while the plain ResNet trained the same way lost nothing (97 % unchanged): CBAM's gates
  rescale the features that the next int8 convolutions see, and keeping the attention
  branch itself in float32 did not bring the points back. On these small networks int8 is
  not faster on this CPU either (0.2 to 1.5 ms against 0.2 to 0.4 ms in float32: the
  quantise and dequantise steps cost as much as the small convolutions save): it buys size.
- **Attention gates stay float32**: the Sigmoid and Softmax nodes and the nodes that read
  their outputs (the gating Mul, the attention MatMul) are excluded from quantisation
  (``keep_float``). MinMax calibration clips every value outside the range seen on the
  calibration images; for a gate that would clip attention to the calibration set's range
  (a gate that saturates at 0.99 on a test image but never passed 0.9 in calibration) and
  put softmax weights of ~1/N on a grid of 1/255 of their range. Measured, the exclusion
  changed neither agreement nor accuracy and cost no latency; it removes the risk.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .validate import as_float_array, positive_float, positive_int

if TYPE_CHECKING:                     # imported where used: a child process needs neither
    import onnxruntime
    import torch
    from torch import nn

EXPORTERS = ("torchscript", "dynamo")
OPSETS = {"torchscript": 20, "dynamo": 23}   # the newest opset each exporter writes
MIN_OPSET = 17
RTOL = ATOL = 1e-5
REPOSITORY = Path(__file__).resolve().parents[1]
GATE_OPS = ("Sigmoid", "Softmax")     # attention normalisers kept in float32 by quantize_int8
QUANTISED_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
                 "MatMulInteger", "ConvInteger", "QLinearConv", "QLinearMatMul")


# ------------------------------------------------------------------------------- checks

def _onnx_file(path: object, name: str = "path") -> Path:
    """An existing ``.onnx`` file."""
    if not isinstance(path, str | os.PathLike):
        raise ValueError(f"{name} must be a path to an .onnx file, got {type(path).__name__}")
    path = Path(path)
    if path.suffix != ".onnx" or not path.is_file():
        why = "no such file" if not path.exists() else "not an .onnx file"
        raise ValueError(f"{name} must be an existing .onnx file, got {str(path)!r} ({why})")
    return path


def _new_onnx_file(path: object, name: str = "path") -> Path:
    """Where an ``.onnx`` file may be written: the suffix .onnx, an existing folder."""
    if not isinstance(path, str | os.PathLike):
        raise ValueError(f"{name} must be a path ending in .onnx, got {type(path).__name__}")
    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"{name} must end in .onnx, got {str(path)!r}")
    if not path.parent.is_dir():
        raise ValueError(f"{name} must be in an existing folder, got {str(path)!r} "
                         f"({str(path.parent)!r} does not exist)")
    return path


def _module(model: object, name: str = "model") -> None:
    from torch import nn

    if not isinstance(model, nn.Module):
        raise ValueError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")


def _images(x: object, name: str, *, ndim: int | None = None) -> np.ndarray:
    """A float32 batch (B, ...) of at least one example, finite."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{name} must be a NumPy array (B, C, H, W), got {type(x).__name__}")
    arr = as_float_array(x, name, ndim=ndim)
    if arr.ndim < 2 or arr.shape[0] < 1:
        raise ValueError(f"{name} must be a batch (B, ...) of at least one example, "
                         f"got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _labels(labels: object, count: int, name: str = "labels") -> np.ndarray | None:
    """None, or integer class labels (count,)."""
    if labels is None:
        return None
    arr = np.asarray(labels)
    if arr.ndim != 1 or len(arr) != count or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be None or integer labels of shape ({count},), one per "
                         f"image, got {arr.dtype} of shape {arr.shape}")
    return arr


def _counts(warmup: object, repeats: object, threads: object) -> tuple[int, int, int]:
    return (positive_int(warmup, "warmup", minimum=0), positive_int(repeats, "repeats"),
            positive_int(threads, "threads"))


def _exporter(exporter: object) -> None:
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")


def _folder(folder: object) -> Path:
    """An existing folder outside the repository (the study writes model files into it)."""
    if not isinstance(folder, str | os.PathLike) or not Path(folder).is_dir():
        raise ValueError(f"folder must be an existing folder (a temporary directory), "
                         f"got {folder!r}")
    folder = Path(folder).resolve()
    if folder == REPOSITORY or REPOSITORY in folder.parents:
        raise ValueError(f"folder must be outside the repository (a temporary directory), "
                         f"got {str(folder)!r}")
    return folder


# ----------------------------------------------------------------------- export and run

def export_onnx(model: nn.Module, example: torch.Tensor, path: str | os.PathLike, *,
                exporter: str = "torchscript", opset: int | None = None,
                dynamic: Sequence[int] = (0,)) -> Path:
    """Export ``model`` in evaluation mode, float32, on the CPU, to the ONNX file ``path``.

    example: a float tensor (B, ...) of the model's input shape; the graph's input is named
    'x' (B, ...) and its output 'y'. ``dynamic``: the input axes left symbolic in the graph
    (default: the batch axis; ``(0, 2, 3)`` also frees H and W; ``()`` fixes every axis).
    exporter: 'torchscript' (``dynamo=False``) or 'dynamo'; opset: the ONNX opset, by default
    the newest the exporter writes (``OPSETS``). The caller's model is not changed (a CPU
    copy is exported). Returns ``path``.
    """
    import torch

    _module(model)
    if not isinstance(example, torch.Tensor) or not example.is_floating_point() or (
            example.ndim < 2 or example.shape[0] < 1):
        shown = tuple(example.shape) if isinstance(example, torch.Tensor) else type(
            example).__name__
        raise ValueError(f"example must be a float tensor (B, ...) of the model's input, "
                         f"got {shown}")
    path = _new_onnx_file(path)
    _exporter(exporter)
    opset = OPSETS[exporter] if opset is None else positive_int(opset, "opset")
    if not MIN_OPSET <= opset <= OPSETS[exporter]:
        raise ValueError(f"opset must be between {MIN_OPSET} and {OPSETS[exporter]} for the "
                         f"{exporter} exporter, got {opset}")
    if (isinstance(dynamic, str) or not isinstance(dynamic, Sequence)
            or any(isinstance(a, bool) or not isinstance(a, int) or not 0 <= a < example.ndim
                   for a in dynamic) or len(set(dynamic)) != len(dynamic)):
        raise ValueError(f"dynamic must be distinct axes of example (0 to {example.ndim - 1}), "
                         f"such as (0,), got {dynamic!r}")
    if any(a > 0 and example.shape[a] < 2 for a in dynamic):
        raise ValueError(f"example must be at least 2 long on every dynamic axis (an axis of "
                         f"size 1 is fixed by tracing), got shape {tuple(example.shape)}")
    net = copy.deepcopy(model).cpu().float().eval()
    x = example.detach().cpu().float()
    if 0 in dynamic and x.shape[0] == 1:            # a batch of 1 would be fixed: repeat it
        x = torch.cat([x, x])
    with torch.no_grad():
        if exporter == "dynamo":
            _export_dynamo(net, x, path, opset, dynamic)
        else:
            _export_torchscript(net, x, path, opset, dynamic)
    _strip_provenance(path)
    return path


def _export_torchscript(net: nn.Module, x: torch.Tensor, path: Path, opset: int,
                        dynamic: Sequence[int]) -> None:
    """The TorchScript exporter, its three known warnings silenced here and only here."""
    import warnings

    import torch

    out_ndim = net(x).ndim
    axes = {"x": {a: f"x{a}" for a in dynamic},
            "y": {a: f"x{a}" for a in dynamic if a < out_ndim}}
    with warnings.catch_warnings():
        # torch 2.13 warns on every call that this exporter is deprecated (twice)
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX",
                                DeprecationWarning)
        warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning)
        # the course modules' input checks (channel count, the non-local memory guard) compare
        # traced sizes with Python numbers: true for the example, and constant in a deployed
        # graph; the tests check the exported graph at other batch sizes and sides
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning,
                                module=r"utils\.modules")
        torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=opset,
                          input_names=["x"], output_names=["y"], dynamic_axes=axes)


def _export_dynamo(net: nn.Module, x: torch.Tensor, path: Path, opset: int,
                   dynamic: Sequence[int]) -> None:
    """The torch.export-based exporter (needs onnxscript), weights inside the file."""
    import logging
    import warnings

    import torch

    shapes = ({a: torch.export.Dim.DYNAMIC for a in dynamic},) if dynamic else None
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)            # 'torchvision is not installed', per call
    try:
        with warnings.catch_warnings():
            # torch 2.13's own pytree code, inside torch.export: not the course's to fix
            warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                    FutureWarning)
            torch.onnx.export(net, (x,), str(path), dynamo=True, external_data=False,
                              opset_version=opset, input_names=["x"], output_names=["y"],
                              dynamic_shapes=shapes, optimize=True, verbose=False)
    finally:
        registration.setLevel(level)


def _strip_provenance(path: Path) -> None:
    """Keep what a device needs, the graph and its weights, and drop the rest: the
    exporter's per-node metadata (stack traces, module names) and doc strings, and its long
    hierarchical names ('/stages/stages.0/stages.0.0/attention/...'), replaced by short ones
    (the graph's input 'x' and output 'y' keep theirs). Left in, they would be a quarter of a
    float32 file of a network with many small nodes, such as CBAM's, and a third of its
    int8 file, whose quantisation nodes are named after the tensors they quantise. The short
    names end in '_': ONNX Runtime's quantiser makes names by appending digits (a shared
    bias 't3' becomes 't35'), which must not collide with another short name."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    graph.doc_string = ""
    nested = any(attr.HasField("g") or len(attr.graphs) for node in graph.node
                 for attr in node.attribute)
    keep = {v.name for v in (*graph.input, *graph.output)}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep or nested:        # subgraphs may name outer tensors
            return name
        return names.setdefault(name, f"t{len(names)}_")

    for k, node in enumerate(graph.node):
        del node.metadata_props[:]
        node.doc_string = ""
        if not nested:
            node.name = f"n{k}_"
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    for tensor in graph.initializer:
        tensor.name = short(tensor.name)
    for info in graph.value_info:
        info.name = short(info.name)
    onnx.save(model, str(path))


def onnx_session(path: str | os.PathLike, *, threads: int = 1) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session on the CPU for the model file ``path``: ``threads`` intra-op
    threads, one inter-op thread, sequential execution, every graph optimisation."""
    import onnxruntime as ort

    path = _onnx_file(path)
    threads = positive_int(threads, "threads")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3                 # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session: onnxruntime.InferenceSession, x: np.ndarray, *,
             batch_size: int = 256) -> np.ndarray:
    """The model's first output for inputs x (B, ...) as float32, run ``batch_size`` at a
    time: (B, ...) of the output, e.g. logits (B, classes). x must match the session's input
    in rank and in every fixed axis."""
    import onnxruntime as ort

    if not isinstance(session, ort.InferenceSession):
        raise ValueError(f"session must be an onnxruntime.InferenceSession (from "
                         f"onnx_session), got {type(session).__name__}")
    batch_size = positive_int(batch_size, "batch_size")
    arr = _images(x, "x")
    spec = session.get_inputs()[0]
    _check_shape(arr.shape, spec.shape)
    step = 1 if spec.shape[0] == 1 else batch_size      # a model exported for batch 1
    outputs = [session.run(None, {spec.name: arr[i:i + step]})[0]
               for i in range(0, len(arr), step)]
    return np.concatenate(outputs)


def _check_shape(shape: tuple[int, ...], expected: Sequence[object]) -> None:
    """shape must match the model input's shape (symbolic axes match any size; a batch
    axis fixed at 1 matches any batch, which is then run one example at a time)."""
    fixed = [d if isinstance(d, int) else None for d in expected]
    if fixed and fixed[0] == 1:
        fixed[0] = None
    if len(shape) != len(fixed) or any(f is not None and f != s for f, s in zip(
            fixed, shape, strict=True)):
        want = ", ".join("B" if i == 0 and f is None else "?" if f is None else str(f)
                         for i, f in enumerate(fixed))
        raise ValueError(f"x must have the model's input shape ({want}), got {shape}")


def operators(path: str | os.PathLike) -> Counter:
    """How often each operator type occurs in the ONNX graph at ``path`` (nodes of subgraphs
    and local functions included); operators outside the standard domain are named
    'domain.Op', e.g. 'com.microsoft.QLinearSigmoid'."""
    import onnx

    model = onnx.load(str(_onnx_file(path)), load_external_data=False)
    counts: Counter = Counter()

    def visit(nodes: Sequence[onnx.NodeProto]) -> None:
        for node in nodes:
            counts[node.op_type if node.domain in ("", "ai.onnx") else
                   f"{node.domain}.{node.op_type}"] += 1
            for attr in node.attribute:
                for graph in [attr.g] if attr.HasField("g") else list(attr.graphs):
                    visit(graph.node)

    visit(model.graph.node)
    for function in model.functions:
        visit(function.node)
    return counts


# ------------------------------------------------------------------------------- int8

class _Batches:
    """Calibration images fed ``size`` at a time (MinMax calibration only keeps each tensor's
    extremes, so the batching does not change the ranges; batch-1 models get one at a time)."""

    def __init__(self, name: str, images: np.ndarray, size: int):
        self.name, self.images, self.size, self.index = name, images, size, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.index >= len(self.images):
            return None
        self.index += self.size
        return {self.name: self.images[self.index - self.size:self.index]}


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike,
                  calibration: np.ndarray | None, *, per_channel: bool = True,
                  keep_float: Sequence[str] = GATE_OPS) -> Path:
    """Quantise the float32 ONNX model ``src`` to int8 and write it to ``dst``; returns dst.

    calibration (M, ...) images of the model's input shape: static quantisation in the QDQ
    format (int8 weights, per output channel when ``per_channel``; int8 activations with
    ranges from the min and max seen on the calibration images, after ONNX Runtime's
    pre-processing). None: dynamic quantisation (int8 weights of MatMul and Gemm only,
    activations quantised at run time). Nodes whose operator is in ``keep_float`` (by default
    the attention normalisers Sigmoid and Softmax) and the nodes that read their outputs
    (the gating Mul, the attention MatMul) stay float32: the module docstring says why.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_dynamic,
        quantize_static,
    )

    src = _onnx_file(src, "src")
    dst = _new_onnx_file(dst, "dst")
    if dst.resolve() == src.resolve():
        raise ValueError(f"dst must differ from src, got {str(dst)!r} for both")
    if not isinstance(per_channel, bool):
        raise ValueError(f"per_channel must be True or False, got {per_channel!r}")
    if isinstance(keep_float, str) or not all(isinstance(op, str) for op in keep_float):
        raise ValueError(f"keep_float must be a sequence of operator names such as "
                         f"('Sigmoid',), got {keep_float!r}")
    if calibration is not None:
        images = _images(calibration, "calibration")
        spec = onnx_session(src).get_inputs()[0]
        try:
            _check_shape(images.shape, spec.shape)
        except ValueError as err:
            raise ValueError(str(err).replace("x must", "calibration must", 1)) from None
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".quantize-") as work:
        prepared = Path(work) / "prepared.onnx"
        # ONNX shape inference and ONNX Runtime's graph optimisations; its symbolic shape
        # inference stops on the exporter's Reshape of symbolic sizes, and ONNX's suffices
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        keep = _float_nodes(prepared, keep_float)
        if calibration is None:
            quantize_dynamic(str(prepared), str(dst), weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul", "Gemm"], nodes_to_exclude=keep,
                             per_channel=per_channel)
        else:
            size = 1 if spec.shape[0] == 1 else 32
            quantize_static(str(prepared), str(dst), _Batches(spec.name, images, size),
                            quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=keep)
    return dst


def _float_nodes(path: Path, ops: Sequence[str]) -> list[str]:
    """Names of the nodes whose operator is in ``ops`` and of the nodes that read their
    outputs (so that the values between them never pass through an 8-bit grid)."""
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    gates = [n for n in nodes if n.op_type in set(ops)]
    outputs = {o for n in gates for o in n.output}
    names = [n.name for n in gates] + [n.name for n in nodes if outputs & set(n.input)]
    if not all(names):
        raise RuntimeError(f"{path}: a node to keep in float32 has no name to exclude it by")
    return names


# ------------------------------------------------------------------------------ measure

@dataclass(frozen=True)
class DeployRow:
    """One model in one runtime: size in KiB (the .onnx file; for PyTorch the parameters and
    buffers), the median latency of one image in ms, the extra peak memory in MiB of a fresh
    process that loads the model and runs it (None for PyTorch), accuracy in [0, 1] (None
    without labels), and a note (why a measurement was skipped)."""

    model: str
    runtime: str
    size_kib: float
    latency_ms: float
    peak_mib: float | None = None
    accuracy: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        for field in ("model", "runtime", "note"):
            if not isinstance(getattr(self, field), str):
                raise ValueError(f"{field} must be a string, got {getattr(self, field)!r}")
        for field in ("size_kib", "latency_ms", "peak_mib", "accuracy"):
            value = getattr(self, field)
            if field in ("peak_mib", "accuracy") and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{field} must be a non-negative number (NaN: not measured), "
                                 f"got {value!r}")
        if self.accuracy is not None and self.accuracy > 1:
            raise ValueError(f"accuracy must be a fraction in [0, 1], got {self.accuracy}")


def _median_ms(call: Callable[[], object], warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def interleaved_latency(runs: dict[str, object], x: np.ndarray, *, rounds: int = 15,
                        calls: int = 21, warmup: int = 3,
                        threads: int = 1) -> dict[str, np.ndarray]:
    """Latency of several models on the batch ``x``, measured in interleaved rounds: {name:
    (rounds,) array of ms}. ``runs`` maps a name to an ONNX file (run by ONNX Runtime with
    ``threads`` threads) or to a callable ``f(x)`` (for example a PyTorch model wrapped to
    take an array; its threads are the caller's business). Each round runs every model in
    turn, ``calls`` times after ``warmup`` calls, and keeps the median; a slow spell of the
    machine (another process) then hits all models of a round alike, so ratios taken round
    by round are paired, and the spread over rounds is the measurement's noise (for an
    interval or an interquartile range)."""
    if not isinstance(runs, dict) or not runs:
        raise ValueError(f"runs must be a non-empty dict {{name: ONNX file or callable}}, got "
                         f"{runs!r}")
    arr = as_float_array(x, "x").astype(np.float32)
    rounds = positive_int(rounds, "rounds", minimum=2)
    calls = positive_int(calls, "calls")
    warmup = positive_int(warmup, "warmup", minimum=0)
    steps: dict[str, Callable[[], object]] = {}
    for name, run in runs.items():
        if callable(run):
            steps[name] = lambda run=run: run(arr)
        else:
            session = onnx_session(run, threads=threads)
            feed = {session.get_inputs()[0].name: arr}
            steps[name] = lambda session=session, feed=feed: session.run(None, feed)
    out = {name: np.empty(rounds) for name in steps}
    for r in range(rounds):
        for name, step in steps.items():
            out[name][r] = _median_ms(step, warmup, calls)
    return out


def _runtime_name(ops: Counter) -> str:
    return "ONNX Runtime int8" if any(ops[op] for op in QUANTISED_OPS) else "ONNX Runtime fp32"


def measure(path: str | os.PathLike, x: np.ndarray, labels: np.ndarray | None, *,
            warmup: int = 3, repeats: int = 20, threads: int = 1,
            name: str | None = None) -> DeployRow:
    """Measure the ONNX model at ``path`` on images x (B, ...): file size, batch-1 latency
    (median of ``repeats`` runs of x[:1] after ``warmup``), the peak memory of a fresh
    process that loads it and runs x[:1] (``peak_memory_mib``), and with labels (B,) the
    accuracy of the argmax of its outputs. ``name`` labels the row (default: the file name)."""
    path = _onnx_file(path)
    arr = _images(x, "x")
    labels = _labels(labels, len(arr))
    warmup, repeats, threads = _counts(warmup, repeats, threads)
    if name is not None and not isinstance(name, str):
        raise ValueError(f"name must be None or a string, got {name!r}")
    session = onnx_session(path, threads=threads)
    spec = session.get_inputs()[0]
    _check_shape(arr.shape, spec.shape)
    one = {spec.name: arr[:1]}
    latency = _median_ms(lambda: session.run(None, one), warmup, repeats)
    accuracy = None
    if labels is not None:
        accuracy = float(np.mean(run_onnx(session, arr).argmax(1) == labels))
    peak = peak_memory_mib(path, arr.shape[1:], threads=threads)
    return DeployRow(name or path.stem, _runtime_name(operators(path)),
                     path.stat().st_size / 1024, latency, peak, accuracy)


def peak_memory_mib(path: str | os.PathLike, shape: Sequence[int], *, threads: int = 1,
                    runs: int = 1) -> float:
    """Extra peak resident memory (MiB) of a fresh Python process that creates an ONNX
    Runtime session for ``path`` and runs it ``runs`` times on zeros (1, *shape): the
    process's high-water mark (VmHWM, reset after the imports where Linux allows) minus its
    resident memory just before loading the model."""
    path = _onnx_file(path)
    if (not isinstance(shape, Sequence) or isinstance(shape, str) or not shape
            or not all(isinstance(s, int | np.integer) and s > 0 for s in shape)):
        raise ValueError(f"shape must be the input's shape without the batch, positive "
                         f"integers such as (1, 40, 40), got {shape!r}")
    threads, runs = positive_int(threads, "threads"), positive_int(runs, "runs")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPOSITORY), env.get("PYTHONPATH"))
                                        if p)
    out = subprocess.run(
        [sys.executable, "-c", "from utils.deploy import _peak_child; _peak_child()",
         str(path), json.dumps([1, *map(int, shape)]), str(threads), str(runs)],
        capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the memory measurement of {path} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.splitlines()[-1])["extra_kib"] / 1024


def _peak_child() -> None:
    """In a fresh process: load the model of sys.argv[1], run it, print the extra peak KiB."""

    import onnxruntime  # noqa: F401 - imported before the baseline is taken

    from .measure import PeakRSS

    path, shape = sys.argv[1], tuple(json.loads(sys.argv[2]))
    threads, runs = int(sys.argv[3]), int(sys.argv[4])
    x = np.zeros(shape, dtype=np.float32)
    rss = PeakRSS().start()
    session = onnx_session(path, threads=threads)
    feed = {session.get_inputs()[0].name: x}
    for _ in range(runs):
        session.run(None, feed)
    print(json.dumps({"extra_kib": rss.extra_kib(), "exact": rss.exact}))


def measure_torch(model: nn.Module, x: np.ndarray, labels: np.ndarray | None, *,
                  warmup: int = 3, repeats: int = 20, threads: int = 1,
                  name: str | None = None) -> DeployRow:
    """The PyTorch eager baseline of a model on images x (B, ...): the size of its
    parameters and buffers, batch-1 latency on the CPU (median of ``repeats`` forward passes
    of x[:1] under ``torch.inference_mode`` after ``warmup``, with ``threads`` threads), and
    with labels (B,) its accuracy. The caller's model is not changed (a CPU copy is run)."""
    import torch

    _module(model)
    arr = _images(x, "x")
    labels = _labels(labels, len(arr))
    warmup, repeats, threads = _counts(warmup, repeats, threads)
    if name is not None and not isinstance(name, str):
        raise ValueError(f"name must be None or a string, got {name!r}")
    net = copy.deepcopy(model).cpu().float().eval()
    size = sum(t.numel() * t.element_size() for t in (*net.parameters(), *net.buffers()))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            inputs = torch.from_numpy(arr)
            one = inputs[:1]
            latency = _median_ms(lambda: net(one), warmup, repeats)
            accuracy = None
            if labels is not None:
                preds = torch.cat([net(inputs[i:i + 256]).argmax(1)
                                   for i in range(0, len(inputs), 256)]).numpy()
                accuracy = float(np.mean(preds == labels))
    finally:
        torch.set_num_threads(before)
    return DeployRow(name or type(model).__name__, "PyTorch eager fp32", size / 1024, latency,
                     None, accuracy)


def deploy_table(rows: Sequence[DeployRow]) -> str:
    """The rows as a Markdown table: model, runtime, size, latency, peak memory, accuracy
    (and a note column when a row has one)."""
    if not isinstance(rows, list | tuple) or not rows or not all(
            isinstance(r, DeployRow) for r in rows):
        raise ValueError(f"rows must be a non-empty list of DeployRow (what measure and "
                         f"deployment_study return), got {type(rows).__name__}")
    notes = any(r.note for r in rows)
    head = ["model", "runtime", "size (KiB)", "latency (ms, batch 1)", "peak memory (MiB)",
            "accuracy (%)"] + (["note"] if notes else [])
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * 4 + ("---|" if notes else "")]

    def number(value: float | None, fmt: str) -> str:
        return "—" if value is None or math.isnan(value) else format(value, fmt)

    for r in rows:
        cells = [r.model, r.runtime, number(r.size_kib, ",.1f"), number(r.latency_ms, ".3g"),
                 number(r.peak_mib, ".1f"),
                 number(None if r.accuracy is None else 100 * r.accuracy, ".1f")]
        lines.append("| " + " | ".join(cells + ([r.note] if notes else [])) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ models

def nonlocal_resnet(backend: str = "matmul", *, stage: int = 2, **kwargs: object) -> nn.Module:
    """The course's ``small_resnet`` with one embedded-Gaussian ``NonLocalBlock`` after stage
    ``stage`` (1-based; on the 40 x 40 digits stage 2 gives 10 x 10 = 100 positions of 32
    channels), computed with ``backend`` ('matmul': explicit N x N affinity; 'sdpa': the fused
    kernel). Other keyword arguments go to ``small_resnet``. x: (B, C, H, W) -> (B, classes).
    """
    from torch import nn

    from .models import small_resnet
    from .modules import NL_BACKENDS, NonLocalBlock

    if backend not in NL_BACKENDS:
        raise ValueError(f"backend must be one of {NL_BACKENDS}, got {backend!r}")
    stage = positive_int(stage, "stage")
    widths = kwargs.get("widths", inspect.signature(small_resnet).parameters["widths"].default)
    stages = len(widths) if isinstance(widths, Sequence) else stage   # else small_resnet says
    if stage > stages:
        raise ValueError(f"stage must be between 1 and {stages} (the network's stages), "
                         f"got {stage}")
    net = small_resnet(**kwargs)
    channels = net.stages[stage - 1][-1].branch[-1][0].out_channels
    net.stages[stage - 1] = nn.Sequential(*net.stages[stage - 1],
                                          NonLocalBlock(channels, backend=backend))
    return net


# -------------------------------------------------------------------------------- study

STUDY_SIZES = {
    "fast": {"test": 300, "calibration": 64, "warmup": 2, "repeats": 10, "sides": (14, 28),
             "rounds": 5, "calls": 7},
    "full": {"test": 1000, "calibration": 256, "warmup": 5, "repeats": 30,
             "sides": (14, 28, 56, 112), "rounds": 15, "calls": 21},
}


def study_sizes(mode: str | None = None) -> dict:
    """The sizes of notebook 08's deployment study: test images, calibration images, timing
    warm-up and repeats, the input sides of the non-local scaling study, and the rounds and
    calls per round of ``interleaved_latency``. mode: 'fast',
    'full', or None for the mode the course runs in (``runtime.mode_name``)."""
    from .runtime import mode_name

    if mode is not None and mode not in STUDY_SIZES:
        raise ValueError(f"mode must be None, 'fast' or 'full', got {mode!r}")
    return dict(STUDY_SIZES[mode or mode_name()])


def _slug(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "model"
    slug, k = base, 1
    while slug in taken:
        k += 1
        slug = f"{base}_{k}"
    taken.add(slug)
    return slug


def deployment_study(models: dict[str, nn.Module], test_images: np.ndarray,
                     test_labels: np.ndarray, calibration: np.ndarray,
                     folder: str | os.PathLike, *, warmup: int = 3, repeats: int = 20,
                     threads: int = 1, exporter: str = "torchscript",
                     progress: str = "off") -> list[DeployRow]:
    """For every model: the PyTorch eager baseline, the float32 ONNX model and its int8
    (static QDQ) quantisation, each measured (``measure_torch``, ``measure``) on
    test_images (N, C, H, W) with test_labels (N,); calibration (M, C, H, W) calibrates the
    int8 models. Model files are written into ``folder``, which must lie outside the
    repository (pass a temporary directory). ``exporter``: as in ``export_onnx``. Three rows
    per model, in the order given."""
    from .training import Progress

    if not isinstance(models, dict) or not models or not all(isinstance(k, str)
                                                             for k in models):
        raise ValueError(f"models must be a non-empty dict from names to torch.nn.Modules, "
                         f"got {type(models).__name__}")
    for key, model in models.items():
        _module(model, f"models[{key!r}]")
    images = _images(test_images, "test_images", ndim=4)
    labels = _labels(test_labels, len(images), "test_labels")
    if labels is None:
        raise ValueError("test_labels must be integer labels, one per test image, got None")
    calib = _images(calibration, "calibration", ndim=4)
    if calib.shape[1:] != images.shape[1:]:
        raise ValueError(f"calibration must hold images of the test images' shape "
                         f"{images.shape[1:]}, got {calib.shape[1:]}")
    folder = _folder(folder)
    warmup, repeats, threads = _counts(warmup, repeats, threads)
    _exporter(exporter)
    bar = Progress(3 * len(models), "deploy", progress)
    import torch

    rows, taken = [], set()
    for name, model in models.items():
        slug = _slug(name, taken)
        rows.append(measure_torch(model, images, labels, warmup=warmup, repeats=repeats,
                                  threads=threads, name=name))
        bar.step(f"{name}, PyTorch: {rows[-1].latency_ms:.2f} ms")
        fp32 = export_onnx(model, torch.from_numpy(images[:2]), folder / f"{slug}.onnx",
                           exporter=exporter)
        rows.append(measure(fp32, images, labels, warmup=warmup, repeats=repeats,
                            threads=threads, name=name))
        bar.step(f"{name}, ONNX fp32: {rows[-1].latency_ms:.2f} ms")
        int8 = quantize_int8(fp32, folder / f"{slug}.int8.onnx", calib)
        rows.append(measure(int8, images, labels, warmup=warmup, repeats=repeats,
                            threads=threads, name=name))
        bar.step(f"{name}, ONNX int8: {rows[-1].latency_ms:.2f} ms")
    bar.close()
    return rows


def nonlocal_scaling(folder: str | os.PathLike, *, sides: Sequence[int] = (14, 28, 56, 112),
                     channels: int = 64, backends: Sequence[str] = ("matmul", "sdpa"),
                     memory_cap_mib: float = 1024.0, warmup: int = 1, repeats: int = 5,
                     threads: int = 1, exporter: str = "torchscript",
                     progress: str = "off") -> list[DeployRow]:
    """Where the non-local block's N^2 cost bites once deployed: one ``NonLocalBlock`` of
    ``channels`` channels (its output batch norm set to weight 1, so that the block is not
    the identity), exported to float32 ONNX once per backend with H and W symbolic, then run
    by ONNX Runtime on inputs (1, channels, side, side), N = side^2 positions: batch-1
    latency and the peak memory of a fresh process, one row per backend and side. A side
    whose N x N affinity could exceed ``memory_cap_mib`` (scores and their softmax,
    2 N^2 x 4 bytes: the most any exported graph holds) is not run: its row has NaN latency
    and memory and says why in ``note``. Model files go into ``folder`` (outside the
    repository). ``exporter='dynamo'`` writes the fused backend as one ONNX ``Attention``
    operator (opset 23); the TorchScript exporter decomposes it into MatMul and Softmax."""
    import torch

    from .modules import NL_BACKENDS, NonLocalBlock
    from .training import Progress

    folder = _folder(folder)
    if isinstance(sides, str) or not isinstance(sides, Sequence) or not sides:
        raise ValueError(f"sides must be a non-empty sequence of integers >= 2, got {sides!r}")
    sides = [positive_int(s, "sides", minimum=2) for s in sides]
    channels = positive_int(channels, "channels", minimum=2)
    if (isinstance(backends, str) or not isinstance(backends, Sequence) or not backends
            or any(b not in NL_BACKENDS for b in backends)):
        raise ValueError(f"backends must be a non-empty sequence of {NL_BACKENDS}, "
                         f"got {backends!r}")
    cap = positive_float(memory_cap_mib, "memory_cap_mib")
    warmup, repeats, threads = _counts(warmup, repeats, threads)
    _exporter(exporter)
    bar = Progress(len(sides) * len(backends), "non-local", progress)
    found: dict[tuple[int, int], DeployRow] = {}
    for j, backend in enumerate(backends):
        path = None
        generator = np.random.default_rng(0)
        for i, side in enumerate(sides):
            n = side * side
            need = 2 * n * n * 4 / 2**20
            label = f"non-local {backend}, {side}x{side} (N = {n:,})"
            if need > cap:
                found[i, j] = DeployRow(label, "ONNX Runtime fp32", float("nan"), float("nan"),
                                        float("nan"), None, f"skipped: the N x N affinity may "
                                        f"need ~{need:,.0f} MiB, over the cap of {cap:,.0f} MiB")
                bar.step(f"{label}: skipped")
                continue
            if path is None:                          # one export serves every side
                torch.manual_seed(0)
                block = NonLocalBlock(channels, backend=backend)
                with torch.no_grad():
                    block.bn.weight.fill_(1.0)
                path = export_onnx(block, torch.randn(1, channels, 4, 4),
                                   folder / f"nonlocal_{backend}.onnx", dynamic=(2, 3),
                                   exporter=exporter)
            x = generator.standard_normal((1, channels, side, side), dtype=np.float32)
            found[i, j] = measure(path, x, None, warmup=warmup, repeats=repeats,
                                  threads=threads, name=label)
            bar.step(f"{label}: {found[i, j].latency_ms:.2f} ms")
    bar.close()
    return [found[key] for key in sorted(found)]
