"""Exercise checkers: ``fn = check.fn(fn)`` after every exercise.

Every checker runs the learner's function on seeded inputs and compares it with the
course's reference implementation:

- correct: prints a one-line confirmation and returns the learner's function;
- blank (``NotImplementedError`` on the first test case): prints that the exercise is open
  and returns the reference, so the rest of the notebook runs. Under grading
  (``ACV_GRADING=1``) it raises :class:`ExerciseOpen` instead, so the exercise scores nothing;
- wrong: raises ``AssertionError`` saying what is wrong (type, shape, dtype, NaN/Inf, the
  worst element and by how much, an input modified in place, an exception raised by the
  function) and the idea to go back to. The code-level hint comes on request:
  ``check.hint("se_forward")``.

After a blank or wrong answer the notebook's name for the function (``fn`` in
``fn = check.fn(fn)``) is bound to the reference, so that later cells run and one mistake
costs one exercise.

From notebook 02 on, some exercises are PyTorch: an ``nn.Module`` class
(``CBAM = check.CBAM(CBAM)``), checked by :func:`check_module` (parameter names, shapes and
count; outputs and the gradients of the input and of every parameter against the reference
module in float64 with its weights loaded; float32; CUDA where present), and training loops,
run from the same weights and random state as the course's own loop. A blank class falls
back to a marked subclass of the reference class.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import datasets, functional, reference, runtime

if TYPE_CHECKING:
    import torch
    from torch import nn

# PyTorch (with counting, modules and training), saliency and denoising (SciPy) are imported by
# the checkers that use them, so that `from utils import check` stays quick in a fresh kernel.


class ExerciseOpen(AssertionError):
    """A blank exercise under grading: its check cell fails and scores no points."""


@dataclass(frozen=True)
class Exercise:
    """What the course knows about one exercise besides its test cases.

    points: what its check cell is worth under grading. idea: the first-level hint, shown
    with every wrong answer. hint: the code-level hint, shown by ``check.hint(name)``.
    """

    name: str
    points: int
    idea: str
    hint: str

    def __post_init__(self) -> None:
        if isinstance(self.points, bool) or not isinstance(self.points, int) or self.points < 1:
            raise ValueError(f"points must be a positive integer, got {self.points!r}")
        for field_name in ("name", "idea", "hint"):
            if not isinstance(getattr(self, field_name), str) or not getattr(self, field_name):
                raise ValueError(f"{field_name} must be a non-empty string")


EXERCISES: dict[str, Exercise] = {}


def exercise(*, points: int, idea: str, hint: str) -> Callable[[Callable], Callable]:
    """Register a checker (named like its exercise) with its points and two levels of hint."""
    Exercise("(checked before registering)", points, idea, hint)

    def register(checker: Callable) -> Callable:
        EXERCISES[checker.__name__] = Exercise(checker.__name__, points, idea, hint)
        return checker
    return register


def hint(name: str) -> None:
    """Print the code-level hint of exercise ``name`` (for example ``check.hint("softmax")``)."""
    if name not in EXERCISES:
        raise ValueError(f"name must be one of the course's exercises {sorted(EXERCISES)}, "
                         f"got {name!r}")
    print(f"💡 {name}: {EXERCISES[name].hint}")


@dataclass
class Case:
    """One call of the function under test: ``fn(*args, **kwargs)``."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.args, tuple) or not isinstance(self.kwargs, dict):
            raise ValueError(f"args must be a tuple and kwargs a dict, got "
                             f"{type(self.args).__name__} and {type(self.kwargs).__name__}")

    def describe(self) -> str:
        def short(v: Any) -> str:
            if isinstance(v, np.ndarray):
                return f"array{v.shape}"
            if isinstance(v, dict):  # parameter dicts: names and shapes, not every number
                return "{" + ", ".join(f"{k!r}: {short(x)}" for k, x in v.items()) + "}"
            return repr(v)

        parts = [short(a) for a in self.args] + [f"{k}={short(v)}" for k, v in self.kwargs.items()]
        return "(" + ", ".join(parts) + ")"

def _index_text(flat_index: int, shape: tuple[int, ...]) -> str:
    return str(tuple(int(i) for i in np.unravel_index(flat_index, shape))) if shape else "()"


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def _kind(value: Any) -> str:
    """A short description of a value's type and shape, for messages."""
    if isinstance(value, np.ndarray) or _is_tensor(value):
        return (f"{'a torch.Tensor' if _is_tensor(value) else 'an array'} of shape "
                f"{tuple(value.shape)}")
    if value is None:
        return "None (did you forget to return the result?)"
    return f"a {type(value).__name__}"


def _is_integral(value: Any) -> bool:
    """Whether a number (or 0-d array or tensor) has an integer type."""
    if isinstance(value, int | np.integer):
        return True
    dtype = getattr(value, "dtype", None)
    return dtype is not None and not getattr(dtype, "is_floating_point", False) and (
        _is_tensor(value) or np.issubdtype(dtype, np.integer))


def _as_number(value: Any) -> float | None:
    """A real number from a Python or NumPy number, or a 0-d array or tensor; else None."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if (isinstance(value, np.ndarray) or _is_tensor(value)) and value.ndim == 0:
        number = value.item()
        return float(number) if isinstance(number, int | float) and not isinstance(
            number, bool) else None
    return None


def compare(got: Any, expected: Any, *, name: str = "output", rtol: float = 1e-7,
            atol: float = 1e-10) -> float:
    """Raise ``AssertionError`` describing the first way ``got`` differs from ``expected``.

    Arrays are compared by type, shape, dtype, non-finite values and then elementwise with
    ``|got - expected| <= atol + rtol * |expected|``. Tuples and lists are compared item by
    item. A number may be answered by a 0-d array or tensor. Returns the largest absolute
    error found (0.0 for exact matches).
    """
    if not (isinstance(rtol, int | float) and isinstance(atol, int | float)
            and rtol >= 0 and atol >= 0):
        raise ValueError(f"rtol and atol must be non-negative numbers, got {rtol!r} and {atol!r}")
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            got_text = f"keys {sorted(got)}" if isinstance(got, dict) else type(got).__name__
            raise AssertionError(f"{name}: expected a dict with keys {sorted(expected)}, "
                                 f"got {got_text}")
        return max((compare(got[k], expected[k], name=f"{name}[{k!r}]", rtol=rtol, atol=atol)
                    for k in expected), default=0.0)
    if isinstance(expected, tuple | list):
        if not isinstance(got, tuple | list) or len(got) != len(expected):
            got_text = f"{type(got).__name__} of length {len(got)}" if isinstance(
                got, tuple | list) else type(got).__name__
            raise AssertionError(
                f"{name}: expected a tuple of {len(expected)} items, got a {got_text}")
        return max((compare(g, e, name=f"{name}[{i}]", rtol=rtol, atol=atol)
                    for i, (g, e) in enumerate(zip(got, expected, strict=True))), default=0.0)
    if not isinstance(expected, np.ndarray):
        if isinstance(expected, float | int | np.number) and not isinstance(expected, bool):
            number = _as_number(got)
            if number is None:
                raise AssertionError(
                    f"{name}: expected a number like {expected!r}, got {_kind(got)}"
                    + (" (did you forget to sum or to take .item()?)"
                       if getattr(got, "ndim", 0) else ""))
            if isinstance(expected, int | np.integer) and not _is_integral(got):
                raise AssertionError(f"{name}: expected an integer like {expected!r}, got "
                                     f"{_kind(got)} {number!r} (use int(...) or //)")
            got, expected = np.asarray(number, dtype=float), np.asarray(expected, dtype=float)
        elif type(got) is not type(expected) or got != expected:
            raise AssertionError(f"{name}: expected {expected!r}, got {got!r}")
        else:
            return 0.0
    if _is_tensor(got):
        raise AssertionError(f"{name}: expected a numpy array of shape {expected.shape}, got "
                             f"{_kind(got)}; this exercise is NumPy (use np.* functions, or "
                             ".numpy() on the result)")
    if isinstance(got, np.matrix):
        raise AssertionError(f"{name}: expected a plain numpy array, got an np.matrix (whose * "
                             "and ** mean matrix products); build it with np.array instead")
    if not isinstance(got, np.ndarray):
        raise AssertionError(
            f"{name}: expected a numpy array of shape {expected.shape}, got {type(got).__name__}"
            + (" (did you forget to return the result?)" if got is None else ""))
    if got.shape != expected.shape:
        raise AssertionError(f"{name}: wrong shape, expected {expected.shape}, got {got.shape}")
    if got.dtype != expected.dtype:
        raise AssertionError(f"{name}: wrong dtype, expected {expected.dtype}, got {got.dtype}")
    got_bad, exp_bad = ~np.isfinite(got), ~np.isfinite(expected)
    if np.any(got_bad & ~exp_bad):
        where = np.flatnonzero(got_bad & ~exp_bad)
        kind = "NaN" if np.isnan(got.flat[where[0]]) else "Inf"
        raise AssertionError(
            f"{name}: contains {kind} at {where.size} position(s), first at index "
            f"{_index_text(where[0], got.shape)}, where the answer is finite "
            f"({expected.flat[where[0]]:.6g})")
    if np.any(exp_bad & ~got_bad):
        where = np.flatnonzero(exp_bad & ~got_bad)
        raise AssertionError(
            f"{name}: expected a non-finite value at index {_index_text(where[0], got.shape)}, "
            f"got {got.flat[where[0]]:.6g}")
    ok = np.isfinite(expected)
    err = np.zeros(expected.shape)
    err[ok] = np.abs(got[ok].astype(np.float64) - expected[ok])
    allowed = atol + rtol * np.abs(np.where(ok, expected, 0.0))
    bad = err > allowed
    if np.any(bad) and expected.ndim == 0:
        raise AssertionError(f"{name}: expected {float(expected):.6g}, got {float(got):.6g} "
                             f"(off by {float(err):.3g})")
    if np.any(bad):
        worst = int(np.argmax(np.where(bad, err / allowed, -np.inf)))
        raise AssertionError(
            f"{name}: values differ at {int(bad.sum())} of {expected.size} elements; worst at "
            f"index {_index_text(worst, expected.shape)}: expected {expected.flat[worst]:.6g}, "
            f"got {got.flat[worst]:.6g} (off by {err.flat[worst]:.3g}; tolerance "
            f"{allowed.flat[worst]:.1g})")
    return float(err.max(initial=0.0))


def _use_reference_from_here_on(title: str, learner: Callable, fallback: Callable) -> bool:
    """Bind the notebook's name ``title`` to ``fallback`` where it still names ``learner``.

    The caller is the notebook's check cell (the first frame outside this module); only an
    interactive namespace (``__main__``) is touched, and only the exercise's own name.
    Returns whether the name was rebound.
    """
    frame = inspect.currentframe()
    try:
        while frame is not None and frame.f_globals.get("__name__") == __name__:
            frame = frame.f_back
        if frame is not None and frame.f_globals.get("__name__") == "__main__" and (
                frame.f_globals.get(title) is learner):
            frame.f_globals[title] = fallback
            return True
        return False
    finally:
        del frame


def _stand_in(title: str, reference: Callable) -> Callable:
    """The reference, marked, so that a later check knows it is not the learner's.

    A function is wrapped; a class is subclassed (same constructor and behaviour, and
    ``isinstance`` of the reference, so that later cells of the notebook work with it).
    """
    if isinstance(reference, type):
        return type(reference.__name__, (reference,), {
            "acv_reference_for": title, "__doc__": reference.__doc__,
            "__module__": reference.__module__, "__qualname__": reference.__qualname__})

    @functools.wraps(reference)
    def stand_in(*args: Any, **kwargs: Any) -> Any:
        return reference(*args, **kwargs)

    stand_in.acv_reference_for = title
    return stand_in


class _Blank(Exception):
    """The learner's first call raised NotImplementedError: the exercise is still open."""


class _Attempt:
    """One check of a learner's answer to exercise ``title``, and the three ways it ends.

    ``fallback`` is the marked stand-in of ``reference`` that the notebook's name is bound
    to after a blank or wrong answer. ``idea`` defaults to the registered exercise's.
    """

    def __init__(self, title: str, learner: Callable, reference: Callable,
                 idea: str | None) -> None:
        self.title, self.learner = title, learner
        self.fallback = _stand_in(title, reference)
        self.registered = title in EXERCISES
        if idea is None:
            if not self.registered:
                raise ValueError(f"idea is needed for an exercise that is not registered: "
                                 f"{title!r}")
            idea = EXERCISES[title].idea
        self.idea = idea

    def wrong(self, where: str, what: str) -> AssertionError:
        """The error for a wrong answer (raise it); the notebook's name now means the reference."""
        rebound = _use_reference_from_here_on(self.title, self.learner, self.fallback)
        more = f" For the code-level hint run check.hint({self.title!r})." if (
            self.registered) else ""
        after = (f"\n(Until this check passes, the rest of the notebook uses the reference "
                 f"{self.title}.)" if rebound else "")
        return AssertionError(f"❌ {self.title} ({where}): {what}\nIdea: {self.idea}{more}{after}")

    def still_open(self) -> Callable:
        """A blank exercise: the stand-in to use next (under grading: ExerciseOpen)."""
        _use_reference_from_here_on(self.title, self.learner, self.fallback)
        if runtime.grading_mode():
            raise ExerciseOpen(f"⏳ {self.title}: exercise still blank (raise "
                               "NotImplementedError()); under grading it scores no points. "
                               "The rest of the notebook uses the reference.") from None
        print(f"⏳ {self.title}: exercise still open. Using the reference solution so that the "
              "rest of the notebook runs; come back when you are ready.")
        return self.fallback

    def right(self, summary: str) -> Callable:
        """A right answer: say so and hand the learner's own function or class back."""
        print(f"✅ {self.title}: {summary}")
        return self.learner

    def run(self, call: Callable[[], Any], where: str, who: str = "your function", *,
            first: bool = False) -> Any:
        """``call()``, with the learner's errors turned into verdicts.

        NotImplementedError on the ``first`` call means the exercise is open (``_Blank``),
        on a later one that a branch is unfinished; any other exception is a wrong answer
        reported with the case, its traceback kept as ``__cause__``.
        """
        try:
            return call()
        except NotImplementedError as exc:
            if first:
                raise _Blank from exc
            raise self.wrong(where, f"{who} raised NotImplementedError after passing the "
                                    "earlier cases; finish every branch") from exc
        except Exception as exc:  # the learner's own bug: report it, never crash the checker
            raise self.wrong(where, f"{who} raised {type(exc).__name__}: {exc}") from exc


def _begin(learner: Callable, reference: Callable, title: str,
           idea: str | None) -> _Attempt | None:
    """Start checking ``learner``: None when the name still holds the stand-in of an earlier
    blank or wrong answer (said so, or under grading ExerciseOpen), else the attempt."""
    if not callable(learner):
        raise ValueError(f"the exercise function for {title!r} must be callable, "
                         f"got {type(learner).__name__}")
    if getattr(learner, "__dict__", {}).get("acv_reference_for") == title:
        message = (f"{title}: this name still holds the reference solution (your answer was "
                   "blank or failed this check); run your exercise cell again, then this cell.")
        if runtime.grading_mode():
            raise ExerciseOpen(f"⏳ {message}")
        print(f"↩ {message}")
        return None
    return _Attempt(title, learner, reference, idea)


def check_exercise(learner: Callable, reference: Callable, cases: Sequence[Case], *,
                   title: str, idea: str | None = None, rtol: float = 1e-7,
                   atol: float = 1e-10,
                   then: Callable[[Callable], str | None] | None = None) -> Callable:
    """Run ``learner`` and ``reference`` on every case; return the function to use next.

    ``idea`` (the first-level hint) defaults to the registered exercise ``title``'s.
    ``then``, once every case is right, looks at how the learner's function works (for
    example the memory it needs): it returns what is wrong, or None.
    """
    if not callable(reference) or isinstance(cases, str | bytes) or not all(
            isinstance(c, Case) for c in cases) or not cases:
        raise ValueError("reference must be callable and cases a non-empty sequence of Case")
    attempt = _begin(learner, reference, title, idea)
    if attempt is None:
        return learner
    worst = 0.0
    try:
        for number, case in enumerate(cases, start=1):
            where = f"test case {number} of {len(cases)}, inputs {case.describe()}"
            args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
            got = attempt.run(functools.partial(learner, *args, **kwargs), where,
                              first=number == 1)
            expected = reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
            for i, (before, after) in enumerate(zip(case.args, args, strict=True)):
                if not _unchanged(before, after):
                    raise attempt.wrong(where, f"your function modified argument {i + 1} in "
                                               "place; compute the result in a new array instead.")
            for key, before in case.kwargs.items():
                if not _unchanged(before, kwargs[key]):
                    raise attempt.wrong(where, f"your function modified argument {key!r} in "
                                               "place; compute the result in a new array instead.")
            try:
                worst = max(worst, compare(got, expected, rtol=rtol, atol=atol))
            except AssertionError as exc:
                raise attempt.wrong(where, str(exc)) from None
            except Exception as exc:  # an answer of a type compare cannot even look at
                raise attempt.wrong(
                    where, f"your answer (a {type(got).__name__}) cannot be compared with the "
                           f"expected {type(expected).__name__}: {type(exc).__name__}: {exc}"
                ) from None
        if then is not None:
            where = f"test case on memory, after the values were right in all {len(cases)}"
            problem = attempt.run(functools.partial(then, learner), where)
            if problem:
                raise attempt.wrong(where, problem)
    except _Blank:
        return attempt.still_open()
    return attempt.right(f"correct on {len(cases)} test cases (largest error {worst:.1e}).")


def _unchanged(before: Any, after: Any) -> bool:
    """Whether an input still equals its copy from before the call (arrays, dicts, tuples)."""
    if isinstance(before, np.ndarray):
        return (isinstance(after, np.ndarray) and before.shape == after.shape
                and np.array_equal(before, after, equal_nan=True))
    if isinstance(before, dict):
        return (isinstance(after, dict) and set(before) == set(after)
                and all(_unchanged(before[k], after[k]) for k in before))
    if isinstance(before, list | tuple):
        return (type(after) is type(before) and len(after) == len(before)
                and all(_unchanged(b, a) for b, a in zip(before, after, strict=True)))
    return True


# ---------------------------------------------------------------------------------------------
# PyTorch exercises: the learner's nn.Module classes and training loops.
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


def check_module(learner: Callable[..., nn.Module], reference: type[nn.Module],
                 builds: Sequence[Case], shapes: Sequence[Sequence[tuple[int, ...]]], *,
                 title: str, idea: str | None = None, rtol: float = 1e-10,
                 atol: float = 1e-10, seed: int = 0,
                 fresh: Callable[[nn.Module, tuple[int, ...]], str | None] | None = None,
                 ) -> Callable[..., nn.Module]:
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
                first = number + 1
                for case_seed, shape in enumerate(build_shapes, start=seed + 100 * index):
                    number += 1
                    where = f"test case {number} of {total}, {made} on x of shape {shape}"
                    worst = max(worst, _check_module_input(attempt, mine, ref, shape, where,
                                                           case_seed, rtol, atol))
                    _check_module_float32(attempt, mine, ref, shape, where, case_seed)
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
        with torch.no_grad():
            module(torch.randn(shape, generator=torch.Generator().manual_seed(0)))
    except NotImplementedError as exc:
        raise _Blank from exc
    except Exception:  # reported with its test case by the full check that follows
        pass


LOOP_EPOCHS = 3


@functools.cache
def _loop_probe() -> type[nn.Module]:
    """The tiny classifier the training-loop exercises are checked on (built on first use,
    so that importing this module does not import PyTorch)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class LoopProbe(nn.Module):
        """x (N, 6) -> logits (N, 3) through Linear, BatchNorm1d, ReLU, Dropout and Linear, so
        that its numbers depend on training vs evaluation mode. ``grad_enabled`` records, for
        every forward, whether autograd was recording."""

        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(6, 8)
            self.bn = nn.BatchNorm1d(8)
            self.drop = nn.Dropout(0.25)
            self.fc2 = nn.Linear(8, 3)
            self.grad_enabled: list[bool] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.grad_enabled.append(torch.is_grad_enabled())
            return self.fc2(self.drop(F.relu(self.bn(self.fc1(x)))))

    return LoopProbe


@dataclass(frozen=True)
class _LoopCase:
    """One training-loop test: batches of unequal ``sizes`` (a list of (x (N, 6) float64,
    y (N,) int64) pairs), the probe model and an optimiser, all seeded by ``seed``."""

    sizes: tuple[int, ...]
    optimizer: str = "adam"           # 'adam' (lr 0.05) or 'sgd' (lr 0.1, momentum 0.9)
    one_cycle: bool = False           # a OneCycleLR schedule over LOOP_EPOCHS epochs
    seed: int = 0

    def describe(self) -> str:
        name = "Adam" if self.optimizer == "adam" else "SGD with momentum"
        schedule = " + OneCycleLR" if self.one_cycle else ", no scheduler"
        return f"{name}{schedule}, batches of {', '.join(map(str, self.sizes))} examples"

    def batches(self, sizes: tuple[int, ...] | None = None,
                offset: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
        import torch

        generator = torch.Generator().manual_seed(1000 + self.seed + offset)
        return [(torch.randn(n, 6, generator=generator, dtype=torch.float64),
                 torch.randint(3, (n,), generator=generator)) for n in sizes or self.sizes]

    def model(self) -> nn.Module:
        import torch

        torch.manual_seed(self.seed)
        return _loop_probe()().double()

    def optimiser(self, model: nn.Module, steps: int) -> tuple[Any, Any]:
        """(optimizer, scheduler or None) for ``model``; the schedule spans ``steps`` steps."""
        import torch

        if self.optimizer == "adam":
            optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        else:
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, 0.05, total_steps=steps) if self.one_cycle else None
        return optimizer, scheduler


class _Sides:
    """The learner's and the reference's runs, each with its own copy of the torch random
    state (dropout draws from it), so that both see the same random numbers."""

    def __init__(self, seed: int) -> None:
        import torch

        torch.manual_seed(seed)
        self.states = {"mine": torch.get_rng_state(), "ref": torch.get_rng_state()}

    def run(self, side: str, call: Callable[[], Any]) -> Any:
        import torch

        torch.set_rng_state(self.states[side])
        try:
            return call()
        finally:
            self.states[side] = torch.get_rng_state()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's weights and buffers, by name."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _compare_states(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                    what: str, rtol: float = 1e-9, atol: float = 1e-12) -> None:
    """AssertionError naming the first weight or buffer (with its shape) that differs."""
    for name, want in expected.items():
        compare(got[name].cpu().numpy(), want.cpu().numpy(),
                name=f"{what} {name} {tuple(want.shape)}", rtol=rtol, atol=atol)


def _loop_check(attempt: _Attempt, where: str, check: Callable[[], Any]) -> None:
    """Run one comparison; its AssertionError becomes the learner's verdict for ``where``."""
    try:
        check()
    except AssertionError as exc:
        raise attempt.wrong(where, str(exc)) from None


# ---------------------------------------------------------------------------------------------
# The exercises of the course, in notebook order.
# ---------------------------------------------------------------------------------------------

@exercise(
    points=1,
    idea="the softmax does not change when the same constant is subtracted from every score "
         "along the axis; subtract the largest score first, so that np.exp never sees a large "
         "positive number.",
    hint="subtract the maximum along `axis` (keepdims=True) before np.exp, so that large "
         "scores do not overflow, then divide by the sum along the same axis.")
def softmax(fn: Callable) -> Callable:
    """Notebook 00, warm-up: a numerically stable softmax ``fn(x, axis=-1)``."""
    rng = np.random.default_rng(0)
    cases = [
        Case((rng.normal(size=5),)),
        Case((rng.normal(size=(3, 4)),)),
        Case((rng.normal(size=(2, 3, 4)),), {"axis": 1}),
        Case((rng.normal(size=(4, 2)),), {"axis": 0}),
        Case((np.array([1000.0, 1001.0, 1002.0]),)),
        Case((np.array([[-800.0, -801.0], [3.0, 3.0]]),)),
    ]
    return check_exercise(
        fn, functional.softmax, cases, title="softmax", rtol=1e-9)


@exercise(
    points=1,
    idea="the surround map is coarser than the centre map: bring it to the centre's size first, "
         "then take the point-by-point absolute difference.",
    hint="bring the coarse surround map up to the centre's shape with "
         "upsample(surround, center.shape), subtract it point by point, and take the "
         "absolute value.")
def center_surround(fn: Callable) -> Callable:
    """Notebook 01: |center - upsample(surround)| with ``saliency.upsample``."""
    from . import saliency

    rng = np.random.default_rng(1)
    shapes = [((16, 16), (2, 2)), ((32, 24), (4, 3)), ((13, 9), (2, 2)), ((8, 8), (1, 1))]
    cases = [Case((rng.random(c), rng.random(s))) for c, s in shapes]
    return check_exercise(
        fn, saliency.center_surround, cases, title="center_surround")


@exercise(
    points=2,
    idea="N(.) rescales the map to a fixed range [0, M], then promotes a map with one strong "
         "peak: it weights the map by how far the global maximum stands above the mean of the "
         "other local maxima, counting only maxima above M / 10.",
    hint="(1) rescale to [0, M] with (m - min) / (max - min) * M (a map whose span is at "
         "most FLAT_SPAN becomes all zeros); (2) find the peaks with "
         "local_maxima(scaled, threshold=M / 10); (3) m_bar is the mean of the peaks other "
         "than the global maximum (0 if there are none); (4) multiply by (M - m_bar) ** 2.")
def normalize_map(fn: Callable) -> Callable:
    """Notebook 01: the map normalisation operator N(.) of Itti, Koch and Niebur (1998)."""
    from . import saliency

    rng = np.random.default_rng(2)
    single_peak = np.zeros((9, 9))
    single_peak[4, 4] = 3.0
    ripple = 0.03 * rng.random((16, 16))      # one peak on a rippled background: the case
    ripple[8, 8] = 1.0                         # that the M / 10 floor on peaks is there for
    cases = [Case((rng.random((12, 12)),)), Case((rng.random((7, 10)) * 50 - 20,)),
             Case((rng.random((16, 16)),), {"M": 10.0}), Case((single_peak,)),
             Case((np.full((5, 5), 0.3),)), Case((ripple,))]
    return check_exercise(
        fn, saliency.normalize_map, cases, title="normalize_map")


@exercise(
    points=1,
    idea="work in the Fourier domain: the residual is the log amplitude minus its local 3 x 3 "
         "average; keep the phase, go back to the image domain and square the magnitude.",
    hint="F = np.fft.fft2(image); L = np.log(np.abs(F) + 1e-12); P = np.angle(F); "
         "R = L - uniform_filter(L, size=3, mode='wrap'); return "
         "np.abs(np.fft.ifft2(np.exp(R + 1j * P))) ** 2.")
def spectral_residual(fn: Callable) -> Callable:
    """Notebook 01: the spectral residual saliency of Hou and Zhang (2007), before smoothing."""
    from . import saliency

    rng = np.random.default_rng(3)
    cases = [Case((rng.random((64, 64)),)), Case((rng.random((48, 64)),)),
             Case((saliency.search_array("colour", seed=0, size=64)[0].mean(axis=2),))]
    return check_exercise(
        fn, saliency.spectral_residual_raw, cases, title="spectral_residual", rtol=1e-6,
        atol=1e-9)


def _mlp_case(rng: np.random.Generator, b: int, c: int, r: int, h: int, w: int) -> Case:
    return Case((rng.normal(size=(b, c, h, w)), reference.init_mlp(c, r, rng)))


@exercise(
    points=1,
    idea="squeeze each channel to one number (its mean over space), excite through the two fully"
         " connected layers (ReLU, then sigmoid), and scale each channel of x by its weight.",
    hint="z = x.mean(axis=(2, 3)) is (B, C); s = sigmoid(relu(z @ w1.T + b1) @ w2.T + b2) "
         "is (B, C); return x * s[:, :, None, None].")
def se_forward(fn: Callable) -> Callable:
    """Notebook 02: the SE forward pass ``fn(x, params) -> out`` (without the cache)."""
    rng = np.random.default_rng(4)
    cases = [_mlp_case(rng, 2, 8, 4, 5, 6), _mlp_case(rng, 1, 16, 16, 3, 3),
             _mlp_case(rng, 3, 6, 2, 1, 7)]
    return check_exercise(
        fn, lambda x, p: reference.se_forward(x, p)[0], cases, title="se_forward")


@exercise(
    points=2,
    idea="run the forward pass backwards, one operation at a time. x reaches the output twice "
         "(through the scaling and through the squeeze), so its gradient has two terms; each "
         "weight's gradient pairs an upstream gradient with that layer's input, summed over the "
         "batch.",
    hint="return (dx, {'w1': ..., 'b1': ..., 'w2': ..., 'b2': ...}). Go backwards: "
         "ds = (dout * x).sum((2, 3)); du = ds * s * (1 - s); dw2 = du.T @ a; "
         "da = du @ w2; dh = da * (h > 0); dw1 = dh.T @ z; dz = dh @ w1; "
         "dx = dout * s[..., None, None] + dz[..., None, None] / (H * W).")
def se_backward(fn: Callable) -> Callable:
    """Notebook 02: the SE backward pass ``fn(dout, x, params) -> (dx, grads)``."""
    rng = np.random.default_rng(5)
    cases = []
    for b, c, r, h, w in [(2, 8, 4, 5, 6), (1, 12, 3, 2, 3)]:
        case = _mlp_case(rng, b, c, r, h, w)
        cases.append(Case((rng.normal(size=(b, c, h, w)),) + case.args))

    def ref(dout, x, p):
        return reference.se_backward(dout, reference.se_forward(x, p)[1])

    return check_exercise(
        fn, ref, cases, title="se_backward", rtol=1e-6, atol=1e-9)


# The module exercises: constructor arguments (the second and third use the defaults) and
# input shapes per construction, with H != W, batch 1 and batch > 1.
_SE_BUILDS = [Case((8,), {"reduction": 2}), Case((16,), {"reduction": 4}), Case((32,))]
_SE_SHAPES = [[(2, 8, 5, 7), (1, 8, 6, 4)], [(3, 16, 4, 6), (1, 16, 7, 3)], [(2, 32, 3, 5)]]


@exercise(
    points=2,
    idea="the SE block of your NumPy se_forward as an nn.Module: two nn.Linear layers named fc1 "
         "(C to C // r) and fc2 (C // r to C) hold the weights; forward squeezes every channel "
         "to its mean over H and W, excites through fc1, ReLU, fc2 and a sigmoid, and scales "
         "each channel of x by its weight; autograd does the backward pass.",
    hint="in __init__: super().__init__(); self.fc1 = nn.Linear(channels, channels // "
         "reduction); self.fc2 = nn.Linear(channels // reduction, channels). In forward: "
         "z = x.mean((2, 3)) is (B, C); s = torch.sigmoid(self.fc2(F.relu(self.fc1(z)))); "
         "return x * s[:, :, None, None] (a new tensor: never x *= s).")
def SqueezeExcitation(cls: Callable) -> Callable:
    """Notebook 02: ``class SqueezeExcitation(nn.Module)``, ``(channels, reduction=16)``, with
    ``fc1``/``fc2``; x (B, C, H, W) -> x * sigmoid(fc2(relu(fc1(mean_hw x)))) (B, C, H, W)."""
    from . import modules

    return check_module(cls, modules.SqueezeExcitation, _SE_BUILDS, _SE_SHAPES,
                        title="SqueezeExcitation")


@exercise(
    points=2,
    idea="one pass over the batches in training mode (batch norm learns its statistics, dropout "
         "is on): for every batch clear the old gradients, compute the loss, back-propagate, "
         "then step the optimiser, and the scheduler if there is one; report the mean of the "
         "batch losses.",
    hint="model.train(); for x, y in batches: optimizer.zero_grad(); loss = "
         "F.cross_entropy(model(x), y); loss.backward(); optimizer.step(); then, if scheduler "
         "is not None, scheduler.step(); keep loss.item(). Return sum(losses) / len(losses), "
         "a Python float.")
def train_one_epoch(fn: Callable) -> Callable:
    """Notebook 02: ``fn(model, batches, optimizer, scheduler=None) -> float``, one epoch.

    Learner and reference (``training.train_one_epoch``) train copies of a seeded model with
    batch norm and dropout for LOOP_EPOCHS epochs, each started in evaluation mode (the wrong
    one), from the same random state: the returned losses and the weights and batch-norm
    statistics after every epoch must agree.
    """
    import torch

    from . import training

    attempt = _begin(fn, training.train_one_epoch, "train_one_epoch", None)
    if attempt is None:
        return fn
    cases = [_LoopCase((5, 3, 4), "adam", one_cycle=True, seed=0),
             _LoopCase((4, 7, 2, 3), "sgd", seed=1)]
    try:
        with torch.random.fork_rng(devices=[]):        # leave the notebook's random state alone
            for number, case in enumerate(cases, start=1):
                batches, mine, ref = case.batches(), case.model(), case.model()
                opt_mine, sched_mine = case.optimiser(mine, LOOP_EPOCHS * len(batches))
                opt_ref, sched_ref = case.optimiser(ref, LOOP_EPOCHS * len(batches))
                scheduler = (sched_mine,) if sched_mine is not None else ()
                sides = _Sides(case.seed)
                for epoch in range(1, LOOP_EPOCHS + 1):
                    where = (f"test case {number} of {len(cases)}, {case.describe()}, epoch "
                             f"{epoch} of {LOOP_EPOCHS}")
                    mine.eval()                # the wrong mode: the loop must switch to training
                    ref.eval()
                    got = sides.run("mine", functools.partial(
                        attempt.run, functools.partial(fn, mine, list(batches), opt_mine,
                                                       *scheduler),
                        where, first=(number, epoch) == (1, 1)))
                    expected = sides.run("ref", functools.partial(
                        training.train_one_epoch, ref, list(batches), opt_ref, sched_ref))
                    if not isinstance(got, float):
                        raise attempt.wrong(where, f"returned {_kind(got)}; return the mean loss "
                                                   "as a Python float (add up loss.item(), not "
                                                   "the loss tensors)")
                    _loop_check(attempt, where, functools.partial(
                        _compare_states, _state(mine), _state(ref), "after the epoch, the model's"))
                    _loop_check(attempt, where, functools.partial(
                        compare, got, expected, name="the returned mean loss", rtol=1e-6,
                        atol=1e-9))
    except _Blank:
        return attempt.still_open()
    return attempt.right(f"correct on {len(cases)} test cases of {LOOP_EPOCHS} epochs: the same "
                         "losses, weights and batch-norm statistics as the course's loop.")


@exercise(
    points=1,
    idea="evaluation changes nothing: the model in evaluation mode (batch norm uses its running "
         "statistics, dropout is off) and no gradient graph; the loss is averaged over the "
         "examples, not over the batches, so a small last batch counts only as much as it "
         "holds.",
    hint="model.eval(); with torch.no_grad(): for x, y in batches: logits = model(x); total += "
         "F.cross_entropy(logits, y, reduction='sum').item(); correct += (logits.argmax(1) "
         "== y).sum().item(); count += len(y). Return (total / count, correct / count), two "
         "Python floats.")
def evaluate_epoch(fn: Callable) -> Callable:
    """Notebook 02: ``fn(model, batches) -> (mean loss per example, accuracy)``.

    Called with a seeded model with batch norm and dropout left in training mode (the wrong
    one), on batches of unequal sizes, after each of LOOP_EPOCHS epochs of training: the same
    Python floats as ``training.evaluate_epoch``, the model's weights and batch-norm
    statistics unchanged, and no forward pass run with gradients enabled.
    """
    import torch

    from . import training

    attempt = _begin(fn, training.evaluate_epoch, "evaluate_epoch", None)
    if attempt is None:
        return fn
    cases = [_LoopCase((5, 2, 7), "adam", seed=2), _LoopCase((6, 1, 4, 3), "sgd", seed=3)]
    try:
        with torch.random.fork_rng(devices=[]):        # leave the notebook's random state alone
            for number, case in enumerate(cases, start=1):
                batches, train = case.batches(), case.batches((6, 5), offset=1)
                mine, ref = case.model(), case.model()
                opt_mine, opt_ref = case.optimiser(mine, 1)[0], case.optimiser(ref, 1)[0]
                sides = _Sides(case.seed)
                for epoch in range(1, LOOP_EPOCHS + 1):
                    where = (f"test case {number} of {len(cases)}, batches of "
                             f"{', '.join(map(str, case.sizes))} examples, evaluation {epoch} "
                             f"of {LOOP_EPOCHS}")
                    mine.train()            # the wrong mode: evaluation must switch
                    ref.train()
                    before = _state(mine)
                    mine.grad_enabled.clear()
                    got = sides.run("mine", functools.partial(
                        attempt.run, functools.partial(fn, mine, list(batches)), where,
                        first=(number, epoch) == (1, 1)))
                    expected = sides.run("ref", functools.partial(
                        training.evaluate_epoch, ref, list(batches)))
                    _check_evaluation(attempt, where, got, expected, mine, before)
                    for side, model, optimizer in (("mine", mine, opt_mine),
                                                   ("ref", ref, opt_ref)):   # new weights
                        if epoch < LOOP_EPOCHS:
                            sides.run(side, functools.partial(training.train_one_epoch, model,
                                                              train, optimizer))
    except _Blank:
        return attempt.still_open()
    return attempt.right(f"correct on {len(cases)} test cases, {LOOP_EPOCHS} evaluations each: "
                         "the same loss per example and accuracy, the model left unchanged, no "
                         "gradients recorded.")


def _check_evaluation(attempt: _Attempt, where: str, got: Any, expected: tuple[float, float],
                      model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    """One evaluation by the learner: the model untouched, no gradients, two right floats."""
    import torch

    after = _state(model)
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    if changed:
        shapes = {k: tuple(v.shape) for k, v in before.items()}
        raise attempt.wrong(where, f"your function changed the model's "
                                   f"{_names_and_shapes(changed, shapes)}; evaluating must leave "
                                   "the model as it is: in evaluation mode (model.eval()) batch "
                                   "norm uses its running statistics instead of updating them.")
    if any(model.grad_enabled):
        raise attempt.wrong(where, "your function ran the model with gradients enabled "
                                   "(torch.is_grad_enabled() was True in forward), building a "
                                   "graph that is never used; evaluate inside `with "
                                   "torch.no_grad():`.")
    if not (isinstance(got, tuple | list) and len(got) == 2):
        raise attempt.wrong(where, f"returned {_kind(got)}; return a tuple (mean loss per "
                                   "example, accuracy)")
    for value, name in zip(got, ("loss", "accuracy"), strict=True):
        if not isinstance(value, float):
            raise attempt.wrong(where, f"the {name} is {_kind(value)}; return Python floats "
                                       "(.item() or float(...))")
    for value, want, name in zip(got, expected, ("mean loss per example", "accuracy"),
                                 strict=True):   # float32 rounding of a right answer is fine
        _loop_check(attempt, where, functools.partial(compare, value, want, name=name,
                                                      rtol=1e-6, atol=1e-9))


@exercise(
    points=1,
    idea="as in SE, but squeeze twice (average and maximum over space), pass both descriptors "
         "through the same MLP, and add the two results before the sigmoid.",
    hint="avg = x.mean(axis=(2, 3)) and mx = x.max(axis=(2, 3)) are (B, C); pass both "
         "through the SAME mlp(z) = relu(z @ w1.T + b1) @ w2.T + b2; "
         "Mc = sigmoid(mlp(avg) + mlp(mx)); return x * Mc[:, :, None, None].")
def channel_attention(fn: Callable) -> Callable:
    """Notebook 03: CBAM channel attention ``fn(x, params) -> out``, avg and max branches."""
    rng = np.random.default_rng(6)
    cases = [_mlp_case(rng, 2, 8, 4, 5, 6), _mlp_case(rng, 1, 16, 8, 4, 4),
             _mlp_case(rng, 2, 6, 3, 1, 5)]
    return check_exercise(
        fn, lambda x, p: reference.channel_attention_forward(x, p)[0], cases,
        title="channel_attention")


@exercise(
    points=1,
    idea="pool across channels (mean, then max) into a 2-channel map, convolve it to one channel"
         " with 'same' padding, take the sigmoid, and scale every channel by that map.",
    hint="pooled = np.stack([x.mean(axis=1), x.max(axis=1)], axis=1) is (B, 2, H, W) in the "
         "paper's order (mean first); logits, _ = conv2d_same(pooled, w, b); "
         "Ms = sigmoid(logits[:, 0]); return x * Ms[:, None].")
def spatial_attention(fn: Callable) -> Callable:
    """Notebook 03: CBAM spatial attention ``fn(x, params) -> out`` (paper order: mean, max)."""
    rng = np.random.default_rng(7)
    cases = [Case((rng.normal(size=(b, c, h, w)), {"w": rng.normal(size=(1, 2, k, k)) * 0.3,
                                                   "b": rng.normal(size=1)}))
             for b, c, h, w, k in [(2, 4, 6, 7, 3), (1, 8, 9, 9, 7), (2, 3, 5, 4, 5)]]
    return check_exercise(
        fn, lambda x, p: reference.spatial_attention_forward(x, p)[0], cases,
        title="spatial_attention")


@exercise(
    points=1,
    idea="as your SqueezeExcitation, but squeeze twice, average and maximum over space; both "
         "(B, C) descriptors go through the SAME MLP (one pair of layers, fc1 and fc2, shared by "
         "the two branches), and the two results are added before the sigmoid.",
    hint="layers as in SqueezeExcitation (fc1, fc2); in forward: def mlp(z): return "
         "self.fc2(F.relu(self.fc1(z))); s = torch.sigmoid(mlp(x.mean((2, 3))) + "
         "mlp(x.amax((2, 3)))); return x * s[:, :, None, None]. No second pair of layers for "
         "the max branch.")
def ChannelAttention(cls: Callable) -> Callable:
    """Notebook 03: ``class ChannelAttention(nn.Module)``, ``(channels, reduction=16)`` with
    ``fc1``/``fc2``; x (B, C, H, W) -> x * sigmoid(MLP(mean_hw x) + MLP(max_hw x))."""
    from . import modules

    return check_module(cls, modules.ChannelAttention, _SE_BUILDS, _SE_SHAPES,
                        title="ChannelAttention")


@functools.cache
def _paper_spatial_attention() -> type[nn.Module]:
    """``modules.SpatialAttention`` (variant 'paper') with the exercise's constructor."""
    from . import modules

    class SpatialAttention(modules.SpatialAttention):
        """CBAM spatial attention as in the paper, ``SpatialAttention(kernel_size=7)``:
        x * sigmoid(conv_k([mean_c x; max_c x])), x (B, C, H, W)."""

        def __init__(self, kernel_size: int = 7) -> None:
            super().__init__(kernel_size=kernel_size)

    SpatialAttention.__qualname__ = "SpatialAttention"
    return SpatialAttention


@exercise(
    points=1,
    idea="pool across the channels into two maps, the mean first and then the maximum, stack "
         "them as a 2-channel image, convolve it to one channel with a k x k convolution (with "
         "bias, named conv) that keeps H and W, take the sigmoid, and scale every channel of x "
         "by that map.",
    hint="self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2); in forward: "
         "pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1) is "
         "(B, 2, H, W); return x * torch.sigmoid(self.conv(pooled)) (the (B, 1, H, W) map "
         "broadcasts over the channels).")
def SpatialAttention(cls: Callable) -> Callable:
    """Notebook 03: ``class SpatialAttention(nn.Module)``, ``(kernel_size=7)`` with ``conv``;
    x (B, C, H, W) -> x * sigmoid(conv([mean_c x; max_c x])) (B, C, H, W)."""
    builds = [Case(), Case((3,)), Case(kwargs={"kernel_size": 5})]
    shapes = [[(2, 4, 6, 9), (1, 3, 5, 4)], [(3, 5, 4, 7), (1, 2, 8, 5)], [(2, 6, 7, 4)]]
    return check_module(cls, _paper_spatial_attention(), builds, shapes,
                        title="SpatialAttention")


@exercise(
    points=1,
    idea="CBAM applies channel attention ('what') first and spatial attention ('where') to its "
         "result; it owns one of each, built from your own classes, as submodules named "
         "channel and spatial.",
    hint="self.channel = ChannelAttention(channels, reduction); self.spatial = "
         "SpatialAttention(kernel_size); forward returns self.spatial(self.channel(x)).")
def CBAM(cls: Callable) -> Callable:
    """Notebook 03: ``class CBAM(nn.Module)``, ``(channels, reduction=16, kernel_size=7)`` with
    submodules ``channel`` and ``spatial``; x (B, C, H, W) -> spatial(channel(x))."""
    from . import modules

    builds = [Case((8,), {"reduction": 2, "kernel_size": 3}), Case((16, 4)), Case((32,))]
    shapes = [[(2, 8, 5, 7), (1, 8, 6, 4)], [(3, 16, 7, 6), (1, 16, 4, 9)], [(2, 32, 3, 5)]]
    return check_module(cls, modules.CBAM, builds, shapes, title="CBAM")


@exercise(
    points=1,
    idea="each SE block adds two fully connected layers, C to C/r and back, each with weights "
         "and biases; count one block per stage, multiply by that stage's number of blocks and "
         "add the stages.",
    hint="each block adds two FC layers, C x C/r and C/r x C, plus C/r + C biases: "
         "sum over stages of N_s * (2 * C_s * (C_s // r) + C_s // r + C_s).")
def se_overhead(fn: Callable) -> Callable:
    """Notebook 02: parameters SE adds, ``fn(blocks, channels, reduction)``, biases included."""
    from . import counting

    cases = [Case(((3, 4, 6, 3), (256, 512, 1024, 2048), 16)), Case(((1, 1, 1), (16, 32, 64), 4)),
             Case(((2, 2), (64, 128), 8))]
    return check_exercise(
        fn, counting.se_parameter_overhead, cases, title="se_overhead")


@exercise(
    points=1,
    idea="mark which cells of each map fall inside its box (the box is in image pixels, the map "
         "is coarser) and divide the map's mass inside the box by its total mass.",
    hint="mask = box_mask(boxes, maps.shape[1:], image_size) marks the cells inside each "
         "box; return (maps * mask).sum(axis=(1, 2)) / maps.sum(axis=(1, 2)).")
def attention_in_box(fn: Callable) -> Callable:
    """Notebook 03: fraction of attention mass on the digit box, ``fn(maps, boxes, size)``."""
    rng = np.random.default_rng(8)
    cases = []
    for n, h, size in [(4, 10, 40), (3, 20, 40), (2, 5, 30)]:
        tops = rng.integers(0, size - 16, size=(n, 2))
        boxes = np.concatenate([tops, tops + 16], axis=1)
        cases.append(Case((rng.random((n, h, h)), boxes, size)))
    return check_exercise(
        fn, datasets.attention_in_box, cases, title="attention_in_box")


@exercise(
    points=1,
    idea="the weight decays with the squared patch distance after removing what noise alone "
         "contributes to it (2 sigma^2), and that difference never goes below zero.",
    hint="subtract the noise's contribution 2 * sigma**2 from d2, clip at 0 with "
         "np.maximum, divide by h**2, and take np.exp of minus that.")
def nlmeans_weights(fn: Callable) -> Callable:
    """Notebook 04: NL-means weights ``fn(d2, h, sigma) = exp(-max(d2 - 2 sigma^2, 0) / h^2)``."""
    from . import denoising

    rng = np.random.default_rng(9)
    cases = [Case((rng.random((5, 6)) * 0.05, 0.1, 0.1)), Case((rng.random(20) * 0.2, 0.05, 0.0)),
             Case((np.array([0.0, 0.02, 0.5]), 0.2, 0.1))]
    return check_exercise(
        fn, denoising.nlmeans_weights, cases, title="nlmeans_weights")


def _attention_cases(seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [Case((rng.normal(size=(b, n, d)), rng.normal(size=(b, m, d)),
                  rng.normal(size=(b, m, e)))) for b, n, m, d, e in
            [(2, 6, 6, 4, 3), (1, 9, 3, 2, 5), (2, 1, 4, 3, 3)]]


@exercise(
    points=1,
    idea="compare every query (a row of theta) with every key (a row of phi) by a dot product, "
         "turn each query's scores into weights with a stable softmax over the keys, and average"
         " the values g with those weights.",
    hint="scores = theta @ phi.transpose(0, 2, 1) is (B, N, N_p); a softmax over the last "
         "axis (subtract its max first) gives f; return f @ g.")
def embedded_attention(fn: Callable) -> Callable:
    """Notebook 04: the embedded-Gaussian non-local operation ``fn(theta, phi, g) -> y``."""
    cases = _attention_cases(10) + [Case((np.full((1, 2, 2), 30.0), np.full((1, 3, 2), 30.0),
                                          np.eye(3)[None]))]
    return check_exercise(
        fn, lambda t, p, g: reference.embedded_attention(t, p, g)[0], cases,
        title="embedded_attention")


@exercise(
    points=1,
    idea="the same as the embedded version but without a softmax: the raw dot products are "
         "divided by the number of keys.",
    hint="f = theta @ phi.transpose(0, 2, 1) divided by N_p = phi.shape[1], the number of "
         "keys (not a softmax); return f @ g.")
def dot_attention(fn: Callable) -> Callable:
    """Notebook 04: the dot-product non-local operation ``fn(theta, phi, g) -> y``."""
    return check_exercise(
        fn, lambda t, p, g: reference.dot_attention(t, p, g)[0], _attention_cases(11),
        title="dot_attention")


@exercise(
    points=1,
    idea="group H and W into pairs (an odd last row or column is dropped) and keep the largest "
         "value of each 2 x 2 block; a reshape does this without loops.",
    hint="crop H and W to even sizes, reshape (B, C, H/2, 2, W/2, 2) and take the max over "
         "axes 3 and 5.")
def max_pool_2x2(fn: Callable) -> Callable:
    """Notebook 04: spatial 2 x 2 max pooling of (B, C, H, W) maps for subsampled non-local."""
    rng = np.random.default_rng(12)
    cases = [Case((rng.normal(size=s),)) for s in [(2, 3, 4, 6), (1, 2, 5, 7), (1, 1, 2, 2)]]
    return check_exercise(
        fn, reference.max_pool_spatial, cases, title="max_pool_2x2")


def _tiled_cases() -> list[Case]:
    rng = np.random.default_rng(13)

    def qkv(b: int, n: int, m: int, d: int, e: int, size: float) -> tuple:
        return (rng.normal(size=(b, n, d)) * size, rng.normal(size=(b, m, d)) * size,
                rng.normal(size=(b, m, e)))

    rising = rng.normal(size=(1, 10, 3))           # key norms grow tile by tile: the maximum
    keys = rng.normal(size=(1, 10, 3)) * np.arange(1, 11)[None, :, None]   # moves every tile
    return [Case(qkv(2, 6, 7, 3, 2, 1.0), {"tile": 3}),
            Case((rising, keys, rng.normal(size=(1, 10, 4))), {"tile": 2}),
            Case(qkv(1, 5, 4, 2, 3, 1.0), {"tile": 1}),
            Case(qkv(2, 3, 5, 4, 2, 1.0), {"tile": 8}),
            Case(qkv(1, 4, 9, 2, 2, 25.0), {"tile": 4}),      # scores in the hundreds
            Case((np.array([[[1.0], [2.0], [3.0]]]), np.arange(8.0)[None, :, None] * 150,
                  rng.normal(size=(1, 8, 2))), {"tile": 4})]   # later tiles score 1,800 more


def _tiled_memory(fn: Callable) -> str | None:
    """None when ``fn`` never holds much more than one tile of scores, else what is wrong."""
    from .memory_wall import peak_bytes

    n, d, tile = 512, 8, 16
    rng = np.random.default_rng(14)
    q, k, v = (rng.normal(size=(1, n, d)) for _ in range(3))
    _, peak = peak_bytes(fn, q, k, v, tile=tile)
    full = n * n * 8
    if peak < full / 4:
        return None
    return (f"with N = M = {n} and tile = {tile} your function needed {peak / 2**20:.1f} MiB at "
            f"its peak, as much as the whole (B, N, M) score matrix ({full / 2**20:.1f} MiB); one "
            f"tile of scores is only {n * tile * 8 / 2**10:.0f} KiB. The numbers are right, but "
            "the point of tiling is never to build the full matrix: compute the scores of one "
            "tile of keys at a time.")


@exercise(
    points=2,
    idea="walk over the keys one tile at a time; for each query keep three running "
         "quantities: the largest score seen so far m, the sum l of exp(score - m) and the "
         "weighted sum of values. When a tile raises the maximum, multiply the old sum and the "
         "old output by exp(m_old - m_new) before adding the tile's terms; divide by l at the "
         "end. Never build the whole score matrix.",
    hint="m = np.full((B, N, 1), -np.inf); l = np.zeros((B, N, 1)); out = np.zeros((B, N, e)); "
         "for start in range(0, M, tile): s = q @ k[:, start:start + tile].transpose(0, 2, 1); "
         "m_new = np.maximum(m, s.max(-1, keepdims=True)); r = np.exp(m - m_new); "
         "p = np.exp(s - m_new); l = l * r + p.sum(-1, keepdims=True); "
         "out = out * r + p @ v[:, start:start + tile]; m = m_new. Return out / l.")
def tiled_attention(fn: Callable) -> Callable:
    """Notebook 04: the online softmax, ``fn(q, k, v, tile) -> softmax(q k^T) v`` (B, N, e),
    computed one tile of keys at a time; checked for values and for its peak memory."""
    return check_exercise(fn, reference.tiled_attention, _tiled_cases(), title="tiled_attention",
                          rtol=1e-9, then=_tiled_memory)


@functools.cache
def _embedded_nonlocal() -> type[nn.Module]:
    """``modules.NonLocalBlock`` (embedded Gaussian) with the exercise's constructor."""
    from . import modules

    class NonLocal(modules.NonLocalBlock):
        """Embedded-Gaussian non-local block, ``NonLocal(channels, inter_channels=None, dim=2,
        subsample=False, scale=False)``; x (B, C, *S) -> x + bn(w_z(softmax(theta phi^T) g))."""

        def __init__(self, channels: int, inter_channels: int | None = None, dim: int = 2,
                     subsample: bool = False, scale: bool = False) -> None:
            super().__init__(channels, inter_channels, "embedded", dim, subsample, scale)

    NonLocal.__qualname__ = "NonLocal"
    return NonLocal


def _starts_as_identity(module: nn.Module, shape: tuple[int, ...]) -> str | None:
    """A new non-local block returns its input unchanged, through a zero batch-norm scale."""
    import torch

    bn, w_z = getattr(module, "bn", None), getattr(module, "w_z", None)
    if bn is None or w_z is None:
        return None                       # the structure check that follows names what is missing
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = module(x)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        return None                       # reported, with the case, by the full check
    if not torch.equal(bn.weight, torch.zeros_like(bn.weight)) or not torch.equal(
            bn.bias, torch.zeros_like(bn.bias)):
        return ("a new block must start as the identity, through its batch norm: set bn.weight "
                "(the scale gamma) and bn.bias to zero in __init__ (nn.init.zeros_), as the paper "
                "does.")
    if not bool(w_z.weight.detach().abs().sum() > 0):
        return ("w_z.weight is all zeros as well as the batch norm's scale: then no gradient "
                "reaches gamma or w_z (each is multiplied by the other), and the block never "
                "learns. Zero only bn.weight and bn.bias; keep w_z's default initialisation.")
    if not torch.equal(out, x):
        return (f"a new block must return its input unchanged (largest change "
                f"{(out - x).abs().max().item():.1e}); add the input back (z = x + bn(...)).")
    return None


@exercise(
    points=2,
    idea="project x with three 1x1 convolutions (theta, phi, g, to C_i channels), flatten the "
         "positions so that each map is (B, N, C_i), compare every query (theta) with every key "
         "(phi) by a dot product, divided by sqrt(C_i) when scale is set, softmax over the keys, "
         "average g with these weights, bring the result back to (B, C_i, *S), project to C "
         "channels with w_z, batch-normalise with bn (scale and shift initialised to zero) and "
         "add x. Subsampling max-pools what phi and g see, by 2 in space and never in time.",
    hint="conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dim], likewise BatchNorm1d/2d/3d and "
         "MaxPool1d(2)/MaxPool2d(2)/MaxPool3d((1, 2, 2)); in forward: keys = pool(x) if subsample "
         "else x; t = lambda m: m.flatten(2).transpose(1, 2); s = t(theta(x)) @ "
         "t(phi(keys)).transpose(1, 2), times C_i ** -0.5 if scale; y = softmax(s, -1) @ "
         "t(g(keys)); return x + bn(w_z(y.transpose(1, 2).reshape(B, C_i, *x.shape[2:]))).")
def NonLocal(cls: Callable) -> Callable:
    """Notebook 04: ``class NonLocal(nn.Module)``, ``(channels, inter_channels=None, dim=2,
    subsample=False, scale=False)`` with ``theta``, ``phi``, ``g``, ``w_z`` and ``bn``; the
    embedded-Gaussian block for 1-, 2- and 3-D inputs, starting as the identity."""
    builds = [Case((8,)), Case((6, 2), {"dim": 1, "scale": True}),
              Case((8,), {"dim": 3, "subsample": True}),
              Case((4,), {"subsample": True, "scale": True}), Case((6, 3), {"dim": 1,
                                                                           "subsample": True})]
    shapes = [[(2, 8, 6, 5), (1, 8, 4, 4)], [(2, 6, 9)], [(2, 8, 3, 4, 4), (1, 8, 2, 5, 3)],
              [(2, 4, 6, 7)], [(2, 6, 7)]]
    return check_module(cls, _embedded_nonlocal(), builds, shapes, title="NonLocal",
                        fresh=_starts_as_identity)


@exercise(
    points=2,
    idea="centre the data, form the covariance matrix, and keep its eigenvectors with the "
         "largest eigenvalues; mind the order in which the eigen-solver returns them, and the "
         "course's sign convention.",
    hint="centre x (subtract the column means), sigma = xc.T @ xc / (M - 1); "
         "values, vectors = np.linalg.eigh(sigma) (ascending!); take the k largest, return "
         "(fix_signs(vectors[:, order].T), values[order]).")
def top_components(fn: Callable) -> Callable:
    """Notebook 05: PCA from scratch, ``fn(x, k) -> (components (k, C), variances (k,))``."""
    rng = np.random.default_rng(13)
    cases = [Case((rng.normal(size=(60, 5)) @ rng.normal(size=(5, 5)), 2)),
             Case((rng.normal(size=(40, 8)) * np.arange(1, 9), 3)),
             Case((rng.normal(size=(30, 4)) + 5.0, 4))]
    return check_exercise(
        fn, reference.top_components, cases, title="top_components", rtol=1e-6, atol=1e-9)


@exercise(
    points=1,
    idea="normalise each row to unit length first, then measure how far the rows' Gram matrix is"
         " from the identity, off the diagonal only.",
    hint="normalise each row to unit length, gram = u @ u.T, subtract np.eye(K) and return "
         "the sum of the squares (a float).")
def orthogonality_penalty(fn: Callable) -> Callable:
    """Notebook 05: eq. (6)'s second term, the sum of squared off-diagonal entries of
    A_hat A_hat^T for rows (maps) scaled to unit length, ``fn(maps) -> float``."""
    rng = np.random.default_rng(14)
    cases = [Case((rng.normal(size=(4, 6)),)), Case((np.eye(3, 5) * 7.0,)),
             Case((rng.normal(size=(2, 3)) + 3.0,))]
    return check_exercise(
        fn, lambda w: reference.orthogonality_penalty(w)[0], cases, title="orthogonality_penalty")


@exercise(
    points=2,
    idea="self.score (an nn.Linear from C to K, weight and bias) scores the C-vector at every "
         "position, giving K scores per position; a softmax over the positions (all of *S, "
         "flattened), separately for each map and each example, turns each map's scores into "
         "weights that sum to 1; each map then pools the C-vectors of x with its weights, a "
         "weighted sum over the positions: pooled is (B, K, C), maps first.",
    hint="in __init__: super().__init__(); self.score = nn.Linear(channels, maps). In forward: "
         "flat = x.flatten(2) is (B, C, N); scores = self.score(flat.transpose(1, 2)) is "
         "(B, N, K); maps = torch.softmax(scores, dim=1) (over N); return "
         "maps.transpose(1, 2) @ flat.transpose(1, 2), which is (B, K, C).")
def InteractionAware(cls: Callable) -> Callable:
    """Notebook 05: ``class InteractionAware(nn.Module)``, ``(channels, maps=4)`` with ``score``
    (an nn.Linear, C to K); x (B, C, *S) -> pooled (B, K, C), K softmax maps over positions."""
    from . import modules

    builds = [Case((6,)), Case((8,), {"maps": 3}), Case((5,), {"maps": 1})]
    shapes = [[(2, 6, 4, 5), (1, 6, 3, 3)], [(2, 8, 7), (1, 8, 2, 3, 4)], [(3, 5, 4, 2)]]
    return check_module(cls, modules.InteractionAwareAttention, builds, shapes,
                        title="InteractionAware")


@exercise(
    points=1,
    idea="number the positions frame by frame: 'space' pairs positions in the same frame, 'time'"
         " pairs positions at the same place in any frame, 'spacetime' pairs everything.",
    hint="number the positions n = 0..T*H*W-1; frame t = n // (H*W), place p = n % (H*W) "
         "(np.divmod); 'space' compares t[:, None] == t[None, :], 'time' compares p, and "
         "'spacetime' allows every pair (np.ones(..., dtype=bool)).")
def affinity_mask(fn: Callable) -> Callable:
    """Notebook 06: ``fn(frames, height, width, affinity) -> (N, N) bool``."""
    cases = [Case((t, h, w, a)) for a in reference.AFFINITIES
             for t, h, w in [(2, 2, 3), (3, 1, 2), (1, 2, 2)]]
    return check_exercise(
        fn, reference.affinity_mask, cases, title="affinity_mask")


@exercise(
    points=1,
    idea="after scaling each row to unit length, the cosine similarity of two rows is their dot "
         "product; average it over all pairs of distinct rows.",
    hint="divide each row by its length, gram = u @ u.T, then average the off-diagonal "
         "entries: (gram.sum() - np.trace(gram)) / (n * (n - 1)); return a float.")
def attention_similarity(fn: Callable) -> Callable:
    """Notebook 06: mean cosine similarity between the rows of an attention matrix."""
    rng = np.random.default_rng(16)
    same = np.tile(rng.random(6), (4, 1))
    cases = [Case((rng.random((5, 7)),)), Case((same,)), Case((np.eye(4) + 0.1,)),
             Case((rng.random((2, 3)),))]
    return check_exercise(
        fn, reference.attention_similarity, cases, title="attention_similarity")


@exercise(
    points=1,
    idea="sort the flat weights from largest to smallest (equal weights keep their order), keep "
         "k, and turn each flat index back into (t, h, w).",
    hint="order = np.argsort(-weights, kind='stable')[:k]; then np.unravel_index(order, "
         "shape) gives three index arrays; stack them as columns (axis=1).")
def top_attended(fn: Callable) -> Callable:
    """Notebook 06: the k most attended (t, h, w) positions of one query's map."""
    rng = np.random.default_rng(17)
    cases = [Case((rng.random(24), (2, 3, 4), 3)), Case((rng.random(6), (3, 1, 2), 6)),
             Case((np.r_[0.1, 0.5, 0.5, 0.2], (1, 2, 2), 2))]
    return check_exercise(
        fn, reference.top_attended, cases, title="top_attended")


@exercise(
    points=1,
    idea="a 1 x 1 convolution (a dot product with w_k over channels, plus b_k) scores every "
         "position; a stable softmax over positions gives the map a, which pools the features "
         "into one context vector.",
    hint="flat = x.reshape(B, C, -1); scores = np.einsum('c,bcn->bn', w_k, flat) + b_k; "
         "subtract the row maximum before np.exp (large inputs!), normalise each row to sum "
         "1, and return (np.einsum('bcn,bn->bc', flat, a), a).")
def gc_context(fn: Callable) -> Callable:
    """Notebook 07: GCNet's context modelling ``fn(x, w_k, b_k) -> (context, a)``."""
    rng = np.random.default_rng(18)
    cases = [Case((rng.normal(size=(2, 5, 3, 4)), rng.normal(size=5), 0.3)),
             Case((rng.normal(size=(1, 3, 2, 2)) * 30, rng.normal(size=3), -2.0)),
             Case((rng.normal(size=(1, 4, 5, 1)), np.zeros(4), 0.0)),
             Case((np.full((1, 2, 2, 2), 40.0) * [[[[1.0]], [[0.5]]]],  # scores near 1,000:
                   np.array([20.0, 2.0]), 1.0))]                      # exp overflows unshifted
    return check_exercise(
        fn, reference.gc_context, cases, title="gc_context", rtol=1e-6, atol=1e-9)


@exercise(
    points=2,
    idea="write the block the non-local way: score every key once (w_k . x_j + b_k), take a "
         "stable softmax over the keys, and give every query that same row of an N x N matrix "
         "(not a softmax over the queries); each query then averages all positions with its row "
         "(its own context), the transform (W1 and b1, LayerNorm over the C/r numbers of each "
         "query with eps 1e-5, ln_gamma and ln_beta, ReLU, W2 and b2) runs on every query's "
         "context, and the result is added to x at that query's position.",
    hint="tokens = x.reshape(B, C, N).transpose(0, 2, 1) is (B, N, C); scores = tokens @ w_k + "
         "b_k is (B, N); row = its softmax over axis 1 (subtract the row maximum first); "
         "A = np.repeat(row[:, None, :], N, axis=1); y = A @ tokens; h = y @ w1.T + b1; "
         "h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5) * "
         "ln_gamma + ln_beta, then np.maximum(h, 0); t = h @ w2.T + b2 is (B, N, C); return "
         "(x + t.transpose(0, 2, 1).reshape(x.shape), A).")
def gc_as_nonlocal(fn: Callable) -> Callable:
    """Notebook 07: the GC block computed as a non-local block whose attention rows are all
    the same, ``fn(x, params) -> (z (B, C, H, W), attention (B, N, N))``."""
    rng = np.random.default_rng(20)

    def params(channels: int, reduction: int, b_k: float, **change: np.ndarray) -> dict:
        return {**reference.init_gc(channels, reduction, rng), "b_k": b_k, **change}

    cases = [Case((rng.normal(size=(2, 8, 3, 4)), params(8, 2, 0.3))),
             Case((rng.normal(size=(3, 9, 2, 5)), params(9, 3, -2.0))),
             Case((rng.normal(size=(1, 6, 4, 1)), params(6, 1, 0.0))),
             Case((40.0 + rng.normal(size=(1, 4, 2, 3)),                # scores near 900: exp
                   params(4, 2, 1.0, w_k=np.array([20.0, 2.0, -1.0, 0.5]))))]  # overflows
    return check_exercise(
        fn, reference.gc_as_nonlocal, cases, title="gc_as_nonlocal", rtol=1e-7, atol=1e-10)


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


def _gc_starts_as_identity(module: nn.Module, shape: tuple[int, ...]) -> str | None:
    """A new global context block returns its input unchanged, through a zero last
    convolution, and its first convolution is not zero as well."""
    import torch

    try:
        first, last = module.transform[0], module.transform[-1]
        w_first, w_last, b_last = first.weight, last.weight, last.bias
        if not all(isinstance(t, torch.Tensor) for t in (w_first, w_last, b_last)):
            return None
    except Exception:  # the structure check that follows names what is missing
        return None
    if not (torch.equal(w_last, torch.zeros_like(w_last))
            and torch.equal(b_last, torch.zeros_like(b_last))):
        return ("a new block must start as the identity, as in the authors' code: set the last "
                "convolution's weight and bias (transform[-1]) to zero in __init__ "
                "(nn.init.zeros_).")
    if not bool(w_first.detach().abs().sum() > 0):
        return ("transform[0].weight is all zeros as well as the last convolution: then the "
                "transform ignores the context at the start and its first convolution gets no "
                "gradient until the last one moves. Zero only the last convolution; keep the "
                "others' default initialisation.")
    ran = _new_block_output(module, shape)
    if ran is None:
        return None
    x, out = ran
    if not torch.equal(out, x):
        return (f"a new block must return its input unchanged (largest change "
                f"{(out - x).abs().max().item():.1e}): with the last convolution at zero the "
                "transform gives zeros, so fuse by addition, z = x + transform(context).")
    return None


@exercise(
    points=2,
    idea="context modelling: a 1x1 convolution named context (C to 1, with bias) scores every "
         "position, a softmax over the H*W positions (not over channels) makes one map, and the "
         "map pools x into a context vector (B, C, 1, 1); transform: an nn.Sequential named "
         "transform of a 1x1 convolution C to C // r, nn.LayerNorm([C // r, 1, 1]), ReLU and a "
         "1x1 convolution C // r to C; fusion: add the result to x at every position. The last "
         "convolution starts at zero, so a new block is the identity.",
    hint="in __init__: self.context = nn.Conv2d(channels, 1, 1); hidden = channels // "
         "reduction; self.transform = nn.Sequential(nn.Conv2d(channels, hidden, 1), "
         "nn.LayerNorm([hidden, 1, 1]), nn.ReLU(), nn.Conv2d(hidden, channels, 1)); then "
         "nn.init.zeros_(self.transform[-1].weight) and the same for its bias. In forward: "
         "a = torch.softmax(self.context(x).flatten(1), dim=1) is (B, N); c = x.flatten(2) @ "
         "a[:, :, None] is (B, C, 1); return x + self.transform(c[..., None]).")
def GlobalContext(cls: Callable) -> Callable:
    """Notebook 07: ``class GlobalContext(nn.Module)``, ``(channels, reduction=16)`` with
    ``context`` and ``transform``; x (B, C, H, W) -> x + transform(softmax-pooled context),
    starting as the identity."""
    from . import modules

    builds = [Case((8,), {"reduction": 2}), Case((12,), {"reduction": 3}), Case((32,)),
              Case((6,), {"reduction": 1})]
    shapes = [[(2, 8, 5, 3), (1, 8, 4, 4)], [(2, 12, 3, 6)], [(2, 32, 2, 3)],
              [(1, 6, 7, 2), (3, 6, 1, 1)]]
    return check_module(cls, modules.GlobalContext, builds, shapes, title="GlobalContext",
                        fresh=_gc_starts_as_identity)


@exercise(
    points=2,
    idea="average over space, slide the k-wide kernel along the channel axis (zero padding keeps"
         " C outputs), then take the sigmoid.",
    hint="y = x.mean(axis=(2, 3)); pad y with k // 2 zeros on both sides of the channel "
         "axis; every output channel is the dot product of w with its window of k "
         "neighbours (np.lib.stride_tricks.sliding_window_view); then the sigmoid.")
def eca_gate(fn: Callable) -> Callable:
    """Notebook 07: ECA's channel weights ``fn(x, w) -> s (B, C)``."""
    rng = np.random.default_rng(19)
    cases = [Case((rng.normal(size=(2, 8, 3, 3)), rng.normal(size=3))),
             Case((rng.normal(size=(1, 5, 2, 4)), rng.normal(size=5))),
             Case((rng.normal(size=(3, 4, 1, 1)), np.array([0.0, 1.0, 0.0])))]
    return check_exercise(
        fn, lambda x, w: reference.eca_forward(x, w)[1], cases, title="eca_gate")


@exercise(
    points=2,
    idea="squeeze each channel to its mean over H and W, read the C means as one sequence of "
         "length C (one input channel), slide one k-tap kernel along it with no bias and k // 2 "
         "zeros padded at each end, so that each channel's window is centred on it, take the "
         "sigmoid and scale each channel of x. k is kernel_size when given, else psi(C) as the "
         "paper's code listing rounds it (truncate, then make an even value odd by adding 1).",
    hint="in __init__: t = int(abs((np.log2(channels) + 1) / 2)); k = kernel_size if "
         "kernel_size is not None else (t if t % 2 else t + 1); self.conv = nn.Conv1d(1, 1, k, "
         "padding=k // 2, bias=False). In forward: y = x.mean((2, 3))[:, None, :] is (B, 1, C); "
         "s = torch.sigmoid(self.conv(y))[:, 0] is (B, C); return x * s[:, :, None, None].")
def ECA(cls: Callable) -> Callable:
    """Notebook 07: ``class ECA(nn.Module)``, ``(channels, kernel_size=None)`` with ``conv`` (a
    bias-free nn.Conv1d(1, 1, k)); x (B, C, H, W) -> x * sigmoid(conv1d over channels of
    mean_hw x), k from C when not given."""
    from . import modules

    builds = [Case((16,)), Case((128,)), Case((2048,)), Case((10,), {"kernel_size": 5}),
              Case((7,), {"kernel_size": 1})]
    shapes = [[(2, 16, 3, 5), (1, 16, 4, 4)], [(2, 128, 2, 3)], [(1, 2048, 2, 1)],
              [(3, 10, 4, 2)], [(2, 7, 3, 3)]]
    return check_module(cls, modules.EfficientChannelAttention, builds, shapes, title="ECA")


def _temporal_case(rng: np.random.Generator, b: int, c: int, r: int, t: int,
                   scale: float = 1.0) -> Case:
    return Case((rng.normal(size=(b, c, t)), reference.init_temporal(c, r, rng, scale)))


@exercise(
    points=2,
    idea="every frame is scored by the same small MLP from its descriptor s_t (the C channel "
         "means of frame t: s is (B, C, T), channels first): W1 and b1, a ReLU, then w2 and "
         "b2 down to one number e_t; the T scores of each clip then compete in a softmax over "
         "the frames (not over the batch, and not a sigmoid per frame), so that each clip's "
         "weights are positive and sum to 1.",
    hint="z = s.transpose(0, 2, 1) is (B, T, C) (transpose, not reshape); e = "
         "(np.maximum(z @ w1.T + b1, 0) @ w2.T + b2)[..., 0] is (B, T); subtract "
         "e.max(axis=1, keepdims=True) before np.exp (large scores!), then divide by the sum "
         "over axis 1. No factor T here: a sums to 1.")
def temporal_weights(fn: Callable) -> Callable:
    """Notebook 08: temporal attention's frame weights ``fn(s, params) -> a (B, T)`` from
    frame descriptors s (B, C, T)."""
    rng = np.random.default_rng(22)
    big = reference.init_temporal(4, 2, rng)
    big["w2"] = big["w2"] * 400.0                       # scores in the hundreds: exp overflows
    cases = [_temporal_case(rng, 3, 8, 2, 5), _temporal_case(rng, 2, 6, 3, 4),
             _temporal_case(rng, 1, 12, 4, 7), _temporal_case(rng, 2, 5, 1, 1),
             Case((rng.normal(size=(2, 4, 6)) * 3.0, big))]
    return check_exercise(fn, reference.temporal_weights, cases, title="temporal_weights")


def _temporal_starts_as_identity(module: nn.Module, shape: tuple[int, ...]) -> str | None:
    """A new temporal-attention block returns its input unchanged, through a zero fc2, and
    its fc1 is not zero as well."""
    import torch

    try:
        w1, w2, b2 = module.fc1.weight, module.fc2.weight, module.fc2.bias
        if not all(isinstance(p, torch.Tensor) for p in (w1, w2, b2)):
            return None
    except Exception:  # the structure check that follows names what is missing
        return None
    if not (torch.equal(w2, torch.zeros_like(w2)) and torch.equal(b2, torch.zeros_like(b2))):
        return ("a new block must start as the identity: set fc2's weight and bias to zero in "
                "__init__ (nn.init.zeros_), so that every frame scores 0 and gets weight 1/T.")
    if not bool(w1.detach().abs().sum() > 0):
        return ("fc1.weight is all zeros as well as fc2: then every frame gets the same hidden "
                "vector and fc1 no gradient until fc2 moves. Zero only fc2; keep fc1's default "
                "initialisation.")
    ran = _new_block_output(module, shape)
    if ran is None:
        return None
    x, out = ran
    if torch.allclose(out, x, rtol=1e-5, atol=1e-6):
        return None
    frames = shape[2]
    why = {frames: "each frame was scaled by T: its weight came out as 1, not 1/T; take the "
                   "softmax over the T frames of each clip (dim=1 of the (B, T) scores), not "
                   "over an axis of size 1",
           1 / frames: "each frame was scaled by 1/T: multiply by T * a_t, not a_t alone",
           0.5: "each frame was scaled by 0.5, a sigmoid of 0: use a softmax over the frames",
           frames / 2: "each frame was scaled by T/2, T times a sigmoid of 0: use a softmax "
                       "over the frames"}
    reason = next((text for factor, text in why.items()
                   if torch.allclose(out, x * factor, rtol=1e-5, atol=1e-6)),
                  "with fc2 at zero every score is 0, the softmax over the T frames gives each "
                  "1/T, and T * a_t * x_t = x_t")
    return (f"a new block must return its input unchanged (largest change "
            f"{(out - x).abs().max().item():.1e}): {reason}.")


@exercise(
    points=2,
    idea="squeeze every frame of x (B, C, T, H, W) to its mean over H and W, so that s is "
         "(B, T, C) with the frames along the rows; score each frame with fc1 (C to C // r), a "
         "ReLU and fc2 (C // r to 1); a softmax over the T frames of each clip gives the "
         "weights a (B, T); return T * a_t * x_t, every frame of x scaled by its own weight. fc2 "
         "starts at zero (weight and bias), so a new block is the identity.",
    hint="in __init__: super().__init__(); self.fc1 = nn.Linear(channels, channels // "
         "reduction); self.fc2 = nn.Linear(channels // reduction, 1); nn.init.zeros_ on "
         "self.fc2.weight and self.fc2.bias. In forward: s = x.mean((3, 4)).transpose(1, 2) is "
         "(B, T, C); e = self.fc2(F.relu(self.fc1(s)))[..., 0] is (B, T); a = torch.softmax(e, "
         "dim=1); return x * (x.shape[2] * a)[:, None, :, None, None].")
def TemporalAttention(cls: Callable) -> Callable:
    """Notebook 08: ``class TemporalAttention(nn.Module)``, ``(channels, reduction=4)`` with
    ``fc1``/``fc2``; x (B, C, T, H, W) -> T * softmax_t(fc2(relu(fc1(mean_hw x)))) * x,
    starting as the identity."""
    from . import modules

    builds = [Case((8,), {"reduction": 2}), Case((16,)), Case((6,), {"reduction": 3}),
              Case((4,), {"reduction": 1})]
    shapes = [[(3, 8, 5, 3, 4), (1, 8, 3, 2, 2)], [(2, 16, 4, 2, 3)], [(2, 6, 6, 1, 5)],
              [(2, 4, 1, 3, 3), (1, 4, 7, 2, 2)]]
    return check_module(cls, modules.TemporalAttention, builds, shapes,
                        title="TemporalAttention", fresh=_temporal_starts_as_identity)
