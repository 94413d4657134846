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


def test_learning_curves_draws_every_model_and_refuses_runs_without_history():
    import matplotlib.pyplot as plt
    import pytest

    from utils.plotting import learning_curves
    from utils.training import TrainResult

    def run(seed, acc):
        history = {"train_loss": [2.0, 1.0], "test_loss": [2.1, 1.2],
                   "train_accuracy": [0.3, 0.6], "test_accuracy": [0.2, acc]}
        return TrainResult(acc, np.zeros(1), [2.0, 1.0], 0.0, None, seed, history)

    fig = learning_curves({"a": [run(0, 0.5), run(1, 0.6)], "b": [run(0, 0.7), run(1, 0.8)]},
                          title="t")
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    assert len(lines) == 6                                   # 2 models x 3 panels
    acc_a = fig.axes[2].get_lines()[0].get_ydata()
    np.testing.assert_allclose(acc_a, [0.2, 0.55])           # the mean over seeds
    plt.close(fig)
    with pytest.raises(ValueError, match="runs with a history"):
        learning_curves({"a": [TrainResult(0.5, np.zeros(1), [], 0.0, None)]})
