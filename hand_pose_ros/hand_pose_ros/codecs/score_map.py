"""Score-map codec (MSAHP, seed 001): one normalised Gaussian map per keypoint.

Geometry. A map of size (h, w) covers the input crop (H, W) with stride H / h (8 for MSAHP's
32 x 32 maps of a 256 x 256 crop); pixel centres are aligned, so input pixel u and map pixel
x are related by x = (u + 0.5) w / W - 0.5 (and the same for v and y).

Encoding. Each visible keypoint gets a Gaussian of standard deviation ``sigma`` (map
pixels) centred on its sub-pixel map position, normalised to sum 1: a probability
distribution over the map, the target of a spatial-softmax cross-entropy. Invisible
keypoints, and keypoints whose centre lies outside the crop (a distribution over the crop
cannot have its mean outside it), get an all-zero map and weight 0.

Decoding. ``method="argmax"`` (default): the maximum of each map, refined to sub-pixel
precision by a parabola through the log-values at the maximum and its two neighbours on
each axis. For a Gaussian this recovers the centre exactly; the offset is clipped to
half a pixel and is 0 on the map border. ``method="soft_argmax"``: the expected position
under the (normalised) map. Confidence: the probability mass in the (2r + 1) x (2r + 1) window
(r = ceil(2 sigma)) centred on the decoded position's pixel, i.e. how much of the map agrees
with the peak (the window is cut at the map border). It is 0.94-0.98 for a target-shaped
map (sigma = 1), (2r + 1)^2 / (h w) for a uniform map (0.024 on 32 x 32, less at the border)
and 0 for an all-zero map.

Shapes: keypoints (N, K, 2) in input-crop pixels (u, v); maps (N, K, h, w).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

DEFAULT_SIGMA = 1.0
_LOG_FLOOR = 1e-30


def _check_sizes(input_size: tuple[int, int], map_size: tuple[int, int]) -> None:
    if min(input_size) <= 0 or min(map_size) <= 0:
        raise ValueError(f"sizes must be positive, got input {input_size}, map {map_size}")


def to_map_coordinates(
    keypoints: np.ndarray, input_size: tuple[int, int], map_size: tuple[int, int]
) -> np.ndarray:
    """Input-crop pixels (..., 2) -> map pixels (..., 2), pixel centres aligned."""
    _check_sizes(input_size, map_size)
    scale = np.array([map_size[1] / input_size[1], map_size[0] / input_size[0]])
    return (np.asarray(keypoints, dtype=np.float64) + 0.5) * scale - 0.5


def to_input_coordinates(
    map_points: np.ndarray, input_size: tuple[int, int], map_size: tuple[int, int]
) -> np.ndarray:
    """Map pixels (..., 2) -> input-crop pixels (..., 2); inverse of ``to_map_coordinates``."""
    _check_sizes(input_size, map_size)
    scale = np.array([input_size[1] / map_size[1], input_size[0] / map_size[0]])
    return (np.asarray(map_points, dtype=np.float64) + 0.5) * scale - 0.5


def encode(
    keypoints: np.ndarray,
    visible: np.ndarray,
    input_size: tuple[int, int],
    map_size: tuple[int, int],
    *,
    sigma: float = DEFAULT_SIGMA,
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints -> normalised Gaussian score maps.

    Args:
        keypoints: shape (N, K, 2), input-crop pixels (u, v).
        visible: shape (N, K) bool.
        input_size: (H, W) of the crop; map_size: (h, w) of the maps.
        sigma: Gaussian standard deviation in map pixels.
    Returns:
        maps: shape (N, K, h, w) float32, each summing to 1, or all zero where weight is 0.
        weights: shape (N, K) float32: 1 for visible keypoints inside the crop, else 0.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    centres = to_map_coordinates(keypoints, input_size, map_size)
    height, width = map_size
    inside = (
        (centres[..., 0] >= -0.5)
        & (centres[..., 0] <= width - 0.5)
        & (centres[..., 1] >= -0.5)
        & (centres[..., 1] <= height - 0.5)
    )
    valid = np.asarray(visible, dtype=bool) & np.isfinite(centres).all(axis=-1) & inside
    centres = np.where(valid[..., None], centres, 0.0)
    xs = np.arange(width, dtype=np.float64)
    ys = np.arange(height, dtype=np.float64)
    # Separable Gaussian: (N, K, w) x (N, K, h) -> (N, K, h, w).
    gx = np.exp(-0.5 * ((xs - centres[..., 0:1]) / sigma) ** 2)
    gy = np.exp(-0.5 * ((ys - centres[..., 1:2]) / sigma) ** 2)
    maps = gy[..., :, None] * gx[..., None, :]
    maps /= maps.sum(axis=(-2, -1), keepdims=True)
    maps *= valid[..., None, None]
    return maps.astype(np.float32), valid.astype(np.float32)


def spatial_softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last two axes: (..., h, w) logits -> (..., h, w) maps summing to 1."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=(-2, -1), keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=(-2, -1), keepdims=True)


def _parabola_offset(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Sub-pixel offset of the vertex of the parabola through log-values at -1, 0, +1."""
    curvature = left - 2.0 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = 0.5 * (left - right) / curvature
    offset = np.where((curvature < 0) & np.isfinite(offset), offset, 0.0)
    return np.clip(offset, -0.5, 0.5)


def _window_mass(maps: np.ndarray, centres: np.ndarray, radius: int) -> np.ndarray:
    """Sum of ``maps`` (N, K, h, w) in the (2r+1)^2 window around integer ``centres``
    (N, K, 2) (x, y), parts outside the map excluded. Returns (N, K)."""
    height, width = maps.shape[-2:]
    cumulative = np.zeros((*maps.shape[:-2], height + 1, width + 1))
    cumulative[..., 1:, 1:] = maps.cumsum(axis=-2).cumsum(axis=-1)
    x0 = np.clip(centres[..., 0] - radius, 0, width)
    x1 = np.clip(centres[..., 0] + radius + 1, 0, width)
    y0 = np.clip(centres[..., 1] - radius, 0, height)
    y1 = np.clip(centres[..., 1] + radius + 1, 0, height)

    def at(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.take_along_axis(
            cumulative.reshape(*cumulative.shape[:-2], -1),
            (y * (width + 1) + x)[..., None],
            axis=-1,
        )[..., 0]

    return at(y1, x1) - at(y0, x1) - at(y1, x0) + at(y0, x0)


def decode(
    maps: np.ndarray,
    input_size: tuple[int, int],
    *,
    sigma: float = DEFAULT_SIGMA,
    method: Literal["argmax", "soft_argmax"] = "argmax",
) -> tuple[np.ndarray, np.ndarray]:
    """Score maps -> keypoints and confidence.

    Args:
        maps: shape (N, K, h, w), non-negative (e.g. ``spatial_softmax`` of network logits);
            need not sum to 1.
        input_size: (H, W) of the crop the maps cover.
        sigma: the encoding's Gaussian sigma (map pixels); sets the confidence window.
        method: "argmax" (with log-parabola sub-pixel refinement) or "soft_argmax".
    Returns:
        keypoints: shape (N, K, 2) float64, input-crop pixels (u, v).
        confidence: shape (N, K) float64 in [0, 1] (see the module docstring).
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim < 2:
        raise ValueError(f"maps must have shape (..., h, w), got {maps.shape}")
    height, width = maps.shape[-2:]
    maps = np.where(np.isfinite(maps), np.maximum(maps, 0.0), 0.0)
    total = maps.sum(axis=(-2, -1))
    normalised = maps / np.where(total > 0, total, 1.0)[..., None, None]

    flat_index = normalised.reshape(*maps.shape[:-2], -1).argmax(axis=-1)
    peak_y, peak_x = np.divmod(flat_index, width)
    if method == "argmax":
        logs = np.log(np.maximum(normalised, _LOG_FLOOR))
        flat_logs = logs.reshape(*maps.shape[:-2], -1)

        def log_at(y: np.ndarray, x: np.ndarray) -> np.ndarray:
            index = np.clip(y, 0, height - 1) * width + np.clip(x, 0, width - 1)
            return np.take_along_axis(flat_logs, index[..., None], axis=-1)[..., 0]

        centre = log_at(peak_y, peak_x)
        dx = _parabola_offset(log_at(peak_y, peak_x - 1), centre, log_at(peak_y, peak_x + 1))
        dy = _parabola_offset(log_at(peak_y - 1, peak_x), centre, log_at(peak_y + 1, peak_x))
        dx = np.where((peak_x > 0) & (peak_x < width - 1), dx, 0.0)
        dy = np.where((peak_y > 0) & (peak_y < height - 1), dy, 0.0)
        points = np.stack([peak_x + dx, peak_y + dy], axis=-1)
    elif method == "soft_argmax":
        xs = np.arange(width, dtype=np.float64)
        ys = np.arange(height, dtype=np.float64)
        points = np.stack(
            [
                (normalised.sum(axis=-2) * xs).sum(axis=-1),
                (normalised.sum(axis=-1) * ys).sum(axis=-1),
            ],
            axis=-1,
        )
    else:
        raise ValueError(f"unknown decoding method {method!r}")

    radius = int(np.ceil(2.0 * sigma))
    window_centres = np.clip(np.rint(points), 0, [width - 1, height - 1]).astype(np.int64)
    confidence = _window_mass(normalised, window_centres, radius)
    confidence = np.where(total > 0, np.clip(confidence, 0.0, 1.0), 0.0)
    keypoints = to_input_coordinates(points, input_size, (height, width))
    return keypoints, confidence
