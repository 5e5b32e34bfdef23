"""Hand results <-> hand_pose_msgs / visualization_msgs messages.

One module serves the live node and bag mode: every builder takes ``m``, a namespace of
message constructors with the attribute names of ``msg_types.message_classes`` (rosbags)
and ``ros.message_classes`` (rclpy). Builders pass fields by keyword only and never read
a class-specific API, so the two kinds of classes are interchangeable here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from hand_pose_ros.hand import Handedness, HandFrame, HandResult, KeypointStatus
from hand_pose_ros.skeleton import BONES, NUM_KEYPOINTS, WRIST, bone_colour, keypoint_colour

NS_PER_S = 1_000_000_000


class MessageError(ValueError):
    """A message does not have the shape this module expects."""


# --------------------------------------------------------------------------- stamps


def stamp_from_ns(m: Any, stamp_ns: int) -> Any:
    """builtin_interfaces/Time from integer nanoseconds since the epoch."""
    if stamp_ns < 0:
        raise MessageError(f"stamp must be >= 0 ns, got {stamp_ns}")
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return m.Time(sec=sec, nanosec=nanosec)


def stamp_to_ns(stamp: Any) -> int:
    """Integer nanoseconds from a builtin_interfaces/Time."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def header(m: Any, stamp_ns: int, frame_id: str) -> Any:
    """std_msgs/Header with the given stamp and frame."""
    return m.Header(stamp=stamp_from_ns(m, stamp_ns), frame_id=frame_id)


# --------------------------------------------------------------------------- hands


def hand_array_message(m: Any, frame: HandFrame) -> Any:
    """hand_pose_msgs/HandArray for all hands of one image (empty ``hands`` when none)."""
    return m.HandArray(
        header=header(m, frame.stamp_ns, frame.frame_id),
        hands=[hand_message(m, hand) for hand in frame.hands],
        model=frame.model,
    )


def hand_message(m: Any, hand: HandResult) -> Any:
    """hand_pose_msgs/Hand for one hand."""
    assert hand.box is not None  # HandResult fills it in __post_init__
    u_min, v_min, u_max, v_max = (float(x) for x in hand.box)
    return m.Hand(
        id=hand.track_id,
        handedness=int(hand.handedness),
        handedness_score=float(hand.handedness_score),
        score=float(hand.score),
        u_min=u_min,
        v_min=v_min,
        u_max=u_max,
        v_max=v_max,
        keypoints=[_keypoint_message(m, hand, i) for i in range(NUM_KEYPOINTS)],
        palm_pose=m.Pose(
            position=_point(m, hand.palm_position),
            orientation=_quaternion(m, hand.palm_orientation),
        ),
        gesture=hand.gesture,
        gesture_score=float(hand.gesture_score),
    )


def _keypoint_message(m: Any, hand: HandResult, index: int) -> Any:
    return m.Keypoint(
        u=float(hand.uv[index, 0]),
        v=float(hand.uv[index, 1]),
        position=_point(m, hand.xyz[index]),
        position_uncertainty=float(hand.xyz_uncertainty[index]),
        score=float(hand.scores[index]),
        status=int(hand.status[index]),
    )


def _quaternion(m: Any, xyzw: np.ndarray) -> Any:
    x, y, z, w = (float(q) for q in xyzw)
    return m.Quaternion(x=x, y=y, z=z, w=w)


def _point(m: Any, xyz: np.ndarray) -> Any:
    return m.Point(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))


def hand_frame_from_message(msg: Any) -> HandFrame:
    """The core's HandFrame from a hand_pose_msgs/HandArray (rclpy or rosbags)."""
    return HandFrame(
        stamp_ns=stamp_to_ns(msg.header.stamp),
        frame_id=str(msg.header.frame_id),
        hands=[hand_from_message(h) for h in msg.hands],
        model=str(msg.model),
    )


def hand_from_message(msg: Any) -> HandResult:
    """The core's HandResult from a hand_pose_msgs/Hand."""
    keypoints = list(msg.keypoints)
    if len(keypoints) != NUM_KEYPOINTS:
        raise MessageError(f"Hand has {len(keypoints)} keypoints, expected {NUM_KEYPOINTS}")
    pose = msg.palm_pose
    return HandResult(
        uv=np.array([[k.u, k.v] for k in keypoints]),
        xyz=np.array([[k.position.x, k.position.y, k.position.z] for k in keypoints]),
        xyz_uncertainty=np.array([k.position_uncertainty for k in keypoints]),
        scores=np.array([k.score for k in keypoints]),
        status=np.array([k.status for k in keypoints]),
        score=float(msg.score),
        box=np.array([msg.u_min, msg.v_min, msg.u_max, msg.v_max]),
        track_id=str(msg.id),
        handedness=Handedness(int(msg.handedness)),
        handedness_score=float(msg.handedness_score),
        palm_position=np.array([pose.position.x, pose.position.y, pose.position.z]),
        palm_orientation=np.array([pose.orientation.x, pose.orientation.y, pose.orientation.z,
                                   pose.orientation.w]),
        gesture=str(msg.gesture),
        gesture_score=float(msg.gesture_score),
    )  # fmt: skip


# --------------------------------------------------------------------------- markers

MARKER_NAMESPACE = "hands"
KEYPOINT_DIAMETER_M = 0.012
BONE_WIDTH_M = 0.005
LABEL_HEIGHT_M = 0.025
PALM_AXIS_LENGTH_M = 0.06
_HANDEDNESS_LABEL = {Handedness.UNKNOWN: "", Handedness.LEFT: "left", Handedness.RIGHT: "right"}
# Keypoints drawn in 3D: those with a metric position, whatever its source.
_HAS_POSITION = (
    KeypointStatus.DEPTH_MEASURED,
    KeypointStatus.DEPTH_FROM_MODEL,
    KeypointStatus.PREDICTED,
)


def hand_markers(m: Any, frame: HandFrame, *, lifetime_s: float = 0.5) -> Any:
    """visualization_msgs/MarkerArray drawing every hand of ``frame`` in 3D for RViz.

    The first marker is a DELETEALL, so hands that left the view vanish at once; the
    lifetime removes them too if the publisher stops. Per hand: keypoint spheres coloured by
    finger (only keypoints with a metric position), bones between such keypoints, palm
    axes (x red, y green, z blue) when the palm pose is known, and a label (id, handedness,
    gesture) above the wrist.
    """
    head = header(m, frame.stamp_ns, frame.frame_id)
    lifetime = _duration(m, lifetime_s)
    markers = [m.Marker(header=head, ns=MARKER_NAMESPACE, id=0, action=m.Marker.DELETEALL)]
    for index, hand in enumerate(frame.hands):
        markers.extend(_markers_for_hand(m, head, lifetime, hand, base_id=1 + index * 8))
    return m.MarkerArray(markers=markers)


def _markers_for_hand(m: Any, head: Any, lifetime: Any, hand: HandResult, base_id: int) -> list:
    drawn = np.isin(hand.status, _HAS_POSITION) & hand.has_3d
    if not drawn.any():
        return []
    common = dict(header=head, ns=MARKER_NAMESPACE, action=m.Marker.ADD, lifetime=lifetime,
                  pose=_identity_pose(m))  # fmt: skip
    fade = 1.0 if hand.track_id or hand.score >= 0.5 else 0.6
    indices = np.flatnonzero(drawn)
    spheres = m.Marker(
        **common, id=base_id, type=m.Marker.SPHERE_LIST,
        scale=m.Vector3(x=KEYPOINT_DIAMETER_M, y=KEYPOINT_DIAMETER_M, z=KEYPOINT_DIAMETER_M),
        points=[_point(m, hand.xyz[i]) for i in indices],
        colors=[_colour(m, keypoint_colour(int(i)), fade) for i in indices],
    )  # fmt: skip
    bones = [b for b in BONES if drawn[b[0]] and drawn[b[1]]]
    lines = m.Marker(
        **common, id=base_id + 1, type=m.Marker.LINE_LIST,
        scale=m.Vector3(x=BONE_WIDTH_M, y=0.0, z=0.0),
        points=[_point(m, hand.xyz[i]) for bone in bones for i in bone],
        colors=[_colour(m, bone_colour(bone), fade) for bone in bones for _ in bone],
    )  # fmt: skip
    result = [spheres, lines]
    anchor = hand.xyz[WRIST] if drawn[WRIST] else hand.xyz[indices].mean(axis=0)
    label = " ".join(
        part
        for part in (hand.track_id, _HANDEDNESS_LABEL[hand.handedness], hand.gesture)
        if part
    )
    if label:
        # Up in the optical frame is -y.
        text_pose = m.Pose(position=_point(m, anchor + np.array([0.0, -0.04, 0.0])),
                           orientation=m.Quaternion(x=0.0, y=0.0, z=0.0, w=1.0))  # fmt: skip
        result.append(m.Marker(
            **{**common, "pose": text_pose}, id=base_id + 2, type=m.Marker.TEXT_VIEW_FACING,
            scale=m.Vector3(x=0.0, y=0.0, z=LABEL_HEIGHT_M), text=label,
            color=_colour(m, (1.0, 1.0, 1.0), 1.0),
        ))  # fmt: skip
    if np.isfinite(hand.palm_position).all() and np.isfinite(hand.palm_orientation).all():
        result.extend(_palm_axes(m, common, hand, base_id + 3))
    return result


def _palm_axes(m: Any, common: dict, hand: HandResult, first_id: int) -> list:
    axes = Rotation.from_quat(hand.palm_orientation).as_matrix()
    colours = ((1.0, 0.1, 0.1), (0.1, 1.0, 0.1), (0.2, 0.4, 1.0))
    return [
        m.Marker(
            **common, id=first_id + k, type=m.Marker.ARROW,
            scale=m.Vector3(x=0.006, y=0.010, z=0.012),  # shaft, head diameter, head length
            points=[_point(m, hand.palm_position),
                    _point(m, hand.palm_position + PALM_AXIS_LENGTH_M * axes[:, k])],
            color=_colour(m, colours[k], 1.0),
        )
        for k in range(3)
    ]  # fmt: skip


def _identity_pose(m: Any) -> Any:
    return m.Pose(
        position=m.Point(x=0.0, y=0.0, z=0.0),
        orientation=m.Quaternion(x=0.0, y=0.0, z=0.0, w=1.0),
    )


def _colour(m: Any, rgb: tuple[float, float, float], alpha: float) -> Any:
    return m.ColorRGBA(r=float(rgb[0]), g=float(rgb[1]), b=float(rgb[2]), a=float(alpha))


def _duration(m: Any, seconds: float) -> Any:
    if not math.isfinite(seconds) or seconds < 0:
        raise MessageError(f"marker lifetime must be a finite number >= 0 s, got {seconds}")
    sec = int(seconds)
    return m.Duration(sec=sec, nanosec=round((seconds - sec) * NS_PER_S))
