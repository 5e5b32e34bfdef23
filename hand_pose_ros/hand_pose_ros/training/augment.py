"""Augmentation of seed-002 depth cube crops: in-plane rotation, scale, centre jitter and
(optionally) extra surface noise.

A crop shows a cube of side ``cube`` around a centre; its depth is normalised to half-cube
units, and its joints are offsets from the centre in half-cube units (``crop.py``). Moving,
resizing or turning the cube is, to first order, an affine map of the crop
(``crop.transform_depth_crop``; DeepPrior++ augments this way). Each training item draws its
own rotation, scale and shift.

Surface noise: the synthetic sensor's noise grows with distance (sigma = a + b z^2), so in
the synthetic world the noise level of a crop tells how far the hand was, and with it how
many millimetres of silhouette the sensor's edge band took. A model can learn that link,
and a real sensor that filters its depth (the SR305's hands are smooth to 0.2 mm) breaks
it: on the 19 SR305 frames, 4 mm of added noise moved the prediction more than any
geometric change. Extra noise of a random level per crop cuts the link in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hand_pose_ros.crop import transform_depth_crop


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
        surface_noise_m: extra Gaussian noise on the measured pixels of an augmented crop,
            its standard deviation drawn per crop uniformly from [0, surface_noise_m]
            metres (0: none, and no random draw, so older runs repeat exactly).
    """

    rotation_deg: float = 30.0
    scale_sigma: float = 0.05
    shift_sigma_m: float = 0.01
    probability: float = 1.0
    surface_noise_m: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rotation_deg <= 180.0:
            raise AugmentError(f"rotation_deg must be in [0, 180], got {self.rotation_deg}")
        if not 0.0 <= self.scale_sigma < 0.3:
            raise AugmentError(f"scale_sigma must be in [0, 0.3), got {self.scale_sigma}")
        if self.shift_sigma_m < 0.0:
            raise AugmentError(f"shift_sigma_m must be >= 0, got {self.shift_sigma_m}")
        if not 0.0 <= self.probability <= 1.0:
            raise AugmentError(f"probability must be in [0, 1], got {self.probability}")
        if not 0.0 <= self.surface_noise_m <= 0.05:
            raise AugmentError(
                f"surface_noise_m must be in [0, 0.05] m, got {self.surface_noise_m}"
            )


def augment_depth_crop(
    depth: np.ndarray,
    joints: np.ndarray,
    cube_m: float,
    rng: np.random.Generator,
    config: DepthAugmentConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """A randomly moved, resized and turned view of one crop, with extra surface noise if
    the config asks for it.

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
    depth, joints = transform_depth_crop(depth, joints, theta=theta, scale=scale, shift=shift)
    if config.surface_noise_m > 0.0:
        sigma = rng.uniform(0.0, config.surface_noise_m) / (cube_m / 2.0)
        depth = _with_surface_noise(depth, sigma, rng)
    return depth, joints


def _with_surface_noise(depth: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``depth`` with Gaussian noise of ``sigma`` (half-cube units) on its measured pixels;
    the background (+1, missing or behind the cube) stays background, and values stay in
    [-1, 1] as the crop's normalisation keeps them."""
    measured = depth < 1.0
    noisy = depth.astype(np.float32, copy=True)
    noisy[measured] = np.clip(
        noisy[measured] + rng.normal(0.0, sigma, int(measured.sum())), -1.0, 1.0
    )
    return noisy
