"""The on-hand check of ``real_frames`` run on synthetic frames, where the truth is known.

On real frames the check has no labels, so its number alone cannot say how good a
skeleton is. Here the same pipeline and the same hand region score the ground truth too:
the truth's share is the most the check can give (a fingertip keypoint sits inside the
finger, but the sensor's lost edge pixels can leave it just off the measured surface), and
the prediction's share next to its 3D error tells what a given share means in millimetres.

Only hands whose 21 keypoints all project inside the image are scored, as in the real
frames the check is used on: a keypoint outside the image cannot be on any pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hand_pose_ros.evaluation.real_frames import FrameCheck, check_frame, keypoints_on_region
from hand_pose_ros.inference.depth_hands import DepthEstimator, DepthHand
from hand_pose_ros.synth.config import SynthConfig
from hand_pose_ros.synth.shards import new_scene
from hand_pose_ros.synth.truth import HandTruth, inside_image
from hand_pose_ros.synth.world import render_frame


@dataclass
class SyntheticCheck:
    """The check over synthetic frames.

    Attributes:
        checks: per frame, the check of the predictions (for the contact sheet).
        scored: hands whose keypoints all lie inside the image.
        prediction_on, truth_on: per found hand, (21,) bool keypoints on its region.
        errors_m: per found hand, the mean 3D joint error in metres.
    """

    checks: list[FrameCheck] = field(default_factory=list)
    scored: int = 0
    prediction_on: list[np.ndarray] = field(default_factory=list)
    truth_on: list[np.ndarray] = field(default_factory=list)
    errors_m: list[float] = field(default_factory=list)

    @property
    def found(self) -> int:
        return len(self.errors_m)


def check_synthetic_frames(
    estimator: DepthEstimator, config: SynthConfig, count: int, seed: int
) -> SyntheticCheck:
    """Render ``count`` scenes of ``config`` from ``seed`` and score truth and prediction."""
    rng = np.random.default_rng(seed)
    result = SyntheticCheck()
    for index in range(count):
        frame = render_frame(new_scene(rng, config), rng, config)
        assert frame.camera is not None  # render_frame always sets it
        check = check_frame(f"synth {index}", frame.depth_m,
                            estimator.estimate(frame.depth_m, frame.camera))  # fmt: skip
        result.checks.append(check)
        height, width = frame.depth_m.shape
        for truth in frame.hands:
            if not inside_image(truth.uv, width, height).all():
                continue
            result.scored += 1
            match = _matching_hand(truth, check)
            if match is None:
                continue
            hand, region, on = match
            result.prediction_on.append(on)
            result.truth_on.append(keypoints_on_region(truth.uv, region))
            result.errors_m.append(
                float(np.linalg.norm(hand.result.xyz - truth.xyz, axis=1).mean())
            )
    return result


def _matching_hand(
    truth: HandTruth, check: FrameCheck
) -> tuple[DepthHand, np.ndarray, np.ndarray] | None:
    """The found hand whose cube around the localiser's centre holds the true palm centre
    (the nearest such), or None: a cube on the head or on the other hand is not this hand.
    The localiser's centre, not the last refinement pass's, so that which hands count as
    found does not depend on the model being checked."""
    palm = truth.xyz.mean(axis=0)
    best, best_distance = None, np.inf
    for hand, region, on in zip(check.hands, check.regions, check.on_hand, strict=True):
        offset = np.abs(palm - hand.location.center_xyz)
        distance = float(np.linalg.norm(offset))
        if np.all(offset <= hand.cube.cube_m / 2.0) and distance < best_distance:
            best, best_distance = (hand, region, on), distance
    return best
