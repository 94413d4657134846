"""The course's one plot style and the figure helpers the notebooks share.

Colours are chosen to survive colour-vision deficiencies (tests/test_colour_safety.py
simulates them): maps use the sequential ``magma``, whose lightness rises monotonically, so
values read the same without hue; lines cycle through the palette of Okabe & Ito (2008),
whose colours stay apart under red-green and blue-yellow colour blindness.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

# Okabe & Ito's colour-blind safe palette, by name (yellow is left out of the line cycle: it
# is too light to read on white).
OKABE_ITO = {"blue": "#0072B2", "orange": "#E69F00", "bluish green": "#009E73",
             "vermillion": "#D55E00", "reddish purple": "#CC79A7", "sky blue": "#56B4E9",
             "black": "#000000", "yellow": "#F0E442"}
LINE_COLOURS = tuple(OKABE_ITO[k] for k in ("blue", "orange", "bluish green", "vermillion",
                                            "reddish purple", "sky blue", "black"))
SEQUENTIAL_CMAP = "magma"      # values; lightness rises monotonically
DIVERGING_CMAP = "RdBu_r"      # signed values around 0: blue below, red above, white at 0

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
    "image.cmap": SEQUENTIAL_CMAP,
    "axes.prop_cycle": mpl.cycler(color=list(LINE_COLOURS)),
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
    A constant map says so in its title and on the panel ("all zero", "all 0.5") and gets no
    colour bar: a scale would suggest values that are not there.
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
    constant = image.ndim == 2 and np.ptp(image) == 0
    if constant:                                         # say what the map holds, in words
        value = image.flat[0]
        words = "all zero" if value == 0 else f"all {value:.3g}"
        drawn.set_cmap(mpl.colors.ListedColormap(["0.85"]))   # a neutral grey, no scale
        ax.text(0.5, 0.5, words, transform=ax.transAxes, ha="center", va="center",
                fontsize=13, color="black", bbox={"boxstyle": "round", "fc": "white"})
        title += f" ({words})"
    ax.set_title(title)
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    if colorbar and image.ndim == 2:
        bar = ax.figure.colorbar(drawn, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label(label)
        if constant:                 # keep the space (grids stay aligned), show no scale
            bar.ax.set_visible(False)


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


def learning_curves(results: dict, *, title: str = "") -> plt.Figure:
    """Learning curves of ``compare_models`` results: per epoch, the loss on the training and
    test sets and the test accuracy, each model's mean over seeds as a line (its own colour
    and marker, so the curves stay apart without colour) and the range over seeds shaded."""
    if not isinstance(results, dict) or not results or not all(
            isinstance(runs, list | tuple) and runs and all(getattr(r, "history", None)
                                                            for r in runs)
            for runs in results.values()):
        raise ValueError("results must map model names to runs with a history, as "
                         "compare_models returns (train_classifier(..., history=True))")
    panels = (("train_loss", "training loss"), ("test_loss", "test loss"),
              ("test_accuracy", "test accuracy"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.9), layout="constrained")
    markers = "osD^vP*Xh"
    for index, (name, runs) in enumerate(results.items()):
        for ax, (key, label) in zip(axes, panels, strict=True):
            curves = np.array([r.history[key] for r in runs])          # (seeds, epochs)
            epochs = np.arange(1, curves.shape[1] + 1)
            line, = ax.plot(epochs, curves.mean(axis=0), marker=markers[index % len(markers)],
                            ms=4, lw=1.6, label=name)
            if len(curves) > 1:
                ax.fill_between(epochs, curves.min(axis=0), curves.max(axis=0),
                                color=line.get_color(), alpha=0.15, lw=0)
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    axes[2].yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    axes[2].legend(fontsize=8, loc="lower right")
    n = {len(runs) for runs in results.values()}
    fig.suptitle((title + ": " if title else "") + f"mean over {'/'.join(map(str, sorted(n)))} "
                 "seeds (line) and range (band)", fontweight="bold")
    return fig


NO_SLIDERS = "No live notebook frontend here (a batch run)"  # how the batch line begins


def interact(function, /, *, fixed: dict | None = None, **sliders: tuple[int, int, int]) -> None:
    """Redraw ``function`` under integer sliders where a person's frontend can show them.

    ``sliders`` maps each argument of ``function`` to ``(start, low, high)``; ``fixed`` holds the
    arguments that stay as given. The sliders start only in a live frontend (JupyterLab,
    Jupyter Notebook: ``runtime.live_frontend()``); a batch run (nbconvert, nbval, grading)
    prints one line instead and starts no widget, so it cannot stall on one and the static
    figure above the cell stands.
    """
    from . import runtime

    if not callable(function):
        raise ValueError(f"function must be callable, got {type(function).__name__}")
    fixed = dict(fixed or {})
    for name, spec in sliders.items():
        integers = isinstance(spec, tuple) and len(spec) == 3 and all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) for v in spec)
        if not integers or not spec[1] <= spec[0] <= spec[2]:
            raise ValueError(f"slider {name!r} must be (start, low, high), three integers with "
                             f"low <= start <= high; got {spec!r}")
    overlap = sorted(set(fixed) & set(sliders))
    if overlap:
        raise ValueError(f"{overlap} are given both as sliders and in fixed; give each once")
    call = f"{getattr(function, '__name__', 'the function')}({', '.join(sliders)})"
    if not runtime.live_frontend():
        print(f"{NO_SLIDERS}: no sliders, and the figure above stands. In JupyterLab this "
              f"cell shows sliders; anywhere, call {call} yourself.")
        return
    try:
        import ipywidgets as widgets
    except ImportError:
        print(f"ipywidgets is not installed: call {call} yourself instead.")
        return
    controls = {name: widgets.IntSlider(value=int(start), min=int(low), max=int(high))
                for name, (start, low, high) in sliders.items()}
    controls.update({name: widgets.fixed(value) for name, value in fixed.items()})
    widgets.interact(function, **controls)
