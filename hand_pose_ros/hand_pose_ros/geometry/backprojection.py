"""Keypoint pixels + depth -> metric 3D keypoints in the camera optical frame."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from hand_pose_ros.geometry.camera import CameraModel
from hand_pose_ros.geometry.depth_sampling import sample_depth
from hand_pose_ros.hand import KeypointStatus


class LiftedKeypoints(NamedTuple):
    """Keypoints lifted to 3D; unpacks as ``xyz, uncertainty, status``.

    Attributes:
        xyz: shape (N, 3) float64, metres in the optical frame; NaN rows without depth.
        uncertainty: shape (N,) float64, metres along the viewing ray (the depth spread
            scaled by the ray's length); NaN rows without depth.
        status: shape (N,) uint8 ``KeypointStatus``: DEPTH_MEASURED with a measured depth,
            IMAGE_ONLY with a finite pixel but no depth, INVALID without a pixel.
    """

    xyz: np.ndarray
    uncertainty: np.ndarray
    status: np.ndarray


def backproject_keypoints(camera: CameraModel, uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """3D points at the given depths behind keypoint pixels (lens distortion removed).

    Args:
        camera: the camera of the image the keypoints come from.
        uv: shape (N, 2), pixels (u = column, v = row).
        depth: shape (N,), z in metres.

    Returns:
        shape (N, 3) float64, metres in the optical frame; NaN rows where uv or depth is NaN
        (or depth <= 0).
    """
    return camera.backproject(uv, depth)


def lift_keypoints(
    camera: CameraModel,
    depth_m: np.ndarray,
    uv: np.ndarray,
    *,
    expected_distance: float | np.ndarray | None = None,
    **sampling_options: Any,
) -> LiftedKeypoints:
    """Measure depth at keypoint pixels and back-project them.

    Args:
        camera: the camera of the image the keypoints come from.
        depth_m: shape (H, W) float metres, NaN where invalid, registered to that image.
        uv: shape (N, 2), keypoint pixels; NaN rows for keypoints not found.
        expected_distance: see ``sample_depth``.
        **sampling_options: the other keyword options of ``sample_depth``
            (``patch_size_m``, ``percentile``, ``min_valid_fraction``, ...).

    Returns:
        LiftedKeypoints(xyz (N, 3), uncertainty (N,), status (N,)).
    """
    pixels = np.asarray(uv, dtype=np.float64)
    samples = sample_depth(
        depth_m, pixels, camera, expected_distance=expected_distance, **sampling_options
    )
    measured = samples.status == KeypointStatus.DEPTH_MEASURED
    rays = camera.rays(pixels)
    xyz = rays * samples.depth[:, None]
    # A pixel the lens model cannot undistort has no ray, so its depth cannot be used.
    measured &= np.isfinite(xyz).all(axis=1)
    xyz[~measured] = np.nan
    uncertainty = np.where(measured, samples.spread * np.linalg.norm(rays, axis=1), np.nan)

    status = np.full(len(pixels), KeypointStatus.INVALID, dtype=np.uint8)
    status[np.isfinite(pixels).all(axis=1)] = KeypointStatus.IMAGE_ONLY
    status[measured] = KeypointStatus.DEPTH_MEASURED
    return LiftedKeypoints(xyz, uncertainty, status)
