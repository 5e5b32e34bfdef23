"""Hand crops: the affine map between a square hand window and the source image, and the
depth cube crop of the depth models.

Every model sees a crop, never the full image, and every keypoint it returns must go back
to full-resolution source pixels (and metres). So the crop is described by one 2x3 affine
matrix, ``crop_to_image``: crop pixel (i = column, j = row) -> image pixel (u, v), with
pixel centres at integer coordinates in both. Its inverse maps image -> crop. The synthetic
world renders crops directly through the same matrix (one ray per crop pixel), so training
crops and inference crops are the same geometry by construction.

The depth cube crop (DeepPrior++ / seed 002): a cube of side ``cube_m`` centred on the
hand's centre of mass ``center_xyz`` is projected to a square window (aspect preserving in
metres: the window spans ``cube_m`` at the centre's depth in both directions), depth is
normalised to ``(d - z_c) / (cube_z / 2)`` and clipped to [-1, 1], and missing or behind-
the-cube pixels are 1. Keypoint labels are ``(xyz - center_xyz) / (cube / 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hand_pose_ros.geometry import CameraModel


class CropError(ValueError):
    """A crop cannot be made from the given window, depth or centre."""


def crop_to_image_matrix(
    center_uv: np.ndarray,
    window_px: float | tuple[float, float],
    output_size: int | tuple[int, int],
    rotation_rad: float = 0.0,
) -> np.ndarray:
    """The 2x3 affine map from crop pixels to image pixels.

    Args:
        center_uv: shape (2,), the window's centre in image pixels.
        window_px: the window's side in image pixels (or (width, height)).
        output_size: the crop's side in pixels (or (width, height)).
        rotation_rad: rotation of the window in the image, counter-clockwise as seen on
            screen (v down): a crop of a window rotated by +a shows the content rotated by -a.

    Returns:
        shape (2, 3): ``[u, v] = M @ [i, j, 1]``.
    """
    width_px, height_px = _pair(window_px, "window_px")
    out_w, out_h = _pair(output_size, "output_size")
    center = np.asarray(center_uv, dtype=np.float64).reshape(2)
    if not np.isfinite(center).all():
        raise CropError(f"crop centre must be finite, got {center}")
    scale = np.array([width_px / out_w, height_px / out_h])
    cos, sin = np.cos(rotation_rad), np.sin(rotation_rad)
    # On screen (v down) a counter-clockwise turn is [[cos, sin], [-sin, cos]].
    rotation = np.array([[cos, sin], [-sin, cos]])
    linear = rotation * scale  # scales crop columns/rows, then rotates
    crop_center = np.array([(out_w - 1) / 2.0, (out_h - 1) / 2.0])
    offset = center - linear @ crop_center
    return np.hstack([linear, offset[:, None]])


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine map."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points (N, 2) through a 2x3 affine matrix; NaN rows stay NaN."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return points @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def crop_image(
    image: np.ndarray,
    crop_to_image: np.ndarray,
    output_size: int | tuple[int, int],
    *,
    interpolation: int = cv2.INTER_LINEAR,
    border_value: float = 0.0,
) -> np.ndarray:
    """Cut the window described by ``crop_to_image`` out of ``image`` (H, W[, C]).

    Use ``cv2.INTER_NEAREST`` for depth: blending a finger with the wall behind it makes a
    depth that exists nowhere.
    """
    out_w, out_h = _pair(output_size, "output_size")
    return cv2.warpAffine(
        image,
        invert_affine(crop_to_image),
        (int(out_w), int(out_h)),
        flags=interpolation,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(border_value,) * 4,
    )


def square_window(box: np.ndarray, padding: float = 1.3) -> tuple[np.ndarray, float]:
    """Centre (2,) and side (px) of the square window around a pixel box, padded.

    Args:
        box: (u_min, v_min, u_max, v_max) in pixels.
        padding: side = padding * the box's longer side.
    """
    u_min, v_min, u_max, v_max = (float(x) for x in box)
    if not np.isfinite([u_min, v_min, u_max, v_max]).all() or u_max < u_min or v_max < v_min:
        raise CropError(f"box must be finite with max >= min, got {box}")
    side = max(u_max - u_min, v_max - v_min, 1.0) * padding
    return np.array([(u_min + u_max) / 2.0, (v_min + v_max) / 2.0]), side


@dataclass(frozen=True)
class CubeCrop:
    """Where a depth cube crop sits: enough to normalise depth and map keypoints back.

    Attributes:
        center_xyz: shape (3,), the cube centre in metres (camera optical frame).
        cube_m: shape (3,), the cube's side along x, y, z in metres.
        crop_to_image: shape (2, 3), crop pixel -> image pixel.
        output_size: the crop's side in pixels.
    """

    center_xyz: np.ndarray
    cube_m: np.ndarray
    crop_to_image: np.ndarray
    output_size: int

    def normalise_depth(self, depth_crop_m: np.ndarray) -> np.ndarray:
        """float32 in [-1, 1]: (d - z_c) / (cube_z / 2); missing and behind-cube -> 1."""
        half = self.cube_m[2] / 2.0
        normalised = (depth_crop_m.astype(np.float64) - self.center_xyz[2]) / half
        normalised = np.where(np.isfinite(normalised), normalised, 1.0)
        # Behind the cube is background (1); in front of it is clipped to -1, as in seed 002.
        normalised[normalised > 1.0] = 1.0
        return np.clip(normalised, -1.0, 1.0).astype(np.float32)

    def to_cube_units(self, xyz: np.ndarray) -> np.ndarray:
        """Keypoints (N, 3) metres -> (N, 3) offsets from the centre in half-cube units."""
        return (np.asarray(xyz, dtype=np.float64) - self.center_xyz) / (self.cube_m / 2.0)

    def from_cube_units(self, offsets: np.ndarray) -> np.ndarray:
        """Offsets (N, 3) in half-cube units -> keypoints (N, 3) in metres, camera frame."""
        return np.asarray(offsets, dtype=np.float64) * (self.cube_m / 2.0) + self.center_xyz


def cube_crop_geometry(
    camera: CameraModel,
    center_xyz: np.ndarray,
    *,
    cube_m: float | tuple[float, float, float] = 0.25,
    output_size: int = 128,
) -> CubeCrop:
    """The window of a cube of side ``cube_m`` centred at ``center_xyz`` (metres).

    The window is centred on the centre's projection and spans ``cube_x * fx / z_c`` by
    ``cube_y * fy / z_c`` pixels, so a metre is the same number of crop pixels across and
    down (aspect preserving in metres).
    """
    center = np.asarray(center_xyz, dtype=np.float64).reshape(3)
    if not np.isfinite(center).all() or center[2] <= 0:
        raise CropError(f"cube centre must be finite with z > 0, got {center}")
    cube = np.broadcast_to(np.asarray(cube_m, dtype=np.float64), (3,)).copy()
    if (cube <= 0).any():
        raise CropError(f"cube size must be > 0 m, got {cube}")
    center_uv = camera.project(center[None])[0]
    if not np.isfinite(center_uv).all():
        raise CropError(f"cube centre {center} does not project into the camera")
    window = (cube[0] * camera.fx / center[2], cube[1] * camera.fy / center[2])
    matrix = crop_to_image_matrix(center_uv, window, output_size)
    return CubeCrop(center, cube, matrix, int(output_size))


def depth_cube_crop(
    depth_m: np.ndarray,
    camera: CameraModel,
    center_xyz: np.ndarray,
    *,
    cube_m: float | tuple[float, float, float] = 0.25,
    output_size: int = 128,
) -> tuple[np.ndarray, CubeCrop]:
    """The normalised depth cube crop (output_size, output_size) float32 and its geometry."""
    geometry = cube_crop_geometry(camera, center_xyz, cube_m=cube_m, output_size=output_size)
    window = crop_image(
        depth_m.astype(np.float32),
        geometry.crop_to_image,
        output_size,
        interpolation=cv2.INTER_NEAREST,
        border_value=float("nan"),
    )
    return geometry.normalise_depth(window), geometry


def transform_depth_crop(
    depth: np.ndarray,
    joints: np.ndarray,
    *,
    theta: float = 0.0,
    scale: float = 1.0,
    shift: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> tuple[np.ndarray, np.ndarray]:
    """The crop of the cube grown by ``scale``, moved by ``shift`` (half-cube units, (3,))
    and turned by ``theta`` (radians) about the viewing axis.

    With the cube grown by ``s``, shifted by ``t`` (half-cube units) and turned by ``theta``,

        joints'  = R(theta) (joints_xy - t_xy) / s,   z' = (z - t_z) / s
        pixel'   = c + R(theta) (pixel - c - t_xy S / 2) / s
        depth'   = (depth - t_z) / s, background (+1) stays +1, clipped to [-1, 1]

    where c is the crop centre and S the crop side. Image and optical frame share their axes
    (x right, y down), so one rotation matrix serves both. The parallax of a moved window is
    ignored, as in DeepPrior++: the shifts are a centimetre or two. Training augments with
    it (``training/augment.py``); inference averages turned views (``inference/depth_views.py``).
    """
    if scale <= 0.0:
        raise CropError(f"scale must be > 0, got {scale}")
    size = depth.shape[0]
    if depth.ndim != 2 or depth.shape[1] != size:
        raise CropError(f"depth must be a square (S, S) crop, got {depth.shape}")
    t = np.asarray(shift, dtype=np.float64).reshape(3)
    rotation = in_plane_rotation(theta)
    # Pixel centres run 0..S-1: the crop centre is (S - 1) / 2, a half-cube is S / 2 px.
    center = np.full(2, (size - 1) / 2.0)
    linear = rotation / scale
    offset = center - linear @ (center + t[:2] * size / 2.0)
    matrix = np.hstack([linear, offset[:, None]])
    warped = cv2.warpAffine(
        depth.astype(np.float32), matrix, (size, size),
        flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=(1.0,),
    )  # fmt: skip
    background = warped >= 1.0
    out = (warped - np.float32(t[2])) / np.float32(scale)
    out[background] = 1.0
    np.clip(out, -1.0, 1.0, out=out)
    out[out >= 1.0] = 1.0

    moved = np.asarray(joints, dtype=np.float64).copy()
    moved[:, :2] = ((moved[:, :2] - t[:2]) / scale) @ rotation.T
    moved[:, 2] = (moved[:, 2] - t[2]) / scale
    return out.astype(np.float32), moved.astype(np.float32)


def in_plane_rotation(theta: float) -> np.ndarray:
    """(2, 2) R(theta): turns x towards y (image-wise clockwise, as y points down)."""
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def _pair(value: float | tuple[float, float], name: str) -> tuple[float, float]:
    pair = np.asarray(value, dtype=np.float64).reshape(-1)
    if pair.size == 1:
        pair = np.repeat(pair, 2)
    if pair.size != 2 or not np.isfinite(pair).all() or pair.min() <= 0:
        raise CropError(f"{name} must be > 0 (or a pair of them), got {value}")
    return float(pair[0]), float(pair[1])
