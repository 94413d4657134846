"""The module checker: every way a learner's nn.Module class can be right, open or wrong."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils import check, modules
from utils.check import Case, check_module


class SE(nn.Module):
    """A right answer to the SqueezeExcitation exercise, to be broken one piece at a time."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def gate(self, x):
        return torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))

    def forward(self, x):
        return x * self.gate(x)[:, :, None, None]


BUILDS = [Case((8,), {"reduction": 2}), Case((6,), {"reduction": 3})]
SHAPES = [[(2, 8, 3, 5), (1, 8, 4, 2)], [(3, 6, 2, 3)]]


def run(cls):
    return check_module(cls, modules.SqueezeExcitation, BUILDS, SHAPES, title="SE",
                        idea="squeeze, excite, scale")


def test_a_right_class_is_returned_with_a_confirmation(capsys):
    assert run(SE) is SE
    out = capsys.readouterr().out
    assert out.startswith("✅ SE: correct on 3 test cases") and "float32" in out


def test_the_reference_itself_passes_its_own_exercise(capsys):
    assert check.SqueezeExcitation(modules.SqueezeExcitation) is modules.SqueezeExcitation
    assert check.CBAM(modules.CBAM) is modules.CBAM
    assert check.GlobalContext(modules.GlobalContext) is modules.GlobalContext
    assert check.ECA(modules.EfficientChannelAttention) is modules.EfficientChannelAttention
    assert capsys.readouterr().out.count("✅") == 4


class BlankInit(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        raise NotImplementedError()


class BlankForward(SE):
    def forward(self, x):
        raise NotImplementedError()


@pytest.mark.parametrize("blank", [BlankInit, BlankForward])
def test_a_blank_class_falls_back_to_a_marked_reference_class(blank, capsys):
    fallback = run(blank)
    assert "⏳ SE: exercise still open" in capsys.readouterr().out
    assert issubclass(fallback, modules.SqueezeExcitation) and fallback is not (
        modules.SqueezeExcitation)
    assert fallback.acv_reference_for == "SE" and fallback.__name__ == "SqueezeExcitation"
    module = fallback(8, reduction=2)                    # usable like the learner's class
    assert module(torch.ones(1, 8, 2, 3)).shape == (1, 8, 2, 3)
    assert run(fallback) is fallback                     # checking the stand-in again
    assert capsys.readouterr().out.startswith("↩ SE: this name still holds the reference")


def test_a_blank_function_checker_falls_back_too(capsys):
    def blank(*args, **kwargs):
        raise NotImplementedError()

    fallback = check.train_one_epoch(blank)
    assert fallback.acv_reference_for == "train_one_epoch"
    assert "still open" in capsys.readouterr().out


@pytest.mark.parametrize("blank", [BlankInit, BlankForward])
def test_under_grading_a_blank_class_fails(blank, monkeypatch):
    monkeypatch.setenv("ACV_GRADING", "1")
    with pytest.raises(check.ExerciseOpen, match="still blank"):
        run(blank)


def test_under_grading_a_blank_exercise_class_fails(monkeypatch):
    class SpatialAttention(nn.Module):
        def __init__(self, kernel_size=7):
            super().__init__()
            self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

        def forward(self, x):
            raise NotImplementedError()

    monkeypatch.setenv("ACV_GRADING", "1")
    with pytest.raises(check.ExerciseOpen, match="SpatialAttention: exercise still blank"):
        check.SpatialAttention(SpatialAttention)


def run_cell(namespace: dict, source: str) -> None:
    """Execute a notebook cell's source the way a kernel does: in the __main__ namespace."""
    exec(compile(source, "<cell>", "exec"), namespace)  # noqa: S102 - the test's own code


def test_after_a_wrong_class_the_notebook_name_means_a_reference_class(monkeypatch):
    namespace = {"__name__": "__main__", "check": check, "nn": nn, "torch": torch}
    run_cell(namespace, "class SqueezeExcitation(nn.Module):\n"
                        "    def __init__(self, channels, reduction=16):\n"
                        "        super().__init__()\n"
                        "        self.fc1 = nn.Linear(channels, channels // reduction)\n"
                        "        self.fc2 = nn.Linear(channels // reduction, channels)\n"
                        "    def forward(self, x):\n"
                        "        return x * self.fc2(self.fc1(x.mean((2, 3))))[..., None, None]\n")
    mine = namespace["SqueezeExcitation"]
    with pytest.raises(AssertionError) as err:
        run_cell(namespace, "SqueezeExcitation = check.SqueezeExcitation(SqueezeExcitation)")
    text = str(err.value)
    assert text.startswith("❌ SqueezeExcitation (test case 1 of 5, SqueezeExcitation(8, "
                           "reduction=2) on x of shape (2, 8, 5, 7)): output: values differ")
    assert "Idea:" in text and "uses the reference SqueezeExcitation" in text
    fallback = namespace["SqueezeExcitation"]
    assert fallback is not mine and issubclass(fallback, modules.SqueezeExcitation)
    monkeypatch.setenv("ACV_GRADING", "1")
    with pytest.raises(check.ExerciseOpen, match="run your exercise cell again"):
        run_cell(namespace, "SqueezeExcitation = check.SqueezeExcitation(SqueezeExcitation)")


def test_a_cbam_built_from_fallback_classes_works_and_passes(capsys):
    """After a wrong ChannelAttention and a blank SpatialAttention the learner's CBAM, which
    builds both from the notebook's names, runs on the stand-ins (with the learner's
    constructor signatures) and passes."""
    namespace = {"__name__": "__main__", "check": check, "nn": nn, "torch": torch}
    run_cell(namespace, "class ChannelAttention(nn.Module):\n"
                        "    def __init__(self, channels, reduction=16):\n"
                        "        super().__init__()\n"
                        "        self.fc1 = nn.Linear(channels, channels // reduction)\n"
                        "        self.fc2 = nn.Linear(channels // reduction, channels)\n"
                        "    def forward(self, x):\n"
                        "        return x\n"
                        "class SpatialAttention(nn.Module):\n"
                        "    def __init__(self, kernel_size=7):\n"
                        "        raise NotImplementedError()\n"
                        "class CBAM(nn.Module):\n"
                        "    def __init__(self, channels, reduction=16, kernel_size=7):\n"
                        "        super().__init__()\n"
                        "        self.channel = ChannelAttention(channels, reduction)\n"
                        "        self.spatial = SpatialAttention(kernel_size)\n"
                        "    def forward(self, x):\n"
                        "        return self.spatial(self.channel(x))\n")
    with pytest.raises(AssertionError, match="❌ ChannelAttention"):
        run_cell(namespace, "ChannelAttention = check.ChannelAttention(ChannelAttention)")
    run_cell(namespace, "SpatialAttention = check.SpatialAttention(SpatialAttention)")
    assert namespace["SpatialAttention"](3).conv.kernel_size == (3, 3)
    run_cell(namespace, "CBAM = check.CBAM(CBAM)")
    assert "✅ CBAM: correct" in capsys.readouterr().out


class BrokenInit(SE):
    def __init__(self, channels, reduction=16):
        super().__init__(channels, reduction)
        self.scale = 1 / (reduction - 3)      # fine for reduction 2, breaks for 3


class BrokenForward(SE):
    def forward(self, x):
        return x * self.gate(x)[:, :, None]       # (B, C, 1) does not broadcast to (B, C, H, W)


class HalfDone(SE):
    def __init__(self, channels, reduction=16):
        if reduction == 3:
            raise NotImplementedError()
        super().__init__(channels, reduction)


@pytest.mark.parametrize("cls, message, where", [
    (BrokenInit, "building SE(6, reduction=3) raised ZeroDivisionError: division by zero",
     "test case 3 of 3, SE(6, reduction=3)"),
    (BrokenForward, "your forward raised RuntimeError", "test case 1 of 3, SE(8, reduction=2) on "
                                                         "x of shape (2, 8, 3, 5)"),
    (HalfDone, "raised NotImplementedError after passing the earlier cases", "test case 3 of 3"),
])
def test_an_exception_in_the_learners_class_is_reported_with_the_case(cls, message, where, capsys):
    with pytest.raises(AssertionError) as err:
        run(cls)
    text = str(err.value)
    assert text.startswith(f"❌ SE ({where}") and message in text and "Idea:" in text
    assert isinstance(err.value.__cause__, Exception)
    assert not isinstance(err.value, check.ExerciseOpen)
    assert "still open" not in capsys.readouterr().out


def test_modifying_the_input_in_place_is_reported():
    class InPlace(SE):
        def forward(self, x):
            return x.mul_(self.gate(x)[:, :, None, None])

    with pytest.raises(AssertionError, match="modified its input x in place"):
        run(InPlace)


def test_a_parameter_without_gradient_is_reported_by_name_and_shape():
    class Detached(SE):
        def gate(self, x):
            hidden = F.relu(F.linear(x.mean((2, 3)), self.fc1.weight.data, self.fc1.bias.data))
            return torch.sigmoid(self.fc2(hidden))

    with pytest.raises(AssertionError) as err:
        run(Detached)
    text = str(err.value)
    assert "no gradient reached fc1.weight (4, 8), fc1.bias (4,)" in text
    assert "gradients must reach every parameter" in text and "fc2" not in text.split("\n")[0]


def test_a_wrong_gradient_is_named_with_its_parameter_and_shape():
    class ScaledGradient(SE):
        def gate(self, x):
            z = x.mean((2, 3))
            w = self.fc1.weight
            w = w + (w * 0.5 - (w * 0.5).detach())     # same value, 1.5 times the gradient
            return torch.sigmoid(self.fc2(F.relu(F.linear(z, w, self.fc1.bias))))

    with pytest.raises(AssertionError, match=r"gradient of fc1.weight \(4, 8\): values differ"):
        run(ScaledGradient)


def test_a_detached_output_is_reported():
    class NoGrad(SE):
        def forward(self, x):
            with torch.no_grad():
                return super().forward(x)

    with pytest.raises(AssertionError, match="cut off from autograd"):
        run(NoGrad)


def test_parameter_names_and_shapes_are_listed_not_tensors():
    class Renamed(nn.Module):
        def __init__(self, channels, reduction=16):
            super().__init__()
            self.squeeze = nn.Linear(channels, channels // reduction)
            self.fc2 = nn.Linear(channels // reduction, channels, bias=False)
            self.extra = nn.Parameter(torch.zeros(3))

        def forward(self, x):
            return x

    with pytest.raises(AssertionError) as err:
        run(Renamed)
    first, second = str(err.value).splitlines()[:2]
    assert first.startswith("❌ SE (test case 1 of 3, SE(8, reduction=2)): the module's "
                            "parameters differ")
    assert "missing fc1.weight (4, 8), fc1.bias (4,), fc2.bias (8,)" in first
    assert "unexpected extra (3,), squeeze.weight (4, 8), squeeze.bias (4,)" in first
    assert "(71 parameters, expected 76)" in first
    assert second == ("The exercise's module holds exactly: fc1.weight (4, 8), fc1.bias (4,), "
                      "fc2.weight (8, 4), fc2.bias (8,).")
    assert "tensor(" not in str(err.value)


def test_a_wrong_shape_is_named():
    class Wide(SE):
        def __init__(self, channels, reduction=16):
            super().__init__(channels, reduction)
            self.fc1 = nn.Linear(channels, channels * reduction)
            self.fc2 = nn.Linear(channels * reduction, channels)

    with pytest.raises(AssertionError, match=r"wrong shape: fc1.weight is \(16, 8\), expected "
                                             r"\(4, 8\)"):
        run(Wide)


@pytest.mark.parametrize("forward, message", [
    (lambda self, x: (SE.forward(self, x),), "output: expected a torch.Tensor of shape "
                                              "(2, 8, 3, 5), got a tuple"),
    (lambda self, x: None, "got None (did you forget to return the result?)"),
    (lambda self, x: SE.forward(self, x).float(), "with a float64 input, your forward made a "
                                                  "torch.float32 tensor (in float)"),
    (lambda self, x: SE.forward(self, x)[..., :-1], "wrong shape, expected (2, 8, 3, 5), got "
                                                    "(2, 8, 3, 4)"),
])
def test_wrong_outputs_say_what_differs(forward, message):
    wrong = type("Wrong", (SE,), {"forward": forward})
    with pytest.raises(AssertionError) as err:
        run(wrong)
    assert message in str(err.value)


def test_the_float32_path_wants_a_float32_output_close_to_float64():
    class Doubles(SE):
        def forward(self, x):
            return super().forward(x).double()

    with pytest.raises(AssertionError, match="output in float32: wrong dtype, expected "
                                             "torch.float32, got torch.float64"):
        run(Doubles)

    class Coarse(SE):        # right in float64, but rounds to 3 digits in float32
        def forward(self, x):
            out = super().forward(x)
            return out if out.dtype == torch.float64 else torch.round(out * 1000) / 1000

    with pytest.raises(AssertionError, match="output in float32: values differ"):
        run(Coarse)


def test_another_device_is_checked_when_present(monkeypatch, capsys):
    monkeypatch.setattr(check.module_check, "_accelerators", lambda: [torch.device("cpu")])
    assert run(SE) is SE
    assert ", cpu." in capsys.readouterr().out

    class Fails(SE):          # fails only in the run on the other device: the 14th forward
        calls = 0             # (1 probe for a blank forward, 3 for state across calls, 2 for
                              # dtype and device, 3 per input shape, 1 in evaluation mode,
                              # then the other device)

        def forward(self, x):
            Fails.calls += 1
            if Fails.calls > 13:
                raise RuntimeError("Expected all tensors to be on the same device")
            return super().forward(x)

    with pytest.raises(AssertionError, match=r"8, 3, 5\), on cpu\): your forward in float32 on "
                                             "cpu raised RuntimeError"):
        run(Fails)


def test_the_notebooks_random_state_is_left_alone(capsys):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    run(SE)
    check.train_one_epoch(__import__("utils.training").training.train_one_epoch)
    assert torch.equal(torch.rand(3), expected)


def test_the_learner_must_hand_in_a_class_not_an_instance():
    with pytest.raises(ValueError, match="the exercise function for 'SE' must be callable"):
        run(3)
    with pytest.raises(ValueError, match="must be the class itself, not an instance"):
        run(SE(8, 2))


def test_a_factory_that_is_not_a_module_is_wrong():
    with pytest.raises(AssertionError, match=r"building SE\(8, reduction=2\) gave a dict, "
                                             "expected an nn.Module"):
        run(lambda channels, reduction=16: {"channels": channels})


@pytest.mark.parametrize("args", [
    (SE, SE.forward, BUILDS, SHAPES),                    # reference not a class
    (SE, modules.SqueezeExcitation, [], []),
    (SE, modules.SqueezeExcitation, BUILDS, SHAPES[:1]),  # one list of shapes per build
    (SE, modules.SqueezeExcitation, BUILDS, [[(2, 8, 0, 3)], [(1, 6, 2, 2)]]),
])
def test_bad_checker_arguments_are_refused(args):
    with pytest.raises(ValueError, match="reference must be a torch.nn.Module class"):
        check_module(*args, title="SE", idea="i")


class CpuOne(SE):                   # a tensor made on the CPU whatever the input's device
    def forward(self, x):
        bias = torch.zeros(x.shape[1], dtype=x.dtype)
        return x * self.gate(x)[:, :, None, None] + bias[:, None, None]


class Float32Ones(SE):              # a float32 tensor in a float64 forward (promoted away)
    def forward(self, x):
        return x * (self.gate(x) * torch.ones(x.shape[1], device=x.device))[:, :, None, None]


class KeepsGate(SE):                # the gate of the last call, still on its graph
    def forward(self, x):
        self.last_gate = self.gate(x)
        return x * self.last_gate[:, :, None, None]


class Counts(SE):                   # carries state from one call to the next
    calls = 0

    def forward(self, x):
        self.calls += 1
        return x * self.gate(x)[:, :, None, None] * (1 + 1e-3 * self.calls)


class SetsDtype(SE):                # changes the default dtype of the whole notebook
    def forward(self, x):
        torch.set_default_dtype(torch.float64)
        return super().forward(x)


@pytest.mark.parametrize("cls, message", [
    (CpuOne, "made or moved a tensor to the CPU whatever the input's device"),
    (Float32Ones, "made a torch.float32 tensor"),
    (KeepsGate, "keeps last_gate from a forward pass"),
    (Counts, "two different outputs"),
    (SetsDtype, "default dtype"),
])
def test_slips_a_cpu_only_float64_check_would_miss_are_caught(cls, message):
    with pytest.raises(AssertionError, match=message):
        run(cls)
    assert torch.get_default_dtype() == torch.float32


class NaiveAttention(nn.Module):    # a softmax over positions without its maximum subtracted
    def __init__(self, channels, maps=4):
        super().__init__()
        self.score = nn.Linear(channels, maps)

    def forward(self, x):
        flat = x.flatten(2).transpose(1, 2)                 # (B, N, C)
        e = self.score(flat).exp()
        return (e / e.sum(1, keepdim=True)).transpose(1, 2) @ flat


def test_a_softmax_that_overflows_in_float32_is_caught_on_large_inputs():
    with pytest.raises(AssertionError, match=r"scaled by 300, 1, -300\): your float32 output "
                                             r"has NaN"):
        check.InteractionAware(NaiveAttention)
