"""Seed 002's pipeline, from a raw depth image to hands in metres in the camera frame.

    depth image -> locate the nearest hand-like region(s) (centre of mass, DeepPrior++ style)
                -> 128x128 cube crop around each, depth normalised to [-1, 1]
                -> the depth model (optionally averaged over views) -> joints in half-cube units
                -> the crop's inverse transform: metres, optical frame
                -> (refinement passes) a new crop centred on those joints' centroid, the model
                   again
                -> pixels by projection

(Why the refinement passes: ``inference/refinement.py``.)

Shared by ``hand-pose eval`` (real frames), the demo and the tracker. Keypoints carry
status DEPTH_FROM_MODEL: their 3D position comes from the model, not from a depth sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from hand_pose_ros.crop import CubeCrop, depth_cube_crop
from hand_pose_ros.geometry import CameraModel
from hand_pose_ros.hand import HandResult, KeypointStatus
from hand_pose_ros.inference.depth_views import CropView, predict_views
from hand_pose_ros.inference.refinement import (
    DEFAULT_REFINE_PASSES,
    MAX_REFINE_PASSES,
    refined_center,
)
from hand_pose_ros.inference.runtime import InferenceError, ModelRunner
from hand_pose_ros.localise import HandLocation, LocaliserConfig, locate_hands
from hand_pose_ros.skeleton import NUM_KEYPOINTS


@dataclass
class DepthHand:
    """One hand found in a depth image, with what it was found from (for drawing and
    debugging): ``location`` is the localiser's region and centre; ``crop`` and ``cube`` are
    what the model saw in the last pass (after refinement passes, centred on the previous
    pass's keypoint centroid)."""

    result: HandResult
    location: HandLocation
    crop: np.ndarray
    cube: CubeCrop


class DepthEstimator(Protocol):
    """Anything that finds hands in a depth image the way ``DepthHandEstimator`` does (the
    evaluation checks take one; ``evaluation.input_noise.NoisyInput`` wraps one)."""

    def estimate(self, depth_m: np.ndarray, camera: CameraModel) -> list[DepthHand]: ...


class DepthHandEstimator:
    """Locate, crop and regress the hands of depth images with a depth-cube model.

    Args:
        runner: a ``ModelRunner`` whose spec takes ``depth_cube`` input (seed 002 models).
        localiser: where to look and the cube size (its ``cube_m`` is the crop's).
        max_hands: how many hands to look for (nearest first).
        views: test-time views averaged per crop (``depth_views.VIEW_SETS``); one plain
            view by default, each further one a forward pass more.
        refine_passes: how many times to re-cut the crop at the last prediction's keypoint
            centroid and predict again (0: the localiser's crop only); each pass costs the
            views' forward passes once more.
    """

    def __init__(
        self,
        runner: ModelRunner,
        *,
        localiser: LocaliserConfig | None = None,
        max_hands: int = 1,
        views: Sequence[CropView] = (CropView(),),
        refine_passes: int = DEFAULT_REFINE_PASSES,
    ) -> None:
        if runner.spec.input_kind != "depth_cube":
            raise InferenceError(
                f"{runner.architecture} takes {runner.spec.input_kind} input, not depth cubes"
            )
        if max_hands < 1:
            raise InferenceError(f"max_hands must be >= 1, got {max_hands}")
        if not views:
            raise InferenceError("views must hold at least one view")
        if not 0 <= refine_passes <= MAX_REFINE_PASSES:
            raise InferenceError(
                f"refine_passes must be in [0, {MAX_REFINE_PASSES}], got {refine_passes}"
            )
        self.runner = runner
        self.localiser = localiser or LocaliserConfig()
        self.max_hands = int(max_hands)
        self.views = tuple(views)
        self.refine_passes = int(refine_passes)
        self.crop_size = int(runner.spec.input_size[0])

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, *, backend: str = "torch", **kwargs: object
    ) -> DepthHandEstimator:
        return cls(ModelRunner.from_checkpoint(path, backend=backend), **kwargs)  # type: ignore[arg-type]

    def estimate(self, depth_m: np.ndarray, camera: CameraModel) -> list[DepthHand]:
        """The hands in ``depth_m`` (H, W) metres, NaN where there is no depth; nearest
        first. An image without anything hand-like gives an empty list."""
        locations = locate_hands(depth_m, camera, self.localiser, max_hands=self.max_hands)
        if not locations:
            return []
        centers = [location.center_xyz for location in locations]
        for pass_index in range(1 + self.refine_passes):
            crops, cubes, xyz, confidence = self._predict_at(depth_m, camera, centers)
            if pass_index == self.refine_passes:
                break  # the last pass's keypoints are the answer; no centre is needed after it
            centers = [
                refined_center(points, center, location.center_xyz, self.localiser.cube_m)
                for points, center, location in zip(xyz, centers, locations, strict=True)
            ]
        hands = []
        for k, (location, crop, cube) in enumerate(zip(locations, crops, cubes, strict=True)):
            result = HandResult(
                uv=camera.project(xyz[k]),
                scores=np.clip(confidence[k], 0.0, 1.0),
                status=np.full(NUM_KEYPOINTS, KeypointStatus.DEPTH_FROM_MODEL, np.uint8),
                xyz=xyz[k],
                # The localiser has no confidence of its own: a hand-like region is a hand.
                score=1.0,
            )
            hands.append(DepthHand(result, location, crop, cube))
        return hands

    def _predict_at(
        self, depth_m: np.ndarray, camera: CameraModel, centers: list[np.ndarray]
    ) -> tuple[list[np.ndarray], list[CubeCrop], list[np.ndarray], np.ndarray]:
        """One pass: a cube crop around each centre, the model on all of them at once.
        Returns the crops, their cubes, each hand's (21, 3) keypoints in metres and the
        (hands, 21) confidences."""
        crops, cubes = [], []
        for center in centers:
            crop, cube = depth_cube_crop(depth_m, camera, center, cube_m=self.localiser.cube_m,
                                         output_size=self.crop_size)  # fmt: skip
            crops.append(crop)
            cubes.append(cube)
        joints, confidence = predict_views(self.runner, np.stack(crops), self.views)
        xyz = [cube.from_cube_units(joints[k].reshape(NUM_KEYPOINTS, 3))
               for k, cube in enumerate(cubes)]  # fmt: skip
        return crops, cubes, xyz, confidence
