"""The one checker of PyTorch module exercises, ``check_module``, and its helpers."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import state
from .core import Case, _Attempt, _begin, _Blank, _kind, compare

if TYPE_CHECKING:
    import torch
    from torch import nn


# ---------------------------------------------------------------------------------------------

def _compare_tensor(got: Any, expected: torch.Tensor, *, name: str, rtol: float,
                    atol: float) -> float:
    """Like :func:`compare` for a tensor answer: type, shape, dtype and device, then values."""
    import torch

    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{name}: expected a torch.Tensor of shape "
                             f"{tuple(expected.shape)}, got {_kind(got)}")
    if got.shape != expected.shape:
        raise AssertionError(f"{name}: wrong shape, expected {tuple(expected.shape)}, got "
                             f"{tuple(got.shape)}")
    if got.dtype != expected.dtype:
        raise AssertionError(f"{name}: wrong dtype, expected {expected.dtype}, got {got.dtype} "
                             "(keep the input's dtype: no .float(), .double() or new tensors "
                             "of a fixed dtype)")
    if got.device.type != expected.device.type:
        raise AssertionError(f"{name}: on device {got.device.type}, expected "
                             f"{expected.device.type} (create new tensors on x.device)")
    return compare(got.detach().cpu().numpy(), expected.detach().cpu().numpy(), name=name,
                   rtol=rtol, atol=atol)


def _names_and_shapes(names: Sequence[str], shapes: dict[str, tuple[int, ...]],
                      most: int = 3) -> str:
    """'fc1.weight (4, 8), fc1.bias (4,)', at most ``most`` of them, for messages."""
    shown = ", ".join(f"{n} {shapes[n]}" for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _structure_difference(mine: nn.Module, ref: nn.Module) -> str | None:
    """How the learner's parameters and buffers (names, shapes, count) differ, or None."""
    got = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
    want = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    n_got = sum(p.numel() for p in mine.parameters())
    n_want = sum(p.numel() for p in ref.parameters())
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    misshaped = [k for k in want if k in got and got[k] != want[k]]
    if not (missing or extra or misshaped) and n_got == n_want:
        return None
    parts = []
    if missing:
        parts.append(f"missing {_names_and_shapes(missing, want)}")
    if extra:
        parts.append(f"unexpected {_names_and_shapes(extra, got)}")
    if misshaped:
        parts.append("wrong shape: " + ", ".join(
            f"{k} is {got[k]}, expected {want[k]}" for k in misshaped[:3]))
    if not parts:
        parts.append("the same names and shapes, but some are not nn.Parameters")
    return (f"the module's parameters differ from the exercise's: {'; '.join(parts)} "
            f"({n_got:,} parameters, expected {n_want:,}).\nThe exercise's module holds "
            f"exactly: {_names_and_shapes(list(want), want, most=len(want))}.")


def _randomise(module: nn.Module, seed: int) -> None:
    """Seeded, non-trivial values for every parameter: weights ~ N(0, 1 / fan_in), biases and
    other vectors ~ N(0, 0.5^2), so that no unit is dead or saturated by construction."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            scale = p[0].numel() ** -0.5 if p.ndim > 1 else 0.5
            p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64) * scale)


def _accelerators() -> list[torch.device]:
    """The devices besides the CPU that modules are also checked on: CUDA when present."""
    import torch

    return [torch.device("cuda")] if torch.cuda.is_available() else []


def _check_module_input(attempt: _Attempt, mine: nn.Module, ref: nn.Module,
                        shape: tuple[int, ...], where: str, seed: int, rtol: float,
                        atol: float) -> float:
    """One input shape for one build, both modules in float64 with the same weights: the
    output, the input left alone, and the gradients of x and of every parameter. Returns the
    largest error."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator, dtype=torch.float64)
    x_in = x.clone()
    got = attempt.run(functools.partial(mine, x_in), where, "your forward")
    if not torch.equal(x_in, x):
        raise attempt.wrong(where, "your forward modified its input x in place (for example "
                                   "x *= s); return a new tensor (x * s) instead.")
    expected = ref(x.clone())
    try:
        worst = _compare_tensor(got, expected, name="output", rtol=rtol, atol=atol)
    except AssertionError as exc:
        raise attempt.wrong(where, str(exc)) from None

    upstream = torch.randn(expected.shape, generator=generator, dtype=torch.float64)
    x_mine, x_ref = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    mine.zero_grad(set_to_none=True)
    ref.zero_grad(set_to_none=True)
    out = attempt.run(functools.partial(mine, x_mine), where, "your forward")
    if not out.requires_grad:
        raise attempt.wrong(where, "the output is cut off from autograd (no gradient can flow "
                                   "back); do not use torch.no_grad(), .detach(), .item() or "
                                   "NumPy inside forward.")
    attempt.run(functools.partial(out.backward, upstream), where,
                "back-propagating through your forward")
    ref(x_ref).backward(upstream)
    params = dict(mine.named_parameters())
    shapes = {name: tuple(p.shape) for name, p in params.items()}
    without = [name for name, p in params.items() if p.grad is None]
    if without:
        raise attempt.wrong(where, f"no gradient reached {_names_and_shapes(without, shapes)}; "
                                   "gradients must reach every parameter (use each one in "
                                   "forward, without .detach(), .data or torch.no_grad()).")
    if x_mine.grad is None:
        raise attempt.wrong(where, "no gradient reached the input x; do not detach it.")
    expected_grads = dict(ref.named_parameters())
    try:
        worst = max(worst, _compare_tensor(x_mine.grad, x_ref.grad, name="gradient of x",
                                           rtol=rtol, atol=atol))
        for name, p in params.items():
            worst = max(worst, _compare_tensor(
                p.grad, expected_grads[name].grad, name=f"gradient of {name} {shapes[name]}",
                rtol=rtol, atol=atol))
    except AssertionError as exc:
        raise attempt.wrong(where, str(exc)) from None
    return worst


def _check_module_float32(attempt: _Attempt, mine: nn.Module, ref: nn.Module,
                          shape: tuple[int, ...], where: str, seed: int,
                          device: torch.device | None = None) -> None:
    """The learner's module in float32 (on ``device``, default the CPU): a float32 output on
    that device, close to the reference's (float64 on the CPU, float32 on another device,
    whose kernels may round differently)."""
    import torch

    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    on = "" if device is None else f" on {device.type}"
    mine32 = attempt.run(lambda: copy.deepcopy(mine).float().to(device or "cpu"), where,
                         f"copying your module to float32{on}")
    got = attempt.run(functools.partial(mine32, x.float().to(device or "cpu")), where,
                      f"your forward in float32{on}")
    if device is None:
        # float32 sums in another order (thread count, BLAS) shift the last digits, and a
        # batch norm over a small batch can magnify that: values were checked in float64
        expected, name, rtol, atol = ref(x).detach(), "output in float32", 1e-4, 1e-5
    else:
        expected = copy.deepcopy(ref).float().to(device)(x.float().to(device)).detach()
        name, rtol, atol = f"output in float32 on {device.type}", 1e-4, 1e-5
    try:
        if isinstance(got, torch.Tensor) and got.dtype != torch.float32:
            raise AssertionError(f"{name}: wrong dtype, expected torch.float32, got {got.dtype}"
                                 " (keep the input's dtype: no .double() or new tensors of a "
                                 "fixed dtype)")
        if isinstance(got, torch.Tensor):
            got = got.to(expected.dtype)
        _compare_tensor(got, expected, name=name, rtol=rtol, atol=atol)
    except AssertionError as exc:
        raise attempt.wrong(where, str(exc)) from None



def _tensors_kept(module: nn.Module) -> list[str]:
    """Attributes of the module (or its submodules) holding tensors that are not parameters or
    buffers but hang on an autograd graph: state kept from a forward pass."""
    import torch

    def attached(value: Any) -> bool:
        if isinstance(value, torch.Tensor):
            return value.grad_fn is not None
        if isinstance(value, list | tuple):
            return any(attached(v) for v in value)
        if isinstance(value, dict):
            return any(attached(v) for v in value.values())
        return False

    return [f"{prefix}{'.' if prefix else ''}{name}"
            for prefix, sub in module.named_modules() for name, value in vars(sub).items()
            if not name.startswith("_") and attached(value)]


def _check_stateless(attempt: _Attempt, mine: nn.Module, shape: tuple[int, ...], where: str,
                     seed: int) -> None:
    """A forward pass with gradients keeps no tensor of its graph as an attribute, and the same
    input twice gives the same output (no state carried from one call to the next)."""
    import torch

    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    on_graph = x.clone().requires_grad_(True) * 1.0     # not a leaf: x.mul_ is reported later
    attempt.run(functools.partial(mine, on_graph), where, "your forward")
    kept = _tensors_kept(mine)
    if kept:
        raise attempt.wrong(where, f"your module keeps {', '.join(kept[:3])} from a forward pass "
                                   "as an attribute, still attached to that pass's autograd "
                                   "graph: it holds the graph's memory, cannot be copied, and "
                                   "belongs to the last call only. Use a local variable (or "
                                   "keep a .detach()ed copy if you need it afterwards).")
    with torch.no_grad():
        first = attempt.run(functools.partial(mine, x.clone()), where, "your forward")
        second = attempt.run(functools.partial(mine, x.clone()), where, "your forward")
    if isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor) and not (
            first.shape == second.shape and torch.equal(first, second)):
        change = ((first - second).abs().max().item() if first.shape == second.shape
                  else float("nan"))
        raise attempt.wrong(where, f"called twice on the same input, your forward gave two "
                                   f"different outputs (largest change {change:.1e}): it carries "
                                   "state from one call to the next (a cache, a counter, a tensor "
                                   "updated in forward). Compute the output from x and the "
                                   "parameters only.")


def _torch_calls(call: Callable[[], Any], made: list | None = None) -> list[tuple[str, Any, Any]]:
    """What PyTorch functions ``call()`` ran: (function, dtype, device) for every tensor with at
    least one dimension each returned, or (function, None, None) for one that returned none.
    Appended to ``made`` as they come, so that a call that fails half-way leaves what it ran
    so far."""
    import torch
    from torch.overrides import TorchFunctionMode

    made = [] if made is None else made

    class Recorder(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = getattr(func, "__name__", str(func))
            tensors = [v for v in (out if isinstance(out, tuple | list) else (out,))
                       if isinstance(v, torch.Tensor) and v.ndim > 0]
            made.extend([(name, v.dtype, v.device) for v in tensors] or [(name, None, None)])
            return out

    with Recorder():
        call()
    return made


def _made_in_forward(module: nn.Module, x: torch.Tensor,
                     made: list | None = None) -> list[tuple[str, Any, Any]]:
    """(function, dtype, device) of every tensor with at least one dimension that a torch
    function made while ``module(x)`` ran, without gradients."""
    import torch

    with torch.no_grad():
        made = _torch_calls(functools.partial(module, x), made)
    return [entry for entry in made if entry[1] is not None]


def _check_follows_input(attempt: _Attempt, mine: nn.Module, shape: tuple[int, ...],
                         where: str, seed: int) -> None:
    """Every tensor forward makes follows the input: float64 for a float64 input, and on the
    input's device. The device is tried on PyTorch's meta device (shapes without data), where
    a tensor made on the CPU shows as it would on a GPU, on a machine without one."""
    import torch

    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    made = attempt.run(functools.partial(_made_in_forward, mine, x), where, "your forward")
    fixed = [(f, d) for f, d, _ in made if d.is_floating_point and d != torch.float64]
    if fixed:
        func, dtype = fixed[0]
        raise attempt.wrong(where, f"with a float64 input, your forward made a {dtype} tensor "
                                   f"(in {func}): a new tensor with a fixed dtype, which then "
                                   "loses precision, or in half precision changes the output's "
                                   "dtype. Give new tensors the input's dtype (dtype=x.dtype, "
                                   "torch.zeros_like, x.new_zeros), never .float().")
    made, crossed = [], None
    try:
        with state.restored():        # settings left changed were reported by the run above
            meta = copy.deepcopy(mine).to("meta")
            _made_in_forward(meta, torch.empty(shape, dtype=torch.float64, device="meta"), made)
    except Exception as exc:          # the meta device is only a probe: judge device errors only
        text = str(exc).lower()        # a mismatch names both devices; .cpu(), or a copy
        if "copy out of meta" in text or all(w in text for w in ("cpu", "meta", "device")):
            crossed = "an operation mixing devices"     # into a CPU tensor, cannot copy out
    elsewhere = [f for f, _, device in made if device is not None and device.type != "meta"]
    elsewhere += [crossed] * bool(crossed)
    if elsewhere:
        raise attempt.wrong(where, f"your forward made or moved a tensor to the CPU whatever the "
                                   f"input's device (in {elsewhere[0]}; seen on PyTorch's meta "
                                   "device, as on a GPU): create tensors on x.device "
                                   "(torch.zeros_like, x.new_zeros); never .cpu().")


def _check_eval_mode(attempt: _Attempt, mine: nn.Module, ref: nn.Module,
                     shape: tuple[int, ...], where: str, seed: int, rtol: float,
                     atol: float) -> None:
    """In evaluation mode (``.eval()``), with the reference's weights and buffers loaded
    again, the same output as the reference: a module whose forward differs between training
    and evaluation (a running statistic of its own, a branch on ``self.training``) shows here."""
    import torch

    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    attempt.run(functools.partial(mine.load_state_dict, ref.state_dict()), where,
                "loading the reference's weights into your module")
    attempt.run(mine.eval, where, "your module's .eval()")
    ref.eval()
    try:
        with torch.no_grad():
            got = attempt.run(functools.partial(mine, x.clone()), where,
                              "your forward in evaluation mode")
            expected = ref(x.clone())
        try:
            _compare_tensor(got, expected, name="output in evaluation mode (after .eval())",
                            rtol=rtol, atol=atol)
        except AssertionError as exc:
            raise attempt.wrong(where, str(exc)) from None
    finally:
        mine.train()
        ref.train()


def _check_large_inputs(attempt: _Attempt, mine: nn.Module, ref: nn.Module,
                        shape: tuple[int, ...], where: str, seed: int, large: float) -> None:
    """In float32, batch elements scaled by ``large``, 1 and ``-large`` in turn: the output
    must be finite where the reference's (float64) is, and close to it. A softmax written as
    exp(s) / sum(exp(s)), or with one maximum shared by rows or by the batch, overflows or
    divides 0 by 0 here; one that clamps the scores moves the values."""
    import torch

    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    scale = torch.tensor([(large, 1.0, -large)[b % 3] for b in range(shape[0])],
                         dtype=torch.float64)
    x = x * scale.view(-1, *([1] * (len(shape) - 1)))
    expected = ref(x.clone()).detach()
    mine32 = attempt.run(lambda: copy.deepcopy(mine).float(), where,
                         "copying your module to float32")
    with torch.no_grad():
        got = attempt.run(functools.partial(mine32, x.float()), where,
                          "your forward in float32")
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return                        # reported by the checks on ordinary inputs
    bad = ~torch.isfinite(got) & torch.isfinite(expected)
    if bad.any():
        kind = "NaN" if torch.isnan(got[bad]).any() else "Inf"
        raise attempt.wrong(where, f"your float32 output has {kind} at {int(bad.sum())} of "
                                   f"{got.numel()} positions where the reference's is finite: "
                                   "exp overflowed, or a whole row underflowed to 0. Subtract "
                                   "each row's own maximum before exp (torch.softmax does).")
    name = "output in float32"
    got, expected = got.double(), expected.double()
    if got.shape == x.shape:          # a residual block: compare what it adds to x, which
        got = got - x.float().double()     # the large x would otherwise drown
        expected = expected - x
        name = "output minus x in float32"
    top = float(expected.abs().max())
    try:
        _compare_tensor(got, expected, name=name, rtol=1e-3, atol=1e-4 * max(top, 1e-3))
    except AssertionError as exc:
        raise attempt.wrong(where, str(exc)) from None


def check_module(learner: Callable[..., nn.Module], reference: type[nn.Module],
                 builds: Sequence[Case], shapes: Sequence[Sequence[tuple[int, ...]]], *,
                 title: str, idea: str | None = None, rtol: float = 1e-10,
                 atol: float = 1e-10, seed: int = 0,
                 fresh: Callable[[nn.Module, tuple[int, ...]], str | None] | None = None,
                 large: float | None = None) -> Callable[..., nn.Module]:
    """Check the learner's ``nn.Module`` class against ``reference``; return the class to use next.

    ``builds`` are constructor arguments, each given to both classes (so ``reference`` takes
    the learner's constructor signature); ``shapes[i]`` are the input shapes (B, C, H, W)
    tried with ``builds[i]``. For every build: the same state-dict names and shapes and the
    same number of parameters. Then, with the reference's seeded random weights loaded into
    the learner's module, in float64 for every input shape: the same output (type, shape,
    dtype, values within ``atol + rtol * |expected|``), the input x left unchanged, and after
    back-propagating one seeded upstream gradient the same gradient for x and for every
    parameter, each of which must get one. In float32 the output must be float32 and close to
    float64; on CUDA, where present, close to the reference on the GPU.

    Before the values, on each build's first shape: no tensor of a forward pass kept as an
    attribute and the same output for the same input twice (no state across calls); every
    tensor forward makes is float64 for a float64 input and, tried on the meta device, on the
    input's device (a CPU-only machine catches a tensor made on the CPU). After them, the
    same output in evaluation mode (``.eval()``) and, with ``large``, in float32 with batch
    elements scaled by ``large``, 1 and ``-large``, an output finite where the reference's is
    and close to it (a softmax without its maximum subtracted overflows).

    ``fresh(module, shape)``, when given, looks at each newly built module of the learner,
    before any weights are loaded (for example: is it the identity?), and returns what is
    wrong, or None.

    A blank class (NotImplementedError in ``__init__`` or ``forward``) returns a stand-in
    subclass of ``reference``, marked like the function stand-ins of :func:`check_exercise`.
    """
    import torch
    from torch import nn

    if not _module_check_arguments_ok(reference, builds, shapes):
        raise ValueError("reference must be a torch.nn.Module class, builds a non-empty "
                         "sequence of Case and shapes one non-empty sequence of input shapes "
                         "(tuples of positive integers) per build")
    if isinstance(learner, nn.Module):
        raise ValueError(f"the exercise class for {title!r} must be the class itself, not an "
                         f"instance of it: {title} = check.{title}({title}) right after the "
                         "class statement")
    attempt = _begin(learner, reference, title, idea)
    if attempt is None:
        return learner
    total, number, worst = sum(len(s) for s in shapes), 0, 0.0
    devices = _accelerators()
    try:
        with torch.random.fork_rng(devices=[]):        # leave the notebook's random state alone
            for index, (build, build_shapes) in enumerate(zip(builds, shapes, strict=True)):
                made = f"{title}{build.describe()}"
                where = f"test case {number + 1} of {total}, {made}"
                torch.manual_seed(seed + index)
                mine = attempt.run(functools.partial(learner, *copy.deepcopy(build.args),
                                                     **copy.deepcopy(build.kwargs)),
                                   where, f"building {made}", first=index == 0)
                if not isinstance(mine, nn.Module):
                    raise attempt.wrong(where, f"building {made} gave {_kind(mine)}, expected an "
                                               "nn.Module (does the class inherit from "
                                               "nn.Module?)")
                if index == 0:        # a blank forward leaves the exercise open, not wrong
                    _raise_if_blank(mine, build_shapes[0])
                if fresh is not None:
                    problem = attempt.run(functools.partial(fresh, mine, build_shapes[0]),
                                          where, f"your newly built {made}")
                    if problem:
                        raise attempt.wrong(where, problem)
                ref = reference(*copy.deepcopy(build.args), **copy.deepcopy(build.kwargs))
                ref = ref.double()
                _randomise(ref, seed + index)
                difference = _structure_difference(mine, ref)
                if difference:
                    raise attempt.wrong(where, difference)
                mine = attempt.run(lambda m=mine: m.double(), where, "your module's .double()")
                attempt.run(functools.partial(mine.load_state_dict, ref.state_dict()), where,
                            "loading the reference's weights into your module")
                where = f"test case {number + 1} of {total}, {made} on x of shape " \
                        f"{build_shapes[0]}"
                _check_stateless(attempt, mine, build_shapes[0], where, seed + 100 * index)
                _check_follows_input(attempt, mine, build_shapes[0], where, seed + 100 * index)
                first = number + 1
                for case_seed, shape in enumerate(build_shapes, start=seed + 100 * index):
                    number += 1
                    where = f"test case {number} of {total}, {made} on x of shape {shape}"
                    worst = max(worst, _check_module_input(attempt, mine, ref, shape, where,
                                                           case_seed, rtol, atol))
                    _check_module_float32(attempt, mine, ref, shape, where, case_seed)
                where = f"test case {first} of {total}, {made} on x of shape {build_shapes[0]}"
                _check_eval_mode(attempt, mine, ref, build_shapes[0], where, seed + 100 * index,
                                 rtol, atol)
                if large is not None and build_shapes[0][0] > 1:
                    _check_large_inputs(attempt, mine, ref, build_shapes[0],
                                        f"{where}, in float32, batch elements scaled by "
                                        f"{large:g}, 1, -{large:g}", seed + 100 * index, large)
                for device in devices:
                    where = (f"test case {first} of {total}, {made} on x of shape "
                             f"{build_shapes[0]}, on {device.type}")
                    _check_module_float32(attempt, mine, ref, build_shapes[0], where,
                                          seed + 100 * index, device)
    except _Blank:
        return attempt.still_open()
    on = "".join(f", {d.type}" for d in devices)
    return attempt.right(f"correct on {total} test cases: parameter names and shapes, outputs "
                         f"and gradients in float64 (largest error {worst:.1e}), float32{on}.")


def _module_check_arguments_ok(reference: Any, builds: Any, shapes: Any) -> bool:
    """Whether check_module's arguments are a Module class, a non-empty sequence of Case, and
    one non-empty sequence of shapes (tuples of positive integers) per build."""
    from torch import nn

    def is_shape(shape: Any) -> bool:
        return isinstance(shape, tuple) and bool(shape) and all(
            isinstance(n, int) and n > 0 for n in shape)

    def is_sequence(value: Any) -> bool:
        return isinstance(value, Sequence) and not isinstance(value, str | bytes) and bool(value)

    return (isinstance(reference, type) and issubclass(reference, nn.Module)
            and is_sequence(builds) and all(isinstance(b, Case) for b in builds)
            and is_sequence(shapes) and len(shapes) == len(builds)
            and all(is_sequence(s) and all(is_shape(t) for t in s) for s in shapes))


def _raise_if_blank(module: nn.Module, shape: tuple[int, ...]) -> None:
    """Raise ``_Blank`` when the module's forward is still blank (NotImplementedError).

    Any other exception is ignored here: the full check reports it with its case.
    """
    import torch

    try:
        with state.restored(), torch.no_grad():   # what it leaves changed is reported later
            module(torch.randn(shape, generator=torch.Generator().manual_seed(0)))
    except NotImplementedError as exc:
        raise _Blank from exc
    except Exception:  # reported with its test case by the full check that follows
        pass


def _new_block_output(module: nn.Module, shape: tuple[int, ...]
                      ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(x, module(x)) for a seeded input x of ``shape``, without gradients; None when the
    module raises or returns something other than a tensor of x's shape (the full check that
    follows reports that, with the case)."""
    import torch

    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    try:
        with torch.no_grad():
            out = module(x)
    except Exception:
        return None
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        return None
    return x, out
