"""sample_depth on synthetic depth scenes: planes, step edges, holes, image borders."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hand_pose_ros.geometry import (
    CameraInfoError,
    CameraModel,
    DepthError,
    patch_side_px,
    sample_depth,
)
from hand_pose_ros.hand import KeypointStatus

WIDTH, HEIGHT = 640, 480
CAMERA = CameraModel.from_intrinsics(600.0, 600.0, 319.5, 239.5, WIDTH, HEIGHT)
MEASURED = KeypointStatus.DEPTH_MEASURED
INVALID = KeypointStatus.INVALID


def plane(distance: float, noise_m: float = 0.0, seed: int = 0) -> np.ndarray:
    """(H, W) float32 depth of a wall facing the camera, with Gaussian noise."""
    rng = np.random.default_rng(seed)
    return (distance + rng.normal(0.0, noise_m, (HEIGHT, WIDTH))).astype(np.float32)


def step_edge(near: float = 0.45, far: float = 1.3, edge_col: int = 320) -> np.ndarray:
    """A near object covering the columns left of ``edge_col`` in front of a far wall."""
    depth = plane(far)
    depth[:, :edge_col] = near
    return depth


def scattered_pixels(count: int = 21, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    u = rng.uniform(40, WIDTH - 40, count)
    v = rng.uniform(40, HEIGHT - 40, count)
    return np.column_stack([u, v])


def test_flat_plane_gives_its_distance() -> None:
    noise = 0.002
    samples = sample_depth(plane(0.6, noise), scattered_pixels(), CAMERA)
    np.testing.assert_array_equal(samples.status, MEASURED)
    # A low percentile of noisy samples sits a little below the mean, well within 2 sigma.
    np.testing.assert_allclose(samples.depth, 0.6, atol=2 * noise)
    # The spread is a robust standard deviation of the surface: about the noise.
    assert np.all((samples.spread > 0.5 * noise) & (samples.spread < 2 * noise))
    assert samples.status.dtype == np.uint8
    assert samples.depth.shape == samples.spread.shape == (21,)


def test_noise_free_plane_is_exact_with_zero_spread() -> None:
    samples = sample_depth(plane(0.8), scattered_pixels(), CAMERA)
    np.testing.assert_allclose(samples.depth, np.float32(0.8))
    np.testing.assert_array_equal(samples.spread, 0.0)


@pytest.mark.parametrize("u", [319.0, 319.4, 320.0, 321.0])
def test_keypoint_on_the_edge_of_a_near_object_gets_the_near_depth(u: float) -> None:
    # u = 319 is the object's last column; 320 and 321 are already on the wall, as a detector's
    # fingertip often is by a pixel or two.
    samples = sample_depth(step_edge(), np.array([[u, 200.0]]), CAMERA)
    assert samples.status[0] == MEASURED
    assert samples.depth[0] == pytest.approx(0.45, abs=1e-6)
    # The spread describes the finger, not the 0.85 m jump to the wall behind it.
    assert samples.spread[0] < 0.001


def test_depth_is_a_measured_value_not_a_blend_of_near_and_far() -> None:
    depth = step_edge()
    chosen = sample_depth(depth, np.array([[320.0, 200.0]]), CAMERA, percentile=50).depth[0]
    assert min(abs(chosen - 0.45), abs(chosen - 1.3)) < 1e-6


def test_a_few_flying_pixels_in_front_do_not_pull_the_depth() -> None:
    depth = plane(0.7)
    rng = np.random.default_rng(4)
    depth[rng.random(depth.shape) < 0.08] = 0.2
    samples = sample_depth(depth, scattered_pixels(), CAMERA)
    np.testing.assert_allclose(samples.depth, np.float32(0.7))


def test_nan_holes_are_ignored() -> None:
    depth = plane(0.6)
    depth[np.random.default_rng(5).random(depth.shape) < 0.5] = np.nan
    uv = scattered_pixels()
    samples = sample_depth(depth, uv, CAMERA)
    np.testing.assert_array_equal(samples.status, MEASURED)
    np.testing.assert_allclose(samples.depth, np.float32(0.6))
    assert np.all(samples.valid_count < samples.patch_px**2)


def test_keypoint_in_a_hole_is_invalid() -> None:
    depth = plane(0.6)
    depth[180:260, 280:360] = np.nan
    uv = np.array([[320.0, 220.0], [100.0, 100.0]])
    samples = sample_depth(depth, uv, CAMERA)
    np.testing.assert_array_equal(samples.status, [INVALID, MEASURED])
    assert np.isnan(samples.depth[0]) and np.isnan(samples.spread[0])
    assert samples.valid_count[0] == 0
    assert samples.depth[1] == pytest.approx(0.6)


def test_all_nan_depth_gives_all_invalid_without_error() -> None:
    depth = np.full((HEIGHT, WIDTH), np.nan, dtype=np.float32)
    samples = sample_depth(depth, scattered_pixels(), CAMERA)
    np.testing.assert_array_equal(samples.status, INVALID)
    assert np.isnan(samples.depth).all()


def test_too_few_valid_pixels_is_invalid_unless_the_threshold_allows_it() -> None:
    depth = np.full((HEIGHT, WIDTH), np.nan, dtype=np.float32)
    depth[::4, ::4] = 0.6  # 1 valid pixel in 16
    uv = np.array([[320.0, 240.0]])
    assert sample_depth(depth, uv, CAMERA, expected_distance=0.6).status[0] == INVALID
    relaxed = sample_depth(depth, uv, CAMERA, expected_distance=0.6, min_valid_fraction=0.05)
    assert relaxed.status[0] == MEASURED
    assert relaxed.depth[0] == pytest.approx(0.6)


def test_patch_shrinks_with_distance() -> None:
    uv = np.array([[320.0, 240.0]])
    near = sample_depth(plane(0.35), uv, CAMERA).patch_px[0]
    mid = sample_depth(plane(0.8), uv, CAMERA).patch_px[0]
    far = sample_depth(plane(2.0), uv, CAMERA).patch_px[0]
    # 0.012 m * 600 px / distance to the nearest odd number: 20.6 -> 21, 9, 3.6 -> 3.
    assert (near, mid, far) == (21, 9, 3)
    assert near % 2 == mid % 2 == far % 2 == 1


def test_expected_distance_sizes_the_patch() -> None:
    uv = np.array([[320.0, 240.0], [100.0, 100.0]])
    samples = sample_depth(plane(2.0), uv, CAMERA, expected_distance=np.array([0.4, np.nan]))
    assert list(samples.patch_px) == [19, 3]  # 18 px -> 19; the NaN falls back to the image


def test_patch_side_is_clamped_and_odd() -> None:
    sides = patch_side_px(600.0, np.array([0.05, 0.72, 10.0, np.nan]))
    np.testing.assert_array_equal(sides, [31, 11, 3, 31])


@pytest.mark.parametrize(
    "uv",
    [(-1.0, 100.0), (WIDTH - 0.5, 100.0), (100.0, HEIGHT + 3.0), (np.nan, 100.0), (1e300, -1e300)],
)
def test_points_outside_the_image_are_invalid(uv: tuple[float, float]) -> None:
    samples = sample_depth(plane(0.6), np.array([uv]), CAMERA)
    assert samples.status[0] == INVALID
    assert np.isnan(samples.depth[0])
    assert samples.patch_px[0] == 0


@pytest.mark.parametrize("uv", [(0.0, 0.0), (WIDTH - 1.0, HEIGHT - 1.0), (-0.4, 3.0)])
def test_points_at_the_border_use_the_part_of_the_patch_inside(uv: tuple[float, float]) -> None:
    samples = sample_depth(plane(0.6), np.array([uv]), CAMERA, expected_distance=0.6)
    assert samples.status[0] == MEASURED
    assert samples.depth[0] == pytest.approx(0.6)
    assert samples.valid_count[0] < samples.patch_px[0] ** 2


def test_no_keypoints_gives_empty_samples() -> None:
    samples = sample_depth(plane(0.6), np.zeros((0, 2)), CAMERA)
    assert samples.depth.shape == samples.status.shape == (0,)


def test_depth_of_another_size_than_the_camera_is_rejected() -> None:
    small = CameraModel.from_intrinsics(300.0, 300.0, 160.0, 120.0, 320, 240)
    expected = "depth image is 480x640 but camera_info says 240x320"
    with pytest.raises(CameraInfoError, match=expected):
        sample_depth(plane(0.6), scattered_pixels(), small)


def test_raw_depth_must_be_decoded_first() -> None:
    with pytest.raises(DepthError, match=r"dtype uint16: expected \(height, width\) float metres"):
        sample_depth(np.full((HEIGHT, WIDTH), 600, np.uint16), scattered_pixels(), CAMERA)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"percentile": 120.0}, r"percentile = 120.0: expected a value in \[0, 100\]"),
        ({"patch_size_m": 0.0}, r"patch_size_m = 0.0: expected metres > 0"),
        ({"min_patch_px": 4}, r"min_patch_px = 4: expected an odd number"),
        ({"min_patch_px": 7, "max_patch_px": 5}, r"min_patch_px = 7 > max_patch_px = 5"),
        ({"min_valid_fraction": 1.5}, r"min_valid_fraction = 1.5: expected \[0, 1\]"),
        (
            {"expected_distance": np.ones(3)},
            r"expected_distance: expected a scalar or shape \(21,\)",
        ),
    ],
)
def test_bad_options_are_rejected(option: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sample_depth(plane(0.6), scattered_pixels(), CAMERA, **option)
