"""Non-local means denoising (Buades, Coll & Morel, CVPR 2005), the idea behind non-local blocks.

Every pixel becomes a weighted average of the pixels around it whose *patches* look like its
own: y_i = sum_j w_ij x_j / sum_j w_ij with w_ij = exp(-max(d_ij^2 - 2 sigma^2, 0) / h^2), where
d_ij^2 is the mean squared difference between the patches centred on i and j. Distances
are computed for all pixels at once, one offset (j - i) at a time, with a box filter over
the squared differences: a loop over the (2 D + 1)^2 offsets of the search window.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .validate import as_float_array, positive_float, positive_int


def nlmeans_weights(d2: np.ndarray, h: float, sigma: float = 0.0) -> np.ndarray:
    """Patch-similarity weights exp(-max(d2 - 2 sigma^2, 0) / h^2), elementwise.

    d2: mean squared patch distances (any shape). Subtracting 2 sigma^2, the expected d2 of
    two noisy copies of the same patch, keeps identical patches at weight 1 despite noise.
    """
    d2 = as_float_array(d2, "d2")
    h = positive_float(h, "h")
    sigma = positive_float(sigma, "sigma", allow_zero=True)
    return np.exp(-np.maximum(d2 - 2 * sigma**2, 0.0) / h**2)


def nl_means(image: np.ndarray, *, patch_size: int = 7, patch_distance: int = 11,
             h: float = 0.1, sigma: float = 0.0) -> np.ndarray:
    """Non-local means of a grey image (H, W): patches of patch_size x patch_size pixels,
    searched within patch_distance pixels in each direction. Returns (H, W)."""
    image = as_float_array(image, "image", ndim=2, min_shape=(2, 2))
    patch_size = positive_int(patch_size, "patch_size")
    if patch_size % 2 == 0:
        raise ValueError(f"patch_size must be odd so that patches have a centre, got {patch_size}")
    reach = positive_int(patch_distance, "patch_distance")
    pad = reach + patch_size // 2
    padded = np.pad(image, pad, mode="reflect")
    height, width = image.shape
    core = padded[reach:reach + height + patch_size - 1, reach:reach + width + patch_size - 1]
    total = np.zeros_like(image)
    norm = np.zeros_like(image)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            shifted = padded[reach + dy:reach + dy + height + patch_size - 1,
                             reach + dx:reach + dx + width + patch_size - 1]
            d2 = ndimage.uniform_filter((core - shifted) ** 2, patch_size, mode="constant")
            half = patch_size // 2
            d2 = d2[half:half + height, half:half + width]
            w = nlmeans_weights(d2, h, sigma)
            total += w * shifted[half:half + height, half:half + width]
            norm += w
    return total / norm


def psnr(reference: np.ndarray, estimate: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio 10 log10(range^2 / MSE) in dB."""
    reference = as_float_array(reference, "reference")
    estimate = as_float_array(estimate, "estimate")
    if reference.shape != estimate.shape:
        raise ValueError(f"reference {reference.shape} and estimate {estimate.shape} must match")
    if reference.size == 0:
        raise ValueError("reference and estimate must not be empty")
    data_range = positive_float(data_range, "data_range")
    mse = np.mean((reference - estimate) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))
