"""Camera geometry and depth: intrinsics, distortion, depth decoding, sampling, lifting to 3D.

Framework-free (numpy + OpenCV): camera_info and image messages come in as duck-typed
objects or numpy arrays, so this works with rclpy, rosbags and plain test data alike.
"""

from hand_pose_ros.geometry.backprojection import (
    LiftedKeypoints,
    backproject_keypoints,
    lift_keypoints,
)
from hand_pose_ros.geometry.camera import (
    DISTORTION_COEFFICIENTS,
    EQUIDISTANT,
    PLUMB_BOB,
    RATIONAL_POLYNOMIAL,
    CameraInfoError,
    CameraModel,
    check_image_size,
)
from hand_pose_ros.geometry.depth import (
    DEPTH_ENCODINGS,
    DepthError,
    decode_depth,
    encode_depth_mm,
)
from hand_pose_ros.geometry.depth_sampling import DepthSamples, patch_side_px, sample_depth

__all__ = [
    "DEPTH_ENCODINGS",
    "DISTORTION_COEFFICIENTS",
    "EQUIDISTANT",
    "PLUMB_BOB",
    "RATIONAL_POLYNOMIAL",
    "CameraInfoError",
    "CameraModel",
    "DepthError",
    "DepthSamples",
    "LiftedKeypoints",
    "backproject_keypoints",
    "check_image_size",
    "decode_depth",
    "encode_depth_mm",
    "lift_keypoints",
    "patch_side_px",
    "sample_depth",
]
