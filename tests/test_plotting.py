"""The plot helpers label what they draw and refuse what they cannot draw."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from utils.plotting import LINE_COLOURS, map_grid, show_image, use_course_style  # noqa: E402


def test_show_image_titles_labels_and_adds_a_colour_bar():
    use_course_style()
    fig, ax = plt.subplots()
    show_image(ax, np.random.default_rng(0).random((4, 5)), "a map", colorbar=True,
               label="weight", pixels=(40, 50))
    assert ax.get_title() == "a map" and ax.get_xlabel() == "x (pixels)"
    assert ax.images[0].get_extent() == [-0.5, 49.5, 39.5, -0.5]
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "weight"
    plt.close(fig)


def test_constant_maps_say_what_they_hold_without_a_colour_scale():
    fig, (a, c) = plt.subplots(1, 2)
    show_image(a, np.zeros((3, 3)), "flat", colorbar=True)
    assert a.get_title() == "flat (all zero)"
    assert [t.get_text() for t in a.texts] == ["all zero"]
    assert len(fig.axes) == 3 and not fig.axes[2].get_visible()    # space kept, no scale
    show_image(c, np.full((3, 3), 0.25), "level")
    assert c.get_title() == "level (all 0.25)"
    plt.close(fig)


def test_overlays_draw_two_layers():
    fig, b = plt.subplots()
    show_image(b, np.ones((2, 2)), "overlay", background=np.zeros((8, 8)))
    assert len(b.images) == 2 and b.images[1].get_alpha() == 0.6
    plt.close(fig)


def test_the_course_style_sets_the_colour_blind_safe_defaults():
    use_course_style()
    cycle = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    assert cycle == list(LINE_COLOURS) and matplotlib.rcParams["image.cmap"] == "magma"


def test_bad_input_is_refused():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, 3\)"):
        show_image(ax, np.zeros(3), "x")
    with pytest.raises(ValueError, match="background must be a grey"):
        show_image(ax, np.zeros((2, 2)), "x", background=np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="at least one"):
        map_grid([])
    plt.close(fig)
