"""The rclpy message classes under the attribute names ``hand_pose_ros.messages`` expects.

The rosbags counterpart is ``hand_pose_ros.msg_types.message_classes``; both return a
namespace with the same names, so the message builders serve the node and bag mode alike.
"""

from __future__ import annotations

from types import SimpleNamespace

from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from hand_pose_msgs.msg import Hand, HandArray, Keypoint


def message_classes() -> SimpleNamespace:
    """The generated rclpy message classes, by the names the builders use."""
    return SimpleNamespace(
        Time=Time, Duration=Duration, Header=Header, ColorRGBA=ColorRGBA,
        Point=Point, Quaternion=Quaternion, Pose=Pose, Vector3=Vector3,
        Marker=Marker, MarkerArray=MarkerArray,
        Image=Image, CameraInfo=CameraInfo, RegionOfInterest=RegionOfInterest,
        Keypoint=Keypoint, Hand=Hand, HandArray=HandArray,
    )  # fmt: skip
