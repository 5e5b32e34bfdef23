"""Colour: materials, procedural textures, shading and the colour camera's own flaws.

``shade`` turns a ``render.RenderResult`` into the uint8 RGB image a colour camera would
publish, aligned pixel for pixel with the rendered depth:

1. albedo per pixel from each object's ``Material``: a base colour, or a procedural texture
   (noise, blobs, stripes, checker, wood, fabric, gradient) mixing two colours, stuck to the
   surface by projecting the hit point on the plane facing its normal (a dominant-axis
   projection with a narrow blend at the seams), in the object's own frame when the
   material knows the object's pose (``Material.frame``), so textures move with objects;
2. skin: a per-hand tone between light and dark, subtle mottling and fine grain, darker
   creases where finger segments meet (``part`` changes inside one hand), and a cheap
   subsurface look (light wraps further around the terminator in red than in blue);
3. Lambertian shading under 1-3 random directional and point lights plus a sky-and-ground
   ambient term, a small Blinn-Phong highlight on glossy materials;
4. the camera: auto exposure, white balance error, vignetting, lens blur (always a little,
   sometimes defocus or motion blur), sRGB encoding, sensor noise, JPEG.

Everything is in linear RGB until the sRGB step. Pixels where nothing was hit show a
far textured backdrop, looked up by ray direction so that crops and full frames agree.

Textures are periodic tiles made once (FFT-filtered noise and friends, cached per kind and
variant, ~3 ms each on first use) and sampled with ``cv2.remap``: one lookup per pixel
instead of evaluating noise.

Cost (2 cores; ``python -m hand_pose_ros.synth.render`` prints it): ~24 ms to shade a 640x480
frame, ~10 ms for the light shadows of two lights. The pixels are grouped by object
and shaded in blocks that fit in cache, with planar float32 arrays and one small matrix
product for the lights of all three channels; image-sized buffers are reused (``scratch``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from hand_pose_ros.synth.render import NO_OBJECT, Renderer, RenderResult, scratch
from hand_pose_ros.synth.sensor import standard_normal_image

TEXTURE_KINDS: tuple[str, ...] = (
    "plain",
    "noise",
    "blobs",
    "stripes",
    "checker",
    "wood",
    "fabric",
    "gradient",
)
"""Procedural texture kinds a ``Material`` can have (besides ``"skin"``)."""
SKIN = "skin"

_TILE_PX = 256
_TILE_VARIANTS = 8
_LUT_SIZE = 4096
# Light shadows: grids coarser than the samples' (each twice the last) cast first, and
# rounds of casting guessed samples next to a change of value.
_SHADOW_LEVELS = 2
_SHADOW_REFINE_ROUNDS = 8
_KERNEL_3X3 = np.ones((3, 3), dtype=np.uint8)
# Highlights weaker than this are not computed (a matte surface).
_MIN_SPECULAR = 0.02


class AppearanceError(ValueError):
    """A material or configuration that cannot be shaded."""


# ----------------------------------------------------------------------------- materials


@dataclass(frozen=True, eq=False)
class Material:
    """How one object looks.

    Attributes:
        kind: ``"skin"`` or one of ``TEXTURE_KINDS``.
        color: linear RGB (3,) in 0..1, the base albedo.
        color2: linear RGB (3,), the pattern's second colour (unused by plain and skin).
        scale_m: metres per repeat of the pattern (a checker tile holds 4x4 squares).
        seed: picks the pattern's variant, turn and offset.
        specular: 0..1, strength of the highlight (skin ~0.05, plastic ~0.3, matte 0).
        shininess: Blinn-Phong exponent (larger: smaller, sharper highlight).
        frame: the object's pose ``(R (3, 3), t (3,))`` (object -> camera optical frame);
            given, the texture is computed in object coordinates and moves with the object.
    """

    kind: str = "plain"
    color: tuple[float, float, float] = (0.5, 0.5, 0.5)
    color2: tuple[float, float, float] = (0.25, 0.25, 0.25)
    scale_m: float = 0.2
    seed: int = 0
    specular: float = 0.0
    shininess: float = 20.0
    frame: tuple[np.ndarray, np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.kind != SKIN and self.kind not in TEXTURE_KINDS:
            raise AppearanceError(
                f"material kind {self.kind!r}: expected 'skin' or one of {TEXTURE_KINDS}"
            )
        if not (np.isfinite(self.scale_m) and self.scale_m > 0):
            raise AppearanceError(f"scale_m = {self.scale_m}: expected > 0 metres")

    @property
    def is_skin(self) -> bool:
        """True for skin (gets mottling, creases and subsurface wrap)."""
        return self.kind == SKIN


# Skin tones from very light to very dark, sRGB 0..255 (chosen by eye, all with R > G > B).
_SKIN_TONES_SRGB = np.array(
    [
        [240, 214, 198],
        [228, 194, 172],
        [210, 170, 144],
        [186, 144, 116],
        [156, 114, 90],
        [122, 86, 68],
        [90, 64, 52],
        [64, 46, 40],
    ],
    dtype=np.float64,
)


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """Linear RGB of sRGB values in 0..1 (the IEC 61966-2-1 curve)."""
    c = np.asarray(srgb, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """sRGB values in 0..1 of linear RGB (clipped to 0..1 first)."""
    c = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1.0 / 2.4) - 0.055)


def skin_color(tone: float) -> np.ndarray:
    """Linear RGB (3,) of a skin tone, 0 = very light .. 1 = very dark."""
    t = float(np.clip(tone, 0.0, 1.0)) * (len(_SKIN_TONES_SRGB) - 1)
    low = int(np.floor(t))
    high = min(low + 1, len(_SKIN_TONES_SRGB) - 1)
    srgb = _SKIN_TONES_SRGB[low] * (1 - (t - low)) + _SKIN_TONES_SRGB[high] * (t - low)
    return np.asarray(srgb_to_linear(srgb / 255.0))


def skin_material(rng: np.random.Generator, tone: float | None = None) -> Material:
    """A hand's skin: a tone (uniform over light..dark unless given), a little redness.

    The same hand should keep its material across frames (draw it once per hand).
    """
    tone = float(rng.uniform(0.0, 1.0)) if tone is None else float(tone)
    color = skin_color(tone)
    # Per person: brightness +-8 %, redness (more red, a little less green), saturation.
    color = color * rng.uniform(0.92, 1.08)
    redness = rng.uniform(0.0, 0.06)
    color = color * np.array([1.0 + redness, 1.0 - 0.4 * redness, 1.0 - 0.2 * redness])
    grey = color.mean()
    color = grey + (color - grey) * rng.uniform(0.85, 1.05)
    return Material(
        kind=SKIN,
        color=_rgb(np.clip(color, 0.002, 1.0)),
        color2=_rgb(np.clip(color * np.array([0.93, 0.85, 0.85]), 0.002, 1.0)),
        scale_m=0.04,
        seed=int(rng.integers(0, 2**31)),
        specular=float(rng.uniform(0.03, 0.08)),
        shininess=float(rng.uniform(10.0, 25.0)),
    )


def random_material(
    rng: np.random.Generator,
    *,
    kinds: tuple[str, ...] = TEXTURE_KINDS,
    frame: tuple[np.ndarray, np.ndarray] | None = None,
) -> Material:
    """A plausible prop or background material (walls, tables, boxes, bottles).

    Colours are drawn in HSV with muted saturation most of the time (real rooms are mostly
    greys, beiges and wood), the second colour near the first for most kinds.
    """
    kind = str(kinds[int(rng.integers(0, len(kinds)))])
    if kind == SKIN:
        return skin_material(rng)
    color = _random_color(rng)
    if kind in ("checker", "stripes") and rng.uniform() < 0.5:
        color2 = _random_color(rng)  # a contrasting pattern
    elif kind == "wood":
        color = srgb_to_linear(
            np.array([rng.uniform(0.45, 0.75), rng.uniform(0.3, 0.5), rng.uniform(0.15, 0.3)])
        )
        color2 = color * rng.uniform(0.45, 0.7)
    else:
        color2 = np.clip(color * rng.uniform(0.5, 0.85) + rng.normal(0, 0.02, 3), 0.002, 1)
    scale = {
        "plain": 0.5,
        "noise": rng.uniform(0.1, 0.8),
        "blobs": rng.uniform(0.1, 0.6),
        "stripes": rng.uniform(0.05, 0.4),
        "checker": rng.uniform(0.08, 0.5),
        "wood": rng.uniform(0.2, 0.6),
        "fabric": rng.uniform(0.02, 0.08),
        "gradient": rng.uniform(0.8, 3.0),
    }[kind]
    glossy = rng.uniform() < 0.3
    return Material(
        kind=kind,
        color=_rgb(color),
        color2=_rgb(color2),
        scale_m=float(scale),
        seed=int(rng.integers(0, 2**31)),
        specular=float(rng.uniform(0.15, 0.5)) if glossy else 0.0,
        shininess=float(rng.uniform(20.0, 80.0)) if glossy else 10.0,
        frame=frame,
    )


def _random_color(rng: np.random.Generator) -> np.ndarray:
    hue = rng.uniform(0.0, 1.0)
    saturation = rng.uniform(0.0, 0.25) if rng.uniform() < 0.7 else rng.uniform(0.3, 0.8)
    value = rng.uniform(0.25, 0.95)
    hsv = np.array([[[hue * 180.0, saturation * 255.0, value * 255.0]]], dtype=np.float32)
    srgb = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0] / 255.0
    return np.clip(srgb_to_linear(srgb), 0.002, 1.0)


def _rgb(values: np.ndarray) -> tuple[float, float, float]:
    r, g, b = (float(v) for v in np.asarray(values).reshape(3))
    return (r, g, b)


# ----------------------------------------------------------------------------- config


@dataclass(frozen=True)
class AppearanceConfig:
    """Distributions of lighting and camera effects (each drawn per ``shade`` call).

    Attributes:
        lights: (min, max) number of lights besides the ambient term.
        point_light_probability: chance that a light is a point light (else directional).
        ambient: (min, max) ambient level relative to a light of intensity 1.
        light_intensity: (min, max) per light.
        light_warmth: (min, max) colour temperature mix, -1 cool (bluish) .. 1 warm.
        exposure_target: (min, max) mean linear brightness auto exposure aims for.
        exposure_jitter: standard deviation of the exposure error, in stops (log2).
        white_balance_jitter: standard deviation of the red and blue gains (green = 1).
        blur_sigma_px: (min, max) Gaussian blur always applied (lens, demosaicing).
        defocus_probability, defocus_sigma_px: chance and (min, max) extra blur.
        motion_blur_probability, motion_blur_px: chance and (min, max) blur length.
        vignetting: (min, max) brightness loss at the image corners.
        noise_codes: (min, max) standard deviation of the sensor noise in 8-bit sRGB
            codes (shot noise is nearly signal-independent after the sRGB curve).
        jpeg_probability, jpeg_quality: chance of JPEG compression and its (min, max)
            quality.
    """

    lights: tuple[int, int] = (1, 3)
    point_light_probability: float = 0.35
    ambient: tuple[float, float] = (0.12, 0.45)
    light_intensity: tuple[float, float] = (0.6, 1.4)
    light_warmth: tuple[float, float] = (-0.6, 0.8)
    exposure_target: tuple[float, float] = (0.14, 0.26)
    exposure_jitter: float = 0.3
    white_balance_jitter: float = 0.05
    blur_sigma_px: tuple[float, float] = (0.45, 0.75)
    defocus_probability: float = 0.15
    defocus_sigma_px: tuple[float, float] = (0.8, 2.0)
    motion_blur_probability: float = 0.1
    motion_blur_px: tuple[float, float] = (3.0, 9.0)
    vignetting: tuple[float, float] = (0.0, 0.3)
    noise_codes: tuple[float, float] = (0.8, 3.5)
    jpeg_probability: float = 0.8
    jpeg_quality: tuple[int, int] = (60, 95)


@dataclass(frozen=True)
class Light:
    """One light. ``direction`` points from the surface towards a directional light;
    ``position`` (metres, optical frame) makes it a point light instead."""

    color: tuple[float, float, float]
    intensity: float
    direction: tuple[float, float, float] | None = None
    position: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class Lighting:
    """The lights of a frame (keep one across the frames of a sequence)."""

    lights: tuple[Light, ...]
    ambient: tuple[float, float, float]


def random_lighting(rng: np.random.Generator, config: AppearanceConfig | None = None) -> Lighting:
    """1-3 lights mostly from above and from the camera's side, and an ambient colour."""
    config = config or AppearanceConfig()
    lights = []
    for _ in range(int(rng.integers(config.lights[0], config.lights[1] + 1))):
        color = _light_color(float(rng.uniform(*config.light_warmth)))
        intensity = float(rng.uniform(*config.light_intensity))
        if rng.uniform() < config.point_light_probability:
            # Somewhere above and in front of the scene, up to ~1.5 m away.
            position = (rng.uniform(-1.0, 1.0), rng.uniform(-1.5, 0.0), rng.uniform(-0.5, 0.8))
            lights.append(Light(_rgb(color), intensity, position=_rgb(np.array(position))))
        else:
            # Optical frame: -y is up, -z towards the camera.
            direction = rng.normal([0.0, -0.6, -0.7], [0.6, 0.3, 0.35])
            direction[2] = min(direction[2], 0.2)
            direction /= np.linalg.norm(direction)
            lights.append(Light(_rgb(color), intensity, direction=_rgb(direction)))
    ambient = _light_color(float(rng.uniform(-0.8, 0.3))) * rng.uniform(*config.ambient)
    return Lighting(tuple(lights), _rgb(ambient))


def _light_color(warmth: float) -> np.ndarray:
    """Linear RGB of unit luminance between cool (-1) and warm (+1) white."""
    warm = np.array([1.0, 0.82, 0.62])
    cool = np.array([0.82, 0.92, 1.0])
    color = np.array([1.0, 1.0, 1.0]) + max(warmth, 0.0) * (warm - 1) + max(-warmth, 0) * (cool - 1)
    return color / float(color @ np.array([0.2126, 0.7152, 0.0722]))


# ----------------------------------------------------------------------------- textures


@lru_cache(maxsize=_TILE_VARIANTS * len(TEXTURE_KINDS) + 8)
def _tile(kind: str, variant: int) -> np.ndarray:
    """(256, 256) float32 in 0..1, periodic in both directions (cached, read-only)."""
    rng = np.random.default_rng(1_000 + 37 * TEXTURE_KINDS.index(kind) + variant)
    n = _TILE_PX
    x = np.arange(n, dtype=np.float64)[None, :] / n  # 0..1, one period
    y = np.arange(n, dtype=np.float64)[:, None] / n
    if kind == "plain":
        tile = 0.5 + 0.5 * _normalised(_fbm(rng, 2.0, 8.0))  # used as a +-3 % variation
    elif kind == "noise":
        tile = 0.5 + 0.22 * _normalised(_fbm(rng, rng.uniform(1.6, 2.4), 2.0))
    elif kind == "blobs":
        smooth = _normalised(_fbm(rng, 3.0, 3.0))
        edge = rng.uniform(0.15, 0.5)
        tile = _smoothstep(-edge, edge, smooth - rng.uniform(-0.5, 0.5))
    elif kind == "stripes":
        count = int(rng.integers(3, 12))
        warp = 0.02 * _normalised(_fbm(rng, 2.5, 2.0))
        wave = np.sin(2 * np.pi * (count * x + warp * count)) + 0 * y
        duty = rng.uniform(-0.5, 0.5)
        tile = _smoothstep(-0.15, 0.15, wave + duty)
    elif kind == "checker":
        # 4 x 4 squares, edges softened over ~1.5 tile pixels (periodic by construction).
        product = np.sin(2 * np.pi * 2 * x) * np.sin(2 * np.pi * 2 * y)
        tile = _smoothstep(-0.06, 0.06, product)
    elif kind == "wood":
        rings = int(rng.integers(6, 14))
        warp = _normalised(_fbm(rng, 2.2, 1.5))
        grain = _normalised(_fbm(rng, 1.0, 40.0))
        phase = rings * (y + 0.06 * warp) + 0 * x
        tile = 0.5 + 0.5 * np.sin(2 * np.pi * phase) ** 3 + 0.08 * grain
    elif kind == "fabric":
        threads = int(rng.integers(10, 24))
        weave = np.sin(2 * np.pi * threads * x) * np.sin(2 * np.pi * threads * y)
        tile = 0.5 + 0.35 * weave + 0.1 * _normalised(_fbm(rng, 1.5, 6.0))
    elif kind == "gradient":
        # One ramp up and down per period (a mirrored ramp is periodic without a seam).
        angle = rng.uniform(0, 2 * np.pi)
        u = (np.cos(angle) * x + np.sin(angle) * y) % 1.0
        tile = np.abs(2.0 * u - 1.0) + 0.03 * _normalised(_fbm(rng, 2.0, 4.0))
    else:  # pragma: no cover - guarded by Material
        raise AppearanceError(f"unknown texture kind {kind!r}")
    tile = np.clip(np.asarray(tile, dtype=np.float32), 0.0, 1.0)
    tile.flags.writeable = False
    return tile


def _fbm(rng: np.random.Generator, slope: float, low_cut: float) -> np.ndarray:
    """Periodic fractal noise: white noise shaped to a 1/f^slope spectrum by FFT.

    Real FFTs (half the spectrum; the gain is symmetric) and a log-domain power: a tile's
    noise costs ~1 ms instead of ~4 (tiles are made on first use, inside a frame).
    """
    n = _TILE_PX
    white = rng.standard_normal((n, n))
    gain = np.exp(-(slope / 2.0 + 0.5) * np.log(np.maximum(_frequency_radius(), low_cut)))
    gain[0, 0] = 0.0
    return np.fft.irfft2(np.fft.rfft2(white) * gain, s=(n, n))


@lru_cache(maxsize=1)
def _frequency_radius() -> np.ndarray:
    """(256, 129) |frequency| in cycles per tile of the half spectrum ``rfft2`` gives."""
    rows = np.fft.fftfreq(_TILE_PX) * _TILE_PX
    columns = np.fft.rfftfreq(_TILE_PX) * _TILE_PX
    radius = np.sqrt(columns[None, :] ** 2 + rows[:, None] ** 2)
    radius.flags.writeable = False
    return radius


def _normalised(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / max(float(values.std()), 1e-12) / 2.5


def _smoothstep(low: float, high: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - low) / (high - low), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _sample_tile(tile: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(N,) bilinear samples of a periodic tile at tile coordinates (periods) s, t."""
    count = len(s)
    if not count:
        return np.zeros(0, dtype=np.float32)
    n = np.float32(tile.shape[0])
    # cv2.remap wants maps under 32767 a side: lay the N samples out in rows of 1024, and
    # wrap the coordinates into one period (remap's fixed point saturates beyond 32767).
    columns = 1024
    rows = -(-count // columns)
    maps = np.empty((2, rows * columns), dtype=np.float32)
    for k, coordinate in enumerate((s, t)):
        wrapped = maps[k, :count]
        np.floor(coordinate, out=wrapped)
        np.subtract(coordinate, wrapped, out=wrapped)
        wrapped *= n
    maps[:, count:] = 0.0
    values = cv2.remap(
        tile,
        maps[0].reshape(rows, columns),
        maps[1].reshape(rows, columns),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_WRAP,
    )
    return np.asarray(values.reshape(-1)[:count])


@lru_cache(maxsize=1024)
def _pattern_placement(seed: int) -> tuple[float, float, float, float]:
    """cos and sin of a pattern's turn and its (s, t) offset in periods, from its seed."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi)
    offset = rng.uniform(0, 1, size=2)
    return float(np.cos(angle)), float(np.sin(angle)), float(offset[0]), float(offset[1])


_Planes = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Three (N,) float32 arrays: the x, y and z of N vectors (numpy is several times faster on
flat arrays than on (N, 3) ones)."""


def _projected_pattern(
    tile: np.ndarray,
    material: Material,
    u: np.ndarray,
    v: np.ndarray,
    axis: int,
    periods: tuple[float, ...],
) -> list[np.ndarray]:
    """Pattern values (one (N,) array per period) of points projected along ``axis``, with
    (u, v) their other two coordinates in metres."""
    cos, sin, offset_s, offset_t = _pattern_placement(material.seed)
    values = []
    for period in periods:
        # Tile coordinates (periods): the turned (u, v) over the period, plus the offset;
        # one OpenCV pass each instead of five numpy ones.
        scale = 1.0 / period
        s = cv2.addWeighted(u, cos * scale, v, -sin * scale, offset_s + 0.37 * axis)
        t = cv2.addWeighted(u, sin * scale, v, cos * scale, offset_t)
        values.append(_sample_tile(tile, s.reshape(-1), t.reshape(-1)))
    return values


def _material_pattern(
    material: Material,
    points: _Planes,
    normals: _Planes,
    periods_m: tuple[float, ...] | None = None,
) -> list[np.ndarray]:
    """Pattern values 0..1 of a material's texture at surface points, one (N,) array per
    period in ``periods_m`` (default: just ``material.scale_m``).

    Args:
        points, normals: planar float32 (x, y, z), optical frame.

    Each point is projected along its normal's dominant axis; within 0.1 of a tie the two
    projections are blended, which hides the seam on curved objects.
    """
    kind = "noise" if material.is_skin else material.kind
    tile = _tile(kind, material.seed % _TILE_VARIANTS)
    periods = (material.scale_m,) if periods_m is None else periods_m
    if material.frame is not None:
        rotation = np.asarray(material.frame[0], dtype=np.float32).reshape(3, 3)
        translation = np.asarray(material.frame[1], dtype=np.float32).reshape(3, 1)
        # Object coordinates: R^T (p - t), R^T n.
        local = rotation.T @ (np.stack(points) - translation)
        turned = rotation.T @ np.stack(normals)
        points = (local[0], local[1], local[2])
        normals = (turned[0], turned[1], turned[2])
    magnitude = [np.abs(component) for component in normals]
    # Elementwise maximum: numpy's reduction over a leading axis of 3 is ten times slower.
    threshold = np.maximum(np.maximum(magnitude[0], magnitude[1]), magnitude[2])
    threshold -= np.float32(0.1)
    count = len(threshold)
    near = [magnitude[axis] > threshold for axis in range(3)]
    chosen_counts = [int(np.count_nonzero(mask)) for mask in near]
    totals = [np.zeros(count, dtype=np.float32) for _ in periods]
    weight_sum = np.zeros(count, dtype=np.float32)
    for axis in range(3):
        if not chosen_counts[axis]:
            continue
        a, b = [k for k in range(3) if k != axis]
        if chosen_counts[axis] == count:
            # Every point projects along this axis (a flat face): no gathers.
            chosen: slice | np.ndarray = slice(None)
            if sum(chosen_counts) == count:
                # ... and along no other: nothing to blend.
                return _projected_pattern(tile, material, points[a], points[b], axis, periods)
            weight = (magnitude[axis] - threshold) * np.float32(10.0)
        else:
            chosen = np.flatnonzero(near[axis])
            weight = (magnitude[axis][chosen] - threshold[chosen]) * np.float32(10.0)
        values = _projected_pattern(
            tile, material, points[a][chosen], points[b][chosen], axis, periods
        )
        for total, value in zip(totals, values, strict=True):
            total[chosen] += weight * value
        weight_sum[chosen] += weight
    inverse = np.float32(1.0) / np.maximum(weight_sum, np.float32(1e-6))
    return [total * inverse for total in totals]


# ----------------------------------------------------------------------------- shading

# Pixels are shaded in blocks of at most this many pixels of one object: every temporary
# (~130 kB) then stays in cache and is recycled by malloc, where whole-frame (3, H * W)
# temporaries would be fresh memory each time (page faults: ~0.5 ms per MB here).
_SHADE_BLOCK = 32768
# The skin's subsurface look: light wraps this far past the terminator (n . l down to -w)
# in red, green and blue.
_SKIN_WRAP = (0.35, 0.18, 0.12)


def shade(
    result: RenderResult,
    materials: dict[int, Material],
    rng: np.random.Generator,
    config: AppearanceConfig | None = None,
    *,
    lighting: Lighting | None = None,
    backdrop: Material | None = None,
    shadows: list[np.ndarray] | None = None,
) -> np.ndarray:
    """The colour camera's image of a render.

    Args:
        result: a full frame or a crop window (pixel-sized effects are scaled by its
            ``crop_to_image``).
        materials: object id -> material; objects without one are matte grey.
        rng: the only source of randomness (lights, backdrop, camera effects): the same
            generator state gives the same image.
        config: distributions of the random effects.
        lighting: the lights to use (default: ``random_lighting(rng, config)``).
        backdrop: the material of the far backdrop where nothing was hit (default: a
            random one).
        shadows: per light of ``lighting``, an (H, W) mask (bool, or float 0..1) of how
            much of it each pixel does not get (``light_shadows``); without it nothing
            casts shadows.

    Returns:
        shape (H, W, 3) uint8 RGB.
    """
    config = config or AppearanceConfig()
    lighting = lighting or random_lighting(rng, config)
    backdrop = backdrop or random_material(rng, kinds=("noise", "blobs", "gradient", "plain"))
    height, width = result.depth.shape
    if shadows is not None and (
        len(shadows) != len(lighting.lights)
        or any(np.shape(mask) != (height, width) for mask in shadows)
    ):
        raise AppearanceError(
            f"shadows: expected {len(lighting.lights)} masks of shape {(height, width)}"
        )
    pixel_scale = float(np.sqrt(abs(np.linalg.det(np.asarray(result.crop_to_image)[:, :2]))))
    # Planar (3, H * W) linear radiance until the camera stage.
    linear = scratch("shade.linear", (3, height * width))
    _shade_pixels(result, materials, lighting, backdrop, pixel_scale, shadows, linear)
    return _camera(linear.reshape(3, height, width), result, rng, config, pixel_scale)


@dataclass
class _Inputs:
    """A render's per-pixel inputs of shading, as flat arrays in the order of the pixels
    grouped by object (``order``), so that a block of pixels is a slice of each."""

    order: np.ndarray  # (H * W,) flat image pixel of each entry
    depth: np.ndarray
    normal: _Planes
    ray_x: np.ndarray
    ray_y: np.ndarray
    part: np.ndarray  # in image order (only skin needs it)
    shadows: list[np.ndarray | None]  # per light, float32 0..1, or None
    crease: _Crease | None


class _Block:
    """One block of pixels of one object: a slice of the grouped pixels and its planar
    geometry (the view directions only made when asked for)."""

    def __init__(self, inputs: _Inputs, block: slice) -> None:
        self.slice = block
        self.pixels = inputs.order[block]
        self._ray_x = inputs.ray_x[block]
        self._ray_y = inputs.ray_y[block]
        depth = inputs.depth[block]
        # Rays are (x/z, y/z, 1): the hit point is ray * depth.
        self.point: _Planes = (self._ray_x * depth, self._ray_y * depth, depth)
        self.normal: _Planes = (
            inputs.normal[0][block],
            inputs.normal[1][block],
            inputs.normal[2][block],
        )
        self._view: _Planes | None = None

    @property
    def view(self) -> _Planes:
        """Unit vectors towards the camera."""
        if self._view is None:
            x, y = self._ray_x, self._ray_y
            inverse_length = np.float32(-1.0) / np.sqrt(x * x + y * y + np.float32(1.0))
            self._view = (x * inverse_length, y * inverse_length, inverse_length)
        return self._view


def _shade_pixels(
    result: RenderResult,
    materials: dict[int, Material],
    lighting: Lighting,
    backdrop: Material,
    pixel_scale: float,
    shadows: list[np.ndarray] | None,
    linear: np.ndarray,
) -> None:
    """Fill planar ``linear`` (3, H * W) with the linear radiance of every pixel.

    The pixels are grouped by object (one stable radix sort of small labels) and every
    per-pixel input gathered once in that order, so that each object's material is applied
    to a run of pixels, in blocks of ``_SHADE_BLOCK`` (slices, no gathers per block); the
    radiance is put back in image order at the end.
    """
    height, width = result.depth.shape
    size = height * width
    order, groups = _pixel_groups(result.object_id.reshape(-1))
    terms = _ray_terms(result.rays)
    # Rows: ray x, ray y, depth, normal x, y, z, then each light's shadow.
    grouped = [scratch(f"shade.grouped.{k}", (size,)) for k in range(6 + len(lighting.lights))]
    sources = [terms.x, terms.y, np.asarray(result.depth, np.float32).reshape(-1)]
    if shadows is not None:
        sources += [np.asarray(mask, np.float32).reshape(-1) for mask in shadows]
    for source, target in zip(sources, [*grouped[:3], *grouped[6:]], strict=False):
        # mode="wrap" skips the bounds check: every index is a pixel.
        np.take(source, order, out=target, mode="wrap")
    # Normals: whole (x, y, z) rows gathered at once, then split into planes.
    normal_rows = np.take(
        np.asarray(result.normal, np.float32).reshape(-1, 3),
        order,
        axis=0,
        out=scratch("shade.normal_rows", (size, 3)),
        mode="wrap",
    )
    for k in range(3):
        np.copyto(grouped[3 + k], normal_rows[:, k])
    default = Material()
    skin_slices = [
        block for key, block in groups if key != NO_OBJECT and materials.get(key, default).is_skin
    ]
    inputs = _Inputs(
        order=order,
        depth=grouped[2],
        normal=(grouped[3], grouped[4], grouped[5]),
        ray_x=grouped[0],
        ray_y=grouped[1],
        part=np.ascontiguousarray(result.part).reshape(-1),
        shadows=[
            grouped[6 + number] if shadows is not None else None
            for number in range(len(lighting.lights))
        ],
        crease=_Crease(result, [order[b] for b in skin_slices], pixel_scale)
        if skin_slices
        else None,
    )
    radiance = scratch("shade.radiance", (3, size))
    for key, run in groups:
        for start in range(run.start, run.stop, _SHADE_BLOCK):
            block = slice(start, min(start + _SHADE_BLOCK, run.stop))
            if key == NO_OBJECT:
                colour = _backdrop(backdrop, inputs.ray_x[block], inputs.ray_y[block], lighting)
            else:
                material = materials.get(key, default)
                colour = _shade_block(_Block(inputs, block), inputs, material, lighting)
            radiance[:, block] = colour
    # Back to image order: a gather by the inverse permutation is several times faster
    # than a scatter by the permutation.
    inverse = scratch("shade.inverse", (size,), np.intp)
    inverse[order] = np.arange(size)
    for channel in range(3):
        np.take(radiance[channel], inverse, out=linear[channel], mode="wrap")


def _pixel_groups(flat_ids: np.ndarray) -> tuple[np.ndarray, list[tuple[int, slice]]]:
    """The flat pixels sorted by object id (pixels of an object in increasing order), and
    (object id, its slice of them) for each id present."""
    low = int(flat_ids.min())
    shifted = np.subtract(flat_ids, low, out=scratch("groups.shifted", flat_ids.shape, np.intp))
    counts = np.bincount(shifted)
    present = np.flatnonzero(counts)
    label_type = np.uint8 if len(present) <= 256 else np.int16
    labels = np.zeros(len(counts), dtype=label_type)
    labels[present] = np.arange(len(present))
    pixel_labels = np.take(labels, shifted, out=scratch("groups.labels", shifted.shape, label_type))
    # Stable sort of 8-bit labels: one radix pass; pixels of an object stay in order.
    order = np.argsort(pixel_labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts[present])]).tolist()
    groups = [(int(key) + low, slice(bounds[k], bounds[k + 1])) for k, key in enumerate(present)]
    return order, groups


def _shade_block(
    block: _Block, inputs: _Inputs, material: Material, lighting: Lighting
) -> np.ndarray:
    """(3, n) linear radiance of one block of one object's pixels.

    The light reaching each pixel is a weighted sum of a few per-pixel terms (the ambient's
    sky-and-ground factor, then per light its clamped n . l times falloff and shadow), so
    all three channels come out of one small matrix product.
    """
    nx, ny, nz = block.normal
    count = len(block.pixels)
    skin = material.is_skin
    # Skin: light wraps past the terminator, red furthest (a cheap subsurface look), so
    # each light brings a term per channel.
    per_light = 3 if skin else 1
    terms = np.empty((1 + per_light * len(lighting.lights), count), dtype=np.float32)
    weights = np.zeros((3, len(terms)), dtype=np.float32)
    # Ambient: sky above (-y), ground below, so surfaces facing up are brighter.
    np.multiply(ny, np.float32(-0.25), out=terms[0])
    terms[0] += np.float32(0.75)
    weights[:, 0] = lighting.ambient
    highlight = np.zeros(count, dtype=np.float32) if material.specular > _MIN_SPECULAR else None
    px, py, pz = block.point
    for number, (light, shadow) in enumerate(zip(lighting.lights, inputs.shadows, strict=True)):
        color = np.asarray(light.color, dtype=np.float64) * light.intensity
        falloff: np.ndarray | None = None
        if light.position is not None:
            lx, ly, lz = (np.float32(c) for c in light.position)
            dx, dy, dz = lx - px, ly - py, lz - pz
            distance2 = dx * dx + dy * dy + dz * dz
            inverse = np.float32(1.0) / np.sqrt(np.maximum(distance2, np.float32(1e-12)))
            dx *= inverse
            dy *= inverse
            dz *= inverse
            to_light: tuple[Any, Any, Any] = (dx, dy, dz)
            # Inverse square, 1 at 1 m, softened close to the light.
            falloff = np.float32(1.25) / (np.float32(0.25) + distance2)
        else:
            assert light.direction is not None
            to_light = (
                np.float32(light.direction[0]),
                np.float32(light.direction[1]),
                np.float32(light.direction[2]),
            )
        n_dot_l = nx * to_light[0]
        n_dot_l += ny * to_light[1]
        n_dot_l += nz * to_light[2]
        if shadow is not None:
            unblocked = np.float32(1.0) - shadow[block.slice]
            falloff = unblocked if falloff is None else np.multiply(falloff, unblocked, out=falloff)
        first = 1 + per_light * number
        if skin:
            for channel, wrap in enumerate(_SKIN_WRAP):
                lit = terms[first + channel]
                np.add(n_dot_l, np.float32(wrap), out=lit)
                lit *= np.float32(1.0 / (1.0 + wrap))
                weights[channel, first + channel] = color[channel]
        else:
            lit = terms[first]
            np.copyto(lit, n_dot_l)
            weights[:, first] = color
        for lit in terms[first : first + per_light]:
            np.maximum(lit, np.float32(0.0), out=lit)
            if falloff is not None:
                lit *= falloff
        if highlight is not None:
            hx, hy, hz = (to_light[k] + block.view[k] for k in range(3))
            inverse_h = np.float32(1.0) / np.sqrt(
                np.maximum(hx * hx + hy * hy + hz * hz, np.float32(1e-12))
            )
            n_dot_h = (nx * hx + ny * hy + nz * hz) * inverse_h
            _clip_unit(n_dot_h)
            term = np.power(n_dot_h, np.float32(material.shininess), out=n_dot_h)
            term *= n_dot_l > 0
            if falloff is not None:
                term *= falloff
            highlight += term * np.float32(color.mean())
    radiance = weights @ terms
    radiance *= _albedo(block, inputs, material)
    if highlight is not None:
        highlight *= np.float32(material.specular)
        radiance += highlight
    return radiance


def _clip_unit(values: np.ndarray) -> None:
    """Clip float values to 0..1 in place (np.clip's Python wrapper costs more than the
    work on a block)."""
    np.maximum(values, np.float32(0.0), out=values)
    np.minimum(values, np.float32(1.0), out=values)


def _albedo(block: _Block, inputs: _Inputs, material: Material) -> np.ndarray:
    """(3, n) linear albedo of one block of one object's pixels."""
    base = np.asarray(material.color, dtype=np.float32)[:, None]
    if material.is_skin:
        part = np.take(inputs.part, block.pixels, mode="wrap")
        albedo = _skin_albedo(material, block.point, block.normal, part)
        assert inputs.crease is not None
        # Creases where finger segments meet; faces seen edge-on a little darker.
        nx, ny, nz = block.normal
        n_dot_v = nx * block.view[0] + ny * block.view[1] + nz * block.view[2]
        _clip_unit(n_dot_v)
        darker = inputs.crease.at(block.pixels)
        darker *= np.float32(0.82) + np.float32(0.18) * np.sqrt(n_dot_v)
        albedo *= darker
        return albedo
    (pattern,) = _material_pattern(material, block.point, block.normal)
    if material.kind == "plain":
        variation = np.float32(0.97) + np.float32(0.06) * pattern
        return base * variation
    second = np.asarray(material.color2, dtype=np.float32)[:, None]
    albedo = (second - base) * pattern
    albedo += base
    return albedo


def _backdrop(
    material: Material, ray_x: np.ndarray, ray_y: np.ndarray, lighting: Lighting
) -> np.ndarray:
    """(3, N) linear colours of the far backdrop, by ray direction (a plane 3 m
    away facing the camera)."""
    far = np.float32(3.0)
    points = (ray_x * far, ray_y * far, np.full(len(ray_x), far, dtype=np.float32))
    if material.frame is None:
        (pattern,) = _projected_pattern(
            _tile(
                material.kind if not material.is_skin else "noise", material.seed % _TILE_VARIANTS
            ),
            material,
            points[0],
            points[1],
            2,
            (material.scale_m,),
        )
    else:
        zero = np.zeros(len(ray_x), dtype=np.float32)
        (pattern,) = _material_pattern(material, points, (zero, zero, zero - np.float32(1.0)))
    # Lit by the ambient and half the lights, like a far wall facing the camera.
    light = np.asarray(lighting.ambient, np.float64) + 0.5 * sum(
        (np.asarray(item.color, np.float64) * item.intensity for item in lighting.lights),
        np.zeros(3),
    )
    base = np.asarray(material.color, dtype=np.float64)
    second = np.asarray(material.color2, dtype=np.float64)
    colour = ((second - base) * light).astype(np.float32)[:, None] * pattern
    colour += (base * light).astype(np.float32)[:, None]
    return colour


@dataclass
class _RayTerms:
    """Per-pixel values of a render's rays that shading needs, as flat (H * W,) float32."""

    rays: np.ndarray
    x: np.ndarray  # x / z
    y: np.ndarray  # y / z
    vignetting: np.ndarray  # min((x^2 + y^2) / 0.65, 1.5), the vignetting's shape


_last_ray_terms: _RayTerms | None = None


def _ray_terms(rays: np.ndarray) -> _RayTerms:
    """``_RayTerms`` of (H, W, 3) rays; kept for the renderer's read-only full-frame rays
    (cached per camera), which every frame of a camera shares."""
    global _last_ray_terms
    cached = _last_ray_terms
    if cached is not None and cached.rays is rays:
        return cached
    x = np.ascontiguousarray(rays[..., 0], dtype=np.float32).reshape(-1)
    y = np.ascontiguousarray(rays[..., 1], dtype=np.float32).reshape(-1)
    vignetting = np.minimum((x**2 + y**2) / np.float32(0.65), np.float32(1.5))
    terms = _RayTerms(rays, x, y, vignetting)
    if not rays.flags.writeable:
        _last_ray_terms = terms
    return terms


@lru_cache(maxsize=256)
def _part_mix(seed: int) -> np.ndarray:
    """(64,) float32 per part label: how far (0..0.5) skin leans towards its blotch colour,
    a fixed draw from the hand's seed (knuckles and finger tips are not the palm)."""
    mix = np.random.default_rng(seed + 1).uniform(0.0, 0.5, size=64).astype(np.float32)
    mix.flags.writeable = False
    return mix


def _skin_albedo(
    material: Material, points: _Planes, normals: _Planes, part: np.ndarray
) -> np.ndarray:
    """(3, N) linear albedo of skin: the tone with mottling (4 cm), grain (5 mm) and a
    slightly different redness per part."""
    mottling, grain = _material_pattern(material, points, normals, (material.scale_m, 0.005))
    part_mix = np.take(_part_mix(material.seed), np.remainder(part, 64))
    # Mottling moves towards the redder, darker blotch colour; grain is +-3 % brightness.
    mix = (mottling - np.float32(0.5)) * np.float32(1.6) + np.float32(0.2)
    mix += part_mix
    _clip_unit(mix)
    brightness = np.float32(0.97) + np.float32(0.06) * grain
    base = np.asarray(material.color, dtype=np.float32)[:, None]
    blotch = np.asarray(material.color2, dtype=np.float32)[:, None]
    albedo = (blotch - base) * mix
    albedo += base
    albedo *= brightness
    return albedo


class _Crease:
    """Skin's albedo factor (<= 1) around finger joints: darker where the part label
    changes between neighbours of the same object, blurred; computed over the bounding box
    of the given pixels only."""

    def __init__(self, result: RenderResult, runs: list[np.ndarray], pixel_scale: float) -> None:
        height, width = result.part.shape
        top = min(int(run[0]) for run in runs) // width
        bottom = max(int(run[-1]) for run in runs) // width
        left = min(int(np.min(run % width)) for run in runs)
        right = max(int(np.max(run % width)) for run in runs)
        sigma = max(1.0 / pixel_scale, 0.5)
        # GaussianBlur's kernel reaches 4 sigma in float images; one more pixel for the
        # neighbour a crease needs, so that the box gives the pixels the full image's values.
        margin = int(np.ceil(4.0 * sigma)) + 2
        self._row0, self._col0 = max(top - margin, 0), max(left - margin, 0)
        rows = slice(self._row0, min(bottom + margin + 1, height))
        cols = slice(self._col0, min(right + margin + 1, width))
        part, ids = result.part[rows, cols], result.object_id[rows, cols]
        crease = np.zeros(part.shape, dtype=np.float32)
        same_x = (ids[:, 1:] == ids[:, :-1]) & (part[:, 1:] != part[:, :-1]) & (ids[:, 1:] >= 0)
        same_y = (ids[1:, :] == ids[:-1, :]) & (part[1:, :] != part[:-1, :]) & (ids[1:, :] >= 0)
        crease[:, 1:] += same_x
        crease[:, :-1] += same_x
        crease[1:, :] += same_y
        crease[:-1, :] += same_y
        blurred = cv2.GaussianBlur(np.minimum(crease, 1.0), (0, 0), sigma)
        factor = np.float32(1.0) - np.float32(0.25) * np.clip(blurred * 1.5, 0.0, 1.0)
        self._factor = factor.reshape(-1)
        self._box_width = factor.shape[1]
        self._image_width = width

    def at(self, pixels: np.ndarray) -> np.ndarray:
        """(N,) float32 factors at flat image pixels inside the box (a new array)."""
        row, col = np.divmod(pixels, self._image_width)
        row -= self._row0
        col -= self._col0
        row *= self._box_width
        row += col
        return np.take(self._factor, row, mode="wrap")


def light_shadows(
    renderer: Renderer, result: RenderResult, lighting: Lighting, *, step: int = 2
) -> list[np.ndarray]:
    """Per light, (H, W) float32 0..1: how much of that light each pixel does not get.

    One shadow ray (``Renderer.occluded_points``) per ``step`` x ``step`` pixels and light,
    upsampled bilinearly, which also softens the shadow edges as area lights do. A
    directional light is treated as a point 50 m away in its direction.

    The samples are cast coarse to fine: every 4th sample (2 ** ``_SHADOW_LEVELS``) in
    each direction first; then, grid by grid twice as fine, a new sample takes the value
    of its coarser neighbours where they agree and see its own object, and is cast where
    they do not (shadow edges, silhouettes where contact shadows start) or next to a
    change of value (following thin shadows the coarser grid caught somewhere). That is
    the all-samples result at ~12 % of the rays (typical scenes), except for a shadow (or a gap
    in one) that falls wholly between coarse samples on one object: mostly the 1-sample
    streaks a coarse curved mesh casts on itself.
    """
    height, width = result.depth.shape
    depth = result.depth[::step, ::step]
    hit = np.isfinite(depth)
    ids = result.object_id[::step, ::step]
    # Flat image pixel of each sample: points and normals are gathered for cast samples only.
    sample_pixel = np.arange(height * width).reshape(height, width)[::step, ::step].reshape(-1)
    flat_rays = result.rays.reshape(-1, 3)
    flat_depth = result.depth.reshape(-1)
    flat_normals = result.normal.reshape(-1, 3)
    sample_index = np.arange(depth.size).reshape(depth.shape)
    coarsest = 2**_SHADOW_LEVELS
    first = sample_index[::coarsest, ::coarsest][hit[::coarsest, ::coarsest]]
    masks = []
    for light in lighting.lights:
        if light.position is not None:
            target = np.asarray(light.position, dtype=np.float64)
        else:
            target = 50.0 * np.asarray(light.direction, dtype=np.float64)

        value = np.zeros(depth.shape, dtype=np.float32)

        def cast(
            samples: np.ndarray, value: np.ndarray = value, target: np.ndarray = target
        ) -> None:
            pixels = np.take(sample_pixel, samples)
            points = np.take(flat_rays, pixels, axis=0)
            points *= np.take(flat_depth, pixels)[:, None]
            normals = np.take(flat_normals, pixels, axis=0)
            value.reshape(-1)[samples] = renderer.occluded_points(
                points, target, normals=normals, normal_offset_m=0.002
            )

        cast(first)
        for level in range(_SHADOW_LEVELS - 1, -1, -1):
            grid = (slice(None, None, 2**level), slice(None, None, 2**level))
            _refine_shadow_grid(value[grid], ids[grid], hit[grid], sample_index[grid], cast)
        mask: np.ndarray = value
        if step > 1:
            # Sample k sits at pixel k * step: that is the forward map warpAffine inverts.
            matrix = np.array([[float(step), 0.0, 0.0], [0.0, float(step), 0.0]])
            mask = cv2.warpAffine(
                value,
                matrix,
                (width, height),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
        masks.append(mask)
    return masks


def _refine_shadow_grid(
    value: np.ndarray,
    ids: np.ndarray,
    hit: np.ndarray,
    sample_index: np.ndarray,
    cast: Callable[[np.ndarray], None],
) -> None:
    """Fill the samples of a grid (views of the sample arrays) that are not on its every
    other row and column (known already) by guessing from those or casting (see
    ``light_shadows``). ``cast(samples)`` writes the values of flat sample indices."""
    coarse = np.zeros(value.shape, dtype=bool)
    coarse[::2, ::2] = True
    guessed = _settle_from_coarse(value, ids) & ~coarse
    cast(sample_index[hit & ~coarse & ~guessed])
    for _ in range(_SHADOW_REFINE_ROUNDS):
        # A guessed sample next to a change of value may be wrong: cast it, and follow
        # what it finds.
        grid = np.ascontiguousarray(value)
        changed = cv2.dilate(grid, _KERNEL_3X3) != cv2.erode(grid, _KERNEL_3X3)
        suspect = changed & guessed & hit
        if not suspect.any():
            break
        guessed &= ~suspect
        cast(sample_index[suspect])


def _settle_from_coarse(value: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(R, C) bool: the samples off the coarse grid (even rows and columns) whose coarse
    neighbours (2 along a row or column, else the 4 diagonal ones) agree on ``value`` and
    see the sample's own object (``ids``); those get the common value (in place)."""
    rows, cols = value.shape
    coarse_rows, coarse_cols = (rows + 1) // 2, (cols + 1) // 2
    odd_rows, odd_cols = rows // 2, cols // 2
    # One more row and column that never agree: a sample past the last coarse row or
    # column has a neighbour on one side only, and is cast.
    known = np.full((coarse_rows + 1, coarse_cols + 1), np.nan, dtype=np.float32)
    known[:coarse_rows, :coarse_cols] = value[::2, ::2]
    known_ids = np.full(known.shape, NO_OBJECT - 1, dtype=ids.dtype)
    known_ids[:coarse_rows, :coarse_cols] = ids[::2, ::2]
    settled = np.zeros(value.shape, dtype=bool)
    all_rows, all_cols = slice(0, coarse_rows), slice(0, coarse_cols)
    before_rows, after_rows = slice(0, odd_rows), slice(1, odd_rows + 1)
    before_cols, after_cols = slice(0, odd_cols), slice(1, odd_cols + 1)
    for where, neighbours in (
        ((slice(0, None, 2), slice(1, None, 2)), [(all_rows, before_cols), (all_rows, after_cols)]),
        ((slice(1, None, 2), slice(0, None, 2)), [(before_rows, all_cols), (after_rows, all_cols)]),
        (
            (slice(1, None, 2), slice(1, None, 2)),
            [
                (before_rows, before_cols),
                (before_rows, after_cols),
                (after_rows, before_cols),
                (after_rows, after_cols),
            ],
        ),
    ):
        own = ids[where]
        common = known[neighbours[0]]
        agree = known_ids[neighbours[0]] == own
        for other in neighbours[1:]:
            agree &= (known[other] == common) & (known_ids[other] == own)
        settled[where] = agree
        value[where] = np.where(agree, common, np.float32(0.0))
    return settled


# ----------------------------------------------------------------------------- camera


@lru_cache(maxsize=1)
def _srgb_lut() -> np.ndarray:
    """uint8 sRGB codes of linear values 0..1 in 4096 steps."""
    values = np.arange(_LUT_SIZE, dtype=np.float64) / (_LUT_SIZE - 1)
    lut = np.rint(linear_to_srgb(values) * 255.0).astype(np.uint8)
    lut.flags.writeable = False
    return lut


def _encode_srgb(image: np.ndarray, channel_gain: np.ndarray) -> np.ndarray:
    """sRGB codes 0..255 (float32, (H, W, 3)) of linear RGB (H, W, 3) times a gain per
    channel, through the ``_srgb_lut`` table (a power per value is ten times slower): the
    entry of the value times (size - 1), truncated, with values clamped to 0..1.

    Two OpenCV passes (``image`` is overwritten): an affine map per channel to the entry
    less half an entry, then a nearest-neighbour remap of the table as a one-row image,
    whose rounding to the nearest entry is then the truncation, and whose border clamps.
    A numpy multiply, clip, cast and gather cost five times as much. The result is a
    scratch array (see ``scratch``).
    """
    height, width, _ = image.shape
    scaling = np.zeros((3, 4), dtype=np.float32)
    scaling[[0, 1, 2], [0, 1, 2]] = np.asarray(channel_gain, np.float32) * (_LUT_SIZE - 1)
    scaling[:, 3] = -0.5
    index = cv2.transform(image, scaling, dst=image).reshape(height, width * 3)
    codes: np.ndarray = cv2.remap(
        _srgb_lut_codes().reshape(1, -1),
        index,
        _zeros(index.shape),
        cv2.INTER_NEAREST,
        dst=scratch("camera.codes", index.shape),
        borderMode=cv2.BORDER_REPLICATE,
    )
    return codes.reshape(height, width, 3)


@lru_cache(maxsize=4)
def _zeros(shape: tuple[int, int]) -> np.ndarray:
    """A read-only float32 array of zeros (the constant row map of the sRGB lookup)."""
    zeros = np.zeros(shape, dtype=np.float32)
    zeros.flags.writeable = False
    return zeros


@lru_cache(maxsize=1)
def _srgb_lut_codes() -> np.ndarray:
    """``_srgb_lut`` as float32 values (the codes the sensor noise is added to)."""
    codes = _srgb_lut().astype(np.float32)
    codes.flags.writeable = False
    return codes


def _camera(
    linear: np.ndarray,
    result: RenderResult,
    rng: np.random.Generator,
    config: AppearanceConfig,
    pixel_scale: float,
) -> np.ndarray:
    """uint8 RGB (H, W, 3) of planar linear radiance (3, H, W): exposure, white balance,
    vignetting, blur, sRGB, noise, JPEG."""
    _, height, width = linear.shape
    # Auto exposure on a coarse grid of the luminance, with an error of a fraction of a stop.
    sample = linear[:, :: max(height // 48, 1), :: max(width // 64, 1)]
    luminance = np.array([0.2126, 0.7152, 0.0722], np.float32) @ sample.reshape(3, -1)
    target = rng.uniform(*config.exposure_target)
    gain = target / max(float(luminance.mean()), 1e-4)
    gain *= 2.0 ** rng.normal(0.0, config.exposure_jitter)
    balance = np.array(
        [
            1.0 + rng.normal(0, config.white_balance_jitter),
            1.0,
            1.0 + rng.normal(0, config.white_balance_jitter),
        ]
    )
    channel_gain = (gain * balance).astype(np.float32)
    # Vignetting by ray angle (the same in a crop as in the frame it came from): about
    # ``strength`` darker at the corners of the D435 colour camera's 69 x 42 degree view.
    strength = rng.uniform(*config.vignetting)
    falloff = np.multiply(
        _ray_terms(result.rays).vignetting.reshape(height, width),
        -np.float32(strength),
        out=scratch("camera.falloff", (height, width)),
    )
    falloff += np.float32(1.0)
    planar = np.multiply(linear, falloff, out=scratch("camera.planar", linear.shape))
    image: np.ndarray = cv2.merge(list(planar), dst=scratch("camera.image", (height, width, 3)))

    # Blur in output pixels: a crop rendered at a coarser scale than the image is sharper.
    sigma = rng.uniform(*config.blur_sigma_px)
    if rng.uniform() < config.defocus_probability:
        sigma = float(np.hypot(sigma, rng.uniform(*config.defocus_sigma_px)))
    motion = rng.uniform() < config.motion_blur_probability
    length = rng.uniform(*config.motion_blur_px)
    angle = rng.uniform(0.0, 180.0)
    sigma /= pixel_scale
    if sigma > 0.2:
        image = cv2.GaussianBlur(image, (0, 0), sigma, dst=scratch("camera.blurred", image.shape))
    if motion and length / pixel_scale > 1.0:
        kernel = _line_kernel(length / pixel_scale, angle)
        image = cv2.filter2D(image, -1, kernel, dst=scratch("camera.moved", image.shape))

    # Exposure and white balance after the blur (both linear), then the sRGB curve.
    codes = _encode_srgb(image, channel_gain)

    # Sensor noise, added to the sRGB codes: shot noise (variance proportional to the
    # signal) has an almost constant standard deviation after the sRGB curve, which is
    # close to a square root. A crop at a coarser scale averages pixels: less noise.
    sigma_codes = rng.uniform(*config.noise_codes) / max(pixel_scale, 1.0)
    noise = standard_normal_image(rng, (height, width, 3))
    # convertScaleAbs rounds and saturates; the fold of the few negative values at black
    # is the small positive bias real black levels have anyway.
    rgb = cv2.convertScaleAbs(cv2.scaleAdd(noise, sigma_codes, codes, dst=codes))

    if rng.uniform() < config.jpeg_probability:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            rgb = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(rgb)


def _line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A normalised motion-blur kernel: a line of ``length`` pixels at ``angle_deg``."""
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), dtype=np.float32)
    centre = size // 2
    dx = np.cos(np.radians(angle_deg)) * length / 2.0
    dy = np.sin(np.radians(angle_deg)) * length / 2.0
    cv2.line(
        kernel,
        (round(centre - dx), round(centre - dy)),
        (round(centre + dx), round(centre + dy)),
        (1.0,),
        thickness=1,
        lineType=cv2.LINE_AA,
    )
    return kernel / max(float(kernel.sum()), 1e-6)
