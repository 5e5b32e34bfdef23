"""The core's result types: what the pipeline says about the hands in one image.

These are plain dataclasses of numpy arrays, with no ROS types, so the pipeline, the
tracker, the evaluation and the tests share them. ``messages.py`` turns them into
hand_pose_msgs messages (for rclpy and rosbags alike).

Conventions: pixels are in the full-resolution source image, ``u`` = column, ``v`` = row;
metric quantities are metres in the camera optical frame (x right, y down, z forward).
Unknown values are NaN, never a sentinel number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from hand_pose_ros.skeleton import NUM_KEYPOINTS


class KeypointStatus(IntEnum):
    """How a keypoint was obtained; mirrors the constants of hand_pose_msgs/Keypoint."""

    INVALID = 0
    IMAGE_ONLY = 1
    DEPTH_MEASURED = 2
    DEPTH_FROM_MODEL = 3
    PREDICTED = 4


class Handedness(IntEnum):
    """The anatomical hand; mirrors the constants of hand_pose_msgs/Hand."""

    UNKNOWN = 0
    LEFT = 1
    RIGHT = 2


def _nan(*shape: int) -> np.ndarray:
    return np.full(shape, np.nan, dtype=np.float64)


@dataclass
class HandResult:
    """One hand in one image.

    Attributes:
        uv: shape (21, 2), pixel coordinates (u, v); NaN where not found.
        xyz: shape (21, 3), metres in the camera optical frame; NaN where unknown.
        scores: shape (21,), per-keypoint confidence in [0, 1].
        status: shape (21,), ``KeypointStatus`` values as uint8.
        xyz_uncertainty: shape (21,), metres along the viewing ray; NaN where unknown.
        score: hand presence confidence in [0, 1].
        box: (u_min, v_min, u_max, v_max) in pixels; NaN where unknown. Derived from ``uv``
            when not given.
        track_id: persistent id, "" when untracked.
        handedness, handedness_score: the anatomical hand and its confidence.
        palm_position: shape (3,), metres; NaN when unknown.
        palm_orientation: shape (4,), unit quaternion (x, y, z, w), ROS order; NaN when
            unknown.
        gesture, gesture_score: gesture label ("" when none) and its confidence.
    """

    uv: np.ndarray
    scores: np.ndarray
    status: np.ndarray
    xyz: np.ndarray = field(default_factory=lambda: _nan(NUM_KEYPOINTS, 3))
    xyz_uncertainty: np.ndarray = field(default_factory=lambda: _nan(NUM_KEYPOINTS))
    score: float = 0.0
    box: np.ndarray | None = None
    track_id: str = ""
    handedness: Handedness = Handedness.UNKNOWN
    handedness_score: float = 0.0
    palm_position: np.ndarray = field(default_factory=lambda: _nan(3))
    palm_orientation: np.ndarray = field(default_factory=lambda: _nan(4))
    gesture: str = ""
    gesture_score: float = 0.0

    def __post_init__(self) -> None:
        self.uv = _checked(self.uv, (NUM_KEYPOINTS, 2), "uv", np.float64)
        self.scores = _checked(self.scores, (NUM_KEYPOINTS,), "scores", np.float64)
        self.status = _checked(self.status, (NUM_KEYPOINTS,), "status", np.uint8)
        self.xyz = _checked(self.xyz, (NUM_KEYPOINTS, 3), "xyz", np.float64)
        self.xyz_uncertainty = _checked(
            self.xyz_uncertainty, (NUM_KEYPOINTS,), "xyz_uncertainty", np.float64
        )
        self.palm_position = _checked(self.palm_position, (3,), "palm_position", np.float64)
        self.palm_orientation = _checked(
            self.palm_orientation, (4,), "palm_orientation", np.float64
        )
        if self.box is None:
            self.box = box_around(self.uv)
        self.box = _checked(self.box, (4,), "box", np.float64)
        self.handedness = Handedness(self.handedness)
        # A keypoint that is INVALID carries nothing: enforce it here once, so no consumer
        # can read a stale coordinate behind an INVALID flag.
        invalid = self.status == KeypointStatus.INVALID
        self.uv[invalid] = np.nan
        self.xyz[invalid] = np.nan
        self.scores[invalid] = 0.0

    @property
    def valid(self) -> np.ndarray:
        """shape (21,) bool: keypoints with a valid pixel position."""
        return self.status != KeypointStatus.INVALID

    @property
    def has_3d(self) -> np.ndarray:
        """shape (21,) bool: keypoints with a known metric position."""
        return np.isfinite(self.xyz).all(axis=1)


@dataclass
class HandFrame:
    """All hands seen in one source image.

    Attributes:
        stamp_ns: the source image's stamp in nanoseconds since the epoch (never now()).
        frame_id: the source image's optical frame.
        hands: the hands, possibly none.
        model: name of the model that produced them.
    """

    stamp_ns: int
    frame_id: str
    hands: list[HandResult] = field(default_factory=list)
    model: str = ""


def box_around(uv: np.ndarray) -> np.ndarray:
    """Tight pixel box (u_min, v_min, u_max, v_max) around the finite rows of ``uv`` (N, 2).

    Returns all NaN when no row is finite.
    """
    uv = np.asarray(uv, dtype=np.float64)
    finite = np.isfinite(uv).all(axis=1)
    if not finite.any():
        return _nan(4)
    lo = uv[finite].min(axis=0)
    hi = uv[finite].max(axis=0)
    return np.array([lo[0], lo[1], hi[0], hi[1]])


def _checked(value: object, shape: tuple[int, ...], name: str, dtype: type) -> np.ndarray:
    # A copy: results never alias the caller's buffers.
    array: np.ndarray = np.array(value, dtype=dtype)
    if array.shape != shape:
        raise ValueError(f"HandResult.{name}: expected shape {shape}, got {array.shape}")
    return array
