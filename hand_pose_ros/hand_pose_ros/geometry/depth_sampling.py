"""Robust depth at keypoint pixels.

Reading the one pixel under a keypoint fails often: depth cameras leave holes at edges, and
a fingertip keypoint sits on the finger's border, so half of the pixels around it see the
wall behind. ``sample_depth`` therefore looks at a small square patch around each keypoint:

* The patch covers about ``patch_size_m`` (a finger's width) on the hand, so its side in
  pixels shrinks with distance: ``side_px = patch_size_m * fx / distance``, rounded to an odd
  number and clamped to ``[min_patch_px, max_patch_px]``. The distance is the caller's
  ``expected_distance`` if given, else a coarse estimate (the same low percentile) from a
  small fixed patch. Patches wider than 17 px are read on an evenly spread 17 x 17 grid.
* Missing pixels (NaN) are ignored.
* The depth is a LOW percentile of the valid pixels, because the hand is in front of what is
  behind it: background pixels are all farther, so they only fill the upper percentiles.
  The percentile is taken as the nearest-rank sample, so the result is always a depth some
  pixel measured, never an interpolation halfway between finger and wall.
* A keypoint off the image, with a NaN pixel, or with too few valid pixels in its patch gets
  NaN depth and ``KeypointStatus.INVALID``.

All keypoints of a frame are processed together with a handful of numpy operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hand_pose_ros.geometry.camera import CameraModel, check_image_size
from hand_pose_ros.geometry.depth import DepthError
from hand_pose_ros.hand import KeypointStatus

# IQR of a normal distribution in standard deviations: IQR / 1.349 estimates sigma.
_IQR_PER_SIGMA = 1.349
# Most samples read per patch half-side (see _sorted_patches): at most 17 x 17 per patch.
_MAX_STEPS = 8


@dataclass(frozen=True)
class DepthSamples:
    """Depth measured at N keypoint pixels.

    Attributes:
        depth: shape (N,) float64, z in metres; NaN where status is INVALID.
        spread: shape (N,) float64, metres: a robust standard deviation (IQR / 1.349) of the
            valid patch pixels within ``surface_band_m`` of ``depth``, i.e. of the surface
            the depth was taken from, not of the background behind it. 0 when that surface
            has a single pixel; NaN where status is INVALID.
        status: shape (N,) uint8, ``KeypointStatus.DEPTH_MEASURED`` or ``INVALID``.
        valid_count: shape (N,) int64, number of valid depth pixels read in the patch (all
            of its pixels up to 17 x 17, an evenly spread 17 x 17 grid of them beyond).
        patch_px: shape (N,) int64, side of the square patch in pixels; 0 for a keypoint off
            the image.
    """

    depth: np.ndarray
    spread: np.ndarray
    status: np.ndarray
    valid_count: np.ndarray
    patch_px: np.ndarray


def patch_side_px(
    fx: float,
    distance: np.ndarray,
    *,
    patch_size_m: float = 0.012,
    min_patch_px: int = 3,
    max_patch_px: int = 31,
) -> np.ndarray:
    """Odd side in pixels of a square covering ``patch_size_m`` at ``distance``.

    Args:
        fx: focal length in pixels.
        distance: shape (N,), metres; NaN or <= 0 give ``max_patch_px`` (nothing better known).
        patch_size_m: side of the patch on the object, metres.
        min_patch_px, max_patch_px: odd bounds on the side, pixels.

    Returns:
        shape (N,) int64, odd sides in ``[min_patch_px, max_patch_px]``: the odd number
        nearest to ``patch_size_m * fx / distance``.
    """
    distance = np.asarray(distance, dtype=np.float64)
    known = np.isfinite(distance) & (distance > 0)
    raw = np.full(distance.shape, float(max_patch_px))
    raw[known] = patch_size_m * fx / distance[known]
    # Nearest odd number (an even raw side, exactly between two, goes up), then the bounds.
    odd = 2 * np.floor(raw / 2.0) + 1
    return np.clip(odd, min_patch_px, max_patch_px).astype(np.int64)


def sample_depth(
    depth_m: np.ndarray,
    uv: np.ndarray,
    camera: CameraModel,
    *,
    expected_distance: float | np.ndarray | None = None,
    patch_size_m: float = 0.012,
    percentile: float = 20.0,
    min_valid_fraction: float = 0.2,
    min_patch_px: int = 3,
    max_patch_px: int = 31,
    coarse_patch_px: int = 9,
    surface_band_m: float = 0.02,
) -> DepthSamples:
    """Robust depth at keypoint pixels (see the module docstring for the method).

    Args:
        depth_m: shape (H, W) float, metres, NaN where invalid (``decode_depth``'s output),
            registered to the image the keypoints come from.
        uv: shape (N, 2), keypoint pixels (u = column, v = row); NaN rows allowed.
        camera: the camera of that image (its size must match ``depth_m``).
        expected_distance: metres, a scalar or shape (N,), used only to size the patch
            (e.g. the hand's distance in the previous frame); NaN entries and None fall back
            to the coarse estimate.
        patch_size_m: side of the patch on the hand, metres (about a finger's width).
        percentile: in [0, 100], the low percentile of the patch's valid depths to report.
        min_valid_fraction: in [0, 1], the fraction of the patch's in-image pixels that must
            be valid; at least one always is required.
        min_patch_px, max_patch_px: odd bounds on the patch side, pixels.
        coarse_patch_px: odd side of the fixed patch for the coarse distance, pixels.
        surface_band_m: metres around the chosen depth counted as the same surface for
            ``spread``.

    Returns:
        DepthSamples for the N keypoints.

    Raises:
        DepthError: ``depth_m`` is not a 2D float image.
        CameraInfoError: ``depth_m``'s size differs from the camera's.
        ValueError: an option out of range, or ``uv``/``expected_distance`` of the wrong shape.
    """
    depth = np.asarray(depth_m)
    if depth.ndim != 2 or depth.dtype.kind != "f":
        raise DepthError(
            f"depth_m has shape {depth.shape} and dtype {depth.dtype}: expected (height, width) "
            "float metres (see decode_depth)"
        )
    check_image_size(camera, depth.shape[0], depth.shape[1], "depth image")
    _check_options(
        patch_size_m,
        percentile,
        min_valid_fraction,
        min_patch_px,
        max_patch_px,
        coarse_patch_px,
        surface_band_m,
    )
    pixels = np.asarray(uv, dtype=np.float64)
    if pixels.ndim != 2 or pixels.shape[1] != 2:
        raise ValueError(f"uv: expected shape (N, 2), got {pixels.shape}")
    count = len(pixels)

    # Nearest pixel: (0, 0) is the centre of the top-left pixel, so round half up. Clipping
    # first keeps absurd coordinates (1e300) from overflowing the integer cast.
    height, width = depth.shape
    finite = np.isfinite(pixels).all(axis=1)
    cols = np.zeros(count, dtype=np.int64)
    rows = np.zeros(count, dtype=np.int64)
    cols[finite] = np.floor(np.clip(pixels[finite, 0], -1.0, width) + 0.5)
    rows[finite] = np.floor(np.clip(pixels[finite, 1], -1.0, height) + 0.5)
    inside = finite & (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)

    distance = _distance_for_patch(
        depth, rows, cols, inside, expected_distance, percentile, coarse_patch_px
    )
    side = patch_side_px(
        camera.fx,
        distance,
        patch_size_m=patch_size_m,
        min_patch_px=min_patch_px,
        max_patch_px=max_patch_px,
    )
    side[~inside] = 0

    chosen = np.full(count, np.nan)
    spread = np.full(count, np.nan)
    valid_count = np.zeros(count, dtype=np.int64)
    status = np.full(count, KeypointStatus.INVALID, dtype=np.uint8)
    if inside.any():
        ordered, n_valid, n_in_image = _sorted_patches(
            depth, rows[inside], cols[inside], side[inside] // 2
        )
        value = _nearest_rank(ordered, n_valid, percentile)
        needed = np.maximum(np.ceil(min_valid_fraction * n_in_image - 1e-9), 1)
        ok = n_valid >= needed
        chosen[inside] = np.where(ok, value, np.nan)
        spread[inside] = np.where(ok, _surface_spread(ordered, value, surface_band_m), np.nan)
        valid_count[inside] = n_valid
        status[np.flatnonzero(inside)[ok]] = KeypointStatus.DEPTH_MEASURED
    return DepthSamples(chosen, spread, status, valid_count, side)


def _distance_for_patch(
    depth: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    inside: np.ndarray,
    expected_distance: float | np.ndarray | None,
    percentile: float,
    coarse_patch_px: int,
) -> np.ndarray:
    """shape (N,) metres used to size each keypoint's patch; NaN where nothing is known."""
    count = len(rows)
    if expected_distance is None:
        distance = np.full(count, np.nan)
    else:
        try:
            distance = np.broadcast_to(
                np.asarray(expected_distance, dtype=np.float64), (count,)
            ).copy()
        except ValueError as error:
            raise ValueError(
                f"expected_distance: expected a scalar or shape ({count},), "
                f"got shape {np.shape(expected_distance)}"
            ) from error
        distance[~(distance > 0)] = np.nan
    unknown = inside & ~np.isfinite(distance)
    if unknown.any():
        # The same low percentile as the final value, not the median: at a fingertip on the
        # finger's border the median can land on the wall and shrink the patch needlessly.
        ordered, n_valid, _ = _sorted_patches(
            depth,
            rows[unknown],
            cols[unknown],
            np.full(int(unknown.sum()), coarse_patch_px // 2),
        )
        distance[unknown] = _nearest_rank(ordered, n_valid, percentile)
        # A keypoint in a hole borrows the hand's typical distance from its neighbours.
        known = np.isfinite(distance)
        if known.any():
            distance[~known] = np.median(distance[known])
    return distance


def _sorted_patches(
    depth: np.ndarray, rows: np.ndarray, cols: np.ndarray, half: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Valid depths of square patches, ascending, padded with +inf.

    A patch wider than ``2 * _MAX_STEPS + 1`` pixels is read on an evenly spread grid of
    that many rows and columns covering the same area: more samples would not make a
    percentile more accurate, but sorting them is what costs the time.

    Args:
        depth: shape (H, W) metres.
        rows, cols, half: shape (M,), patch centres (in the image) and half-sides, pixels.

    Returns:
        ordered (M, S) with the valid depths first, n_valid (M,) and n_in_image (M,): the
        number of valid samples and of patch samples inside the image.
    """
    height, width = depth.shape
    steps = np.minimum(half, _MAX_STEPS)
    reach = int(steps.max())
    step = np.arange(-reach, reach + 1)
    # (M, S) pixel offsets of the samples, S = 2 * reach + 1: every pixel of a small patch,
    # evenly spread ones (stride between 1 and 2 pixels) across a large one.
    spacing = half / np.maximum(steps, 1)
    offsets = np.rint(step[None, :] * spacing[:, None]).astype(np.int64)
    in_patch = np.abs(step)[None, :] <= steps[:, None]
    sample_rows = rows[:, None] + offsets
    sample_cols = cols[:, None] + offsets
    row_ok = in_patch & (sample_rows >= 0) & (sample_rows < height)
    col_ok = in_patch & (sample_cols >= 0) & (sample_cols < width)
    use = (row_ok[:, :, None] & col_ok[:, None, :]).reshape(len(rows), -1)
    values = depth[
        np.clip(sample_rows, 0, height - 1)[:, :, None],
        np.clip(sample_cols, 0, width - 1)[:, None, :],
    ].reshape(len(rows), -1)
    valid = use & np.isfinite(values) & (values > 0)
    ordered = np.sort(np.where(valid, values, np.inf), axis=1)
    return ordered, valid.sum(axis=1), use.sum(axis=1)


def _nearest_rank(ordered: np.ndarray, n_valid: np.ndarray, percentile: float) -> np.ndarray:
    """shape (M,): the sample at the given percentile's nearest rank; NaN with no sample."""
    rank = np.rint((np.maximum(n_valid, 1) - 1) * percentile / 100.0).astype(np.int64)
    value = ordered[np.arange(len(ordered)), rank]
    return np.where(n_valid > 0, value, np.nan)


def _surface_spread(ordered: np.ndarray, value: np.ndarray, band: float) -> np.ndarray:
    """shape (M,) metres: IQR / 1.349 of the sorted samples within ``band`` of ``value``.

    Rows without samples (``value`` NaN) give NaN or inf; the caller discards them.
    """
    # Those rows subtract inf padding from itself; silence that rather than mask it.
    with np.errstate(invalid="ignore"):
        first = (ordered < (value - band)[:, None]).sum(axis=1)
        stop = (ordered <= (value + band)[:, None]).sum(axis=1)
        size = np.maximum(stop - first, 1)
        q1 = _interpolated(ordered, first + 0.25 * (size - 1))
        q3 = _interpolated(ordered, first + 0.75 * (size - 1))
        return (q3 - q1) / _IQR_PER_SIGMA


def _interpolated(ordered: np.ndarray, position: np.ndarray) -> np.ndarray:
    """shape (M,): ``ordered`` at fractional column positions, linearly interpolated."""
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, ordered.shape[1] - 1)
    row = np.arange(len(ordered))
    low = ordered[row, below]
    high = ordered[row, above]
    fraction = position - below
    # An exact rank (fraction 0) must not touch a +inf padding entry.
    return np.where(fraction > 0, low + fraction * (high - low), low)


def _check_options(
    patch_size_m: float,
    percentile: float,
    min_valid_fraction: float,
    min_patch_px: int,
    max_patch_px: int,
    coarse_patch_px: int,
    surface_band_m: float,
) -> None:
    if not (math.isfinite(patch_size_m) and patch_size_m > 0):
        raise ValueError(f"patch_size_m = {patch_size_m}: expected metres > 0")
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile = {percentile}: expected a value in [0, 100]")
    if not 0.0 <= min_valid_fraction <= 1.0:
        raise ValueError(f"min_valid_fraction = {min_valid_fraction}: expected [0, 1]")
    for name, side in (
        ("min_patch_px", min_patch_px),
        ("max_patch_px", max_patch_px),
        ("coarse_patch_px", coarse_patch_px),
    ):
        if side < 1 or side % 2 == 0:
            raise ValueError(f"{name} = {side}: expected an odd number of pixels >= 1")
    if min_patch_px > max_patch_px:
        raise ValueError(
            f"min_patch_px = {min_patch_px} > max_patch_px = {max_patch_px}: expected min <= max"
        )
    if not (math.isfinite(surface_band_m) and surface_band_m >= 0):
        raise ValueError(f"surface_band_m = {surface_band_m}: expected metres >= 0")
