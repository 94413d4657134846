"""NumPy building blocks that every attention mechanism in the course is made of.

The pattern is always the same: compute a *score*, *normalise* it into weights (sigmoid
for independent gates, softmax for a distribution), and *reweight* features with it.
"""

from __future__ import annotations

import numpy as np

from .validate import as_float_array, axis_index


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + e^-x), elementwise, without overflow for large |x|."""
    x = as_float_array(x, "x")
    # exp(-|x|) never overflows; the two branches are the same function.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``: exp(x_i - max x) / sum_j exp(x_j - max x).

    Subtracting the maximum changes nothing mathematically and keeps exp from overflowing.
    x: any shape with at least one dimension; the output has the same shape.
    """
    x = as_float_array(x, "x")
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension, got a scalar")
    axis = axis_index(axis, x.ndim)
    if x.shape[axis] == 0:
        raise ValueError(f"x must not be empty along axis {axis}, got shape {x.shape}")
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def reweight_channels(features: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Channel attention ("what"): scale each channel of ``features`` by its gain.

    features: (C, H, W) or (B, C, H, W); gains: (C,) or (B, C). Returns features' shape.
    """
    features = as_float_array(features, "features", ndim=(3, 4))
    gains = as_float_array(gains, "gains", ndim=(1, 2))
    expected = features.shape[:-2]
    if gains.shape != expected:
        raise ValueError(f"gains must have shape {expected} to match features {features.shape}, "
                         f"got {gains.shape}")
    return features * gains[..., None, None]


def reweight_positions(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spatial attention ("where"): scale every channel at each position by the map.

    features: (C, H, W) or (B, C, H, W); weights: (H, W) or (B, H, W). Returns features' shape.
    """
    features = as_float_array(features, "features", ndim=(3, 4))
    weights = as_float_array(weights, "weights", ndim=(2, 3))
    expected = features.shape[:-3] + features.shape[-2:]
    if weights.shape != expected:
        raise ValueError(f"weights must have shape {expected} to match features {features.shape}, "
                         f"got {weights.shape}")
    return features * weights[..., None, :, :]


def attention_pool(features: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Soft attention pooling: softmax the scores over positions, return the weighted mean.

    features: (C, H, W); scores: (H, W). Returns (C,) = sum_p softmax(scores)_p features[:, p].
    """
    features = as_float_array(features, "features", ndim=3)
    scores = as_float_array(scores, "scores", ndim=2)
    if scores.shape != features.shape[1:]:
        raise ValueError(f"scores must have shape {features.shape[1:]}, got {scores.shape}")
    weights = softmax(scores.reshape(-1))
    return features.reshape(features.shape[0], -1) @ weights
