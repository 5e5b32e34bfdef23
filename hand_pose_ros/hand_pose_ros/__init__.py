"""hand_pose_ros: 21 hand keypoints in pixels and metres, palm pose, id, handedness, gesture.

Everything in this package except the ``ros`` subpackage is framework-free: it imports
no ROS module, so it runs (and is tested) on machines without ROS 2.
"""

__version__ = "0.1.0"
