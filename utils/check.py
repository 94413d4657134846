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
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import datasets, functional, reference, runtime

# counting (PyTorch), saliency and denoising (SciPy) are imported by the checkers that use them,
# so that `from utils import check` stays quick in a fresh kernel.


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
    """The reference, wrapped and marked, so that a later check knows it is not the learner's."""
    @functools.wraps(reference)
    def stand_in(*args: Any, **kwargs: Any) -> Any:
        return reference(*args, **kwargs)

    stand_in.acv_reference_for = title
    return stand_in


def check_exercise(learner: Callable, reference: Callable, cases: Sequence[Case], *,
                   title: str, idea: str | None = None, rtol: float = 1e-7,
                   atol: float = 1e-10) -> Callable:
    """Run ``learner`` and ``reference`` on every case; return the function to use next.

    ``idea`` (the first-level hint) defaults to the registered exercise ``title``'s.
    """
    if not callable(reference) or isinstance(cases, str | bytes) or not all(
            isinstance(c, Case) for c in cases) or not cases:
        raise ValueError("reference must be callable and cases a non-empty sequence of Case")
    if not callable(learner):
        raise ValueError(f"the exercise function for {title!r} must be callable, "
                         f"got {type(learner).__name__}")
    if getattr(learner, "acv_reference_for", None) == title:
        message = (f"{title}: this name still holds the reference solution (your function was "
                   "blank or failed this check); run your exercise cell again, then this cell.")
        if runtime.grading_mode():
            raise ExerciseOpen(f"⏳ {message}")
        print(f"↩ {message}")
        return learner
    reference = _stand_in(title, reference)
    spec = EXERCISES.get(title)
    if idea is None:
        if spec is None:
            raise ValueError(f"idea is needed for an exercise that is not registered: {title!r}")
        idea = spec.idea

    def wrong(where: str, what: str) -> AssertionError:
        rebound = _use_reference_from_here_on(title, learner, reference)
        more = f" For the code-level hint run check.hint({title!r})." if spec else ""
        after = (f"\n(Until this check passes, the rest of the notebook uses the reference "
                 f"{title}.)" if rebound else "")
        return AssertionError(f"❌ {title} ({where}): {what}\nIdea: {idea}{more}{after}")

    worst = 0.0
    for number, case in enumerate(cases, start=1):
        where = f"test case {number} of {len(cases)}, inputs {case.describe()}"
        args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
        try:
            got = learner(*args, **kwargs)
        except NotImplementedError as exc:
            if number > 1:
                raise wrong(where, "your function raised NotImplementedError after passing "
                                   "the earlier cases; finish every branch") from exc
            _use_reference_from_here_on(title, learner, reference)
            if runtime.grading_mode():
                raise ExerciseOpen(f"⏳ {title}: exercise still blank (raise "
                                   "NotImplementedError()); under grading it scores no points. "
                                   "The rest of the notebook uses the reference.") from None
            print(f"⏳ {title}: exercise still open. Using the reference solution so that the "
                  "rest of the notebook runs; come back when you are ready.")
            return reference
        except Exception as exc:  # the learner's own bug: report it, never crash the checker
            raise wrong(where, f"your function raised {type(exc).__name__}: {exc}") from exc
        expected = reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        for i, (before, after) in enumerate(zip(case.args, args, strict=True)):
            if not _unchanged(before, after):
                raise wrong(where, f"your function modified argument {i + 1} in place; "
                                   "compute the result in a new array instead.")
        for key, before in case.kwargs.items():
            if not _unchanged(before, kwargs[key]):
                raise wrong(where, f"your function modified argument {key!r} in place; "
                                   "compute the result in a new array instead.")
        try:
            worst = max(worst, compare(got, expected, rtol=rtol, atol=atol))
        except AssertionError as exc:
            raise wrong(where, str(exc)) from None
        except Exception as exc:  # an answer of a type compare cannot even look at
            raise wrong(where, f"your answer (a {type(got).__name__}) cannot be compared with "
                               f"the expected {type(expected).__name__}: "
                               f"{type(exc).__name__}: {exc}") from None
    print(f"✅ {title}: correct on {len(cases)} test cases (largest error {worst:.1e}).")
    return learner


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
    """Notebook 05: sum of squared off-diagonal entries of W_hat W_hat^T, ``fn(w) -> float``."""
    rng = np.random.default_rng(14)
    cases = [Case((rng.normal(size=(4, 6)),)), Case((np.eye(3, 5) * 7.0,)),
             Case((rng.normal(size=(2, 3)) + 3.0,))]
    return check_exercise(
        fn, lambda w: reference.orthogonality_penalty(w)[0], cases, title="orthogonality_penalty")


@exercise(
    points=1,
    idea="each of the K rows of w scores every position; a softmax over positions turns each "
         "row's scores into a map, and each map pools the features into one C-vector.",
    hint="flat = x.reshape(B, C, -1); scores = einsum('kc,bcn->bkn', w, flat) + "
         "b[None, :, None]; softmax over the last axis (positions); return "
         "maps @ flat.transpose(0, 2, 1).")
def ia_attention(fn: Callable) -> Callable:
    """Notebook 05: interaction-aware attention pooling ``fn(x, w, b) -> (B, K, C)``."""
    rng = np.random.default_rng(15)
    cases = [Case((rng.normal(size=(2, 5, 3, 4)), rng.normal(size=(3, 5)), rng.normal(size=3))),
             Case((rng.normal(size=(1, 4, 7)), rng.normal(size=(2, 4)), np.zeros(2)))]
    return check_exercise(
        fn, lambda x, w, b: reference.ia_attention_forward(x, w, b)[0], cases,
        title="ia_attention")


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
    points=1,
    idea="the kernel grows with log2 of the channel count: take |(log2 C + b) / gamma|, truncate"
         " it to an integer, and make it odd by rounding an even value up.",
    hint="t = int(abs((np.log2(channels) + b) / gamma)); return t if it is odd, else t + 1.")
def eca_kernel_size(fn: Callable) -> Callable:
    """Notebook 07: ECA's adaptive kernel size, as the authors' code rounds it."""
    cases = [Case((c,)) for c in (16, 64, 128, 256, 512, 1024, 2048, 3000)]
    cases += [Case((256,), {"gamma": 3, "b": 2}), Case((100,), {"gamma": 1, "b": 0})]
    return check_exercise(
        fn, reference.eca_kernel_size, cases, title="eca_kernel_size")


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
