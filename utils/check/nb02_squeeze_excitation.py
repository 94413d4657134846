"""Notebook 02, Squeeze-and-Excitation: the NumPy forward and backward, the module, the training
loops, the parameter overhead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import reference
from .core import Case, _Attempt, _begin, _Blank, _kind, check_exercise, compare, exercise
from .loops import LOOP_EPOCHS, _compare_states, _loop_check, _LoopCase, _Sides, _state
from .module_check import _names_and_shapes, check_module

if TYPE_CHECKING:
    import torch
    from torch import nn


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
    from .. import modules

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

    from .. import training

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

    from .. import training

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
                    mine.grad_enabled.clear()          # the class's: copies record too
                    got = sides.run("mine", functools.partial(
                        attempt.run, functools.partial(fn, mine, list(batches)), where,
                        first=(number, epoch) == (1, 1)))
                    with_grad = any(mine.grad_enabled)
                    expected = sides.run("ref", functools.partial(
                        training.evaluate_epoch, ref, list(batches)))
                    _check_evaluation(attempt, where, got, expected, mine, before, with_grad)
                    for side, model, optimizer in (("mine", mine, opt_mine),
                                                   ("ref", ref, opt_ref)):   # new weights
                        if epoch < LOOP_EPOCHS:
                            _train_after_evaluation(attempt, where, sides, side, model, train,
                                                    optimizer)
    except _Blank:
        return attempt.still_open()
    return attempt.right(f"correct on {len(cases)} test cases, {LOOP_EPOCHS} evaluations each: "
                         "the same loss per example and accuracy, the model left unchanged, no "
                         "gradients recorded.")


def _train_after_evaluation(attempt: _Attempt, where: str, sides: _Sides, side: str,
                            model: nn.Module, batches: list, optimizer: Any) -> None:
    """One epoch of the course's own loop between two evaluations, for new weights; on the
    learner's side a failure means the evaluation left the model unfit to train."""
    from .. import training

    try:
        sides.run(side, functools.partial(training.train_one_epoch, model, batches, optimizer))
    except Exception as exc:
        if side == "ref":
            raise
        raise attempt.wrong(where, f"after your evaluation, one epoch of the course's training "
                                   f"loop on the same model failed ({type(exc).__name__}: "
                                   f"{exc}): your function left the model changed in a way "
                                   "that breaks training; evaluating must change nothing on "
                                   "it.") from None


def _check_evaluation(attempt: _Attempt, where: str, got: Any, expected: tuple[float, float],
                      model: nn.Module, before: dict[str, torch.Tensor], with_grad: bool) -> None:
    """One evaluation by the learner: the model untouched, no gradients (``with_grad``: some
    forward of the probe or of a copy of it ran with autograd on), two right floats."""
    import torch

    after = _state(model)
    changed = [k for k, v in before.items()
               if v.dtype != after[k].dtype or not torch.equal(v, after[k])]
    retyped = [k for k in changed if before[k].dtype != after[k].dtype]
    if retyped:
        raise attempt.wrong(where, f"your function changed the dtype of the model's {retyped[0]} "
                                   f"from {before[retyped[0]].dtype} to {after[retyped[0]].dtype} "
                                   "(model.float()?) and left it so; evaluating must leave the "
                                   "model as it is: convert the inputs, never the model.")
    if changed:
        shapes = {k: tuple(v.shape) for k, v in before.items()}
        raise attempt.wrong(where, f"your function changed the model's "
                                   f"{_names_and_shapes(changed, shapes)}; evaluating must leave "
                                   "the model as it is: in evaluation mode (model.eval()) batch "
                                   "norm uses its running statistics instead of updating them.")
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    if frozen:
        shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
        raise attempt.wrong(where, f"your function switched requires_grad off for the model's "
                                   f"{_names_and_shapes(frozen, shapes)} and left it so "
                                   "(model.requires_grad_(False)): the model can no longer be "
                                   "trained. Evaluate inside `with torch.no_grad():`, which "
                                   "changes nothing on the model.")
    if with_grad:
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
    idea="each SE block adds two fully connected layers, C to C/r and back, each with weights "
         "and biases; count one block per stage, multiply by that stage's number of blocks and "
         "add the stages.",
    hint="each block adds two FC layers, C x C/r and C/r x C, plus C/r + C biases: "
         "sum over stages of N_s * (2 * C_s * (C_s // r) + C_s // r + C_s).")
def se_overhead(fn: Callable) -> Callable:
    """Notebook 02: parameters SE adds, ``fn(blocks, channels, reduction)``, biases included."""
    from .. import counting

    cases = [Case(((3, 4, 6, 3), (256, 512, 1024, 2048), 16)), Case(((1, 1, 1), (16, 32, 64), 4)),
             Case(((2, 2), (64, 128), 8))]
    return check_exercise(
        fn, counting.se_parameter_overhead, cases, title="se_overhead")
