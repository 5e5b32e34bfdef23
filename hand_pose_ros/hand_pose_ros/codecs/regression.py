"""Normalised-coordinate regression codec (holistic regression, seed 000).

The network regresses every keypoint as (u / W, v / H): input-crop pixel coordinates divided
by the crop width W and height H (the official seed-000 code divides labels by 224). A
keypoint on the crop's first pixel centre is 0, one on its last is (W - 1) / W.

Confidence. Holistic regression has no score of its own. ``decode`` reports how plausible a
position is as a location on the crop: 1 inside the unit square [0, 1] x [0, 1] (normalised
coordinates), falling off as a Gaussian of the distance d outside it,
exp(-d^2 / (2 falloff^2)), falloff = 0.05 (5 % of the crop) by default; NaN -> 0. A model
whose head clips to [0, 1] (seed 000 does) therefore always reports 1: its confidence
carries no information, downstream code should not threshold on it.

Shapes: keypoints (N, K, 2) in pixels (u = column, v = row, pixel centres at integers);
coordinates (N, K, 2) normalised; any leading shape works the same.
"""

from __future__ import annotations

import numpy as np

DEFAULT_FALLOFF = 0.05


def _size_array(input_size: tuple[int, int]) -> np.ndarray:
    height, width = input_size
    if height <= 0 or width <= 0:
        raise ValueError(f"input size must be positive, got {input_size}")
    return np.array([width, height], dtype=np.float64)


def encode(
    keypoints: np.ndarray, visible: np.ndarray, input_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel keypoints -> normalised regression targets.

    Args:
        keypoints: shape (N, K, 2), input-crop pixels (u, v).
        visible: shape (N, K), bool: whether the keypoint is labelled and should be trained.
        input_size: (H, W) of the input crop in pixels.
    Returns:
        coords: shape (N, K, 2) float32, (u / W, v / H); 0 where not visible or not finite.
        weights: shape (N, K) float32, 1 for visible finite keypoints, else 0.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    valid = visible & np.isfinite(keypoints).all(axis=-1)
    coords = np.where(valid[..., None], keypoints / _size_array(input_size), 0.0)
    return coords.astype(np.float32), valid.astype(np.float32)


def decode(
    coords: np.ndarray, input_size: tuple[int, int], *, falloff: float = DEFAULT_FALLOFF
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised coordinates -> pixel keypoints and a confidence.

    Args:
        coords: shape (N, K, 2), normalised (u / W, v / H).
        input_size: (H, W) of the input crop in pixels.
        falloff: width, in normalised units, of the confidence's fall-off outside the crop.
    Returns:
        keypoints: shape (N, K, 2) float64, input-crop pixels.
        confidence: shape (N, K) float64 in [0, 1] (see the module docstring).
    """
    coords = np.asarray(coords, dtype=np.float64)
    keypoints = coords * _size_array(input_size)
    outside = np.maximum(-coords, 0.0) + np.maximum(coords - 1.0, 0.0)
    distance = np.sqrt(np.sum(outside**2, axis=-1))
    confidence = np.exp(-0.5 * (distance / falloff) ** 2)
    confidence = np.where(np.isfinite(distance), confidence, 0.0)
    return keypoints, confidence
