"""Pixel-level helpers shared by the seed search and the refinement: which depth
measurements are in range, which pixels form a surface (no depth jump behind a nearer
neighbour), a mask grown by one pixel, pixels lifted to 3D points, and the pixels inside a
hand's cube. Both steps work on their own subsampled grid, so these take arrays of depth and
pixel coordinates rather than a whole image.
"""

from __future__ import annotations

import cv2
import numpy as np

from hand_pose_ros.geometry import CameraModel
from hand_pose_ros.localise.config import LocaliserConfig

# Pixels as (rows v, columns u): two int arrays of equal length, full-resolution coordinates.
Pixels = tuple[np.ndarray, np.ndarray]

_KERNEL_3X3 = np.ones((3, 3), dtype=np.uint8)


def in_depth_range(depth: np.ndarray, config: LocaliserConfig) -> np.ndarray:
    """bool, same shape: a measurement inside the configured depth range (NaN is not)."""
    with np.errstate(invalid="ignore"):
        return (depth >= config.min_depth_m) & (depth <= config.max_depth_m)


def visible_surface(filled: np.ndarray, valid: np.ndarray, depth_jump_m: float) -> np.ndarray:
    """bool: valid pixels not on the far side of a depth jump.

    ``filled`` is depth with invalid pixels at +inf. A pixel with a much nearer neighbour is
    dropped: that keeps the near object's own outline and cuts whatever lies behind it loose.
    """
    with np.errstate(invalid="ignore"):  # inf - inf where both are missing: not a jump
        return valid & ~(filled - cv2.erode(filled, _KERNEL_3X3) > depth_jump_m)


def dilated(mask: np.ndarray) -> np.ndarray:
    return cv2.dilate(mask.view(np.uint8), _KERNEL_3X3) > 0


def pixels_to_points(
    camera: CameraModel, z: np.ndarray, v: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """(N, 3) float32: pixels (rows ``v``, columns ``u``, (N,) each) at depth ``z`` (N,) in
    3D through the pinhole, metres (lens distortion over a hand is negligible for the
    distances measured with them)."""
    x = ((u - camera.cx) / camera.fx).astype(np.float32) * z
    y = ((v - camera.cy) / camera.fy).astype(np.float32) * z
    return np.stack([x, y, z.astype(np.float32)], axis=-1)


def inside_cube(
    camera: CameraModel,
    center_xyz: np.ndarray,
    half_m: float,
    z: np.ndarray,
    v: np.ndarray,
    u: np.ndarray,
) -> np.ndarray:
    """bool, ``z``'s shape: pixels (rows ``v``, columns ``u``, broadcast against ``z``) with
    depth ``z`` inside the cube of half side ``half_m`` at ``center_xyz``: in its projected
    window and within ``half_m`` of its depth."""
    center = np.asarray(center_xyz, dtype=np.float64)
    uc, vc = camera.project(center[None])[0]
    zc = center[2]
    in_window = (np.abs(u - uc) <= half_m * camera.fx / zc) & (
        np.abs(v - vc) <= half_m * camera.fy / zc
    )
    with np.errstate(invalid="ignore"):
        return in_window & (np.abs(z - zc) <= half_m)
