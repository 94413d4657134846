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
module in float64 with its weights loaded; no state across calls; every tensor made in
forward on the input's dtype and device, the device tried on the meta device; evaluation
mode; float32, with large inputs where there is a softmax; CUDA where present), and
training loops, run from the same weights and random state as the course's own loop. A
blank class falls back to a marked subclass of the reference class.

Every call of the learner's code leaves the notebook's settings as they were (``state``:
gradient recording, default dtype and device, thread count, ``np.seterr``, tracemalloc,
...): one that a call left changed is put back, and the answer fails naming it.

The package, so that the checker of an exercise sits beside its neighbours:

- ``core``          the registry (``exercise``, ``EXERCISES``, ``hint``), ``Case``, ``compare``,
                    ``check_exercise`` and how a check ends (right, blank, wrong);
- ``module_check``  ``check_module``, the one checker of PyTorch module exercises;
- ``loops``         the probe model and seeded cases the training-loop exercises run on;
- ``state``         the settings a learner's call may not leave changed;
- ``nb00_start_here`` ... ``nb08_attention_in_practice``: each notebook's exercises, named
  for the notebook.

``from utils import check`` then ``check.se_forward(...)`` reaches every exercise.
"""

from .core import EXERCISES, Case, Exercise, ExerciseOpen, check_exercise, compare, exercise, hint
from .module_check import check_module
from .nb00_start_here import softmax
from .nb01_saliency_hvs import center_surround, normalize_map, spectral_residual
from .nb02_squeeze_excitation import (
                   SqueezeExcitation,
                   evaluate_epoch,
                   se_backward,
                   se_forward,
                   se_overhead,
                   train_one_epoch,
)
from .nb03_cbam import (
                   CBAM,
                   ChannelAttention,
                   SpatialAttention,
                   attention_in_box,
                   channel_attention,
                   spatial_attention,
)
from .nb04_non_local import (
                   NonLocal,
                   dot_attention,
                   embedded_attention,
                   max_pool_2x2,
                   nlmeans_weights,
                   tiled_attention,
)
from .nb05_interaction_aware import InteractionAware, orthogonality_penalty, top_components
from .nb06_video_attention import affinity_mask, axis_code, fold_attention
from .nb07_efficiency_and_beyond import (
    ECA,
    GlobalContext,
    MultiHeadAttention,
    eca_gate,
    query_free_nonlocal,
)
from .nb08_attention_in_practice import (
    TemporalAttention,
    batch_hard_triplet_loss,
    export_and_quantise,
    retrieval_metrics,
    temporal_attention_backward,
    temporal_weights,
)

__all__ = [
    "EXERCISES", "Case", "Exercise", "ExerciseOpen", "check_exercise", "check_module", "compare",
    "exercise", "hint",
    # the exercises, in course order
    "softmax", "center_surround", "normalize_map", "spectral_residual", "se_forward",
    "se_backward", "SqueezeExcitation", "train_one_epoch", "evaluate_epoch", "se_overhead",
    "channel_attention", "spatial_attention", "ChannelAttention", "SpatialAttention", "CBAM",
    "attention_in_box", "nlmeans_weights", "embedded_attention", "dot_attention",
    "max_pool_2x2", "tiled_attention", "NonLocal", "top_components", "orthogonality_penalty",
    "InteractionAware", "affinity_mask", "fold_attention", "axis_code",
    "query_free_nonlocal", "GlobalContext", "eca_gate", "ECA", "MultiHeadAttention",
    "temporal_weights",
    "temporal_attention_backward", "TemporalAttention", "retrieval_metrics",
    "batch_hard_triplet_loss", "export_and_quantise",
]
