"""backproject_keypoints / lift_keypoints: 21 keypoints from pixels + depth to metres."""

from __future__ import annotations

import numpy as np
import pytest
from sample_cameras import CAMERAS, HEIGHT, WIDTH

from hand_pose_ros.geometry import backproject_keypoints, lift_keypoints
from hand_pose_ros.hand import KeypointStatus
from hand_pose_ros.skeleton import NUM_KEYPOINTS


def hand_points(seed: int = 0) -> np.ndarray:
    """(21, 3) metres: a hand-sized cloud 0.2 m across, 0.5 m in front of the camera."""
    rng = np.random.default_rng(seed)
    return np.array([0.03, -0.02, 0.5]) + rng.uniform(-0.1, 0.1, (NUM_KEYPOINTS, 3))


@pytest.mark.parametrize("name", list(CAMERAS))
def test_backprojected_keypoints_project_back_onto_their_pixels(name: str) -> None:
    camera = CAMERAS[name]
    truth = hand_points()
    uv = camera.project(truth)
    xyz = backproject_keypoints(camera, uv, truth[:, 2])
    assert xyz.shape == (NUM_KEYPOINTS, 3)
    np.testing.assert_allclose(camera.project(xyz), uv, atol=1e-6, rtol=0)
    np.testing.assert_allclose(xyz, truth, atol=1e-8)


def test_missing_pixel_or_depth_gives_nan_rows() -> None:
    camera = CAMERAS["plumb_bob"]
    uv = camera.project(hand_points())
    depth = hand_points()[:, 2]
    uv[2] = np.nan
    depth[5] = np.nan
    depth[7] = 0.0
    xyz = backproject_keypoints(camera, uv, depth)
    missing = np.isnan(xyz).all(axis=1)
    np.testing.assert_array_equal(np.flatnonzero(missing), [2, 5, 7])


@pytest.mark.parametrize("name", ["none", "rational_polynomial"])
def test_lift_on_a_wall_recovers_the_points_and_their_pixels(name: str) -> None:
    camera = CAMERAS[name]
    depth = np.full((HEIGHT, WIDTH), 0.55, dtype=np.float32)
    truth = hand_points()
    truth *= 0.55 / truth[:, 2:3]  # every keypoint on the wall
    uv = camera.project(truth)
    xyz, uncertainty, status = lift_keypoints(camera, depth, uv)
    np.testing.assert_array_equal(status, KeypointStatus.DEPTH_MEASURED)
    np.testing.assert_allclose(xyz, truth, atol=1e-6)
    np.testing.assert_allclose(camera.project(xyz), uv, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(uncertainty, 0.0)


def test_lift_reports_image_only_and_invalid_keypoints() -> None:
    camera = CAMERAS["plumb_bob"]
    depth = np.full((HEIGHT, WIDTH), 0.5, dtype=np.float32)
    uv = camera.project(hand_points())
    u, v = np.rint(uv[4]).astype(int)
    depth[v - 20 : v + 21, u - 20 : u + 21] = np.nan  # a hole under keypoint 4
    uv[8] = np.nan  # keypoint 8 not found
    uv[12] = (WIDTH + 50.0, 100.0)  # keypoint 12 estimated off the image
    xyz, uncertainty, status = lift_keypoints(camera, depth, uv)
    expected = np.full(NUM_KEYPOINTS, KeypointStatus.DEPTH_MEASURED)
    expected[[4, 12]] = KeypointStatus.IMAGE_ONLY
    expected[8] = KeypointStatus.INVALID
    np.testing.assert_array_equal(status, expected)
    assert status.dtype == np.uint8
    without_depth = status != KeypointStatus.DEPTH_MEASURED
    np.testing.assert_array_equal(np.isnan(xyz).all(axis=1), without_depth)
    np.testing.assert_array_equal(np.isnan(uncertainty), without_depth)


def test_lift_with_all_nan_depth_keeps_the_pixels_as_image_only() -> None:
    camera = CAMERAS["none"]
    depth = np.full((HEIGHT, WIDTH), np.nan, dtype=np.float32)
    uv = camera.project(hand_points())
    xyz, uncertainty, status = lift_keypoints(camera, depth, uv)
    np.testing.assert_array_equal(status, KeypointStatus.IMAGE_ONLY)
    assert np.isnan(xyz).all() and np.isnan(uncertainty).all()


def test_uncertainty_is_the_depth_spread_along_the_ray() -> None:
    camera = CAMERAS["none"]
    # A surface whose pixels alternate between 0.600 and 0.604 m: quartiles 0.600 and 0.604.
    rows, cols = np.indices((HEIGHT, WIDTH))
    depth = np.where((rows + cols) % 2 == 0, 0.600, 0.604).astype(np.float32)
    uv = np.array([[camera.cx, camera.cy], [20.0, 20.0]])
    ray_length = np.linalg.norm(camera.rays(uv), axis=1)
    assert ray_length[1] > 1.1  # the corner's ray is clearly longer than its z
    _, uncertainty, status = lift_keypoints(camera, depth, uv)
    np.testing.assert_array_equal(status, KeypointStatus.DEPTH_MEASURED)
    np.testing.assert_allclose(uncertainty, 0.004 / 1.349 * ray_length, rtol=1e-4)


def test_lift_passes_sampling_options_through() -> None:
    camera = CAMERAS["none"]
    depth = np.full((HEIGHT, WIDTH), 1.3, dtype=np.float32)
    depth[:, :320] = 0.45
    uv = np.array([[320.0, 240.0]])
    near = lift_keypoints(camera, depth, uv).xyz[0, 2]
    far = lift_keypoints(camera, depth, uv, percentile=100.0).xyz[0, 2]
    assert (near, far) == (pytest.approx(0.45), pytest.approx(1.3))
