"""CameraModel: camera_info parsing, binning/ROI, distortion, projection round trips."""

from __future__ import annotations

import array
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
from sample_cameras import CAMERAS, HEIGHT, WIDTH

from hand_pose_ros.geometry import CameraInfoError, CameraModel, check_image_size


def pixel_grid(camera: CameraModel, step: int = 20) -> np.ndarray:
    """(N, 2) pixels covering the whole image, corners included."""
    us = np.linspace(0, camera.width - 1, camera.width // step)
    vs = np.linspace(0, camera.height - 1, camera.height // step)
    return np.stack(np.meshgrid(us, vs), axis=-1).reshape(-1, 2)


def camera_info(**changes: Any) -> SimpleNamespace:
    """A plain-namespace CameraInfo of a 640x480 plumb_bob camera."""
    fields: dict[str, Any] = {
        "width": WIDTH,
        "height": HEIGHT,
        "distortion_model": "plumb_bob",
        "d": [0.1, -0.2, 0.001, 0.002, 0.05],
        "k": [600.0, 0.0, 320.0, 0.0, 601.0, 240.0, 0.0, 0.0, 1.0],
        "r": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        "p": [590.0, 0.0, 322.0, 0.0, 0.0, 591.0, 243.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        "binning_x": 0,
        "binning_y": 0,
        "roi": SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0, do_rectify=False),
    }
    fields.update(changes)
    return SimpleNamespace(**fields)


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("name", list(CAMERAS))
def test_backproject_then_project_returns_the_pixels(name: str) -> None:
    camera = CAMERAS[name]
    uv = pixel_grid(camera)
    depth = np.random.default_rng(1).uniform(0.2, 3.0, len(uv))
    points = camera.backproject(uv, depth)
    np.testing.assert_allclose(points[:, 2], depth, rtol=1e-12)
    np.testing.assert_allclose(camera.project(points), uv, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", list(CAMERAS))
def test_project_matches_opencv(name: str) -> None:
    camera = CAMERAS[name]
    rng = np.random.default_rng(2)
    points = np.column_stack(
        [rng.uniform(-0.3, 0.3, 50), rng.uniform(-0.2, 0.2, 50), rng.uniform(0.4, 1.5, 50)]
    )
    zero = np.zeros(3)
    dist = np.array(camera.d) if camera.d else np.zeros(5)
    if camera.distortion_model == "equidistant":
        expected, _ = cv2.fisheye.projectPoints(points[:, None, :], zero, zero, camera.k, dist)
    else:
        expected, _ = cv2.projectPoints(points, zero, zero, camera.k, dist)
    np.testing.assert_allclose(camera.project(points), expected.reshape(-1, 2), atol=1e-9)


@pytest.mark.parametrize("name", ["plumb_bob", "rational_polynomial", "equidistant"])
def test_undistort_recovers_the_ideal_pixels(name: str) -> None:
    camera = CAMERAS[name]
    ideal = pixel_grid(camera, step=40)
    distorted = camera.distort_pixels(ideal)
    # The lens really moves the pixels, so this is not an identity check.
    assert np.abs(distorted - ideal).max() > 1.0
    np.testing.assert_allclose(camera.undistort_pixels(distorted), ideal, atol=1e-6, rtol=0)


def test_undistort_agrees_with_opencv_for_mild_distortion() -> None:
    camera = CAMERAS["plumb_bob"]
    uv = pixel_grid(camera, step=40)
    expected = cv2.undistortPointsIter(
        uv[:, None, :],
        camera.k,
        np.array(camera.d),
        np.eye(3),
        camera.k,
        (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 1000, 1e-12),
    ).reshape(-1, 2)
    np.testing.assert_allclose(camera.undistort_pixels(uv), expected, atol=1e-6)


def test_rays_have_unit_z_and_point_at_the_pixel() -> None:
    camera = CAMERAS["rational_polynomial"]
    uv = pixel_grid(camera, step=80)
    rays = camera.rays(uv)
    np.testing.assert_array_equal(rays[:, 2], 1.0)
    np.testing.assert_allclose(camera.project(rays * 0.7), uv, atol=1e-6)


def test_no_distortion_is_the_pinhole_formula() -> None:
    camera = CAMERAS["none"]
    assert not camera.has_distortion
    point = np.array([[0.1, -0.05, 0.5]])
    u = 615.0 * 0.1 / 0.5 + 321.5
    v = 614.0 * -0.05 / 0.5 + 238.7
    np.testing.assert_allclose(camera.project(point), [[u, v]], atol=1e-12)


def test_all_zero_coefficients_mean_no_distortion() -> None:
    camera = CameraModel.from_intrinsics(600, 600, 320, 240, WIDTH, HEIGHT, "plumb_bob", [0] * 5)
    assert not camera.has_distortion
    uv = np.array([[3.25, 7.5], [600.0, 470.0]])
    np.testing.assert_array_equal(camera.undistort_pixels(uv), uv)


@pytest.mark.parametrize("name", list(CAMERAS))
def test_nan_rows_give_nan_rows(name: str) -> None:
    camera = CAMERAS[name]
    uv = np.array([[np.nan, 100.0], [320.0, 240.0], [np.nan, np.nan]])
    assert np.isnan(camera.undistort_pixels(uv)[[0, 2]]).all()
    assert np.isfinite(camera.undistort_pixels(uv)[1]).all()
    points = camera.backproject(uv, np.array([1.0, np.nan, 1.0]))
    assert np.isnan(points).all()
    projected = camera.project(np.array([[np.nan, 0, 1], [0, 0, 1], [0.1, 0.1, 0.0], [0, 0, -1]]))
    np.testing.assert_array_equal(np.isnan(projected).all(axis=1), [True, False, True, True])


def test_empty_input_gives_empty_output() -> None:
    camera = CAMERAS["plumb_bob"]
    assert camera.project(np.zeros((0, 3))).shape == (0, 2)
    assert camera.backproject(np.zeros((0, 2)), np.zeros(0)).shape == (0, 3)


def test_wrong_array_shapes_are_rejected() -> None:
    camera = CAMERAS["none"]
    with pytest.raises(ValueError, match=r"points_xyz: expected shape \(N, 3\), got \(3,\)"):
        camera.project(np.zeros(3))
    with pytest.raises(ValueError, match=r"depth: expected shape \(2,\), got \(3,\)"):
        camera.backproject(np.zeros((2, 2)), np.ones(3))


# ------------------------------------------------------------------ camera_info inputs


def test_from_camera_info_plain_namespace() -> None:
    camera = CameraModel.from_camera_info(camera_info())
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (600.0, 601.0, 320.0, 240.0)
    assert (camera.width, camera.height) == (WIDTH, HEIGHT)
    assert camera.distortion_model == "plumb_bob"
    assert camera.d == (0.1, -0.2, 0.001, 0.002, 0.05)
    np.testing.assert_array_equal(camera.k, np.reshape(camera_info().k, (3, 3)))


def test_from_camera_info_rclpy_like_arrays() -> None:
    # rclpy gives fixed-size arrays as numpy and sequences as array.array.
    msg = camera_info(
        k=np.array(camera_info().k), d=array.array("d", camera_info().d), p=np.zeros(12)
    )
    assert CameraModel.from_camera_info(msg) == CameraModel.from_camera_info(camera_info())


def test_from_camera_info_rosbags_message() -> None:
    from rosbags.typesys import Stores, get_typestore

    types = get_typestore(Stores.ROS2_HUMBLE).types
    plain = camera_info()
    msg = types["sensor_msgs/msg/CameraInfo"](
        header=types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=1, nanosec=2), frame_id="cam"
        ),
        height=HEIGHT,
        width=WIDTH,
        distortion_model="plumb_bob",
        d=np.array(plain.d),
        k=np.array(plain.k),
        r=np.array(plain.r),
        p=np.array(plain.p),
        binning_x=0,
        binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        ),
    )
    assert CameraModel.from_camera_info(msg) == CameraModel.from_camera_info(plain)


def test_from_camera_info_ros1_field_names() -> None:
    plain = camera_info()
    msg = SimpleNamespace(
        width=WIDTH,
        height=HEIGHT,
        distortion_model="plumb_bob",
        D=plain.d,
        K=plain.k,
        binning_x=0,
        binning_y=0,
        roi=plain.roi,
    )
    assert CameraModel.from_camera_info(msg) == CameraModel.from_camera_info(plain)


def test_rectified_camera_uses_p_and_no_distortion() -> None:
    camera = CameraModel.from_camera_info(camera_info(), rectified=True)
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (590.0, 591.0, 322.0, 243.0)
    assert not camera.has_distortion


def test_binning_and_roi_describe_the_published_image() -> None:
    full = CameraModel.from_camera_info(camera_info(width=1280, height=960))
    roi = SimpleNamespace(x_offset=200, y_offset=100, width=800, height=600, do_rectify=False)
    cropped = CameraModel.from_camera_info(
        camera_info(width=1280, height=960, binning_x=2, binning_y=4, roi=roi)
    )
    assert (cropped.width, cropped.height) == (400, 150)
    assert (cropped.fx, cropped.fy) == (300.0, 601.0 / 4)
    assert (cropped.cx, cropped.cy) == ((320.0 - 200) / 2, (240.0 - 100) / 4)
    # The same 3D point lands at u_img = (u_full - x_offset) / binning_x, distortion included.
    points = np.array([[0.05, 0.02, 0.8], [-0.1, 0.04, 1.1]])
    u_full, v_full = full.project(points).T
    expected = np.column_stack([(u_full - 200) / 2, (v_full - 100) / 4])
    np.testing.assert_allclose(cropped.project(points), expected, atol=1e-9)
    np.testing.assert_allclose(cropped.backproject(expected, points[:, 2]), points, atol=1e-9)


def test_empty_distortion_model_name_without_coefficients_is_a_pinhole() -> None:
    camera = CameraModel.from_camera_info(camera_info(distortion_model="", d=[]))
    assert not camera.has_distortion


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"k": [0.0] * 9}, r"K\[0\] \(fx\) is 0: the camera is not calibrated"),
        ({"k": [600.0, 0, 320, 0, 600, 240]}, r"K has 6 values: expected 9"),
        (
            {"k": [600.0, 0, 320, 0, -600, 240, 0, 0, 1]},
            r"fy = -600.0: expected a finite focal length > 0",
        ),
        (
            {"k": [600.0, 0, 320, 0, np.nan, 240, 0, 0, 1]},
            r"fy = nan: expected a finite focal length > 0",
        ),
        ({"k": [600.0, 2.0, 320, 0, 600, 240, 0, 0, 1]}, r"K has skew 2.0 .* expected skew 0"),
        (
            {"distortion_model": "kannala_brandt"},
            r"distortion model 'kannala_brandt' is not supported: expected one of",
        ),
        (
            {"distortion_model": "equidistant"},
            r"'equidistant' takes 4 coefficients, D has 5",
        ),
        ({"d": [0.1, np.inf, 0, 0, 0]}, r"expected finite coefficients"),
        ({"width": 0, "height": 0}, r"camera_info size is 0x0 .* both > 0"),
        (
            {"roi": SimpleNamespace(x_offset=600, y_offset=0, width=100, height=0)},
            r"roi \(x_offset 600, .*\) does not fit in the 640x480 calibrated image",
        ),
        ({"k": "not numbers"}, r"K = 'not numbers': expected a sequence of numbers"),
    ],
)
def test_bad_camera_info_is_rejected(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(CameraInfoError, match=message):
        CameraModel.from_camera_info(camera_info(**changes))


def test_rectified_with_zero_p_is_rejected() -> None:
    with pytest.raises(CameraInfoError, match=r"P\[0\] \(fx\) is 0"):
        CameraModel.from_camera_info(camera_info(p=[0.0] * 12), rectified=True)


def test_message_without_k_is_rejected() -> None:
    with pytest.raises(CameraInfoError, match=r"camera_info has no field 'k'"):
        CameraModel.from_camera_info(SimpleNamespace(width=1, height=1))


def test_camera_info_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        CameraModel.from_intrinsics(0, 600, 320, 240, WIDTH, HEIGHT)


def test_image_size_mismatch_names_both_sizes() -> None:
    camera = CameraModel.from_intrinsics(300, 300, 160, 120, 320, 240)
    check_image_size(camera, 240, 320, "depth image")  # matching: no error
    expected = "depth image is 480x640 but camera_info says 240x320"
    with pytest.raises(CameraInfoError, match=expected):
        check_image_size(camera, 480, 640, "depth image")
