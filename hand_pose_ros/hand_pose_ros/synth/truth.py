"""What the synthetic world knows exactly about a frame, and its hand_pose_msgs form.

Ground truth is written as a ``HandArray`` on ``/hands_gt`` with the same message types the
tracker publishes, so evaluation compares like with like. Conventions for ground truth:
every keypoint has ``status = DEPTH_FROM_MODEL`` (its 3D position comes from the world's
hand model, exactly) and ``score`` = 1 where it is visible, 0 where it is occluded (by the
hand itself or by an object) or outside the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hand_pose_ros.geometry import CameraModel
from hand_pose_ros.hand import Handedness, HandFrame, HandResult, KeypointStatus
from hand_pose_ros.skeleton import NUM_KEYPOINTS


@dataclass
class HandTruth:
    """One hand's ground truth.

    Attributes:
        side: 'left' or 'right' (the anatomical hand).
        gesture: the gesture label of the pose ('' for a random articulation).
        uv: shape (21, 2), keypoint pixels (u = column, v = row), source image.
        xyz: shape (21, 3), keypoints in metres, camera optical frame.
        visible: shape (21,) bool, the keypoint's own surface is what the camera sees there.
        palm_position: shape (3,), metres; palm_orientation: shape (4,) xyzw.
        box: (u_min, v_min, u_max, v_max) of the hand's visible pixels (mask), NaN if none.
        track_id: the hand's id, stable over a sequence.
    """

    side: str
    gesture: str
    uv: np.ndarray
    xyz: np.ndarray
    visible: np.ndarray
    palm_position: np.ndarray
    palm_orientation: np.ndarray
    box: np.ndarray
    track_id: str = ""

    @property
    def handedness(self) -> Handedness:
        return Handedness.LEFT if self.side == "left" else Handedness.RIGHT


@dataclass
class SynthFrame:
    """One rendered RGB-D frame with its ground truth.

    Attributes:
        rgb: uint8 RGB (H, W, 3).
        depth_m: float32 metres (H, W) as the sensor delivers it, NaN where invalid.
        hand_index: int8 (H, W), which hand (index into ``hands``) each pixel shows, -1 none.
        hands: the hands' ground truth.
        camera: the (distortion-free) camera.
    """

    rgb: np.ndarray
    depth_m: np.ndarray
    hand_index: np.ndarray
    hands: list[HandTruth] = field(default_factory=list)
    camera: CameraModel | None = None


def truth_hand_frame(frame: SynthFrame, stamp_ns: int, frame_id: str) -> HandFrame:
    """The ground truth as the core's ``HandFrame`` (for /hands_gt), see module doc."""
    hands = []
    for truth in frame.hands:
        in_image = inside_image(truth.uv, frame.rgb.shape[1], frame.rgb.shape[0])
        seen = truth.visible & in_image
        hands.append(
            HandResult(
                uv=truth.uv,
                xyz=truth.xyz,
                scores=seen.astype(np.float64),
                status=np.full(NUM_KEYPOINTS, KeypointStatus.DEPTH_FROM_MODEL),
                score=1.0,
                box=truth.box,
                track_id=truth.track_id,
                handedness=truth.handedness,
                handedness_score=1.0,
                palm_position=truth.palm_position,
                palm_orientation=truth.palm_orientation,
                gesture=truth.gesture,
                gesture_score=1.0 if truth.gesture else 0.0,
            )
        )
    return HandFrame(stamp_ns=stamp_ns, frame_id=frame_id, hands=hands, model="ground_truth")


def inside_image(uv: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixels whose centre lies within the image (pixel centres 0..W-1, edges at -0.5)."""
    u, v = uv[:, 0], uv[:, 1]
    return (u >= -0.5) & (u < width - 0.5) & (v >= -0.5) & (v < height - 0.5)
