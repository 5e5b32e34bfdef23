"""A probe of how the depth model depends on the sensor's surface noise.

The SR305's depth is filtered: the hand's surface varies by 0.17 mm around its local median,
while the synthetic sensor (a D435 model) leaves about 1.1 mm. ``NoisyInput`` shows the
estimator each depth image with Gaussian noise added to its measured pixels;
`hand-pose eval-real --input-noise-mm` scores the result against the clean image's hand
region, so that the share says how the model's answer on real frames depends on surface
noise (docs/eval/residual_attention_3d.md, "Surface noise").
"""

from __future__ import annotations

import numpy as np

from hand_pose_ros.geometry import CameraModel
from hand_pose_ros.inference.depth_hands import DepthEstimator, DepthHand


class NoisyInput:
    """``estimator`` seeing every depth image with N(0, ``sigma_m``) added to its measured
    (finite, positive) pixels; missing pixels stay missing. Seeded, so a run repeats."""

    def __init__(self, estimator: DepthEstimator, sigma_m: float, seed: int = 0) -> None:
        if not np.isfinite(sigma_m) or sigma_m < 0.0:
            raise ValueError(f"the noise's standard deviation must be >= 0, got {sigma_m}")
        self.estimator = estimator
        self.sigma_m = sigma_m
        self._rng = np.random.default_rng(seed)

    def estimate(self, depth_m: np.ndarray, camera: CameraModel) -> list[DepthHand]:
        noisy = np.array(depth_m, dtype=np.float32, copy=True)
        measured = np.isfinite(noisy) & (noisy > 0.0)
        noise = self._rng.normal(0.0, self.sigma_m, int(measured.sum()))
        # A pixel the noise would push to or behind the camera stays just in front of it.
        noisy[measured] = np.maximum(noisy[measured] + noise, 1e-3)
        return self.estimator.estimate(noisy, camera)
