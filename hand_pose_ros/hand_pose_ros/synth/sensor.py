"""A stereo depth camera's flaws, applied to a perfect rendered depth image.

The defaults describe an Intel RealSense D435 streaming 640x480 depth aligned to its colour
camera (the numbers below, where they are not the datasheet's, are estimates stated as such):

* Axial noise ``sigma(z) = a + b z^2``. Stereo depth is ``z = f B / d``, so a disparity error
  ``sigma_d`` gives ``sigma_z = z^2 sigma_d / (f B)``. With the D435's infrared focal length
  at 640x480 (f ~ 383 px), its 50 mm baseline and a subpixel accuracy of ~0.04 px,
  ``b = 0.0022 m / m^2``; ``a = 0.4 mm`` is a floor (texture, projector pattern). So sigma is
  0.95 mm at 0.5 m, 2.6 mm at 1 m, 5.4 mm at 1.5 m and 9.2 mm at 2 m. 30 % of the variance is
  spatially correlated (the slow "waviness" of stereo depth on a flat wall).
* Disparity is measured in steps of 1/32 px, so depth comes in terraces of
  ``z^2 / (32 f B)``: invisible at 0.5 m (0.4 mm), 3.7 mm at 1.5 m.
* Depth discontinuities (neighbours differing by more than 2.5 % of depth) lose a band of
  0 to 2 pixels on each side; the band's width wanders along each edge, as a stereo
  matcher's failures do.
* Surfaces seen at more than ~78 degrees from their normal return nothing (threshold
  wandering with a standard deviation of 3 degrees).
* A few random holes (specularities, missing texture), mean 1.5 per frame.
* Range 0.17 m (about the D435's minimum depth at 640x480) to 4 m.
* Output quantised to the 1 mm depth unit of 16UC1 (``geometry.depth.encode_depth_mm``).
* The stereo occlusion shadow (background just left of a near object is hidden from the
  right imager, 65 mm to the right of the colour camera) needs the scene, so the renderer
  computes it (``Renderer.occluded_from(result, config.stereo_viewpoint_m, camera)``) and
  ``apply_depth_sensor`` takes the mask as ``occluded``.

Pixel sizes (edge bands, holes, correlation lengths) are in full-image pixels; for a crop
rendered directly at another resolution pass its ``crop_to_image`` and they are scaled.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from hand_pose_ros.geometry import CameraModel
from hand_pose_ros.geometry.depth import encode_depth_mm
from hand_pose_ros.synth.render import STEREO_VIEWPOINT_M, camera_rays, scratch, window_rays

# Bicubic upsampling of i.i.d. unit Gaussian values leaves a field whose standard deviation
# is ~0.86 (measured over cell sizes 1.5 to 40 px); this restores unit deviation.
_BICUBIC_STD_GAIN = 1.0 / 0.86
# Edge bands up to this many pixels wide are found by dilation, wider ones by a distance
# transform (the dilations grow with the square of the width).
_MAX_DILATED_BAND_PX = 6.0


class SensorError(ValueError):
    """Depth, normals or settings the sensor model cannot work with."""


@dataclass(frozen=True)
class SensorConfig:
    """The depth sensor's flaws; every effect can be switched off by its own parameter.

    Attributes:
        min_range_m, max_range_m: measured depth outside this range is missing.
        noise_floor_m: ``a`` of sigma(z) = a + b z^2, metres.
        noise_quadratic_per_m: ``b`` of sigma(z), metres per metre^2 (0 and a = 0: no noise).
        noise_correlated_fraction: share of the noise variance that is spatially smooth.
        noise_correlation_px: feature size of the smooth part, image pixels.
        disparity_step_px: disparity resolution (0: off); with ``stereo_focal_px`` and
            ``stereo_baseline_m`` it gives depth steps of z^2 step / (f B).
        stereo_focal_px, stereo_baseline_m: the stereo pair's focal length and baseline.
        edge_jump_fraction: neighbours whose depths differ by more than this fraction of
            the nearer depth mark a discontinuity (a pixel next to nothing counts too).
        edge_band_px: (min, max) width in image pixels of the missing band on each side of
            a discontinuity, varying smoothly along the edge (a pixel at distance d from
            the jump goes when d + 0.5 < width); (0, 0): off.
        edge_band_correlation_px: how far along an edge the band width stays alike.
        grazing_angle_deg: surfaces seen at more than this angle from their normal are
            missing (>= 90: off).
        grazing_jitter_deg: standard deviation of the threshold's wander over the image.
        hole_rate: mean number of random holes per full frame (Poisson).
        hole_radius_px: (min, max) radius of a hole, image pixels.
        depth_unit_m: the output is rounded to multiples of this (0: off).
        stereo_viewpoint_m: where the second imager sits (optical frame, metres), for
            ``Renderer.occluded_from``; not used here.
    """

    min_range_m: float = 0.17
    max_range_m: float = 4.0
    noise_floor_m: float = 0.0004
    noise_quadratic_per_m: float = 0.0022
    noise_correlated_fraction: float = 0.3
    noise_correlation_px: float = 12.0
    disparity_step_px: float = 1.0 / 32.0
    stereo_focal_px: float = 383.0
    stereo_baseline_m: float = 0.050
    edge_jump_fraction: float = 0.025
    edge_band_px: tuple[float, float] = (0.0, 2.5)
    edge_band_correlation_px: float = 10.0
    grazing_angle_deg: float = 78.0
    grazing_jitter_deg: float = 3.0
    hole_rate: float = 1.5
    hole_radius_px: tuple[float, float] = (2.0, 10.0)
    depth_unit_m: float = 0.001
    stereo_viewpoint_m: tuple[float, float, float] = STEREO_VIEWPOINT_M

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_range_m < self.max_range_m:
            raise SensorError(
                f"range {self.min_range_m}..{self.max_range_m} m: expected 0 <= min < max"
            )
        for name in (
            "noise_floor_m",
            "noise_quadratic_per_m",
            "disparity_step_px",
            "hole_rate",
            "depth_unit_m",
            "grazing_jitter_deg",
        ):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0.0):
                raise SensorError(f"{name} = {value}: expected a finite value >= 0")
        for name in (
            "noise_correlation_px",
            "edge_band_correlation_px",
            "stereo_focal_px",
            "stereo_baseline_m",
            "edge_jump_fraction",
        ):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0.0):
                raise SensorError(f"{name} = {value}: expected a finite value > 0")
        if not 0.0 <= self.noise_correlated_fraction <= 1.0:
            raise SensorError(
                f"noise_correlated_fraction = {self.noise_correlated_fraction}: expected 0..1"
            )
        for name in ("edge_band_px", "hole_radius_px"):
            low, high = getattr(self, name)
            if not 0.0 <= low <= high:
                raise SensorError(f"{name} = {(low, high)}: expected 0 <= min <= max")

    def noise_sigma_m(self, depth_m: np.ndarray | float) -> np.ndarray:
        """The axial noise standard deviation (metres) at depth ``depth_m`` (metres)."""
        z = np.asarray(depth_m, dtype=np.float64)
        return np.asarray(self.noise_floor_m + self.noise_quadratic_per_m * z * z)


def apply_depth_sensor(
    depth_m: np.ndarray,
    normal: np.ndarray,
    rng: np.random.Generator,
    config: SensorConfig | None = None,
    camera: CameraModel | None = None,
    *,
    crop_to_image: np.ndarray | None = None,
    occluded: np.ndarray | None = None,
) -> np.ndarray:
    """What the depth camera would measure of a perfect depth image.

    Args:
        depth_m: shape (H, W), metres (z, not ray length); NaN where nothing was hit.
        normal: shape (H, W, 3), unit normals in the optical frame (as rendered).
        rng: the only source of randomness: the same generator state gives the same output.
        config: the sensor's flaws (default: a D435 at 640x480, see the module docstring).
        camera: the camera the depth belongs to; needed for the grazing-angle test (each
            pixel's viewing ray). Without it the rays are taken as parallel to z.
        crop_to_image: shape (2, 3) for a crop rendered directly (``Renderer.render_window``):
            gives the crop's rays and scales pixel sizes to crop pixels.
        occluded: shape (H, W) bool, pixels the second imager cannot see
            (``Renderer.occluded_from``); they become missing.

    Returns:
        shape (H, W) float32 metres, NaN where the sensor has no measurement, on the
        ``depth_unit_m`` grid.
    """
    config = config or SensorConfig()
    depth = np.asarray(depth_m, dtype=np.float32)
    if depth.ndim != 2:
        raise SensorError(f"depth must be (H, W), got shape {depth.shape}")
    normals = np.asarray(normal, dtype=np.float32)
    if normals.shape != (*depth.shape, 3):
        raise SensorError(f"normal must be {(*depth.shape, 3)}, got {normals.shape}")
    if occluded is not None and np.shape(occluded) != depth.shape:
        raise SensorError(f"occluded must be {depth.shape}, got {np.shape(occluded)}")
    height, width = depth.shape
    scale = 1.0  # image pixels per output pixel
    if crop_to_image is not None:
        matrix = np.asarray(crop_to_image, dtype=np.float64).reshape(2, 3)
        scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
        if not scale > 0.0:
            raise SensorError(f"crop_to_image is singular: {matrix}")
    valid = np.isfinite(depth)
    missing = ~valid
    # The random draws come in a fixed order whatever is switched off, so changing one
    # effect's parameters does not reshuffle the others.
    white = standard_normal_image(rng, (height, width))
    shape = (height, width)
    smooth_noise = _smooth_field(
        rng, shape, config.noise_correlation_px / scale, out=scratch("sensor.noise", shape)
    )
    band_field = _smooth_field(
        rng, shape, config.edge_band_correlation_px / scale, out=scratch("sensor.band", shape)
    )
    # Coarse and fine wander together fray the boundary of a receding table instead of
    # cutting it along a smooth line.
    grazing_field = _smooth_field(
        rng, shape, 40.0 / scale, gain=0.8, out=scratch("sensor.grazing", shape)
    )
    grazing_field += _smooth_field(
        rng, shape, 5.0 / scale, gain=0.6, out=scratch("sensor.grazing_fine", shape)
    )
    holes = _holes(rng, (height, width), config, scale)

    # Grazing surfaces: |n . ray| / |ray| under the cosine of the (wandering) limit angle.
    if config.grazing_angle_deg < 90.0:
        ray_x, ray_y, ray_z = _unit_rays(camera, crop_to_image, (height, width))
        facing = normals[..., 0] * ray_x
        facing += normals[..., 1] * ray_y
        facing += normals[..., 2] * ray_z
        np.abs(facing, out=facing)
        limit = grazing_field
        limit *= np.float32(np.radians(config.grazing_jitter_deg))
        limit += np.float32(np.radians(config.grazing_angle_deg))
        np.minimum(limit, np.float32(np.pi / 2), out=limit)
        np.cos(limit, out=limit)
        with np.errstate(invalid="ignore"):
            missing |= facing < limit

    # Depth discontinuities, with a band of wandering width.
    band_low, band_high = config.edge_band_px
    if band_high > 0.0:
        edges = _discontinuities(depth, config.edge_jump_fraction)
        if edges.any():
            # band_field ~ N(0, 1): map its central 95 % onto [low, high] image pixels. A
            # pixel goes when its distance from the jump (0 on the jump itself) plus half
            # a pixel is inside the band, so a band under half a pixel keeps the edge.
            band = band_field
            band *= np.float32(0.25)
            band += np.float32(0.5)
            np.clip(band, 0.0, 1.0, out=band)
            band *= np.float32((band_high - band_low) / scale)
            band += np.float32(band_low / scale)
            missing |= _within_band(edges, band)

    missing |= holes
    if occluded is not None:
        missing |= np.asarray(occluded, dtype=bool)

    # Noise, disparity steps and the depth unit.
    measured = np.where(valid, depth, np.float32(1.0))
    c = config.noise_correlated_fraction
    noise = smooth_noise
    noise *= np.float32(np.sqrt(c))
    noise += np.float32(np.sqrt(1.0 - c)) * white
    sigma = measured * np.float32(config.noise_quadratic_per_m)
    sigma *= measured
    sigma += np.float32(config.noise_floor_m)
    sigma *= noise
    measured += sigma
    if config.disparity_step_px > 0.0:
        focal_baseline = np.float32(config.stereo_focal_px * config.stereo_baseline_m)
        step = np.float32(config.disparity_step_px)
        disparity = np.maximum(measured, np.float32(1e-6), out=sigma)
        np.divide(focal_baseline, disparity, out=disparity)
        disparity /= step
        np.rint(disparity, out=disparity)
        disparity *= step
        with np.errstate(divide="ignore"):
            np.divide(focal_baseline, disparity, out=measured)
    if config.depth_unit_m > 0.0:
        unit = np.float32(config.depth_unit_m)
        measured /= unit
        np.rint(measured, out=measured)
        measured *= unit
    with np.errstate(invalid="ignore"):
        in_range = measured >= np.float32(config.min_range_m)
        in_range &= measured <= np.float32(config.max_range_m)
    missing |= ~in_range
    np.copyto(measured, np.float32(np.nan), where=missing)
    return measured


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """(2**22,) float32 standard normal values, made once (fixed seed, read-only)."""
    bank = np.random.default_rng(20_240_611).standard_normal(1 << 22, dtype=np.float32)
    bank.flags.writeable = False
    return bank


def standard_normal_image(
    rng: np.random.Generator, shape: tuple[int, int] | tuple[int, int, int]
) -> np.ndarray:
    """Unit Gaussian noise of ``shape`` (H, W) or (H, W, C), cheaply; read-only.

    A contiguous run, at a random offset, of a fixed bank of 4M Gaussian values: no values
    are drawn or copied per image (drawing 900k values costs ~10 ms), and pixel noise needs
    no more randomness than that. Larger images are drawn from ``rng`` directly. The same
    generator state gives the same noise.
    """
    bank = _noise_bank()
    size = int(np.prod(shape))
    if size > len(bank) // 2:
        return rng.standard_normal(shape, dtype=np.float32)
    start = int(rng.integers(0, len(bank) - size + 1))
    return bank[start : start + size].reshape(shape)


def to_16uc1(depth_m: np.ndarray) -> np.ndarray:
    """The ``16UC1`` millimetre image of sensor depth (0 = no measurement)."""
    return encode_depth_mm(depth_m)


def _unit_rays(
    camera: CameraModel | None, crop_to_image: np.ndarray | None, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y and z (each (H, W) float32) of the output pixels' unit viewing rays."""
    height, width = shape
    if camera is None:
        zero = np.zeros(shape, dtype=np.float32)
        return zero, zero, np.ones(shape, dtype=np.float32)
    if crop_to_image is not None:
        return _unit(window_rays(camera, crop_to_image, (width, height)))
    if (camera.height, camera.width) != shape:
        raise SensorError(
            f"depth is {height}x{width} but the camera is {camera.height}x{camera.width}: "
            "pass crop_to_image for a crop"
        )
    return _camera_unit_rays(camera)


@lru_cache(maxsize=4)
def _camera_unit_rays(camera: CameraModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_unit`` of a camera's full-image rays, made once per camera (read-only)."""
    planes = _unit(camera_rays(camera))
    for plane in planes:
        plane.flags.writeable = False
    return planes


def _unit(rays: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y and z planes of (H, W, 3) rays (x/z, y/z, 1) scaled to unit length."""
    x = np.ascontiguousarray(rays[..., 0], dtype=np.float32)
    y = np.ascontiguousarray(rays[..., 1], dtype=np.float32)
    inverse = np.float32(1.0) / np.sqrt(x * x + y * y + np.float32(1.0))
    return x * inverse, y * inverse, inverse


def _within_band(edges: np.ndarray, band_px: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose distance d from the nearest ``edges`` pixel is under
    their band width less half a pixel (d + 0.5 < band_px).

    Bands are a few pixels wide, so the distances that matter are those of the few pixel
    offsets shorter than the widest band: one dilation of the edges per distinct offset
    length (exact Euclidean distance, like ``cv2.distanceTransform``, at a fraction of its
    cost); a distance transform for wide bands.
    """
    reach = float(np.max(band_px)) - 0.5
    if reach <= 0.0:
        return np.zeros(edges.shape, dtype=bool)
    if reach > _MAX_DILATED_BAND_PX:
        distance = cv2.distanceTransform(
            (~edges).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE
        )
        return np.asarray(distance + np.float32(0.5) < band_px)
    within = edges & (band_px > np.float32(0.5))
    source = edges.astype(np.uint8)
    for squared in _offset_lengths_squared(int(np.ceil(reach * reach))):
        kernel = _disk(squared)
        near = cv2.dilate(source, kernel).view(bool)
        within |= near & (band_px > np.float32(np.sqrt(squared)) + np.float32(0.5))
    return within


@lru_cache(maxsize=64)
def _offset_lengths_squared(limit: int) -> tuple[int, ...]:
    """The distinct squared lengths 0 < i^2 + j^2 < ``limit`` of integer offsets, ascending."""
    radius = int(np.ceil(np.sqrt(limit)))
    i, j = np.meshgrid(np.arange(radius + 1), np.arange(radius + 1))
    squared = np.unique(i * i + j * j)
    return tuple(int(q) for q in squared if 0 < q < limit)


@lru_cache(maxsize=32)
def _disk(squared: int) -> np.ndarray:
    """uint8 kernel of the offsets (i, j) with i^2 + j^2 <= ``squared``."""
    radius = int(np.floor(np.sqrt(squared)))
    i, j = np.meshgrid(np.arange(-radius, radius + 1), np.arange(-radius, radius + 1))
    return np.asarray(i * i + j * j <= squared, dtype=np.uint8)


def _smooth_field(
    rng: np.random.Generator,
    shape: tuple[int, int],
    cell_px: float,
    *,
    gain: float = 1.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """(H, W) float32 smooth noise with zero mean and about ``gain`` standard deviation.

    Gaussian values on a grid of ``cell_px`` spacing, upsampled bicubically. The standard
    deviation is restored by the upsampling's average variance loss (a constant), not by
    measuring the field, so its statistics do not depend on the image content or size.
    """
    height, width = shape
    cell = max(float(cell_px), 1.0)
    rows = int(np.ceil(height / cell)) + 2
    cols = int(np.ceil(width / cell)) + 2
    grid = rng.standard_normal((rows, cols), dtype=np.float32)
    big = cv2.resize(grid, (round(cols * cell), round(rows * cell)), interpolation=cv2.INTER_CUBIC)
    start = int(cell)
    field = big[start : start + height, start : start + width]
    return np.multiply(field, np.float32(_BICUBIC_STD_GAIN * gain), out=out, dtype=np.float32)


def _holes(
    rng: np.random.Generator, shape: tuple[int, int], config: SensorConfig, scale: float
) -> np.ndarray:
    """(H, W) bool: a Poisson number of irregular blobs (two overlapping ellipses each)."""
    height, width = shape
    mask = np.zeros(shape, dtype=np.uint8)
    # The rate is per full frame: a crop gets the share of its area in image pixels.
    area_share = height * width * scale * scale / (640.0 * 480.0)
    count = int(rng.poisson(config.hole_rate * area_share))
    low, high = config.hole_radius_px
    for _ in range(count):
        centre = rng.uniform((0, 0), (width, height))
        for _ in range(2):
            axes = rng.uniform(low, high, size=2) / scale
            offset = rng.normal(0.0, 0.5, size=2) * axes
            angle = float(rng.uniform(0.0, 180.0))
            cx, cy = (centre + offset).tolist()
            a0, a1 = np.maximum(axes, 0.5).tolist()
            cv2.ellipse(mask, ((cx, cy), (2 * a0, 2 * a1), angle), (1,), thickness=-1)
    return mask.astype(bool)


def _discontinuities(depth: np.ndarray, jump_fraction: float) -> np.ndarray:
    """(H, W) bool: pixels with a 4-neighbour whose depth jumps (or that hit nothing)."""
    finite = np.isfinite(depth)
    z = np.where(finite, depth, np.float32(np.inf))
    edges = np.zeros(depth.shape, dtype=bool)
    for axis in (0, 1):
        a = z[:-1, :] if axis == 0 else z[:, :-1]
        b = z[1:, :] if axis == 0 else z[:, 1:]
        if not a.size:
            continue
        # One pass each in OpenCV: |a - b| > fraction * min(a, b).
        nearer: np.ndarray = cv2.min(a, b)
        nearer *= np.float32(jump_fraction)
        with np.errstate(invalid="ignore"):
            jump = cv2.absdiff(a, b) > nearer
        # inf - inf is NaN (both missing): no edge; finite next to missing: an edge.
        if axis == 0:
            edges[:-1, :] |= jump
            edges[1:, :] |= jump
        else:
            edges[:, :-1] |= jump
            edges[:, 1:] |= jump
    return edges & finite
