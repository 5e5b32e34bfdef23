"""Crop windows map crop pixels to image pixels and back; the depth cube follows seed 002."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hand_pose_ros.crop import (
    CropError,
    apply_affine,
    crop_image,
    crop_to_image_matrix,
    cube_crop_geometry,
    depth_cube_crop,
    invert_affine,
    square_window,
)
from hand_pose_ros.geometry import CameraModel

CAMERA = CameraModel.from_intrinsics(615.0, 615.0, 319.5, 239.5, 640, 480)


def test_crop_centre_maps_to_window_centre_and_corners_span_the_window():
    matrix = crop_to_image_matrix(np.array([300.0, 200.0]), 100.0, 50)
    centre = apply_affine(matrix, np.array([[24.5, 24.5]]))[0]
    np.testing.assert_allclose(centre, [300.0, 200.0])
    # Crop pixel centres 0 and 49 are 49 crop pixels apart = 98 image pixels.
    corners = apply_affine(matrix, np.array([[0.0, 0.0], [49.0, 49.0]]))
    np.testing.assert_allclose(corners[1] - corners[0], [98.0, 98.0])


def test_inverse_round_trips():
    matrix = crop_to_image_matrix(np.array([321.3, 180.7]), (140.0, 90.0), (64, 48), 0.7)
    points = np.random.default_rng(0).uniform(0, 600, size=(50, 2))
    back = apply_affine(matrix, apply_affine(invert_affine(matrix), points))
    np.testing.assert_allclose(back, points, atol=1e-9)


def test_rotation_is_counter_clockwise_on_screen():
    """A window rotated +90 deg: the crop's 'up' looks along the image's 'left'."""
    matrix = crop_to_image_matrix(np.array([100.0, 100.0]), 21.0, 21, np.pi / 2)
    up_in_crop = apply_affine(matrix, np.array([[10.0, 0.0]]))[0]  # top-centre crop pixel
    np.testing.assert_allclose(up_in_crop, [90.0, 100.0], atol=1e-9)


def test_crop_image_at_scale_one_equals_slicing():
    image = np.random.default_rng(1).integers(0, 255, size=(60, 80, 3), dtype=np.uint8)
    matrix = crop_to_image_matrix(np.array([40.0 + 7.5, 30.0 + 7.5]), 16.0, 16)
    crop = crop_image(image, matrix, 16, interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(crop, image[30:46, 40:56])


def test_square_window_pads_the_longer_side():
    centre, side = square_window(np.array([10.0, 20.0, 50.0, 40.0]), padding=1.5)
    np.testing.assert_allclose(centre, [30.0, 30.0])
    assert side == pytest.approx(60.0)
    with pytest.raises(CropError, match="finite"):
        square_window(np.array([np.nan, 0, 1, 1]))


def test_cube_window_spans_the_cube_at_its_depth():
    geometry = cube_crop_geometry(CAMERA, np.array([0.05, -0.02, 0.5]), cube_m=0.25)
    left_right = apply_affine(geometry.crop_to_image, np.array([[-0.5, 63.5], [127.5, 63.5]]))
    # The window's outer pixel edges are one cube apart at z = 0.5 m.
    assert left_right[1, 0] - left_right[0, 0] == pytest.approx(0.25 * 615.0 / 0.5)


def test_depth_cube_normalisation():
    depth = np.full((480, 640), 2.0, dtype=np.float32)  # wall far behind the cube
    depth[200:280, 280:360] = 0.5  # the hand's plane at the cube centre
    depth[230:240, 310:320] = np.nan  # a hole
    depth[250:255, 290:295] = 0.3  # something in front of the cube
    crop, geometry = depth_cube_crop(depth, CAMERA, np.array([0.0, 0.0, 0.5]), cube_m=0.25)
    assert crop.shape == (128, 128) and crop.dtype == np.float32
    assert crop.min() >= -1.0 and crop.max() <= 1.0
    assert crop[64, 64] == pytest.approx(0.0)  # at the centre depth
    assert crop[0, 0] == 1.0  # the wall: behind the cube
    centre_hole = apply_affine(invert_affine(geometry.crop_to_image), np.array([[314.5, 234.5]]))
    i, j = np.rint(centre_hole[0]).astype(int)
    assert crop[j, i] == 1.0  # missing depth
    front = apply_affine(invert_affine(geometry.crop_to_image), np.array([[292.0, 252.0]]))
    i, j = np.rint(front[0]).astype(int)
    assert crop[j, i] == -1.0  # clipped in front


def test_keypoints_round_trip_through_cube_units():
    geometry = cube_crop_geometry(CAMERA, np.array([0.1, 0.0, 0.6]), cube_m=(0.2, 0.2, 0.3))
    xyz = np.array([[0.1, 0.0, 0.6], [0.2, 0.1, 0.75]])
    units = geometry.to_cube_units(xyz)
    np.testing.assert_allclose(units, [[0, 0, 0], [1, 1, 1]], atol=1e-12)
    np.testing.assert_allclose(geometry.from_cube_units(units), xyz, atol=1e-12)


@pytest.mark.parametrize(
    ("center", "cube", "message"),
    [
        (np.array([0.0, 0.0, -0.5]), 0.25, "z > 0"),
        (np.array([0.0, np.nan, 0.5]), 0.25, "finite"),
        (np.array([0.0, 0.0, 0.5]), 0.0, "cube size must be > 0"),
    ],
)
def test_bad_cube_is_rejected(center, cube, message):
    with pytest.raises(CropError, match=message):
        cube_crop_geometry(CAMERA, center, cube_m=cube)


def test_bad_sizes_are_rejected():
    with pytest.raises(CropError, match="output_size must be > 0"):
        crop_to_image_matrix(np.array([1.0, 1.0]), 10.0, 0)
    with pytest.raises(CropError, match="window_px must be > 0"):
        crop_to_image_matrix(np.array([1.0, 1.0]), (10.0, 5.0, 1.0), 8)
