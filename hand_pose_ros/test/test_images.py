"""sensor_msgs/Image <-> numpy: every supported encoding, padding, endianness, bad input."""

from __future__ import annotations

import array
import re
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from hand_pose_ros.io.images import (
    ImageError,
    array_to_image_fields,
    image_to_array,
    to_rgb,
)

RNG = np.random.default_rng(7)


def _stub(**fields: Any) -> SimpleNamespace:
    """An Image-like object: what the converter reads from rclpy and rosbags messages."""
    return SimpleNamespace(**fields)


def _random(encoding: str, height: int = 3, width: int = 5) -> np.ndarray:
    if encoding in ("rgb8", "bgr8"):
        return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if encoding in ("rgba8", "bgra8"):
        return RNG.integers(0, 256, (height, width, 4), dtype=np.uint8)
    if encoding == "mono8":
        return RNG.integers(0, 256, (height, width), dtype=np.uint8)
    if encoding in ("mono16", "16UC1"):
        return RNG.integers(0, 65536, (height, width), dtype=np.uint16)
    return RNG.uniform(0.2, 5.0, (height, width)).astype(np.float32)


ALL = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "16UC1", "32FC1"]


@pytest.mark.parametrize("encoding", ALL)
@pytest.mark.parametrize("data_type", ["numpy", "bytes", "array"])
def test_round_trip_every_encoding_and_data_container(encoding: str, data_type: str) -> None:
    pixels = _random(encoding)
    fields = array_to_image_fields(pixels, encoding)
    data = fields["data"]
    assert data.dtype == np.uint8 and data.ndim == 1
    assert fields["step"] * fields["height"] == data.size
    if data_type == "bytes":
        fields["data"] = data.tobytes()
    elif data_type == "array":  # what rclpy gives
        fields["data"] = array.array("B", data.tobytes())
    decoded, got_encoding = image_to_array(_stub(**fields))
    assert got_encoding == encoding
    assert decoded.dtype == pixels.dtype and decoded.shape == pixels.shape
    np.testing.assert_array_equal(decoded, pixels)
    assert decoded.flags.writeable and decoded.flags.c_contiguous


def test_fields_are_little_endian_without_padding() -> None:
    depth = np.array([[1, 258]], dtype=np.uint16)
    fields = array_to_image_fields(depth, "16UC1")
    assert (fields["height"], fields["width"], fields["step"], fields["is_bigendian"]) == (
        1, 2, 4, 0,
    )
    assert fields["data"].tolist() == [1, 0, 2, 1]


def test_big_endian_data_is_swapped() -> None:
    depth = np.array([[1000, 2], [65535, 300]], dtype=np.uint16)
    msg = _stub(height=2, width=2, encoding="16UC1", is_bigendian=1, step=4,
                data=depth.astype(">u2").tobytes())
    decoded, _ = image_to_array(msg)
    np.testing.assert_array_equal(decoded, depth)
    assert decoded.dtype == np.dtype(np.uint16)  # native order, usable directly


def test_big_endian_float_depth() -> None:
    depth = np.array([[0.5, 1.25, np.nan]], dtype=np.float32)
    msg = _stub(height=1, width=3, encoding="32FC1", is_bigendian=True, step=12,
                data=depth.astype(">f4").tobytes())
    decoded, _ = image_to_array(msg, expected="depth")
    np.testing.assert_array_equal(decoded, depth)


@pytest.mark.parametrize("encoding", ["rgb8", "16UC1", "32FC1"])
def test_row_padding_is_removed(encoding: str) -> None:
    pixels = _random(encoding, height=4, width=3)
    row = array_to_image_fields(pixels, encoding)
    pad = 7  # odd on purpose: rows of 16/32-bit pixels then start unaligned
    padded = b"".join(
        row["data"][r * row["step"]:(r + 1) * row["step"]].tobytes() + b"\xee" * pad
        for r in range(4)
    )
    msg = _stub(height=4, width=3, encoding=encoding, is_bigendian=0,
                step=row["step"] + pad, data=padded)
    decoded, _ = image_to_array(msg)
    np.testing.assert_array_equal(decoded, pixels)


def test_decoded_array_does_not_alias_the_message() -> None:
    data = np.arange(6, dtype=np.uint8)
    msg = _stub(height=2, width=3, encoding="mono8", is_bigendian=0, step=3, data=data)
    decoded, _ = image_to_array(msg)
    decoded[0, 0] = 99
    assert data[0] == 0


def test_to_rgb_from_every_colour_encoding() -> None:
    rgb = RNG.integers(0, 256, (2, 3, 3), dtype=np.uint8)
    alpha = np.full((2, 3, 1), 7, dtype=np.uint8)
    cases = {
        "rgb8": rgb,
        "bgr8": rgb[:, :, ::-1],
        "rgba8": np.concatenate([rgb, alpha], axis=2),
        "bgra8": np.concatenate([rgb[:, :, ::-1], alpha], axis=2),
    }
    for encoding, pixels in cases.items():
        from_array = to_rgb(np.ascontiguousarray(pixels), encoding)
        from_msg = to_rgb(_stub(**array_to_image_fields(np.ascontiguousarray(pixels), encoding)))
        for out in (from_array, from_msg):
            assert out.dtype == np.uint8 and out.shape == (2, 3, 3) and out.flags.c_contiguous
            np.testing.assert_array_equal(out, rgb, err_msg=encoding)


def test_to_rgb_replicates_grey() -> None:
    grey = np.array([[0, 128], [255, 3]], dtype=np.uint8)
    out = to_rgb(grey, "mono8")
    assert out.shape == (2, 2, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], grey)


def _good(**changes: Any) -> SimpleNamespace:
    fields = array_to_image_fields(np.zeros((2, 3, 3), dtype=np.uint8), "rgb8")
    fields.update(changes)
    return _stub(**fields)


@pytest.mark.parametrize(
    ("msg", "expected", "message"),
    [
        (_good(encoding="yuv422"), None, "unsupported image encoding 'yuv422'; supported: rgb8"),
        (_good(encoding="8UC3"), "color", "unsupported image encoding '8UC3'; supported: rgb8"),
        (_good(data=np.zeros(17, np.uint8)), None, "has 17 bytes, expected step * height = 9 * 2"),
        (_good(step=8, data=np.zeros(16, np.uint8)), None, "step 8 is smaller than width"),
        (_good(height=0, data=np.zeros(0, np.uint8)), None, "empty rgb8 image: height 0"),
        (_good(width=0, step=0, data=np.zeros(0, np.uint8)), None, "width 0"),
        (_good(), "depth", "expected a depth image (mono16, 16UC1, 32FC1) but got a color"),
        (_good(data=np.zeros(18, np.float32)), None, "must be uint8 bytes, got a numpy float32"),
        (_good(data="abc"), None, "must be bytes-like, got str"),
    ],
)
def test_bad_messages_are_rejected_with_a_clear_message(
    msg: SimpleNamespace, expected: Any, message: str
) -> None:
    with pytest.raises(ImageError, match=re.escape(message)):
        image_to_array(msg, expected=expected)


def test_depth_where_colour_expected() -> None:
    msg = _stub(**array_to_image_fields(np.zeros((2, 2), np.uint16), "16UC1"))
    with pytest.raises(ImageError, match=r"expected a color image .* encoding '16UC1'"):
        image_to_array(msg, expected="color")
    with pytest.raises(ImageError, match="expected a color image"):
        to_rgb(msg)
    # ... and the same message is fine as depth.
    assert image_to_array(msg, expected="depth")[0].shape == (2, 2)


def test_image_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        image_to_array(_good(encoding="jpeg"))


@pytest.mark.parametrize(
    ("pixels", "encoding", "message"),
    [
        (np.zeros((2, 2), np.float64), "32FC1", "a 32FC1 image must be float32, got a float64"),
        (np.zeros((2, 2, 3), np.uint16), "rgb8", "a rgb8 image must be uint8, got a uint16"),
        (np.zeros((2, 2), np.uint8), "rgb8", r"must have shape \(H, W, 3\), got \(2, 2\)"),
        (np.zeros((2, 2, 3), np.uint8), "mono8", r"must have shape \(H, W\), got \(2, 2, 3\)"),
        (np.zeros((0, 4, 3), np.uint8), "rgb8", "empty rgb8 image"),
        (np.zeros((2, 2), np.uint8), "bayer_rggb8", "unsupported image encoding"),
    ],
)
def test_bad_arrays_are_rejected(pixels: np.ndarray, encoding: str, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        array_to_image_fields(pixels, encoding)


def test_to_rgb_errors() -> None:
    with pytest.raises(ImageError, match="needs the encoding"):
        to_rgb(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ImageError, match=r"expected a color image .* '32FC1'"):
        to_rgb(np.zeros((2, 2), np.float32), "32FC1")
    with pytest.raises(ImageError, match="told encoding 'bgr8' but the message says 'rgb8'"):
        to_rgb(_good(), "bgr8")


def test_single_channel_accepts_trailing_axis() -> None:
    fields = array_to_image_fields(np.ones((2, 3, 1), np.uint16), "16UC1")
    decoded, _ = image_to_array(_stub(**fields))
    assert decoded.shape == (2, 3)
