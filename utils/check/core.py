"""The checker machinery: the exercise registry, test cases, comparison with the reference,
and the three ways a check ends (right, blank, wrong)."""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import runtime
from . import state

if TYPE_CHECKING:
    pass


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


_PACKAGE = __name__.rpartition(".")[0]          # utils.check


def _in_checker(module: str | None) -> bool:
    """Whether a frame's module is part of the checker package."""
    return module is not None and (module == _PACKAGE or module.startswith(_PACKAGE + "."))


def _use_reference_from_here_on(title: str, learner: Callable, fallback: Callable) -> bool:
    """Bind the notebook's name ``title`` to ``fallback`` where it still names ``learner``.

    The caller is the notebook's check cell (the first frame outside this package); only an
    interactive namespace (``__main__``) is touched, and only the exercise's own name.
    Returns whether the name was rebound.
    """
    frame = inspect.currentframe()
    try:
        while frame is not None and _in_checker(frame.f_globals.get("__name__")):
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
        reported with the case, its traceback kept as ``__cause__``. The notebook-wide
        settings of ``state`` are put back after the call; one left changed is a wrong answer.
        """
        with state.restored() as changed:
            try:
                result = call()
            except NotImplementedError as exc:
                if first:
                    raise _Blank from exc
                raise self.wrong(where, f"{who} raised NotImplementedError after passing the "
                                        "earlier cases; finish every branch") from exc
            except Exception as exc:  # the learner's own bug: report it, never crash the checker
                raise self.wrong(where, f"{who} raised {type(exc).__name__}: {exc}") from exc
        if changed:
            raise self.wrong(where, state.describe(changed, who))
        return result


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
                                               "place" + _IN_PLACE)
            for key, before in case.kwargs.items():
                if not _unchanged(before, kwargs[key]):
                    raise attempt.wrong(where, f"your function modified argument {key!r} in "
                                               "place" + _IN_PLACE)
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


_IN_PLACE = (" (an array's values, or an entry of a dict); compute the result in new "
             "variables instead.")


def _unchanged(before: Any, after: Any) -> bool:
    """Whether an input still equals its copy from before the call (arrays, dicts, tuples,
    lists, and the numbers and strings inside them, as in a parameter dict)."""
    if isinstance(before, np.ndarray):
        return (isinstance(after, np.ndarray) and before.shape == after.shape
                and np.array_equal(before, after, equal_nan=True))
    if isinstance(before, dict):
        return (isinstance(after, dict) and set(before) == set(after)
                and all(_unchanged(before[k], after[k]) for k in before))
    if isinstance(before, list | tuple):
        return (type(after) is type(before) and len(after) == len(before)
                and all(_unchanged(b, a) for b, a in zip(before, after, strict=True)))
    if isinstance(before, int | float | complex | str | bool | np.number | None):
        return type(after) is type(before) and (after == before or (after != after
                                                                    and before != before))
    return True


# ---------------------------------------------------------------------------------------------
