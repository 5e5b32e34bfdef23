"""Cameras the geometry tests share: a pinhole and one lens of every distortion model.

Coefficients are of the size real sensors report (RealSense-like plumb_bob, Azure-Kinect-like
rational_polynomial, a wide fisheye for equidistant).
"""

from __future__ import annotations

from hand_pose_ros.geometry import CameraModel

WIDTH, HEIGHT = 640, 480
# Coefficients of the kind real cameras publish: a RealSense-like colour camera
# (plumb_bob), an Azure-Kinect-like one (rational_polynomial, strong) and a T265-like
# fisheye (equidistant).
CAMERAS: dict[str, CameraModel] = {
    "none": CameraModel.from_intrinsics(615.0, 614.0, 321.5, 238.7, WIDTH, HEIGHT),
    "plumb_bob": CameraModel.from_intrinsics(
        615.0,
        614.0,
        321.5,
        238.7,
        WIDTH,
        HEIGHT,
        "plumb_bob",
        (0.132, -0.271, 0.00052, -0.00031, 0.109),
    ),
    "rational_polynomial": CameraModel.from_intrinsics(
        504.2,
        504.3,
        318.4,
        241.9,
        WIDTH,
        HEIGHT,
        "rational_polynomial",
        (0.594, -2.749, 0.00044, -0.00021, 1.603, 0.472, -2.571, 1.523),
    ),
    "equidistant": CameraModel.from_intrinsics(
        285.7,
        285.8,
        321.1,
        239.4,
        WIDTH,
        HEIGHT,
        "equidistant",
        (-0.00782, 0.04461, -0.04174, 0.00781),
    ),
}
