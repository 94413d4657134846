"""Colour-blind safety of what notebook 01 shows: its search displays and the plot colours.

Colour-vision deficiencies are simulated with colorspacious (the model of Machado, Oliveira
& Fernandes 2009; severity 100 is the full dichromacy: deuteranopia, protanopia, tritanopia).
Differences are measured in CAM02-UCS (Luo, Cui & Li 2006), a perceptually uniform space:
J' is lightness, (a', b') the chromatic plane, and a Delta E of about 1 is just noticeable
side by side; the thresholds below ask for many times that.

The criteria, and why each one can fail:
- a pop-out target must stay a *colour* singleton: its distance from every distractor in the
  chromatic plane (a', b') must be at least CHROMA_MIN under every simulation. Lightness is
  left out on purpose, because a display that only a lightness difference rescues is no
  longer a colour display. The old red/green pair of the course fails it (below).
- every bar must stand out from its background (Delta E at least VISIBLE_MIN);
- line colours must be pairwise distinguishable (Delta E at least LINE_MIN) and the
  sequential colour map must keep its order of lightness under every simulation.
"""

import itertools

import matplotlib
import numpy as np
import pytest
from colorspacious import cspace_convert

from utils import saliency as S
from utils.plotting import LINE_COLOURS, SEQUENTIAL_CMAP

CVD = [None, "deuteranomaly", "protanomaly", "tritanomaly"]   # None: normal colour vision
CHROMA_MIN = 20.0     # CAM02-UCS units in the (a', b') plane
VISIBLE_MIN = 20.0    # Delta E, CAM02-UCS
LINE_MIN = 10.0       # Delta E, CAM02-UCS


def seen(rgb, cvd):
    """sRGB colour(s) in [0, 1] as a viewer with deficiency ``cvd`` sees them, in CAM02-UCS."""
    rgb = np.asarray(rgb, dtype=float)
    if cvd is not None:
        rgb = cspace_convert(rgb, {"name": "sRGB1+CVD", "cvd_type": cvd, "severity": 100},
                             "sRGB1")
    return cspace_convert(np.clip(rgb, 0, 1), "sRGB1", "CAM02-UCS")


def chroma_distance(a, b, cvd):
    """Distance in the chromatic plane (a', b') of CAM02-UCS: hue and colourfulness only."""
    return float(np.hypot(*(seen(a, cvd)[..., 1:] - seen(b, cvd)[..., 1:])))


def delta_e(a, b, cvd):
    return float(np.linalg.norm(seen(a, cvd) - seen(b, cvd)))


def pixel(image, place):
    """The colour drawn at a bar's centre (every bar covers its centre pixel fully)."""
    return image[int(round(place[0])), int(round(place[1]))]


def displays():
    """(name, image, target colour, distractor colours, background colour) of what 01 shows."""
    out = []
    for kind in ("colour", "conjunction"):
        image, target, items = S.search_array(kind, seed=1, size=256)
        colours = {tuple(pixel(image, (it.row, it.col))) for it in items}
        odd = tuple(pixel(image, target))
        # Conjunction distractors share the target's colour by design: compare colour classes.
        out.append((kind, odd, sorted(colours - {odd}), tuple(image[0, 0])))
    image, places = S.two_singleton_array(seed=3, size=256)
    odd = tuple(pixel(image, places["blue"]))
    centres = (np.arange(6) + 0.5) * 256 / 6                      # the 6 x 6 grid of bars
    others = {tuple(pixel(image, (r, c))) for r in centres for c in centres} - {odd}
    out.append(("two singletons", odd, sorted(others), tuple(image[0, 0])))
    return out


@pytest.mark.parametrize("cvd", CVD, ids=str)
@pytest.mark.parametrize("name, odd, others, background", displays(), ids=lambda v: str(v)[:14])
def test_search_targets_stay_a_different_colour_for_colour_blind_viewers(
        name, odd, others, background, cvd):
    assert others, name
    for colour in others:
        d = chroma_distance(odd, colour, cvd)
        assert d >= CHROMA_MIN, f"{name}, {cvd}: target {odd} vs {colour}: {d:.1f}"
    for colour in (odd, *others):
        d = delta_e(colour, background, cvd)
        assert d >= VISIBLE_MIN, f"{name}, {cvd}: bar {colour} on background: {d:.1f}"


def test_the_criterion_fails_for_red_against_green(monkeypatch):
    # The course's former colours (equal intensity, red and green) and pure red and green:
    # to a deuteranope each pair differs in lightness at most, not in colour.
    old = (0.9, 0.15, 0.15), (0.15, 0.9, 0.15)
    for red, green in [old, ((1, 0, 0), (0, 1, 0))]:
        assert chroma_distance(red, green, None) > 3 * CHROMA_MIN        # plain to most eyes
        assert chroma_distance(red, green, "deuteranomaly") < CHROMA_MIN / 4
        assert chroma_distance(red, green, "protanomaly") < CHROMA_MIN
    # The same check on the displays themselves fails when they are drawn in red and green.
    monkeypatch.setattr(S, "ORANGE", old[0])
    monkeypatch.setattr(S, "BLUE", old[1])
    for name, odd, others, background in displays():
        with pytest.raises(AssertionError, match="target"):
            test_search_targets_stay_a_different_colour_for_colour_blind_viewers(
                name, odd, others, background, "deuteranomaly")


def test_the_display_colours_keep_equal_intensity_for_the_model():
    # What makes the colour display a test of the colour channel in the model (not for the
    # eye: it weighs r, g, b unequally, so orange looks lighter than the grey, blue darker).
    assert np.mean(S.ORANGE) == pytest.approx(np.mean(S.BLUE)) == pytest.approx(0.4)


@pytest.mark.parametrize("cvd", CVD, ids=str)
def test_line_colours_stay_pairwise_distinguishable(cvd):
    rgb = matplotlib.colors.to_rgba_array(LINE_COLOURS)[:, :3]
    for a, b in itertools.combinations(range(len(rgb)), 2):
        d = delta_e(rgb[a], rgb[b], cvd)
        assert d >= LINE_MIN, f"{cvd}: {LINE_COLOURS[a]} vs {LINE_COLOURS[b]}: {d:.1f}"


def test_the_line_criterion_fails_for_matplotlibs_default_cycle():
    tab10 = matplotlib.colors.to_rgba_array(
        ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"])[:, :3]
    worst = min(delta_e(tab10[a], tab10[b], cvd)
                for a, b in itertools.combinations(range(6), 2) for cvd in CVD)
    assert worst < LINE_MIN


def lightness_order_kept(cmap_name, cvd):
    rgb = matplotlib.colormaps[cmap_name](np.linspace(0, 1, 64))[:, :3]
    return bool(np.all(np.diff(seen(rgb, cvd)[:, 0]) > 0))


@pytest.mark.parametrize("cvd", CVD, ids=str)
def test_the_sequential_colour_map_reads_by_lightness_alone(cvd):
    assert lightness_order_kept(SEQUENTIAL_CMAP, cvd)
    assert not lightness_order_kept("jet", cvd)       # a rainbow map does not
