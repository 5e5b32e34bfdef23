"""Hand placements are poses a person could hold towards a robot, inside the view."""

from __future__ import annotations

import numpy as np
import pytest

from hand_pose_ros.geometry import CameraModel
from hand_pose_ros.synth.placement import (
    PlacementConfig,
    interpolate_placements,
    sample_placement,
    smoothstep,
)

CAMERA = CameraModel.from_intrinsics(615.0, 615.0, 319.5, 239.5, 640, 480)


def test_placements_respect_the_configured_ranges():
    config = PlacementConfig()
    rng = np.random.default_rng(3)
    palm_towards = 0
    for _ in range(500):
        placement = sample_placement(rng, CAMERA, config)
        rotation = placement.rotation
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(rotation) == pytest.approx(1.0)
        assert config.distance_m[0] <= placement.translation[2] <= config.distance_m[1]
        u, v = CAMERA.project(placement.translation[None])[0]
        assert config.margin_px - 1e-6 <= u <= CAMERA.width - 1 - config.margin_px + 1e-6
        assert config.margin_px - 1e-6 <= v <= CAMERA.height - 1 - config.margin_px + 1e-6
        palm_normal = rotation[:, 2]
        # Palm or back towards the camera, within the tilt (plus the forearm-away tilt).
        limit = np.radians(config.max_tilt_deg + config.forearm_away_deg[1]) + 1e-9
        assert np.arccos(abs(palm_normal[2])) <= limit
        palm_towards += palm_normal[2] < 0
    assert 0.55 < palm_towards / 500 < 0.75


def test_fingers_point_upwards_within_the_roll_range():
    config = PlacementConfig(max_tilt_deg=0.0, forearm_away_deg=(0.0, 0.0), roll_deg=(-30, 30))
    rng = np.random.default_rng(4)
    for _ in range(100):
        fingers = sample_placement(rng, CAMERA, config).rotation[:, 0]
        assert fingers[1] < -np.cos(np.radians(30)) + 1e-9  # up in the image is -v


def test_same_seed_same_placement():
    a = sample_placement(np.random.default_rng(9), CAMERA, PlacementConfig())
    b = sample_placement(np.random.default_rng(9), CAMERA, PlacementConfig())
    np.testing.assert_array_equal(a.rotation, b.rotation)
    np.testing.assert_array_equal(a.translation, b.translation)


def test_interpolation_ends_at_the_keyframes_and_eases():
    rng = np.random.default_rng(5)
    a = sample_placement(rng, CAMERA, PlacementConfig())
    b = sample_placement(rng, CAMERA, PlacementConfig())
    np.testing.assert_allclose(interpolate_placements(a, b, 0.0).rotation, a.rotation, atol=1e-9)
    np.testing.assert_allclose(interpolate_placements(a, b, 1.0).translation, b.translation)
    assert smoothstep(0.0) == 0.0 and smoothstep(1.0) == 1.0 and smoothstep(0.5) == 0.5
    assert smoothstep(0.01) < 0.01  # starts slowly
