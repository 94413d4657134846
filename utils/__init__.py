"""The course library of *Attention in Computer Vision*.

One module per concern:

- ``utils.runtime``    device, seed, fast-mode and grading-mode helpers (one of each)
- ``utils.validate``   input checks that raise clear ``ValueError``s
- ``utils.functional`` NumPy building blocks of every mechanism (sigmoid, softmax, reweighting)
- ``utils.saliency``   the human-visual-system models of notebook 01 (Itti-Koch, spectral residual)
- ``utils.check``      exercise checkers (``fn = check.fn(fn)``), points, two-level hints; a
                       package with one module of exercises per notebook
- ``utils.measure``    peak memory and device names, shared by the benchmarks and checkers
- ``utils.gradcheck``  numerical gradient checking for NumPy backward passes
- ``utils.plotting``   the course's plot style and figure helpers
- ``utils.student``    the student-edition generator (``python -m utils.student``)
- ``utils.grade``      grades submitted notebooks (``python -m utils.grade``, ``make grade``)
- ``utils.workspace``  the learner's own copies in ``work/`` (``make lab`` runs it)
"""

__version__ = "0.1.0"
