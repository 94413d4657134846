"""Every branch of the checker framework: right, still open, and each way of being wrong."""

import numpy as np
import pytest

from utils import check, functional
from utils.check import Case, check_exercise, compare


def reference(x):
    return 2.0 * x


CASES = [Case((np.arange(6.0).reshape(2, 3),)), Case((np.linspace(-1, 1, 5),))]


def run(fn):
    return check_exercise(fn, reference, CASES, title="double", hint="multiply by two")


def test_correct_answer_returns_the_learners_function(capsys):
    def mine(x):
        return x + x

    assert run(mine) is mine
    assert "✅ double: correct on 2 test cases" in capsys.readouterr().out


def test_open_exercise_returns_the_reference(capsys):
    def mine(x):
        raise NotImplementedError()

    assert run(mine) is reference
    assert "still open" in capsys.readouterr().out


@pytest.mark.parametrize("fn, message", [
    (lambda x: None, "got NoneType (did you forget to return the result?)"),
    (lambda x: list(2 * x), "expected a numpy array"),
    (lambda x: (2 * x).T, "wrong shape, expected (2, 3), got (3, 2)"),
    (lambda x: (2 * x).astype(np.float32), "wrong dtype, expected float64, got float32"),
    (lambda x: np.where(x == 1, np.nan, 2 * x), "contains NaN at 1 position(s), first at index (0, 1)"),
    (lambda x: np.where(x == 4, np.inf, 2 * x), "contains Inf at 1 position(s), first at index (1, 1)"),
    (lambda x: np.where(x == 5, 11.0, 2 * x), "worst at index (1, 2): expected 10, got 11"),
])
def test_wrong_answers_say_what_is_wrong_and_hint(fn, message):
    with pytest.raises(AssertionError) as err:
        run(fn)
    text = str(err.value)
    assert message in text
    assert "test case 1 of 2" in text and "Hint: multiply by two" in text


def test_in_place_modification_is_reported():
    def mine(x):
        x *= 2
        return x

    with pytest.raises(AssertionError, match="modified argument 1 in place"):
        run(mine)


def test_compare_handles_tuples_scalars_and_expected_non_finite():
    a = np.ones(3)
    assert compare((a, 2.0), (a, 2.0)) == 0.0
    with pytest.raises(AssertionError, match=r"expected a tuple of 2 items, got a tuple of length 1"):
        compare((a,), (a, a))
    with pytest.raises(AssertionError, match=r"output\[1\]: values differ"):
        compare((a, a), (a, a + 1))
    with pytest.raises(AssertionError, match="expected 3, got 3.5"):
        compare(3.5, 3.0)
    with pytest.raises(AssertionError, match="expected a non-finite value"):
        compare(np.array([1.0]), np.array([np.inf]))
    assert compare(np.array([np.nan, 1.0]), np.array([np.nan, 1.0])) == 0.0


def test_checker_rejects_a_non_function():
    with pytest.raises(ValueError, match="must be callable"):
        run(3)


@pytest.mark.parametrize("name", ["softmax", "center_surround", "normalize_map",
                                  "spectral_residual"])
def test_course_checkers_accept_their_reference_and_reject_a_wrong_answer(name, capsys):
    checker = getattr(check, name)
    reference_fn = {"softmax": functional.softmax}.get(name)
    if reference_fn is None:
        from utils import saliency
        reference_fn = getattr(saliency, {"spectral_residual": "spectral_residual_raw"}.get(
            name, name))
    assert checker(reference_fn) is reference_fn

    def off_by_a_bit(*args, **kwargs):
        return reference_fn(*args, **kwargs) * 1.01

    with pytest.raises(AssertionError, match="Hint:"):
        checker(off_by_a_bit)


def test_naive_softmax_fails_the_stability_case():
    def naive(x, axis=-1):
        e = np.exp(x)
        return e / e.sum(axis=axis, keepdims=True)

    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(AssertionError, match="NaN"):
        check.softmax(naive)


def _se_backward_from_inputs(dout, x, p):
    from utils import reference
    return reference.se_backward(dout, reference.se_forward(x, p)[1])


@pytest.mark.parametrize("name, correct", [
    ("se_forward", lambda x, p: __import__("utils.reference").reference.se_forward(x, p)[0]),
    ("se_backward", _se_backward_from_inputs),
    ("channel_attention",
     lambda x, p: __import__("utils.reference").reference.channel_attention_forward(x, p)[0]),
    ("spatial_attention",
     lambda x, p: __import__("utils.reference").reference.spatial_attention_forward(x, p)[0]),
    ("se_overhead", lambda b, c, r: __import__("utils.counting").counting.se_parameter_overhead(
        b, c, r)),
    ("attention_in_box", lambda m, b, s: __import__("utils.datasets").datasets.attention_in_box(
        m, b, s)),
])
def test_attention_checkers_accept_right_and_reject_wrong_answers(name, correct, capsys):
    checker = getattr(check, name)
    assert checker(correct) is correct
    assert "✅" in capsys.readouterr().out

    def wrong(*args):
        out = correct(*args)
        return (out[0] * 1.01, out[1]) if isinstance(out, tuple) else out * 1.01

    with pytest.raises(AssertionError, match="Hint:"):
        checker(wrong)

    def blank(*args):
        raise NotImplementedError

    assert checker(blank) is not blank
    assert "still open" in capsys.readouterr().out


def test_se_backward_checker_names_a_wrong_gradient_key():
    def wrong(dout, x, p):
        dx, grads = _se_backward_from_inputs(dout, x, p)
        grads = dict(grads, w1=grads["w1"] * 2)
        return dx, grads

    with pytest.raises(AssertionError, match=r"output\[1\]\['w1'\]: values differ"):
        check.se_backward(wrong)


@pytest.mark.parametrize("name, wrong", [
    ("affinity_mask", lambda t, h, w, a: ~__import__("utils.reference").reference.affinity_mask(
        t, h, w, a)),
    ("attention_similarity",
     lambda m: __import__("utils.reference").reference.attention_similarity(m) * 1.01),
    ("top_attended", lambda m, s, k: __import__("utils.reference").reference.top_attended(
        m, s, k)[::-1]),
])
def test_video_checkers_accept_the_reference_and_reject_wrong_answers(name, wrong, capsys):
    from utils import reference

    checker = getattr(check, name)
    correct = getattr(reference, name)
    assert checker(correct) is correct
    assert "✅" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Hint:"):
        checker(wrong)
