"""The course's one plot style and the figure helpers the notebooks share."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

STYLE = {
    "figure.figsize": (9.0, 4.5),
    "figure.dpi": 100,
    "savefig.dpi": 120,
    "savefig.bbox": "tight",
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "image.cmap": "magma",
    "image.interpolation": "nearest",
    "legend.frameon": False,
}


def use_course_style() -> None:
    """Apply the course style to every later figure (call once, at the top of a notebook)."""
    mpl.rcParams.update(STYLE)


def show_image(ax: plt.Axes, image: np.ndarray, title: str, *, colorbar: bool = False,
               label: str = "", cmap: str | None = None,
               pixels: tuple[int, ...] | None = None,
               background: np.ndarray | None = None) -> None:
    """Draw an image or map on ``ax`` with a title, pixel axes and (for maps) a colour bar.

    image: (H, W) map or (H, W, 3) colour image. pixels: the (H, W, ...) shape of the image a
    coarser map covers, so that its axes read in that image's pixels. background: an (H, W)
    grey image to draw underneath, with the map half transparent on top (an overlay).
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (H, W, 3), got shape {image.shape}")
    if image.dtype == bool:                              # masks: False 0, True 1
        image = image.astype(float)
    if background is not None:
        if background.ndim != 2:
            raise ValueError(f"background must be a grey (H, W) image, got {background.shape}")
        ax.imshow(background, cmap="gray_r")
        pixels = pixels or background.shape
    extent = None if pixels is None else (-0.5, pixels[1] - 0.5, pixels[0] - 0.5, -0.5)
    drawn = ax.imshow(image, cmap=cmap if image.ndim == 2 else None, extent=extent,
                      alpha=0.6 if background is not None else None)
    if image.ndim == 2 and np.ptp(image) == 0:          # a constant map: show it as such
        drawn.set_clim(image.flat[0], image.flat[0] + 1)
        title += " (constant)"
    ax.set_title(title)
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    if colorbar and image.ndim == 2:
        bar = ax.figure.colorbar(drawn, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label(label)


def map_grid(maps: Sequence[tuple[str, np.ndarray]], *, cols: int = 4, size: float = 3.2,
             label: str = "value", suptitle: str = "",
             pixels: tuple[int, ...] | None = None) -> plt.Figure:
    """A grid of titled maps, each with its own colour bar. Returns the figure.

    pixels: the shape of the image the maps cover, so that every axis reads in its pixels.
    """
    if not maps:
        raise ValueError("maps must hold at least one (title, array) pair")
    rows = int(np.ceil(len(maps) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols * 1.15, size * rows),
                             squeeze=False, layout="constrained")
    for ax, (title, m) in zip(axes.flat, maps, strict=False):
        show_image(ax, m, title, colorbar=m.ndim == 2, label=label, pixels=pixels)
    for ax in axes.flat[len(maps):]:
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontweight="bold")
    return fig
