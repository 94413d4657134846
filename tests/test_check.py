"""Every branch of the checker framework: right, still open, and each way of being wrong."""

import numpy as np
import pytest

from utils import check, functional
from utils.check import Case, check_exercise, compare


def reference(x):
    return 2.0 * x


CASES = [Case((np.arange(6.0).reshape(2, 3),)), Case((np.linspace(-1, 1, 5),))]


def run(fn):
    return check_exercise(fn, reference, CASES, title="double", idea="multiply by two")


def test_correct_answer_returns_the_learners_function(capsys):
    def mine(x):
        return x + x

    assert run(mine) is mine
    assert "✅ double: correct on 2 test cases" in capsys.readouterr().out


def test_open_exercise_returns_the_reference(capsys):
    def mine(x):
        raise NotImplementedError()

    fallback = run(mine)
    assert fallback.__wrapped__ is reference and fallback.acv_reference_for == "double"
    x = np.arange(3.0)
    assert np.array_equal(fallback(x), reference(x))
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
    assert "test case 1 of 2" in text and "Idea: multiply by two" in text
    assert text.startswith("❌ double")


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

    with pytest.raises(AssertionError, match="Idea:"):
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

    with pytest.raises(AssertionError, match="Idea:"):
        checker(wrong)

    def blank(*args):
        raise NotImplementedError

    assert checker(blank).acv_reference_for == name
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
    ("fold_attention", lambda x, a: __import__("utils.reference").reference.fold_attention(
        x, {"space": "time", "time": "space"}.get(a, a))),
])
def test_video_checkers_accept_the_reference_and_reject_wrong_answers(name, wrong, capsys):
    from utils import reference

    checker = getattr(check, name)
    correct = getattr(reference, name)
    assert checker(correct) is correct
    assert "✅" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Idea:"):
        checker(wrong)


# --- grading mode, the name rebinding, two-level hints, and bugs inside the learner's code ---

def blank_fn(*args, **kwargs):
    raise NotImplementedError()


def test_blank_exercise_under_grading_fails_instead_of_falling_back(monkeypatch):
    monkeypatch.setenv("ACV_GRADING", "1")
    with pytest.raises(check.ExerciseOpen, match="still blank"):
        run(blank_fn)
    with pytest.raises(check.ExerciseOpen):
        check.softmax(blank_fn)


def test_grading_mode_changes_nothing_for_answers(monkeypatch, capsys):
    monkeypatch.setenv("ACV_GRADING", "1")
    assert check.softmax(functional.softmax) is functional.softmax
    assert "✅" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Idea:") as err:
        check.softmax(lambda x, axis=-1: functional.softmax(x, axis) * 2)
    assert not isinstance(err.value, check.ExerciseOpen)


def run_cell(namespace: dict, source: str) -> None:
    """Execute a notebook cell's source the way a kernel does: in the __main__ namespace."""
    exec(compile(source, "<cell>", "exec"), namespace)  # noqa: S102 - the test's own code


@pytest.mark.parametrize("body", ["return np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True)",
                                  "raise NotImplementedError()"])
def test_after_a_wrong_or_blank_answer_the_notebook_name_means_the_reference(body, monkeypatch):
    monkeypatch.setenv("ACV_GRADING", "1")
    namespace = {"__name__": "__main__", "check": check, "np": np}
    run_cell(namespace, f"def softmax(x, axis=-1):\n    {body}\n\n"
                        "def naive_softmax(x, axis=-1):\n    return x\n")
    mine, naive = namespace["softmax"], namespace["naive_softmax"]
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(AssertionError):
        run_cell(namespace, "softmax = check.softmax(softmax)")
    assert namespace["softmax"].__wrapped__ is functional.softmax
    assert namespace["softmax"] is not mine
    # a demo that checks another function leaves every other name alone
    with pytest.raises(AssertionError):
        run_cell(namespace, "check.softmax(naive_softmax)")
    assert namespace["naive_softmax"] is naive


def test_a_checker_called_from_a_module_rebinds_nothing():
    here = globals()
    here["double"] = lambda x: 3 * x
    wrong = here["double"]
    with pytest.raises(AssertionError):
        run(wrong)
    assert here.pop("double") is wrong


@pytest.mark.parametrize("fn, message", [
    (lambda x: x.reshape(7), "your function raised ValueError: cannot reshape"),
    (lambda x: x[None] @ x[None], "your function raised ValueError"),
    (lambda x: 1 / 0, "your function raised ZeroDivisionError: division by zero"),
])
def test_an_exception_in_the_learners_code_is_reported_with_the_exercise_and_case(fn, message):
    with pytest.raises(AssertionError, match=message) as err:
        run(fn)
    assert "❌ double (test case 1 of 2" in str(err.value)


def test_not_implemented_after_passing_a_case_is_wrong_not_open(capsys):
    def half_done(x):
        if x.ndim == 2:
            return 2 * x
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="after passing the earlier cases") as err:
        run(half_done)
    assert not isinstance(err.value, check.ExerciseOpen)
    assert "still open" not in capsys.readouterr().out


def test_a_mutated_params_dict_is_reported():
    def mutating(x, params):
        params["w1"] *= 0
        return __import__("utils.reference").reference.se_forward(x, params)[0]

    with pytest.raises(AssertionError, match="modified argument 2 in place"):
        check.se_forward(mutating)


@pytest.mark.parametrize("name, wrong", [
    ("se_overhead", lambda b, c, r: np.array([1, 2, 3])),
    ("orthogonality_penalty", lambda w: np.ones((w.shape[0], w.shape[0]))),
])
def test_an_array_where_a_number_is_expected_fails_cleanly(name, wrong):
    with pytest.raises(AssertionError, match=f"❌ {name}") as err:
        getattr(check, name)(wrong)
    assert "Idea:" in str(err.value)


def test_every_exercise_has_points_an_idea_and_a_code_hint(capsys):
    assert len(check.EXERCISES) >= 23
    for name, spec in check.EXERCISES.items():
        assert getattr(check, name).__name__ == name
        assert spec.points >= 1 and len(spec.idea) > 40 and len(spec.hint) > 40, name
        check.hint(name)
        assert spec.hint in capsys.readouterr().out
    with pytest.raises(ValueError, match="name must be one of the course's exercises"):
        check.hint("sofmax")


def test_the_first_message_gives_the_idea_not_the_code():
    with pytest.raises(AssertionError) as err:
        check.se_forward(lambda x, p: x)
    text = str(err.value)
    spec = check.EXERCISES["se_forward"]
    assert spec.idea in text and spec.hint not in text
    assert "check.hint('se_forward')" in text


def test_a_params_dict_is_described_by_shapes_not_numbers():
    with pytest.raises(AssertionError) as err:
        check.se_forward(lambda x, p: x)
    first = str(err.value).splitlines()[0]
    assert "{'w1': array(2, 8), 'b1': array(2,), 'w2': array(8, 2), 'b2': array(8,)}" in first
    assert len(first) < 300


def test_checking_the_stand_in_again_says_to_rerun_the_exercise_and_never_passes(monkeypatch,
                                                                                  capsys):
    namespace = {"__name__": "__main__", "check": check, "np": np}
    run_cell(namespace, "def softmax(x, axis=-1):\n    return x\n")
    with pytest.raises(AssertionError):
        run_cell(namespace, "softmax = check.softmax(softmax)")
    capsys.readouterr()
    run_cell(namespace, "softmax = check.softmax(softmax)")  # the check cell alone, again
    out = capsys.readouterr().out
    assert out.startswith("↩ softmax: this name still holds the reference") and "✅" not in out
    monkeypatch.setenv("ACV_GRADING", "1")
    with pytest.raises(check.ExerciseOpen, match="run your exercise cell again"):
        run_cell(namespace, "softmax = check.softmax(softmax)")


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")   # np.matrix, as in a notebook
@pytest.mark.parametrize("fn, message", [
    (lambda x: functional.softmax(x), "raised TypeError"),                    # no axis argument
    (lambda x, axis=-1: functional.softmax(x, axis).tolist(), "expected a numpy array"),
    (lambda x, axis=-1: np.asmatrix(functional.softmax(x, axis)) if x.ndim == 2 else
     functional.softmax(x, axis), "np.matrix"),
    (lambda x, axis=-1: __import__("torch").tensor(functional.softmax(x, axis)), "torch.Tensor"),
])
def test_answers_of_the_wrong_kind_get_a_clear_message(fn, message):
    with pytest.raises(AssertionError, match=message) as err:
        check.softmax(fn)
    assert str(err.value).startswith("❌ softmax (test case ")


def test_the_learners_own_traceback_is_kept():
    def buggy(x, axis=-1):
        return x.nonexistent_method()

    with pytest.raises(AssertionError) as err:
        check.softmax(buggy)
    assert isinstance(err.value.__cause__, AttributeError)


# --- the training-loop exercises (their corpus of wrong answers is in test_check_corpus) ---

def test_blank_loops_fall_back_to_the_course_loop_and_fail_under_grading(monkeypatch, capsys):
    from utils import training

    for name in ("train_one_epoch", "evaluate_epoch"):
        fallback = getattr(check, name)(blank_fn)
        assert fallback.__wrapped__ is getattr(training, name)
        assert fallback.acv_reference_for == name
        assert f"⏳ {name}: exercise still open" in capsys.readouterr().out
    monkeypatch.setenv("ACV_GRADING", "1")
    with pytest.raises(check.ExerciseOpen, match="evaluate_epoch: exercise still blank"):
        check.evaluate_epoch(blank_fn)


def _fails_in_call(n, exc, reference):
    """reference, except that its n-th call raises exc."""
    calls = []

    def loop(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise exc
        return reference(*args, **kwargs)

    return loop


def test_an_exception_in_a_training_loop_is_reported_with_the_case_and_epoch():
    from utils import training

    with pytest.raises(AssertionError) as err:
        check.train_one_epoch(_fails_in_call(2, KeyError("y"), training.train_one_epoch))
    assert str(err.value).startswith(
        "❌ train_one_epoch (test case 1 of 2, Adam + OneCycleLR, batches of 5, 3, 4 examples, "
        "epoch 2 of 3): your function raised KeyError: 'y'")
    assert isinstance(err.value.__cause__, KeyError)
    with pytest.raises(AssertionError, match=r"evaluation 3 of 3\): your function raised "
                                             "NotImplementedError after passing") as err:
        check.evaluate_epoch(_fails_in_call(3, NotImplementedError(), training.evaluate_epoch))
    assert not isinstance(err.value, check.ExerciseOpen)


def test_a_loop_answer_may_be_a_list_and_numpy_floats(capsys):
    from utils import training

    def as_list(model, batches):
        return [np.float64(v) for v in training.evaluate_epoch(model, batches)]

    assert check.evaluate_epoch(as_list) is as_list
    assert "✅ evaluate_epoch: correct" in capsys.readouterr().out


def test_a_setting_left_changed_is_put_back_and_fails_the_answer():
    def quiet(x):                       # right values, but NumPy's warnings stay off afterwards
        np.seterr(all="ignore")
        return 2.0 * x

    before = np.geterr()
    with pytest.raises(AssertionError, match=r"❌ double \(test case 1 of 2.*np\.seterr"):
        run(quiet)
    assert np.geterr() == before


def test_a_scalar_entry_of_a_params_dict_changed_in_place_is_reported():
    def mine(x, p):
        p["b"] = 0.0                    # a learner "resets" the bias in the caller's dict
        return x * p["w"]

    cases = [Case((np.ones(3), {"w": 2.0, "b": 0.0})), Case((np.ones(3), {"w": 2.0, "b": 1.5}))]
    with pytest.raises(AssertionError, match=r"test case 2 of 2.*modified argument 2 in place"):
        check_exercise(mine, lambda x, p: x * p["w"], cases, title="scale", idea="scale by w")


def test_a_loop_that_leaves_autograd_off_fails_with_the_course_message_not_a_crash():
    import torch

    from utils import training

    def leaves_it_off(model, batches, optimizer, scheduler=None):
        loss = training.train_one_epoch(model, batches, optimizer, scheduler)
        torch.set_grad_enabled(False)   # "no gradients needed any more"
        return loss

    with pytest.raises(AssertionError, match=r"❌ train_one_epoch \(test case 1 of 2.*gradient recording"):
        check.train_one_epoch(leaves_it_off)
    assert torch.is_grad_enabled()
