"""Test-time views of a depth cube crop: the model sees the crop turned and mirrored a few
ways, each answer is mapped back, and the answers are averaged.

A single regression's errors depend on how the hand happens to sit in the crop; the same hand
turned by 10° gets errors that are partly independent, so their mean is closer to the truth
(measured on the held-out synthetic set in docs/eval/residual_attention_3d.md). Each view
costs one more forward pass; the views of all hands go through the model as one batch.

Views are exact inverses of each other in half-cube units: a turn by ``theta`` about the
viewing axis maps joints by R(theta) (``crop.transform_depth_crop``), a mirror negates x
(crop columns reversed about the centre (S - 1) / 2, the cube centre's pixel). A mirrored
right hand looks like a left hand; the model learnt both, and every joint keeps its name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hand_pose_ros.crop import in_plane_rotation, transform_depth_crop
from hand_pose_ros.skeleton import NUM_KEYPOINTS


class ViewError(ValueError):
    """An unknown view set or a view that cannot be made."""


@dataclass(frozen=True)
class CropView:
    """One way of showing a crop to the model: mirrored left-right first, then turned by
    ``rotation_deg`` about the viewing axis (positive turns x towards y, image-wise
    clockwise)."""

    rotation_deg: float = 0.0
    mirror: bool = False


# Named sets for parameters and the command line. "single" is the plain pipeline and the
# default: averaging lowers the mean 3D error on synthetic hands, but on the real SR305
# frames some views alone put fewer keypoints on the hand than the plain one, and so does
# their average (docs/eval/residual_attention_3d.md, "Test-time views").
_TURNS = (CropView(), CropView(-10.0), CropView(10.0), CropView(-20.0), CropView(20.0))
VIEW_SETS: dict[str, tuple[CropView, ...]] = {
    "single": (CropView(),),
    "mirror": (CropView(), CropView(mirror=True)),
    "turns": _TURNS,
    "six": (*_TURNS, CropView(mirror=True)),
}


def view_set(name: str) -> tuple[CropView, ...]:
    """The views of a named set; ``ViewError`` names the known ones."""
    if name not in VIEW_SETS:
        raise ViewError(f"unknown view set {name!r}; known: {', '.join(VIEW_SETS)}")
    return VIEW_SETS[name]


def show(crops: np.ndarray, view: CropView) -> np.ndarray:
    """(N, S, S) normalised depth crops as ``view`` shows them."""
    shown = crops[:, :, ::-1] if view.mirror else crops
    if view.rotation_deg == 0.0:
        return np.ascontiguousarray(shown, dtype=np.float32)
    theta = np.radians(view.rotation_deg)
    none = np.zeros((0, 3))
    return np.stack([transform_depth_crop(crop, none, theta=theta)[0] for crop in shown])


def unshow(joints: np.ndarray, view: CropView) -> np.ndarray:
    """Joints (N, 21, 3) in half-cube units predicted on ``show(crops, view)`` -> the same
    joints in the original crop's frame (turned back, then mirrored back)."""
    out = np.array(joints, dtype=np.float64)
    if view.rotation_deg != 0.0:
        rotation = in_plane_rotation(np.radians(view.rotation_deg))
        out[..., :2] = out[..., :2] @ rotation  # x = R^T x', written for row vectors
    if view.mirror:
        out[..., 0] = -out[..., 0]
    return out


class JointPredictor(Protocol):
    def predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def predict_views(
    runner: JointPredictor, crops: np.ndarray, views: Sequence[CropView]
) -> tuple[np.ndarray, np.ndarray]:
    """The mean over ``views`` of a depth-cube model's joints for ``crops`` (N, S, S).

    Returns:
        joints (N, 21, 3) in half-cube units and confidence (N, 21): the views' mean
        confidence (constant 1 for a plain regression).
    """
    if not views:
        raise ViewError("at least one view is needed")
    crops = np.asarray(crops, dtype=np.float32)
    count = len(crops)
    if count == 0:
        return np.zeros((0, NUM_KEYPOINTS, 3)), np.zeros((0, NUM_KEYPOINTS))
    joints, confidence = runner.predict(np.concatenate([show(crops, view) for view in views]))
    joints = np.asarray(joints, dtype=np.float64).reshape(len(views), count, NUM_KEYPOINTS, 3)
    confidence = np.asarray(confidence, dtype=np.float64).reshape(len(views), count, -1)
    back = [unshow(joints[k], view) for k, view in enumerate(views)]
    return np.mean(back, axis=0), confidence.mean(axis=0)
