"""The rclpy namespace builds the same messages as the rosbags one (runs where ROS 2 is)."""

from __future__ import annotations

import numpy as np
import pytest

from hand_pose_ros import messages
from hand_pose_ros.hand import HandFrame

pytest.importorskip("rclpy")
pytest.importorskip("hand_pose_msgs")


def test_rclpy_classes_build_hand_arrays_and_markers(hand):
    from hand_pose_ros.ros.message_classes import message_classes

    m = message_classes()
    frame = HandFrame(1_700_000_000_000_000_001, "cam", [hand], model="x")
    msg = messages.hand_array_message(m, frame)
    assert msg.header.stamp.nanosec == 1
    assert len(msg.hands[0].keypoints) == 21
    assert np.isnan(msg.hands[0].keypoints[12].u)
    back = messages.hand_frame_from_message(msg)
    np.testing.assert_array_equal(back.hands[0].status, hand.status)
    markers = messages.hand_markers(m, frame)
    assert markers.markers[0].action == m.Marker.DELETEALL
