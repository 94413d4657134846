"""Bottom-up saliency in NumPy: the human-visual-system models of notebook 01.

- Itti, Koch & Niebur (1998), "A model of saliency-based visual attention for rapid scene
  analysis", IEEE TPAMI 20(11): Gaussian pyramids, centre-surround differences, colour
  opponency, orientation, the normalisation operator N(.), conspicuity and saliency maps.
- Hou & Zhang (2007), "Saliency detection: a spectral residual approach", CVPR.
- Visual-search arrays (Treisman's pop-out displays) to test them on.

Maps are float64 arrays; functions that take maps also accept a stack ``(..., H, W)`` and
work on the last two axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

from .validate import as_float_array, image_array, positive_float, positive_int

PYRAMID_LEVELS = 9            # scales 0 (1:1) .. 8 (1:256)
CENTER_LEVELS = (2, 3, 4)     # c
DELTAS = (3, 4)               # s = c + delta
MAP_LEVEL = 4                 # conspicuity and saliency maps live at scale 4 (1:16)
FLAT_SPAN = 1e-9              # N(.) treats a map whose values span less than this as constant
ORIENTATIONS = (0, 45, 90, 135)

_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


# --------------------------------------------------------------------------- pyramids

def blur(x: np.ndarray) -> np.ndarray:
    """5-tap binomial low-pass filter [1 4 6 4 1]/16 along the last two axes (mirrored edges)."""
    x = as_float_array(x, "x", ndim=(2, 3, 4))
    pad = [(0, 0)] * (x.ndim - 2) + [(2, 2), (2, 2)]
    p = np.pad(x, pad, mode="symmetric")
    h, w = x.shape[-2:]
    rows = sum(k * p[..., i:i + h, :] for i, k in enumerate(_BINOMIAL))
    return sum(k * rows[..., :, i:i + w] for i, k in enumerate(_BINOMIAL))


def pyr_reduce(x: np.ndarray) -> np.ndarray:
    """One pyramid step: low-pass, then keep every other row and column.

    (..., H, W) -> (..., ceil(H/2), ceil(W/2)).
    """
    x = as_float_array(x, "x", ndim=(2, 3, 4))
    return blur(x)[..., ::2, ::2]


def gaussian_pyramid(x: np.ndarray, levels: int = PYRAMID_LEVELS) -> list[np.ndarray]:
    """Dyadic Gaussian pyramid [x, reduce(x), reduce(reduce(x)), ...] with ``levels`` entries.

    x: (..., H, W). A side that reaches one pixel stays one pixel.
    """
    x = as_float_array(x, "x", ndim=(2, 3, 4))
    levels = positive_int(levels, "levels")
    # Past the level where every side is one pixel, levels only repeat 1 x 1 maps: allow the
    # Itti-Koch scales (PYRAMID_LEVELS) at any size, and no more than that beyond them.
    most = max(PYRAMID_LEVELS, int(np.ceil(np.log2(max(x.shape[-2:])))) + 1)
    if levels > most:
        raise ValueError(f"levels must be at most {most} for a {x.shape[-2]} x {x.shape[-1]} "
                         f"input, got {levels}")
    pyramid = [x]
    for _ in range(levels - 1):
        pyramid.append(pyr_reduce(pyramid[-1]))
    return pyramid


def _reduce_to(x: np.ndarray, steps: int) -> np.ndarray:
    """Apply ``pyr_reduce`` ``steps`` times: moves a map ``steps`` scales down the pyramid."""
    for _ in range(positive_int(steps, "steps", minimum=0)):
        x = pyr_reduce(x)
    return x


def upsample(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear interpolation of ``x`` (..., h, w) to (..., H, W) = shape, pixel centres aligned.

    This is the "interpolation to the finer scale" of the centre-surround operator.
    """
    x = as_float_array(x, "x", ndim=(2, 3, 4))
    if (not isinstance(shape, tuple | list) or len(shape) != 2
            or not all(isinstance(s, int | np.integer) and s >= 1 for s in shape)):
        raise ValueError(f"shape must be a pair of positive integers (H, W), got {shape!r}")
    out = x
    for axis, size in ((-2, int(shape[0])), (-1, int(shape[1]))):
        n = out.shape[axis]
        src = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n - 1)
        w = src - i0
        lo, hi = np.take(out, i0, axis=axis), np.take(out, i1, axis=axis)
        w = w[:, None] if axis == -2 else w
        out = lo * (1 - w) + hi * w
    return out


# --------------------------------------------------------------------------- operators

def center_surround(center: np.ndarray, surround: np.ndarray) -> np.ndarray:
    """Centre-surround difference |center (-) surround|: upsample the coarse map, subtract, abs.

    center: (..., H, W) at the fine scale c; surround: (..., h, w) at the coarse scale s.
    Returns (..., H, W).
    """
    center = as_float_array(center, "center", ndim=(2, 3, 4))
    surround = as_float_array(surround, "surround", ndim=(2, 3, 4))
    if center.shape[:-2] != surround.shape[:-2]:
        raise ValueError(f"center {center.shape} and surround {surround.shape} must agree "
                         "in their leading axes")
    if surround.shape[-2] > center.shape[-2] or surround.shape[-1] > center.shape[-1]:
        raise ValueError(f"surround {surround.shape[-2:]} must be the coarser map, no larger "
                         f"than center {center.shape[-2:]}")
    return np.abs(center - upsample(surround, center.shape[-2:]))


def local_maxima(m: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Boolean mask of local maxima above ``threshold``: no larger value among the 8 neighbours.

    m: (..., H, W). Pixels outside the map count as -inf, so border pixels can be maxima.
    """
    m = as_float_array(m, "m", ndim=(2, 3, 4))
    pad = [(0, 0)] * (m.ndim - 2) + [(1, 1), (1, 1)]
    p = np.pad(m, pad, constant_values=-np.inf)
    h, w = m.shape[-2:]
    neighbours = np.stack([p[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
                           for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)])
    return (m >= neighbours.max(axis=0)) & (m > threshold)


def normalize_map(m: np.ndarray, M: float = 1.0, *, floor: float = 0.1) -> np.ndarray:
    """The map normalisation operator N(.) of Itti, Koch & Niebur (1998).

    1. rescale the map to the fixed range [0, M] (its minimum becomes 0, its global maximum
       M); a map whose values span less than 1e-9 is constant up to rounding and becomes
       zeros (rescaling would blow rounding noise up);
    2. m_bar = mean of the local maxima (``local_maxima``: no larger value among the 8
       neighbours) above ``floor * M``, leaving out the global maximum once; m_bar = 0 when
       no other maximum is left. The paper leaves open which maxima count; the floor keeps
       the tiny ripples of a flat background, which would lower m_bar towards their own
       height, out of the average (``floor=0`` counts every local maximum);
    3. multiply the rescaled map by (M - m_bar)^2.

    A map with one strong peak keeps it; a map with many comparable peaks is suppressed.
    m: (..., H, W); returns the same shape. floor: a fraction of M in [0, 1).
    """
    m = as_float_array(m, "m", ndim=(2, 3, 4))
    M = positive_float(M, "M")
    floor = positive_float(floor, "floor", allow_zero=True)
    if floor >= 1:
        raise ValueError(f"floor must be a fraction of M in [0, 1), got {floor}")
    lo = m.min(axis=(-2, -1), keepdims=True)
    span = m.max(axis=(-2, -1), keepdims=True) - lo
    scaled = np.divide(m - lo, span, out=np.zeros_like(m), where=span > FLAT_SPAN) * M
    peaks = local_maxima(scaled, threshold=floor * M)
    count = peaks.sum(axis=(-2, -1), keepdims=True)
    total = np.where(peaks, scaled, 0.0).sum(axis=(-2, -1), keepdims=True)
    # The global maximum (value M) is always one of the peaks of a non-constant map.
    others = count - 1
    m_bar = np.divide(total - M, others, out=np.zeros_like(total), where=others > 0)
    return scaled * (M - m_bar) ** 2


# --------------------------------------------------------------------------- features

def color_channels(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intensity I and the broadly tuned colour channels R, G, B, Y of the 1998 model.

    rgb: (H, W, 3) in [0, 1]. r, g, b are divided by I where I > max(I)/10 (elsewhere 0),
    then R = r - (g+b)/2, G = g - (r+b)/2, B = b - (r+g)/2, Y = (r+g)/2 - |r-g|/2 - b,
    negative values set to zero. Returns I: (H, W) and RGBY: (4, H, W).
    """
    rgb = image_array(rgb, "rgb")
    if rgb.ndim != 3:
        raise ValueError(f"rgb must be a colour image (H, W, 3), got shape {rgb.shape}")
    intensity = rgb.mean(axis=2)
    bright = intensity > intensity.max() / 10
    safe = np.where(bright, intensity, 1.0)
    r, g, b = (np.where(bright, rgb[..., k] / safe, 0.0) for k in range(3))
    channels = np.stack([r - (g + b) / 2, g - (r + b) / 2, b - (r + g) / 2,
                         (r + g) / 2 - np.abs(r - g) / 2 - b])
    return intensity, np.maximum(channels, 0.0)


def gabor_kernels(orientations: tuple[int, ...] = ORIENTATIONS, wavelength: float = 4.0,
                  sigma: float = 2.0, aspect: float = 0.5, size: int = 9) -> np.ndarray:
    """Complex Gabor filters tuned to bars at the given orientations (degrees, 0 = horizontal,
    90 = vertical, counter-clockwise). Returns (K, size, size), zero mean, unit L1 envelope.

    g(x, y) = e(x, y) (exp(2 pi i u / wavelength) - kappa) / sum(e), with u the coordinate
    across the bar, v along it, e = exp(-(u^2 + (aspect v)^2) / (2 sigma^2)) the Gaussian
    envelope and kappa the constant that makes g sum to zero. wavelength: period of the
    stripes across the bar (pixels); sigma: width of the envelope across the bar (pixels);
    aspect: across/along width ratio (0.5: the envelope is twice as long along the bar);
    size: the odd side of the kernel.
    """
    size = positive_int(size, "size")
    if size % 2 == 0:
        raise ValueError(f"size must be odd so the filter has a centre, got {size}")
    wavelength = positive_float(wavelength, "wavelength")
    sigma = positive_float(sigma, "sigma")
    aspect = positive_float(aspect, "aspect")
    angles = as_float_array(orientations, "orientations", ndim=1)
    if angles.size == 0:
        raise ValueError("orientations must hold at least one angle in degrees")
    half = size // 2
    rows, cols = np.mgrid[-half:half + 1, -half:half + 1].astype(float)
    x, y = cols, -rows                                   # y points up
    theta = np.deg2rad(angles)[:, None, None]
    along = x * np.cos(theta) + y * np.sin(theta)        # along the bar
    across = -x * np.sin(theta) + y * np.cos(theta)      # across the bar: the carrier runs here
    envelope = np.exp(-(across**2 + (aspect * along) ** 2) / (2 * sigma**2))
    carrier = np.exp(2j * np.pi * across / wavelength)
    kernels = envelope * carrier
    # Remove the response to uniform brightness, so that only oriented structure counts.
    kernels -= envelope * (kernels.sum(axis=(1, 2), keepdims=True)
                           / envelope.sum(axis=(1, 2), keepdims=True))
    return kernels / envelope.sum(axis=(1, 2), keepdims=True)


def orientation_energy(image: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """|image * kernel| for each kernel: phase-invariant Gabor energy. (H, W) -> (K, H, W)."""
    image = as_float_array(image, "image", ndim=2)
    kernels = np.asarray(kernels)
    if kernels.ndim != 3 or kernels.shape[1] != kernels.shape[2] or kernels.shape[1] % 2 == 0:
        raise ValueError(f"kernels must be (K, k, k) with odd k, as gabor_kernels returns, "
                         f"got shape {kernels.shape}")
    if not np.issubdtype(kernels.dtype, np.number):
        raise ValueError(f"kernels must hold numbers, got dtype {kernels.dtype}")
    half = kernels.shape[-1] // 2
    padded = np.pad(image, half, mode="symmetric")
    return np.abs(signal.fftconvolve(padded[None], kernels, mode="valid", axes=(1, 2)))


# --------------------------------------------------------------------------- the model

@dataclass
class IttiKochResult:
    """Everything the model computes. Maps at scale 4 have shape ceil(H/16) x ceil(W/16)."""

    saliency: np.ndarray                 # (h, w), S = (N(I) + N(C) + N(O)) / 3
    conspicuity: dict[str, np.ndarray]   # 'intensity', 'colour', 'orientation' -> (h, w)
    feature_maps: dict[str, np.ndarray]  # 42 maps, e.g. 'I(2,5)', 'RG(3,7)', 'O135(4,8)'


def _pairs() -> list[tuple[int, int]]:
    return [(c, c + d) for c in CENTER_LEVELS for d in DELTAS]


def _feature_pyramids(rgb: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Pyramids of every feature the models compare across scales, keyed by name."""
    rgb = image_array(rgb, "image", min_side=16)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    intensity, rgby = color_channels(rgb)
    i_pyr = gaussian_pyramid(intensity)
    c_pyr = gaussian_pyramid(rgby)
    kernels = gabor_kernels()
    # Orientation is only compared at scales 2..8; finer scales are never used.
    o_pyr = [None, None] + [orientation_energy(level, kernels) for level in i_pyr[2:]]
    features = {"I": i_pyr}
    for k, name in enumerate("RGBY"):
        features[name] = [level[k] for level in c_pyr]
    features["RG"] = [level[0] - level[1] for level in c_pyr]
    features["BY"] = [level[2] - level[3] for level in c_pyr]
    for k, theta in enumerate(ORIENTATIONS):
        features[f"O{theta}"] = [None if level is None else level[k] for level in o_pyr]
    return features


def _across_scale_sum(maps: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """The across-scale addition (+): reduce each (scale, map) to scale 4 and add."""
    return sum(_reduce_to(m, MAP_LEVEL - c) for c, m in maps)


def itti_koch(image: np.ndarray, *, floor: float = 0.1) -> IttiKochResult:
    """The bottom-up saliency model of Itti, Koch & Niebur (1998).

    image: (H, W, 3) colour or (H, W) grey, values in [0, 1] or an integer image; at least
    16 pixels on each side (256 or more gives all nine scales distinct pixels).
    floor: passed to every ``normalize_map`` (which local maxima count in m_bar).
    """
    floor = positive_float(floor, "floor", allow_zero=True)
    if floor >= 1:
        raise ValueError(f"floor must be a fraction of M in [0, 1), got {floor}")

    def N(m: np.ndarray) -> np.ndarray:  # noqa: N802 -- the paper's name for the operator
        return normalize_map(m, floor=floor)

    f = _feature_pyramids(image)
    maps: dict[str, np.ndarray] = {}
    for c, s in _pairs():
        maps[f"I({c},{s})"] = center_surround(f["I"][c], f["I"][s])
        # Double-opponent cells: centre-surround of the opponent signals R-G and B-Y.
        maps[f"RG({c},{s})"] = center_surround(f["RG"][c], f["RG"][s])
        maps[f"BY({c},{s})"] = center_surround(f["BY"][c], f["BY"][s])
        for theta in ORIENTATIONS:
            key = f"O{theta}"
            maps[f"{key}({c},{s})"] = center_surround(f[key][c], f[key][s])

    def pooled(prefixes: tuple[str, ...]) -> np.ndarray:
        return _across_scale_sum([(c, sum(N(maps[f"{p}({c},{s})"]) for p in prefixes))
                                  for c, s in _pairs()])

    conspicuity = {
        "intensity": pooled(("I",)),
        "colour": pooled(("RG", "BY")),
        "orientation": sum(N(pooled((f"O{theta}",))) for theta in ORIENTATIONS),
    }
    saliency = sum(N(m) for m in conspicuity.values()) / 3
    return IttiKochResult(saliency=saliency, conspicuity=conspicuity, feature_maps=maps)


TOP_DOWN_CHANNELS = ("intensity", "red", "green", "blue", "yellow",
                     "orientation_0", "orientation_45", "orientation_90", "orientation_135")


def channel_conspicuity(image: np.ndarray) -> dict[str, np.ndarray]:
    """One conspicuity map per feature channel (not opponent pairs), for top-down guidance.

    For each channel X in TOP_DOWN_CHANNELS: (+) over (c, s) of N(|X(c) (-) X(s)|), at scale 4.
    A blue target lights up the 'blue' map only; the opponent map BY of the 1998 model responds
    to blue and yellow alike.
    """
    f = _feature_pyramids(image)
    keys = dict(zip(TOP_DOWN_CHANNELS, ["I", "R", "G", "B", "Y"]
                    + [f"O{t}" for t in ORIENTATIONS], strict=True))
    return {name: _across_scale_sum([(c, normalize_map(center_surround(f[k][c], f[k][s])))
                                     for c, s in _pairs()])
            for name, k in keys.items()}


def top_down_saliency(image: np.ndarray, gains: dict[str, float] | None = None,
                      channels: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Saliency under a task: sum_k g_k N(C_k) / sum_k g_k over the channels of
    ``channel_conspicuity``; channels without a gain get 1 (no preference).

    Pass ``channels`` (from ``channel_conspicuity(image)``) to reuse them across tasks.
    """
    gains = dict(gains or {})
    unknown = set(gains) - set(TOP_DOWN_CHANNELS)
    if unknown:
        raise ValueError(f"gains has unknown channel(s) {sorted(unknown)}; "
                         f"expected names from {TOP_DOWN_CHANNELS}")
    g = {name: positive_float(gains.get(name, 1.0), f"gains[{name!r}]", allow_zero=True)
         for name in TOP_DOWN_CHANNELS}
    if sum(g.values()) == 0:
        raise ValueError("gains must not all be zero")
    if channels is None:
        channels = channel_conspicuity(image)
    return sum(g[k] * normalize_map(channels[k]) for k in TOP_DOWN_CHANNELS) / sum(g.values())


def scanpath(saliency: np.ndarray, fixations: int = 5, radius: float = 2.0) -> np.ndarray:
    """Winner-take-all with inhibition of return: the order in which attention visits a map.

    Repeatedly pick the maximum, then suppress a disc of ``radius`` (map pixels) around it.
    saliency: (h, w). Returns (fixations, 2) integer (row, col) positions.
    """
    s = as_float_array(saliency, "saliency", ndim=2).copy()
    fixations = positive_int(fixations, "fixations")
    if fixations > s.size:
        raise ValueError(f"fixations must be at most the number of map pixels ({s.size}), "
                         f"got {fixations}")
    radius = positive_float(radius, "radius")
    rows, cols = np.indices(s.shape)
    path = []
    for _ in range(fixations):
        r, c = np.unravel_index(np.argmax(s), s.shape)
        path.append((r, c))
        s[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] = -np.inf
    return np.array(path, dtype=int)


# --------------------------------------------------------------------------- spectral residual

def spectral_residual_raw(image: np.ndarray) -> np.ndarray:
    """The spectral residual saliency of Hou & Zhang (2007), before smoothing.

    A(f) = FFT(image), L = log|A|, P = angle(A), R = L - h3 * L (3x3 mean, wrapped around:
    the spectrum is periodic), saliency = |IFFT(exp(R + iP))|^2. image: (h, w) -> (h, w).
    """
    image = as_float_array(image, "image", ndim=2, min_shape=(3, 3))
    spectrum = np.fft.fft2(image)
    log_amplitude = np.log(np.abs(spectrum) + 1e-12)
    phase = np.angle(spectrum)
    residual = log_amplitude - ndimage.uniform_filter(log_amplitude, size=3, mode="wrap")
    return np.abs(np.fft.ifft2(np.exp(residual + 1j * phase))) ** 2


def spectral_residual(image: np.ndarray, width: int = 64, sigma: float = 2.5) -> np.ndarray:
    """Spectral residual saliency at the paper's working width (64 px), smoothed, in [0, 1].

    image: (H, W) or (H, W, 3). Returns (round(64 H / W), 64).
    """
    from skimage.transform import resize

    image = image_array(image, "image", min_side=8)
    width = positive_int(width, "width", minimum=8)
    sigma = positive_float(sigma, "sigma", allow_zero=True)
    grey = image.mean(axis=2) if image.ndim == 3 else image
    height = max(3, round(grey.shape[0] * width / grey.shape[1]))
    small = resize(grey, (height, width), anti_aliasing=True)
    if np.ptp(small) <= FLAT_SPAN:
        # A uniform image has no saliency; its log spectrum would be log(rounding noise).
        return np.zeros_like(small)
    # Zero padding outside the map, as in the authors' released code: the FFT treats the image
    # as periodic, so its borders are discontinuities that would otherwise look salient.
    s = ndimage.gaussian_filter(spectral_residual_raw(small), sigma, mode="constant")
    return (s - s.min()) / (np.ptp(s) or 1.0)


# --------------------------------------------------------------------------- stimuli

# Equal mean intensity I = (r + g + b) / 3 = 0.4, so that only colour tells the bars apart in
# the model. Orange and blue (close to the vermillion and blue of Okabe & Ito's colour-blind
# safe palette) differ along the blue-yellow axis that red-green colour-blind viewers keep,
# and in lightness too; tests/test_colour_safety.py checks them under simulated colour-vision
# deficiencies. Blue has g < (r + b) / 2, so it drives the model's B channel and not G.
ORANGE, BLUE, WHITE = (0.835, 0.365, 0.0), (0.02, 0.39, 0.79), (0.4, 0.4, 0.4)
SEARCH_KINDS = ("colour", "orientation", "conjunction")


@dataclass
class SearchItem:
    """One bar of a search array: centre (row, col) in pixels, orientation in degrees, RGB."""

    row: float
    col: float
    angle: float
    color: tuple[float, float, float]


def draw_bars(items: list[SearchItem], size: int, length: float, width: float,
              background: float = 0.0) -> np.ndarray:
    """Render anti-aliased bars on a uniform grey (size, size, 3) canvas (0 = black).

    length, width: bar size in pixels; background: grey level in [0, 1].
    """
    size = positive_int(size, "size")
    length, width = positive_float(length, "length"), positive_float(width, "width")
    if not 0.0 <= background <= 1.0:
        raise ValueError(f"background must be a grey level in [0, 1], got {background}")
    if not isinstance(items, list | tuple) or not all(isinstance(i, SearchItem) for i in items):
        kinds = ([type(i).__name__ for i in items] if isinstance(items, list | tuple)
                 else type(items).__name__)
        raise ValueError(f"items must be a list of SearchItem, got {kinds}")
    canvas = np.full((size, size, 3), float(background))
    reach = int(np.ceil(length / 2 + width)) + 1
    for it in items:
        r0, c0 = int(round(it.row)), int(round(it.col))
        rows, cols = np.mgrid[max(r0 - reach, 0):min(r0 + reach + 1, size),
                              max(c0 - reach, 0):min(c0 + reach + 1, size)]
        x, y = cols - it.col, -(rows - it.row)
        t = np.deg2rad(it.angle)
        along = np.clip(x * np.cos(t) + y * np.sin(t), -length / 2, length / 2)
        dist = np.hypot(x - along * np.cos(t), y - along * np.sin(t))
        cover = np.clip(width / 2 + 0.5 - dist, 0.0, 1.0)[..., None]
        patch = canvas[rows[0, 0]:rows[-1, 0] + 1, cols[0, 0]:cols[0, -1] + 1]
        patch[...] = patch * (1 - cover) + cover * np.asarray(it.color)
    return canvas


def search_array(kind: str, *, seed: int = 0, size: int = 256, grid: int = 6,
                 target: int | None = None, jitter: float = 0.0, bar_length: float = 0.55,
                 bar_width: float = 0.14,
                 ) -> tuple[np.ndarray, tuple[float, float], list[SearchItem]]:
    """A visual-search display: ``grid`` x ``grid`` bars, one of them the odd target.

    kind: 'colour' (an orange bar among blue, all at 45 degrees, of the same intensity as the
    grey background), 'orientation' (a 135-degree bar among 45-degree bars, grey on black) or
    'conjunction' (a blue 135-degree bar among blue 45-degree and orange 135-degree bars on
    black: no single feature singles it out).
    target: the target's cell index (row-major); None draws a non-corner cell from ``seed``.
    jitter: random offset of each bar, as a fraction of the cell. bar_length, bar_width:
    as fractions of the cell.
    Returns the image (size, size, 3) in [0, 1], the target centre (row, col) in pixels, and
    the items.
    """
    if kind not in SEARCH_KINDS:
        raise ValueError(f"kind must be one of {SEARCH_KINDS}, got {kind!r}")
    size = positive_int(size, "size", minimum=32)
    grid = positive_int(grid, "grid", minimum=2)
    if size < 8 * grid:
        raise ValueError(f"size must be at least 8 pixels per item (>= {8 * grid}), got {size}")
    rng = np.random.default_rng(seed)
    # The grid fills the canvas with half a gap at each border, so the mirrored borders of the
    # pyramid continue the texture. Random targets avoid the four corner cells: mirroring
    # surrounds a corner target with copies of itself (notebook 01 maps every position).
    corners = {0, grid - 1, grid * (grid - 1), grid * grid - 1}
    drawn = int(rng.choice([k for k in range(grid * grid) if k not in corners]))
    cell = size / grid
    if target is None:
        target = drawn
    elif not isinstance(target, int | np.integer) or not 0 <= target < grid * grid:
        raise ValueError(f"target must be a cell index in [0, {grid * grid}), got {target!r}")
    offsets = rng.uniform(-jitter, jitter, size=(grid * grid, 2)) * cell
    items = []
    for k in range(grid * grid):
        row = (k // grid + 0.5) * cell + offsets[k, 0]
        col = (k % grid + 0.5) * cell + offsets[k, 1]
        if kind == "colour":
            angle, color = 45.0, ORANGE if k == target else BLUE
        elif kind == "orientation":
            angle, color = (135.0 if k == target else 45.0), WHITE
        elif k == target:
            angle, color = 135.0, BLUE
        else:
            angle, color = (45.0, BLUE) if rng.random() < 0.5 else (135.0, ORANGE)
        items.append(SearchItem(row, col, angle, color))
    # In colour displays bars and background share one intensity I, so colour is the only
    # feature that differs anywhere for the model (as psychophysics isolates a channel with
    # isoluminant displays; the eye weighs r, g, b unequally, so to it orange looks lighter).
    background = float(np.mean(BLUE)) if kind == "colour" else 0.0
    image = draw_bars(items, size, length=bar_length * cell, width=bar_width * cell,
                      background=background)
    return image, (items[target].row, items[target].col), items


def two_singleton_array(*, seed: int = 0, size: int = 256, grid: int = 6,
                        ) -> tuple[np.ndarray, dict[str, tuple[float, float]]]:
    """A display with two odd items among orange 45-degree bars on black: a blue one (odd in
    colour) and an orange vertical one (odd in orientation), in two random non-corner cells.

    Returns the image (size, size, 3) and the centres {'blue': (row, col), 'vertical': ...}.
    """
    size = positive_int(size, "size", minimum=32)
    grid = positive_int(grid, "grid", minimum=3)
    rng = np.random.default_rng(seed)
    corners = {0, grid - 1, grid * (grid - 1), grid * grid - 1}
    blue, vertical = rng.choice([k for k in range(grid * grid) if k not in corners], 2,
                                replace=False)
    cell = size / grid
    items = [SearchItem((k // grid + 0.5) * cell, (k % grid + 0.5) * cell,
                        90.0 if k == vertical else 45.0, BLUE if k == blue else ORANGE)
             for k in range(grid * grid)]
    image = draw_bars(items, size, length=0.55 * cell, width=0.14 * cell)
    return image, {"blue": (items[blue].row, items[blue].col),
                   "vertical": (items[vertical].row, items[vertical].col)}


def map_to_pixels(position: tuple[float, float], map_shape: tuple[int, int],
                  image_shape: tuple[int, int]) -> tuple[float, float]:
    """Centre of map pixel ``position`` = (row, col) in the coordinates of the image.

    position: a (row, col) pair of numbers or of equal-length arrays; map_shape and
    image_shape: (H, W, ...) shapes of the map and of the image it covers.
    """
    if len(position) != 2 or len(map_shape) < 2 or len(image_shape) < 2:
        raise ValueError("position must be (row, col) and map_shape, image_shape at least "
                         f"(H, W); got {position!r}, {map_shape!r}, {image_shape!r}")
    if any(not isinstance(s, int | np.integer) or s < 1
           for s in (*map_shape[:2], *image_shape[:2])):
        raise ValueError(f"map_shape and image_shape must start with positive integers (H, W), "
                         f"got {map_shape!r} and {image_shape!r}")
    return tuple((p + 0.5) * image_shape[i] / map_shape[i] - 0.5
                 for i, p in enumerate(position))  # type: ignore[return-value]
