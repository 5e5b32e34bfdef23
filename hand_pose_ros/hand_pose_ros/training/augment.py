"""Augmentation of seed-002 depth cube crops: in-plane rotation, scale, centre jitter.

A crop shows a cube of side ``cube`` around a centre; its depth is normalised to half-cube
units, and its joints are offsets from the centre in half-cube units (``crop.py``). Moving
or resizing the cube is, to first order, an affine map of the crop (DeepPrior++ augments
this way): with the cube grown by ``s``, shifted by ``t`` (half-cube units) and turned by
``theta`` about the viewing axis,

    joints'  = R(theta) (joints_xy - t_xy) / s,   z' = (z - t_z) / s
    pixel'   = c + R(theta) (pixel - c - t_xy S / 2) / s
    depth'   = (depth - t_z) / s, background (+1) stays +1, clipped to [-1, 1]

where c is the crop centre and S the crop side. Image and optical frame share their axes
(x right, y down), so one rotation matrix serves both. The parallax of a moved window is
ignored, as in DeepPrior++: the shifts are a centimetre or two.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


class AugmentError(ValueError):
    """An augmentation setting out of range."""


@dataclass(frozen=True)
class DepthAugmentConfig:
    """How crops are varied during training.

    Attributes:
        rotation_deg: in-plane rotation drawn uniformly from [-rotation_deg, rotation_deg].
            The synthetic world already turns hands every way a person offers them; the
            augmentation widens that a little, not to the upside-down hands it never has.
        scale_sigma: standard deviation of the cube's scale around 1 (clipped to +-3 sigma).
        shift_sigma_m: standard deviation of the centre's offset per axis, metres: the
            localiser's error on real frames (a centimetre or two).
        probability: share of samples augmented at all (the rest are left as they are).
    """

    rotation_deg: float = 30.0
    scale_sigma: float = 0.05
    shift_sigma_m: float = 0.01
    probability: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rotation_deg <= 180.0:
            raise AugmentError(f"rotation_deg must be in [0, 180], got {self.rotation_deg}")
        if not 0.0 <= self.scale_sigma < 0.3:
            raise AugmentError(f"scale_sigma must be in [0, 0.3), got {self.scale_sigma}")
        if self.shift_sigma_m < 0.0:
            raise AugmentError(f"shift_sigma_m must be >= 0, got {self.shift_sigma_m}")
        if not 0.0 <= self.probability <= 1.0:
            raise AugmentError(f"probability must be in [0, 1], got {self.probability}")


def augment_depth_crop(
    depth: np.ndarray,
    joints: np.ndarray,
    cube_m: float,
    rng: np.random.Generator,
    config: DepthAugmentConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """A randomly moved, resized and turned view of one crop.

    Args:
        depth: (S, S) normalised depth in [-1, 1], +1 for background.
        joints: (K, 3) offsets from the cube centre, half-cube units (NaN rows stay NaN).
        cube_m: the cube's side in metres (converts ``shift_sigma_m`` to half-cube units).
        rng: the only source of randomness.
        config: the augmentation's ranges.

    Returns:
        the new depth (S, S) float32 and joints (K, 3) float32.
    """
    if rng.random() >= config.probability:
        return depth.astype(np.float32), joints.astype(np.float32)
    theta = np.radians(rng.uniform(-config.rotation_deg, config.rotation_deg))
    scale = 1.0 + float(np.clip(rng.normal(), -3.0, 3.0)) * config.scale_sigma
    shift = rng.normal(0.0, 1.0, 3) * config.shift_sigma_m / (cube_m / 2.0)
    return transform_depth_crop(depth, joints, theta=theta, scale=scale, shift=shift)


def transform_depth_crop(
    depth: np.ndarray,
    joints: np.ndarray,
    *,
    theta: float = 0.0,
    scale: float = 1.0,
    shift: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> tuple[np.ndarray, np.ndarray]:
    """The crop of the cube grown by ``scale``, moved by ``shift`` (half-cube units, (3,))
    and turned by ``theta`` (radians) about the viewing axis (module docstring)."""
    if scale <= 0.0:
        raise AugmentError(f"scale must be > 0, got {scale}")
    size = depth.shape[0]
    if depth.ndim != 2 or depth.shape[1] != size:
        raise AugmentError(f"depth must be a square (S, S) crop, got {depth.shape}")
    t = np.asarray(shift, dtype=np.float64).reshape(3)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
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
