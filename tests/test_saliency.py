"""The saliency models of notebook 01: operators, the Itti-Koch model and spectral residual."""

import time

import numpy as np
import pytest

from utils import saliency as S


def test_pyramid_has_nine_dyadic_levels_and_keeps_constants():
    pyr = S.gaussian_pyramid(np.full((256, 200), 0.5))
    assert [p.shape for p in pyr] == [(256, 200), (128, 100), (64, 50), (32, 25), (16, 13),
                                      (8, 7), (4, 4), (2, 2), (1, 1)]
    assert all(np.allclose(p, 0.5) for p in pyr)


def test_blur_is_the_binomial_filter():
    x = np.zeros((9, 9))
    x[4, 4] = 1.0
    kernel = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256
    np.testing.assert_allclose(S.blur(x)[2:7, 2:7], kernel)


def test_upsample_keeps_constants_and_interpolates_linearly():
    np.testing.assert_allclose(S.upsample(np.full((2, 3), 7.0), (8, 12)), 7.0)
    ramp = S.upsample(np.array([[0.0, 1.0]]), (1, 4))
    np.testing.assert_allclose(ramp, [[0.0, 0.25, 0.75, 1.0]])
    with pytest.raises(ValueError, match="shape must be a pair"):
        S.upsample(np.zeros((2, 2)), (4,))


def test_center_surround_is_the_absolute_difference_at_the_fine_scale():
    rng = np.random.default_rng(0)
    c, s = rng.random((16, 12)), rng.random((4, 3))
    np.testing.assert_allclose(S.center_surround(c, s), np.abs(c - S.upsample(s, (16, 12))))
    with pytest.raises(ValueError, match="surround .* must be the coarser map"):
        S.center_surround(s, c)


def test_normalize_map_promotes_one_peak_over_many():
    one, many = np.zeros((20, 20)), np.zeros((20, 20))
    one[5, 5] = 1.0
    many[2::5, 2::5] = 1.0
    many[7, 7] = 1.1
    n_one, n_many = S.normalize_map(one), S.normalize_map(many)
    assert n_one.max() == pytest.approx(1.0)              # no other maxima: (M - 0)^2 = 1
    assert n_many.max() < 0.05                            # m_bar ~ 0.9: (1 - 0.9)^2 = 0.01
    np.testing.assert_array_equal(S.normalize_map(np.full((4, 4), 3.0)), 0.0)


def test_normalize_map_follows_its_three_steps():
    rng = np.random.default_rng(1)
    m = rng.random((10, 10)) * 4 - 1
    scaled = (m - m.min()) / np.ptp(m) * 2.0
    peaks = S.local_maxima(scaled, threshold=0.2)
    values = np.sort(scaled[peaks])[:-1]                  # drop the global maximum
    expected = scaled * (2.0 - values.mean()) ** 2
    np.testing.assert_allclose(S.normalize_map(m, M=2.0), expected)
    stack = np.stack([m, 2 * m + 5])                      # batches work map by map
    np.testing.assert_allclose(S.normalize_map(stack), S.normalize_map(m)[None].repeat(2, 0))


def test_the_floor_keeps_background_ripples_out_of_m_bar():
    rng = np.random.default_rng(3)
    m = 0.03 * rng.random((16, 16))
    m[4, 4] = m[11, 11] = 1.0                             # two equal peaks on faint ripples
    assert S.normalize_map(m).max() == pytest.approx(0.0, abs=1e-12)   # m_bar = M: off
    # Counting every ripple as a maximum lowers m_bar towards the ripples' height.
    assert S.normalize_map(m, floor=0.0).max() > 0.5
    with pytest.raises(ValueError, match=r"floor must be a fraction of M in \[0, 1\)"):
        S.normalize_map(m, floor=1.0)


def test_orange_and_blue_drive_different_colour_channels():
    # Blue drives only B (not G, so a blue item is one peak in one channel); orange drives R
    # and Y. Both have the intensity of the grey background of the colour displays.
    _, rgby = S.color_channels(np.array([[S.BLUE, S.ORANGE]]))
    np.testing.assert_array_equal(rgby[:, 0, 0] > 0, [False, False, True, False])
    np.testing.assert_array_equal(rgby[:, 0, 1] > 0, [True, False, False, True])
    assert np.mean(S.BLUE) == pytest.approx(0.4) and np.mean(S.ORANGE) == pytest.approx(0.4)


def test_color_channels_respond_to_their_colour_only():
    img = np.zeros((2, 2, 3))
    img[0, 0] = (1, 0, 0)
    img[0, 1] = (0, 1, 0)
    img[1, 0] = (0, 0, 1)
    img[1, 1] = (1, 1, 0)
    _, rgby = S.color_channels(img)
    winners = rgby.reshape(4, -1).argmax(axis=0)
    np.testing.assert_array_equal(winners, [0, 1, 2, 3])      # R, G, B, Y pixels


def test_gabor_channels_prefer_their_orientation():
    kernels = S.gabor_kernels()
    for k, angle in enumerate(S.ORIENTATIONS):
        bar = S.draw_bars([S.SearchItem(32, 32, angle, (1, 1, 1))], 64, 40, 3).mean(axis=2)
        energy = S.orientation_energy(bar, kernels)[:, 32, 32]
        assert energy.argmax() == k, (angle, energy)
    np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 0, atol=1e-12)


def test_itti_koch_computes_42_feature_maps_and_a_scale_four_saliency_map():
    image = S.search_array("colour", seed=0, size=256)[0]
    result = S.itti_koch(image)
    assert len(result.feature_maps) == 42
    prefixes = [name.split("(")[0] for name in result.feature_maps]
    assert prefixes.count("I") == 6 and prefixes.count("RG") + prefixes.count("BY") == 12
    assert sum(p.startswith("O") for p in prefixes) == 24
    assert result.saliency.shape == (16, 16)
    assert set(result.conspicuity) == {"intensity", "colour", "orientation"}


def target_found(image, target, saliency_map):
    peak = np.unravel_index(np.argmax(saliency_map), saliency_map.shape)
    row, col = S.map_to_pixels(peak, saliency_map.shape, image.shape[:2])
    return np.hypot(row - target[0], col - target[1]) < image.shape[0] / 12


@pytest.mark.parametrize("kind", ["colour", "orientation"])
@pytest.mark.parametrize("size", [256, 512])
def test_a_feature_singleton_is_the_saliency_maximum(kind, size):
    for seed in range(6):
        image, target, _ = S.search_array(kind, seed=seed, size=size)
        assert target_found(image, target, S.itti_koch(image).saliency), (kind, size, seed)


def test_pop_out_does_not_hinge_on_the_floor_of_n():
    for kind in ("colour", "orientation"):
        for seed in range(3):
            image, target, _ = S.search_array(kind, seed=seed, size=256)
            assert target_found(image, target, S.itti_koch(image, floor=0.0).saliency), kind


def test_a_conjunction_target_does_not_pop_out():
    found = [target_found(image, target, S.itti_koch(image).saliency)
             for image, target, _ in (S.search_array("conjunction", seed=s) for s in range(8))]
    assert sum(found) <= 2


def test_top_down_gains_change_the_winner():
    for seed in range(4):
        image, places = S.two_singleton_array(seed=seed, size=256)
        channels = S.channel_conspicuity(image)
        for task, gains in [("blue", {"blue": 10.0}), ("vertical", {"orientation_90": 10.0})]:
            sal = S.top_down_saliency(image, gains, channels=channels)
            assert target_found(image, places[task], sal), (seed, task)
    with pytest.raises(ValueError, match="unknown channel"):
        S.top_down_saliency(image, {"purple": 1.0}, channels=channels)
    with pytest.raises(ValueError, match="must not all be zero"):
        S.top_down_saliency(image, dict.fromkeys(S.TOP_DOWN_CHANNELS, 0.0), channels=channels)


def test_spectral_residual_raw_follows_the_recipe():
    rng = np.random.default_rng(2)
    img = rng.random((32, 48))
    f = np.fft.fft2(img)
    log_a = np.log(np.abs(f) + 1e-12)
    padded = np.pad(log_a, 1, mode="wrap")
    mean3 = sum(padded[1 + dy:33 + dy, 1 + dx:49 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
    expected = np.abs(np.fft.ifft2(np.exp(log_a - mean3 + 1j * np.angle(f)))) ** 2
    np.testing.assert_allclose(S.spectral_residual_raw(img), expected, rtol=1e-10)


def test_spectral_residual_is_single_scale_and_colour_blind():
    image, target, _ = S.search_array("orientation", seed=1, size=256)
    sal = S.spectral_residual(image)
    assert sal.shape == (64, 64) and sal.min() == 0 and sal.max() == 1
    # At a width that matches the spacing of the array (sigma scaled along) it finds them...
    for seed in range(5):
        image, target, _ = S.search_array("orientation", seed=seed, size=256)
        assert target_found(image, target, S.spectral_residual(image, width=96, sigma=3.75)), seed
    # ...but it sees only grey levels, so an isoluminant colour display is blank to it.
    image = S.search_array("colour", seed=0, size=256)[0]
    np.testing.assert_array_equal(S.spectral_residual(image), 0.0)


def test_scanpath_visits_distinct_places_in_order():
    sal = np.zeros((10, 10))
    sal[2, 2], sal[7, 7], sal[2, 8] = 3.0, 2.0, 1.0
    np.testing.assert_array_equal(S.scanpath(sal, fixations=3, radius=1.5),
                                  [[2, 2], [7, 7], [2, 8]])


@pytest.mark.parametrize("call, message", [
    (lambda: S.itti_koch(np.zeros((8, 8, 3))), "at least 16 pixels"),
    (lambda: S.itti_koch(np.zeros((64, 64, 4))), r"\(H, W\) or \(H, W, 3\)"),
    (lambda: S.itti_koch(np.full((64, 64, 3), 2.0)), r"values in \[0, 1\]"),
    (lambda: S.search_array("shape"), "kind must be one of"),
    (lambda: S.search_array("colour", target=99), "target must be a cell index"),
    (lambda: S.normalize_map(np.zeros(5)), "m must have 2 or 3 or 4 dimensions"),
    (lambda: S.normalize_map(np.zeros((3, 3)), M=0), "M must be a finite positive"),
    (lambda: S.itti_koch(np.zeros((32, 32)), floor=-0.1), "floor must be a finite non-negative"),
    (lambda: S.gabor_kernels(size=8), "size must be odd"),
    (lambda: S.spectral_residual_raw(np.zeros((2, 2))), "at least"),
    (lambda: S.draw_bars([], 32, length=0, width=2), "length must be a finite positive"),
    (lambda: S.map_to_pixels((1, 2, 3), (4, 4), (64, 64)), "position must be"),
    (lambda: S.scanpath(np.zeros((4, 4)), fixations=0), "fixations must be >= 1"),
])
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_itti_koch_on_a_512_photograph_is_fast_enough_to_be_interactive():
    from skimage import data

    image = data.astronaut()
    start = time.perf_counter()
    result = S.itti_koch(image)
    elapsed = time.perf_counter() - start
    assert result.saliency.shape == (32, 32)
    print(f"Itti-Koch, 512x512: {elapsed:.3f} s")   # reported, not asserted (budget: 2 s)
