"""Getting images and bags in and out, without ROS.

- ``images``: sensor_msgs/Image <-> numpy for rclpy and rosbags messages (numpy only).
- ``sync``: approximate time synchronisation with message_filters' rule (pure Python).
- ``bag_reader``: colour / depth / camera_info frames from a ROS 2 bag (needs rosbags).
- ``bag_writer``: ROS 2 bags with stored definitions, Image and CameraInfo builders
  (needs rosbags).

Only the ROS-free, numpy-only names are re-exported here, so that the live node can use them
without pulling in rosbags; import the bag modules explicitly.
"""

from hand_pose_ros.io.images import (
    ImageError,
    array_to_image_fields,
    image_to_array,
    to_rgb,
)
from hand_pose_ros.io.sync import ApproximateTimeSynchronizer, SyncError

__all__ = [
    "ApproximateTimeSynchronizer",
    "ImageError",
    "SyncError",
    "array_to_image_fields",
    "image_to_array",
    "to_rgb",
]
