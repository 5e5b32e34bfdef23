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
variant) and sampled with ``cv2.remap``: one lookup per pixel instead of evaluating noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from hand_pose_ros.synth.render import Renderer, RenderResult
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
    """Periodic fractal noise: white noise shaped to a 1/f^slope spectrum by FFT."""
    n = _TILE_PX
    white = rng.standard_normal((n, n))
    f = np.fft.fftfreq(n) * n
    radius = np.sqrt(f[None, :] ** 2 + f[:, None] ** 2)
    gain = 1.0 / np.maximum(radius, low_cut) ** (slope / 2.0 + 0.5)
    gain[0, 0] = 0.0
    return np.real(np.fft.ifft2(np.fft.fft2(white) * gain))


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
    n = tile.shape[0]
    # cv2.remap wants maps under 32767 a side: lay the N samples out in rows of 1024.
    columns = 1024
    rows = -(-count // columns)
    map_x = np.zeros(rows * columns, dtype=np.float32)
    map_y = np.zeros(rows * columns, dtype=np.float32)
    map_x[:count] = (s - np.floor(s)) * n
    map_y[:count] = (t - np.floor(t)) * n
    values = cv2.remap(
        tile,
        map_x.reshape(rows, columns),
        map_y.reshape(rows, columns),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_WRAP,
    )
    return np.asarray(values.reshape(-1)[:count])


def _material_pattern(
    material: Material,
    points: np.ndarray,
    normals: np.ndarray,
    periods_m: tuple[float, ...] | None = None,
) -> list[np.ndarray]:
    """Pattern values 0..1 of a material's texture at surface points, one (N,) array per
    period in ``periods_m`` (default: just ``material.scale_m``).

    Args:
        points, normals: shape (3, N) planar float32, optical frame.

    Each point is projected along its normal's dominant axis; within 0.1 of a tie the two
    projections are blended, which hides the seam on curved objects.
    """
    kind = "noise" if material.is_skin else material.kind
    tile = _tile(kind, material.seed % _TILE_VARIANTS)
    if material.frame is not None:
        rotation = np.asarray(material.frame[0], dtype=np.float32).reshape(3, 3)
        translation = np.asarray(material.frame[1], dtype=np.float32).reshape(3, 1)
        # Object coordinates: R^T (p - t), R^T n.
        points = rotation.T @ (points - translation)
        normals = rotation.T @ normals
    periods = (material.scale_m,) if periods_m is None else periods_m
    seed_rng = np.random.default_rng(material.seed)
    angle = seed_rng.uniform(0, 2 * np.pi)
    offset = seed_rng.uniform(0, 1, size=2)
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    magnitude = np.abs(normals)
    # Elementwise maximum: numpy's reduction over a leading axis of 3 is ten times slower.
    threshold = np.maximum(np.maximum(magnitude[0], magnitude[1]), magnitude[2])
    threshold -= np.float32(0.1)
    count = points.shape[1]
    totals = [np.zeros(count, dtype=np.float32) for _ in periods]
    weight_sum = np.zeros(count, dtype=np.float32)
    for axis in range(3):
        near = magnitude[axis] > threshold
        a, b = [k for k in range(3) if k != axis]
        if near.all():
            # Every pixel projects along this axis (a flat face): no gathers.
            chosen: slice | np.ndarray = slice(None)
            weight = (magnitude[axis] - threshold) * np.float32(10.0)
        else:
            chosen = np.flatnonzero(near)
            if not len(chosen):
                continue
            weight = (magnitude[axis, chosen] - threshold[chosen]) * np.float32(10.0)
        u = points[a, chosen]
        v = points[b, chosen]
        s = cos * u - sin * v
        t = sin * u + cos * v
        for total, period in zip(totals, periods, strict=True):
            scale = np.float32(1.0 / period)
            values = _sample_tile(
                tile, s * scale + (offset[0] + 0.37 * axis), t * scale + offset[1]
            )
            total[chosen] += weight * values
        weight_sum[chosen] += weight
    inverse = np.float32(1.0) / np.maximum(weight_sum, np.float32(1e-6))
    return [total * inverse for total in totals]


# ----------------------------------------------------------------------------- shading


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
    linear = np.empty((3, height * width), dtype=np.float32)
    flat_ids = result.object_id.reshape(-1)
    hit = np.flatnonzero(flat_ids >= 0)
    miss = np.flatnonzero(flat_ids < 0)
    rays = result.rays.reshape(-1, 3)
    if len(miss):
        linear[:, miss] = _backdrop(backdrop, rays[miss], lighting)
    if len(hit):
        radiance, pixels = _shade_surfaces(result, materials, lighting, hit, pixel_scale, shadows)
        linear[:, pixels] = radiance
    return _camera(linear.reshape(3, height, width), result, rng, config, pixel_scale)


def _backdrop(material: Material, rays: np.ndarray, lighting: Lighting) -> np.ndarray:
    """(3, N) linear colours of the far backdrop, by ray direction (a plane 3 m away)."""
    points = np.ascontiguousarray(rays.T) * np.float32(3.0)
    normals = np.zeros_like(points)
    normals[2] = -1.0
    (pattern,) = _material_pattern(material, points, normals)
    base = np.asarray(material.color, np.float32)[:, None]
    second = np.asarray(material.color2, np.float32)[:, None]
    # Lit by the ambient and half the lights, like a far wall facing the camera.
    light = np.asarray(lighting.ambient, np.float32) + 0.5 * sum(
        (np.asarray(item.color, np.float32) * item.intensity for item in lighting.lights),
        np.zeros(3, np.float32),
    )
    return np.asarray((base + (second - base) * pattern) * light[:, None], dtype=np.float32)


def _shade_surfaces(
    result: RenderResult,
    materials: dict[int, Material],
    lighting: Lighting,
    hit: np.ndarray,
    pixel_scale: float,
    shadows: list[np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(3, N) linear radiance of the hit pixels, and those pixels (N,) (flat indices).

    The pixels come back grouped by object, so that each object's pixels are a slice of
    every per-pixel array (no gather per object). Planar (3, N) float32 arrays throughout:
    numpy is slow on (N, 3) broadcasts.
    """
    count = len(hit)
    ids = result.object_id.reshape(-1)[hit]
    # Group pixels by object: one stable (radix) sort of small labels.
    keys = _present_ids(ids)
    labels = np.searchsorted(keys, ids).astype(np.int16)
    pixels = hit[np.argsort(labels, kind="stable")]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=len(keys)))])
    part = np.take(result.part.reshape(-1), pixels)
    normals = _planes(result.normal, pixels)  # (3, N)
    rays = _planes(result.rays, pixels)
    depth = np.take(result.depth.reshape(-1), pixels)
    points = rays * depth  # (3, N)
    inverse_length = np.float32(1.0) / np.sqrt(rays[0] ** 2 + rays[1] ** 2 + np.float32(1.0))
    view = rays * -inverse_length  # unit, towards the camera
    albedo = np.empty((3, count), dtype=np.float32)
    specular = np.zeros(count, dtype=np.float32)
    shininess = np.ones(count, dtype=np.float32)
    skin_slices = []
    default = Material()
    for k, key in enumerate(keys.tolist()):
        group = slice(int(bounds[k]), int(bounds[k + 1]))
        material = materials.get(int(key), default)
        base = np.asarray(material.color, dtype=np.float32)[:, None]
        second = np.asarray(material.color2, dtype=np.float32)[:, None]
        if material.is_skin:
            albedo[:, group] = _skin_albedo(
                material, points[:, group], normals[:, group], part[group]
            )
            skin_slices.append(np.arange(group.start, group.stop))
        else:
            (pattern,) = _material_pattern(material, points[:, group], normals[:, group])
            if material.kind == "plain":
                albedo[:, group] = base * (np.float32(0.97) + np.float32(0.06) * pattern)
            else:
                albedo[:, group] = base + (second - base) * pattern
        specular[group] = material.specular
        shininess[group] = material.shininess

    n_dot_v = np.clip(_dot(normals, view), 0.0, 1.0)
    skin_index = np.concatenate(skin_slices) if skin_slices else np.zeros(0, np.intp)
    if len(skin_index):
        # Creases where finger segments meet; faces seen edge-on a little darker.
        albedo[:, skin_index] *= _crease_shade(result, pixels[skin_index], pixel_scale) * (
            np.float32(0.82) + np.float32(0.18) * np.sqrt(n_dot_v[skin_index])
        )

    # Ambient: sky above (-y), ground below, so surfaces facing up are brighter.
    up = np.float32(0.75) - np.float32(0.25) * normals[1]
    radiance = np.asarray(lighting.ambient, np.float32)[:, None] * up
    highlight = np.zeros(count, dtype=np.float32)
    glossy = np.flatnonzero(specular > _MIN_SPECULAR)
    glossy_normals = normals[:, glossy]
    glossy_view = view[:, glossy]
    # Skin: light wraps past the terminator, red furthest (a cheap subsurface look); the
    # extra light is gathered on the skin pixels alone and added once.
    wrap = np.array([0.35, 0.18, 0.12], dtype=np.float32)[:, None]
    skin_extra = np.zeros((3, len(skin_index)), dtype=np.float32)
    for number, light in enumerate(lighting.lights):
        color = (np.asarray(light.color) * light.intensity).astype(np.float32)
        if light.position is not None:
            direction = np.asarray(light.position, np.float32)[:, None] - points
            distance2 = _dot(direction, direction)
            direction *= np.float32(1.0) / np.sqrt(np.maximum(distance2, np.float32(1e-12)))
            # Inverse square, 1 at 1 m, softened close to the light.
            falloff = np.float32(1.25) / (np.float32(0.25) + distance2)
        else:
            direction = np.asarray(light.direction, np.float32)[:, None]
            falloff = np.ones(count, dtype=np.float32)
        if shadows is not None:
            blocked = np.take(np.asarray(shadows[number], dtype=np.float32).reshape(-1), pixels)
            falloff = falloff * (np.float32(1.0) - blocked)
        n_dot_l = _dot(normals, direction)
        radiance += color[:, None] * (np.maximum(n_dot_l, 0.0) * falloff)
        if len(skin_index):
            s_dot = n_dot_l[skin_index]
            wrapped = np.maximum((s_dot + wrap) / (np.float32(1.0) + wrap), 0.0)
            skin_extra += color[:, None] * (wrapped - np.maximum(s_dot, 0.0)) * falloff[skin_index]
        if len(glossy):
            to_light = direction[:, glossy] if direction.shape[1] > 1 else direction
            half = to_light + glossy_view
            half *= np.float32(1.0) / np.sqrt(np.maximum(_dot(half, half), np.float32(1e-12)))
            n_dot_h = np.clip(_dot(glossy_normals, half), 0.0, 1.0)
            lit = n_dot_l[glossy] > 0
            highlight[glossy] += (
                lit * n_dot_h ** shininess[glossy] * falloff[glossy] * np.float32(color.mean())
            )
    if len(skin_index):
        radiance[:, skin_index] += skin_extra
    return np.asarray(albedo * radiance + specular * highlight, dtype=np.float32), pixels


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) dot products of planar (3, N) vectors (einsum is slower on this layout)."""
    return np.asarray(a[0] * b[0] + a[1] * b[1] + a[2] * b[2])


def light_shadows(
    renderer: Renderer, result: RenderResult, lighting: Lighting, *, step: int = 2
) -> list[np.ndarray]:
    """Per light, (H, W) float32 0..1: how much of that light each pixel does not get.

    One shadow ray (``Renderer.occluded_from``) per ``step`` x ``step`` pixels and light,
    upsampled bilinearly, which also softens the shadow edges as area lights do. A
    directional light is treated as a point 50 m away in its direction. At step 2 a light
    costs ~8 ms for a 640x480 frame on 2 cores (step 1: ~30 ms, hard edges).
    """
    height, width = result.depth.shape
    if step > 1:
        sub = RenderResult(
            depth=np.ascontiguousarray(result.depth[::step, ::step]),
            object_id=result.object_id[::step, ::step],
            part=result.part[::step, ::step],
            normal=result.normal[::step, ::step],
            rays=np.ascontiguousarray(result.rays[::step, ::step]),
            triangle=result.triangle[::step, ::step],
            barycentric=result.barycentric[::step, ::step],
            crop_to_image=result.crop_to_image,
        )
    else:
        sub = result
    masks = []
    for light in lighting.lights:
        if light.position is not None:
            target = np.asarray(light.position, dtype=np.float64)
        else:
            target = 50.0 * np.asarray(light.direction, dtype=np.float64)
        mask: np.ndarray = renderer.occluded_from(sub, target, normal_offset_m=0.002).astype(
            np.float32
        )
        if step > 1:
            # Sample k sits at pixel k * step: that is the forward map warpAffine inverts.
            matrix = np.array([[float(step), 0.0, 0.0], [0.0, float(step), 0.0]])
            mask = cv2.warpAffine(
                mask,
                matrix,
                (width, height),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
        masks.append(mask)
    return masks


def _planes(image: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """(3, N) float32 contiguous: channels of an (H, W, 3) image at flat ``pixels``."""
    flat = image.reshape(-1)
    return np.stack([np.take(flat, pixels * 3 + k) for k in range(3)])


def _present_ids(ids: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an int array, by bincount (no sort of the array)."""
    low = int(ids.min())
    present = np.flatnonzero(np.bincount(ids - low)) + low
    return np.asarray(present, dtype=ids.dtype)


def _skin_albedo(
    material: Material, points: np.ndarray, normals: np.ndarray, part: np.ndarray
) -> np.ndarray:
    """(3, N) linear albedo of skin: the tone with mottling (4 cm), grain (5 mm) and a
    slightly different redness per part (knuckles and finger tips are not the palm)."""
    base = np.asarray(material.color, dtype=np.float32)[:, None]
    blotch = np.asarray(material.color2, dtype=np.float32)[:, None]
    mottling, grain = _material_pattern(material, points, normals, (material.scale_m, 0.005))
    # Per part of this hand: a fixed draw from its seed, 0..0.5 towards the blotch colour.
    part_mix = np.random.default_rng(material.seed + 1).uniform(0.0, 0.5, size=64)
    part_mix = part_mix.astype(np.float32)[np.asarray(part, dtype=np.intp) % 64]
    # Mottling moves towards the redder, darker blotch colour; grain is +-3 % brightness.
    mottle = (mottling - np.float32(0.5)) * np.float32(1.6) + np.float32(0.2)
    mix = np.clip(mottle + part_mix, 0.0, 1.0)
    color = base + (blotch - base) * mix
    return np.asarray(color * (np.float32(0.97) + np.float32(0.06) * grain), dtype=np.float32)


def _crease_shade(result: RenderResult, pixels: np.ndarray, pixel_scale: float) -> np.ndarray:
    """(N,) albedo factor <= 1 at flat ``pixels``: darker where the part label changes
    between neighbours of the same object (finger joints)."""
    part = result.part
    ids = result.object_id
    crease: np.ndarray = np.zeros(part.shape, dtype=np.float32)
    same_x = (ids[:, 1:] == ids[:, :-1]) & (part[:, 1:] != part[:, :-1]) & (ids[:, 1:] >= 0)
    same_y = (ids[1:, :] == ids[:-1, :]) & (part[1:, :] != part[:-1, :]) & (ids[1:, :] >= 0)
    crease[:, 1:] += same_x
    crease[:, :-1] += same_x
    crease[1:, :] += same_y
    crease[:-1, :] += same_y
    sigma = max(1.0 / pixel_scale, 0.5)
    crease = cv2.GaussianBlur(np.minimum(crease, 1.0), (0, 0), sigma)
    values = crease.reshape(-1)[pixels]
    return np.asarray(1.0 - 0.25 * np.clip(values * 1.5, 0.0, 1.0), dtype=np.float32)


# ----------------------------------------------------------------------------- camera


@lru_cache(maxsize=1)
def _srgb_lut() -> np.ndarray:
    """uint8 sRGB codes of linear values 0..1 in 4096 steps."""
    values = np.arange(_LUT_SIZE, dtype=np.float64) / (_LUT_SIZE - 1)
    lut = np.rint(linear_to_srgb(values) * 255.0).astype(np.uint8)
    lut.flags.writeable = False
    return lut


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
    rays = result.rays
    falloff = np.float32(1.0) - np.float32(strength) * np.minimum(
        (rays[..., 0] ** 2 + rays[..., 1] ** 2) / np.float32(0.65), np.float32(1.5)
    )
    image: np.ndarray = cv2.merge([linear[c] * (channel_gain[c] * falloff) for c in range(3)])

    # Blur in output pixels: a crop rendered at a coarser scale than the image is sharper.
    sigma = rng.uniform(*config.blur_sigma_px)
    if rng.uniform() < config.defocus_probability:
        sigma = float(np.hypot(sigma, rng.uniform(*config.defocus_sigma_px)))
    motion = rng.uniform() < config.motion_blur_probability
    length = rng.uniform(*config.motion_blur_px)
    angle = rng.uniform(0.0, 180.0)
    sigma /= pixel_scale
    if sigma > 0.2:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if motion and length / pixel_scale > 1.0:
        image = cv2.filter2D(image, -1, _line_kernel(length / pixel_scale, angle))

    # sRGB encoding through a lookup table (a power per value is ten times slower).
    np.multiply(image, np.float32(_LUT_SIZE - 1), out=image)
    np.clip(image, 0, _LUT_SIZE - 1, out=image)
    rgb = _srgb_lut()[image.astype(np.uint16)]

    # Sensor noise, added to the sRGB codes: shot noise (variance proportional to the
    # signal) has an almost constant standard deviation after the sRGB curve, which is
    # close to a square root. A crop at a coarser scale averages pixels: less noise.
    sigma_codes = rng.uniform(*config.noise_codes) / max(pixel_scale, 1.0)
    noise = standard_normal_image(rng, (height, width, 3))
    # convertScaleAbs rounds and saturates; the fold of the few negative values at black
    # is the small positive bias real black levels have anyway.
    rgb = cv2.convertScaleAbs(cv2.scaleAdd(noise, sigma_codes, rgb.astype(np.float32)))

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
