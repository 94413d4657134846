"""Notebook 01, Saliency and the human visual system: Itti-Koch-Niebur and the spectral residual."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .core import Case, check_exercise, exercise


@exercise(
    points=1,
    idea="the surround map is coarser than the centre map: bring it to the centre's size first, "
         "then take the point-by-point absolute difference.",
    hint="bring the coarse surround map up to the centre's shape with "
         "upsample(surround, center.shape), subtract it point by point, and take the "
         "absolute value.")
def center_surround(fn: Callable) -> Callable:
    """Notebook 01: |center - upsample(surround)| with ``saliency.upsample``."""
    from .. import saliency

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
    from .. import saliency

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
    from .. import saliency

    rng = np.random.default_rng(3)
    cases = [Case((rng.random((64, 64)),)), Case((rng.random((48, 64)),)),
             Case((saliency.search_array("colour", seed=0, size=64)[0].mean(axis=2),))]
    return check_exercise(
        fn, saliency.spectral_residual_raw, cases, title="spectral_residual", rtol=1e-6,
        atol=1e-9)
