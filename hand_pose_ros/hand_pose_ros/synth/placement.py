"""Where a hand is in front of the camera: the palm frame's pose in the camera optical frame.

The palm frame is the one of hand_pose_msgs/Hand: origin at the palm centre, x from the
wrist towards the middle finger, z out of the palm (palmar side). The camera frame is the
optical frame: x right, y down, z forward.

Poses are the ones a person could hold towards a robot: the palm or the back of the hand
turned towards the camera, tilted by at most ``max_tilt_deg``, fingers pointing anywhere in
a wide arc around 'up' (a hand rarely points its fingers at the floor while offering it),
the forearm going away from the camera towards the body.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from hand_pose_ros.geometry import CameraModel


@dataclass
class PlacementConfig:
    """Distributions of the hand's pose in the camera frame.

    Attributes:
        distance_m: range of the palm centre's depth (z), metres.
        palm_towards_camera_probability: chance the palm (not the back) faces the camera.
        max_tilt_deg: largest angle between the palm normal and the camera axis.
        roll_deg: range of the fingers' direction in the image, 0 = fingers up, degrees,
            counter-clockwise positive as seen on screen.
        forearm_away_deg: range of the extra tilt that sends the forearm away from the camera.
        margin_px: the palm centre stays this far inside the image.
        max_fingers_away: largest component of the finger direction along the camera axis
            (away from the camera); beyond it the forearm would come towards the camera,
            as a person offering a hand rarely holds it.
    """

    distance_m: tuple[float, float] = (0.25, 1.2)
    palm_towards_camera_probability: float = 0.65
    max_tilt_deg: float = 70.0
    roll_deg: tuple[float, float] = (-110.0, 110.0)
    forearm_away_deg: tuple[float, float] = (0.0, 35.0)
    margin_px: float = 40.0
    max_fingers_away: float = 0.3


@dataclass
class HandPlacement:
    """The palm frame in the camera frame: x_cam = rotation @ x_palm + translation."""

    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,) metres

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Points (N, 3) from the palm frame into the camera frame (metres)."""
        return np.asarray(points) @ self.rotation.T + self.translation

    @property
    def quaternion_xyzw(self) -> np.ndarray:
        """shape (4,), the rotation as a unit quaternion in ROS order (x, y, z, w)."""
        return Rotation.from_matrix(self.rotation).as_quat()


# Palm facing the camera, fingers up in the image: palm x = camera -y, palm z = camera -z.
_PALM_TOWARDS_CAMERA_FINGERS_UP = np.array(
    [[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]
).T  # columns: palm x, y, z in camera coordinates


def sample_placement(
    rng: np.random.Generator, camera: CameraModel, config: PlacementConfig
) -> HandPlacement:
    """A random palm pose that a person could hold towards the camera (see module doc)."""
    for _ in range(100):
        rotation = _sample_rotation(rng, config)
        if rotation[2, 0] <= config.max_fingers_away:
            break
    depth = rng.uniform(*config.distance_m)
    margin = config.margin_px
    u = rng.uniform(margin, camera.width - 1 - margin)
    v = rng.uniform(margin, camera.height - 1 - margin)
    translation = camera.backproject(np.array([[u, v]]), np.array([depth]))[0]
    return HandPlacement(rotation, translation)


def _sample_rotation(rng: np.random.Generator, config: PlacementConfig) -> np.ndarray:
    base = Rotation.from_matrix(_PALM_TOWARDS_CAMERA_FINGERS_UP)
    if rng.random() >= config.palm_towards_camera_probability:
        base = base * Rotation.from_euler("x", np.pi)  # show the back of the hand
    # Forearm away from the camera: with the fingers up, a turn about the camera's x axis
    # brings the fingers towards the camera and sends the wrist away (palm or back alike).
    away = Rotation.from_euler("x", np.radians(rng.uniform(*config.forearm_away_deg)))
    # A tilt about a random axis in the image plane, uniform in solid angle up to max_tilt.
    cos_max = np.cos(np.radians(config.max_tilt_deg))
    tilt = np.arccos(rng.uniform(cos_max, 1.0))
    axis_angle = rng.uniform(0.0, 2.0 * np.pi)
    tilt_axis = np.array([np.cos(axis_angle), np.sin(axis_angle), 0.0])
    tilt_rotation = Rotation.from_rotvec(tilt * tilt_axis)
    # Roll about the camera axis: counter-clockwise on screen is a negative turn about +z.
    roll = Rotation.from_euler("z", -np.radians(rng.uniform(*config.roll_deg)))
    return (roll * tilt_rotation * away * base).as_matrix()


def interpolate_placements(a: HandPlacement, b: HandPlacement, t: float) -> HandPlacement:
    """The placement a fraction ``t`` (0..1) of the way from ``a`` to ``b`` (slerp + lerp)."""
    slerp = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([a.rotation, b.rotation])))
    rotation = slerp([float(t)]).as_matrix()[0]
    translation = (1.0 - t) * a.translation + t * b.translation
    return HandPlacement(rotation, translation)


def smoothstep(t: float) -> float:
    """Ease in and out: zero velocity at both ends, so keyframed motion has no jerks."""
    t = float(np.clip(t, 0.0, 1.0))
    return t * t * (3.0 - 2.0 * t)
