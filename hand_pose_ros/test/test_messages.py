"""hands <-> HandArray / MarkerArray, with rosbags classes standing in for rclpy's."""

from __future__ import annotations

import numpy as np
import pytest

from hand_pose_ros import messages
from hand_pose_ros.hand import HandFrame, HandResult, KeypointStatus
from hand_pose_ros.skeleton import BONES

STAMP_NS = 1_700_000_123_456_789_012


def _cdr_round_trip(typestore, msg, msgtype):
    return typestore.deserialize_cdr(typestore.serialize_cdr(msg, msgtype), msgtype)


def test_hand_array_round_trips_through_cdr(typestore, m, hand):
    frame = HandFrame(STAMP_NS, "camera_color_optical_frame", [hand], model="mobile_heatmap")
    msg = messages.hand_array_message(m, frame)
    back = messages.hand_frame_from_message(
        _cdr_round_trip(typestore, msg, "hand_pose_msgs/msg/HandArray")
    )
    assert back.stamp_ns == STAMP_NS
    assert back.frame_id == "camera_color_optical_frame"
    assert back.model == "mobile_heatmap"
    (got,) = back.hands
    # float32 on the wire: compare at float32 precision, NaN where NaN.
    np.testing.assert_allclose(got.uv, hand.uv, rtol=1e-6)
    np.testing.assert_allclose(got.xyz, hand.xyz, rtol=1e-6)  # NaN positions stay NaN
    np.testing.assert_array_equal(got.status, hand.status)
    np.testing.assert_allclose(got.scores, hand.scores, rtol=1e-6)
    np.testing.assert_allclose(got.palm_orientation, hand.palm_orientation, rtol=1e-6)
    assert (got.track_id, got.handedness, got.gesture) == ("hand_3", hand.handedness, "point")
    assert got.gesture_score == pytest.approx(0.77, rel=1e-6)
    np.testing.assert_allclose(got.box, hand.box, rtol=1e-6)


def test_stamp_is_the_source_stamp_to_the_nanosecond(m):
    msg = messages.hand_array_message(m, HandFrame(STAMP_NS, "cam"))
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1_700_000_123, 456_789_012)
    assert messages.stamp_to_ns(msg.header.stamp) == STAMP_NS


def test_negative_stamp_is_rejected(m):
    with pytest.raises(messages.MessageError, match="stamp must be >= 0"):
        messages.hand_array_message(m, HandFrame(-1, "cam"))


def test_no_hands_gives_an_empty_but_valid_message(typestore, m):
    msg = messages.hand_array_message(m, HandFrame(STAMP_NS, "cam", [], model="x"))
    back = _cdr_round_trip(typestore, msg, "hand_pose_msgs/msg/HandArray")
    assert list(back.hands) == []
    assert back.header.frame_id == "cam"


def test_invalid_keypoint_carries_nan_and_zero_score(m, hand):
    msg = messages.hand_message(m, hand)
    invalid = msg.keypoints[12]
    assert invalid.status == m.Keypoint.INVALID
    assert np.isnan([invalid.u, invalid.v, invalid.position.x]).all()
    assert invalid.score == 0.0
    image_only = msg.keypoints[4]
    assert image_only.status == m.Keypoint.IMAGE_ONLY
    assert np.isfinite([image_only.u, image_only.v]).all()
    assert np.isnan(image_only.position.z)


def test_unknown_palm_pose_is_all_nan(m, hand):
    hand.palm_position[:] = np.nan
    hand.palm_orientation[:] = np.nan
    pose = messages.hand_message(m, hand).palm_pose
    values = [pose.position.x, pose.position.y, pose.position.z, pose.orientation.x,
              pose.orientation.y, pose.orientation.z, pose.orientation.w]  # fmt: skip
    assert np.isnan(values).all()


def test_hand_from_message_rejects_wrong_keypoint_count(m, hand):
    msg = messages.hand_message(m, hand)
    msg.keypoints = msg.keypoints[:20]
    with pytest.raises(messages.MessageError, match="20 keypoints, expected 21"):
        messages.hand_from_message(msg)


def test_markers_start_with_deleteall_and_draw_only_3d_keypoints(typestore, m, hand):
    frame = HandFrame(STAMP_NS, "cam", [hand])
    array = _cdr_round_trip(
        typestore, messages.hand_markers(m, frame), "visualization_msgs/msg/MarkerArray"
    )
    first, *rest = array.markers
    assert first.action == m.Marker.DELETEALL
    assert all(mk.header.frame_id == "cam" for mk in array.markers)
    assert all(messages.stamp_to_ns(mk.header.stamp) == STAMP_NS for mk in array.markers)
    spheres = next(mk for mk in rest if mk.type == m.Marker.SPHERE_LIST)
    # keypoint 4 (IMAGE_ONLY) and 12 (INVALID) have no 3D position: 19 drawn.
    assert len(spheres.points) == 19 == len(spheres.colors)
    drawn = hand.has_3d & (hand.status != KeypointStatus.IMAGE_ONLY)
    lines = next(mk for mk in rest if mk.type == m.Marker.LINE_LIST)
    expected_bones = [b for b in BONES if drawn[b[0]] and drawn[b[1]]]
    assert len(lines.points) == 2 * len(expected_bones)
    label = next(mk for mk in rest if mk.type == m.Marker.TEXT_VIEW_FACING)
    assert label.text == "hand_3 right point"
    arrows = [mk for mk in rest if mk.type == m.Marker.ARROW]
    assert len(arrows) == 3
    assert len({mk.id for mk in rest}) == len(rest), "marker ids must be unique"
    assert all(mk.pose.orientation.w == 1.0 for mk in rest if mk.type != m.Marker.ARROW)


def test_markers_for_a_hand_without_3d_are_just_the_deleteall(m):
    image_only = HandResult(
        uv=np.full((21, 2), 100.0),
        scores=np.ones(21),
        status=np.full(21, KeypointStatus.IMAGE_ONLY),
    )
    array = messages.hand_markers(m, HandFrame(STAMP_NS, "cam", [image_only]))
    assert [mk.action for mk in array.markers] == [m.Marker.DELETEALL]


def test_bad_marker_lifetime_is_rejected(m, hand):
    with pytest.raises(messages.MessageError, match="lifetime"):
        messages.hand_markers(m, HandFrame(STAMP_NS, "cam", [hand]), lifetime_s=float("nan"))


def test_hand_result_validates_shapes():
    with pytest.raises(ValueError, match=r"uv: expected shape \(21, 2\), got \(20, 2\)"):
        HandResult(uv=np.zeros((20, 2)), scores=np.zeros(21), status=np.zeros(21))


def test_hand_result_blanks_invalid_keypoints():
    uv = np.full((21, 2), 50.0)
    status = np.full(21, KeypointStatus.IMAGE_ONLY)
    status[0] = KeypointStatus.INVALID
    result = HandResult(uv=uv, scores=np.ones(21), status=status)
    assert np.isnan(result.uv[0]).all() and result.scores[0] == 0.0
    assert uv[0, 0] == 50.0, "the caller's array must not be modified"
    np.testing.assert_array_equal(result.box, [50.0, 50.0, 50.0, 50.0])


def test_factory_rejects_unknown_fields(m):
    with pytest.raises(TypeError, match="no field"):
        m.Keypoint(nonsense=1)
