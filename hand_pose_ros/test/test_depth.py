"""decode_depth / encode_depth_mm: the one place depth units are converted."""

from __future__ import annotations

import numpy as np
import pytest

from hand_pose_ros.geometry import DepthError, decode_depth, encode_depth_mm

NAN = np.nan


@pytest.mark.parametrize("encoding", ["16UC1", "mono16"])
def test_16bit_depth_is_millimetres(encoding: str) -> None:
    raw = np.array([[0, 1000], [65535, 600]], dtype=np.uint16)
    metres = decode_depth(raw, encoding)
    assert metres.dtype == np.float32
    np.testing.assert_allclose(metres, [[NAN, 1.0], [65.535, 0.6]], rtol=1e-7)


def test_custom_depth_unit() -> None:
    # Some RealSense models publish 16UC1 in units of 0.125 mm.
    raw = np.array([[8000, 4800]], dtype=np.uint16)
    np.testing.assert_allclose(decode_depth(raw, "16UC1", depth_unit=0.000125), [[1.0, 0.6]])


def test_big_endian_16bit_depth() -> None:
    raw = np.array([[1000, 0]], dtype=">u2")
    np.testing.assert_allclose(decode_depth(raw, "16UC1"), [[1.0, NAN]])


def test_32bit_float_depth_is_metres_and_invalid_values_become_nan() -> None:
    raw = np.array([[0.75, 0.0, -1.0, NAN, np.inf, -np.inf]], dtype=np.float32)
    np.testing.assert_array_equal(decode_depth(raw, "32FC1"), [[0.75, NAN, NAN, NAN, NAN, NAN]])


def test_single_channel_third_axis_is_accepted() -> None:
    raw = np.full((4, 5, 1), 500, dtype=np.uint16)
    metres = decode_depth(raw, "16UC1")
    assert metres.shape == (4, 5)
    np.testing.assert_allclose(metres, 0.5)


def test_decoding_does_not_touch_the_input() -> None:
    raw = np.array([[0.0, 1.5]], dtype=np.float32)
    metres = decode_depth(raw, "32FC1")
    metres[0, 1] = 9.0
    np.testing.assert_array_equal(raw, [[0.0, 1.5]])


@pytest.mark.parametrize("encoding", ["rgb8", "8UC1", "16SC1", "32FC3", ""])
def test_unsupported_encodings_are_rejected(encoding: str) -> None:
    with pytest.raises(DepthError, match=rf"depth encoding '{encoding}' is not supported: .*16UC1"):
        decode_depth(np.zeros((2, 2), dtype=np.uint16), encoding)


@pytest.mark.parametrize(
    ("raw", "encoding", "message"),
    [
        (np.zeros((2, 2), np.uint8), "16UC1", "16UC1 depth must be uint16, got uint8"),
        (np.zeros((2, 2), np.int16), "mono16", "mono16 depth must be uint16, got int16"),
        (np.zeros((2, 2), np.float32), "16UC1", "16UC1 depth must be uint16, got float32"),
        (np.zeros((2, 2), np.float64), "32FC1", "32FC1 depth must be float32, got float64"),
        (np.zeros((2, 2), np.uint16), "32FC1", "32FC1 depth must be float32, got uint16"),
        (np.zeros((2, 2, 3), np.uint16), "16UC1", r"shape \(2, 2, 3\): expected \(height, width\)"),
        (np.zeros(4, np.uint16), "16UC1", r"shape \(4,\): expected \(height, width\)"),
        (np.zeros((0, 640), np.uint16), "16UC1", r"depth image is empty \(shape \(0, 640\)\)"),
    ],
)
def test_malformed_depth_images_are_rejected(raw: np.ndarray, encoding: str, message: str) -> None:
    with pytest.raises(DepthError, match=message):
        decode_depth(raw, encoding)


@pytest.mark.parametrize("unit", [0.0, -0.001, NAN])
def test_bad_depth_unit_is_rejected(unit: float) -> None:
    with pytest.raises(DepthError, match=r"depth_unit = .*: expected metres per step > 0"):
        decode_depth(np.ones((2, 2), np.uint16), "16UC1", depth_unit=unit)


def test_depth_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        decode_depth(np.ones((2, 2), np.uint16), "bgr8")


def test_encode_rounds_to_millimetres_and_marks_invalid_as_zero() -> None:
    metres = np.array([[0.6004, 0.6006, NAN, -0.5], [np.inf, 0.0, 70.0, 1.0]])
    expected = np.array([[600, 601, 0, 0], [0, 0, 65535, 1000]], dtype=np.uint16)
    encoded = encode_depth_mm(metres)
    assert encoded.dtype == np.uint16
    np.testing.assert_array_equal(encoded, expected)


def test_encode_then_decode_is_within_half_a_millimetre() -> None:
    metres = np.random.default_rng(0).uniform(0.2, 4.0, (48, 64))
    metres[5, 7] = NAN
    decoded = decode_depth(encode_depth_mm(metres), "16UC1")
    assert np.isnan(decoded[5, 7])
    finite = np.isfinite(metres)
    assert np.abs(decoded[finite] - metres[finite]).max() <= 0.0005 + 1e-6
