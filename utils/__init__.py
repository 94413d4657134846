"""The course library of *Attention in Computer Vision*.

One module per concern:

- ``utils.runtime``    device, seed and fast-mode helpers (one of each)
- ``utils.validate``   input checks that raise clear ``ValueError``s
- ``utils.functional`` NumPy building blocks of every mechanism (sigmoid, softmax, reweighting)
- ``utils.saliency``   the human-visual-system models of notebook 01 (Itti-Koch, spectral residual)
- ``utils.check``      exercise checkers (``fn = check.something(fn)``)
- ``utils.gradcheck``  numerical gradient checking for NumPy backward passes
- ``utils.plotting``   the course's plot style and figure helpers
- ``utils.student``    the student-edition generator (``python -m utils.student``)
"""

__version__ = "0.1.0"
