"""sensor_msgs/Image <-> numpy, for rclpy and rosbags message objects alike.

Only the message's plain attributes are read (``height``, ``width``, ``encoding``,
``is_bigendian``, ``step``, ``data``), so any object that has them works: an rclpy
``sensor_msgs.msg.Image`` (``data`` is an ``array.array('B')``), a rosbags message
(``data`` is a numpy uint8 array) or a test stub (``bytes``).

Supported encodings:

=========  ======  ========  =====  ===========================================
encoding   dtype   channels  kind   notes
=========  ======  ========  =====  ===========================================
rgb8       uint8   3         color
bgr8       uint8   3         color
rgba8      uint8   4         color
bgra8      uint8   4         color
mono8      uint8   1         color  a grey camera; ``to_rgb`` replicates it
mono16     uint16  1         depth  same bytes as 16UC1; some drivers use it for depth
16UC1      uint16  1         depth  millimetres by REP 118 (decoded in geometry/)
32FC1      float32 1         depth  metres by REP 118 (decoded in geometry/)
=========  ======  ========  =====  ===========================================

Depth units are deliberately not interpreted here: depth comes back as the raw array and
its encoding, and the one place that turns it into metres is the geometry package.
"""

from __future__ import annotations

import array
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Kind = Literal["color", "depth"]


class ImageError(ValueError):
    """An image message or array cannot be converted: bad encoding, size or layout."""


@dataclass(frozen=True)
class EncodingInfo:
    """How one encoding lays out a pixel."""

    dtype: np.dtype[Any]
    channels: int
    kind: Kind

    @property
    def bytes_per_pixel(self) -> int:
        return self.dtype.itemsize * self.channels


ENCODINGS: dict[str, EncodingInfo] = {
    "rgb8": EncodingInfo(np.dtype(np.uint8), 3, "color"),
    "bgr8": EncodingInfo(np.dtype(np.uint8), 3, "color"),
    "rgba8": EncodingInfo(np.dtype(np.uint8), 4, "color"),
    "bgra8": EncodingInfo(np.dtype(np.uint8), 4, "color"),
    "mono8": EncodingInfo(np.dtype(np.uint8), 1, "color"),
    "mono16": EncodingInfo(np.dtype(np.uint16), 1, "depth"),
    "16UC1": EncodingInfo(np.dtype(np.uint16), 1, "depth"),
    "32FC1": EncodingInfo(np.dtype(np.float32), 1, "depth"),
}
COLOR_ENCODINGS: tuple[str, ...] = tuple(k for k, v in ENCODINGS.items() if v.kind == "color")
DEPTH_ENCODINGS: tuple[str, ...] = tuple(k for k, v in ENCODINGS.items() if v.kind == "depth")


def encoding_info(encoding: str, *, expected: Kind | None = None) -> EncodingInfo:
    """The layout of ``encoding``; raises ImageError if it is unsupported or of the wrong kind.

    Args:
        encoding: a sensor_msgs/Image encoding string, e.g. ``'rgb8'``.
        expected: ``'color'`` or ``'depth'`` to also check the kind; None accepts both.
    """
    if expected not in (None, "color", "depth"):
        raise ImageError(f"expected must be 'color', 'depth' or None, got {expected!r}")
    info = ENCODINGS.get(encoding)
    if info is None:
        supported = {"color": COLOR_ENCODINGS, "depth": DEPTH_ENCODINGS}.get(
            expected or "", tuple(ENCODINGS)
        )
        raise ImageError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(supported)}"
        )
    if expected is not None and info.kind != expected:
        wanted = COLOR_ENCODINGS if expected == "color" else DEPTH_ENCODINGS
        raise ImageError(
            f"expected a {expected} image ({', '.join(wanted)}) but got a {info.kind} image "
            f"with encoding {encoding!r}; are the colour and depth topics swapped?"
        )
    return info


def _data_bytes(data: Any) -> np.ndarray:
    """The message's ``data`` as a flat uint8 array, without copying where possible."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ImageError(f"image data must be uint8 bytes, got a numpy {data.dtype} array")
        return data.reshape(-1)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    if isinstance(data, array.array):
        if data.itemsize != 1:
            raise ImageError(
                f"image data must be bytes, got an array.array of typecode {data.typecode!r}"
            )
        return np.frombuffer(data, dtype=np.uint8)
    if isinstance(data, (list, tuple)):
        # rclpy lets a user assign a list of ints; slow, but correct.
        return np.asarray(data, dtype=np.uint8)
    raise ImageError(f"image data must be bytes-like, got {type(data).__name__}")


def image_to_array(msg: Any, *, expected: Kind | None = None) -> tuple[np.ndarray, str]:
    """Decode a sensor_msgs/Image into a numpy array.

    Row padding (``step`` larger than ``width * bytes_per_pixel``) is removed and big-endian
    data is swapped to native order. The array is always a fresh C-contiguous copy that the
    caller may modify; it does not keep the message's buffer alive.

    Args:
        msg: an Image message (rclpy or rosbags), see the module docstring.
        expected: ``'color'`` or ``'depth'`` to reject the other kind with a clear error.

    Returns:
        ``(array, encoding)``: array of shape (H, W, C) for multi-channel encodings or
        (H, W) for single-channel ones, dtype per the encoding table (channel order as in
        the message, e.g. BGR for bgr8); encoding is the message's encoding string.

    Raises:
        ImageError: unsupported encoding, wrong kind, empty image, ``step`` too small, or
            ``data`` length different from ``step * height``.
    """
    encoding = str(msg.encoding)
    info = encoding_info(encoding, expected=expected)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageError(f"empty {encoding} image: height {height}, width {width}")
    row_bytes = width * info.bytes_per_pixel
    if step < row_bytes:
        raise ImageError(
            f"{encoding} image step {step} is smaller than width * bytes per pixel = "
            f"{width} * {info.bytes_per_pixel} = {row_bytes}"
        )
    flat = _data_bytes(msg.data)
    if flat.size != step * height:
        raise ImageError(
            f"{encoding} image data has {flat.size} bytes, expected step * height = "
            f"{step} * {height} = {step * height}"
        )
    # Cut the padding off each row before reinterpreting the bytes as pixels.
    rows = np.ascontiguousarray(flat.reshape(height, step)[:, :row_bytes])
    wire_dtype = info.dtype.newbyteorder(">" if msg.is_bigendian else "<")
    pixels = rows.view(wire_dtype).astype(info.dtype, copy=True)
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    return pixels.reshape(shape), encoding


def to_rgb(image: Any, encoding: str | None = None) -> np.ndarray:
    """A colour image as uint8 RGB, shape (H, W, 3), C-contiguous.

    Args:
        image: an Image message (then ``encoding`` may be omitted; if given it must match)
            or a numpy array as returned by ``image_to_array``.
        encoding: the array's encoding; one of rgb8, bgr8, rgba8, bgra8, mono8 (grey is
            replicated to three channels, alpha is dropped).

    Raises:
        ImageError: a depth or unsupported encoding, or an array whose shape or dtype does
            not fit the encoding.
    """
    if isinstance(image, np.ndarray):
        if encoding is None:
            raise ImageError("to_rgb needs the encoding when given a numpy array")
        pixels = image
        _check_array(pixels, encoding, encoding_info(encoding, expected="color"))
    else:
        pixels, msg_encoding = image_to_array(image, expected="color")
        if encoding is not None and encoding != msg_encoding:
            raise ImageError(
                f"to_rgb was told encoding {encoding!r} but the message says {msg_encoding!r}"
            )
        encoding = msg_encoding
    if encoding == "mono8":
        rgb = np.repeat(pixels.reshape(pixels.shape[0], pixels.shape[1], 1), 3, axis=2)
    elif encoding in ("rgb8", "rgba8"):
        rgb = pixels[:, :, :3]
    else:  # bgr8, bgra8
        rgb = pixels[:, :, 2::-1]
    return np.ascontiguousarray(rgb)


def _check_array(array_: np.ndarray, encoding: str, info: EncodingInfo) -> None:
    """Raise ImageError unless ``array_`` has the shape and dtype ``encoding`` implies."""
    if array_.dtype != info.dtype:
        raise ImageError(
            f"a {encoding} image must be {info.dtype}, got a {array_.dtype} array"
        )
    want_3d = info.channels > 1
    ok_shape = (
        array_.ndim == 3 and array_.shape[2] == info.channels
        if want_3d
        else array_.ndim == 2 or (array_.ndim == 3 and array_.shape[2] == 1)
    )
    if not ok_shape:
        want = f"(H, W, {info.channels})" if want_3d else "(H, W)"
        raise ImageError(f"a {encoding} image must have shape {want}, got {array_.shape}")
    if array_.shape[0] == 0 or array_.shape[1] == 0:
        raise ImageError(f"empty {encoding} image: shape {array_.shape}")


def array_to_image_fields(array_: np.ndarray, encoding: str) -> dict[str, Any]:
    """The sensor_msgs/Image fields for ``array_``, to build an Image with any message class.

    The caller adds ``header`` and calls its own class: ``Image(header=h, **fields)``. Data is
    little-endian (``is_bigendian=0``) with no row padding.

    Args:
        array_: (H, W, C) for multi-channel encodings, (H, W) or (H, W, 1) for single
            channel ones, with exactly the encoding's dtype (no silent casts: a float64
            depth image for 32FC1 is an error, so that units are never guessed).
        encoding: one of the supported encodings.

    Returns:
        dict with height, width, encoding, is_bigendian, step and data (a flat np.uint8
        array, what rosbags needs; rclpy wants ``array.array('B', data.tobytes())``).
    """
    info = encoding_info(encoding)
    _check_array(array_, encoding, info)
    height, width = int(array_.shape[0]), int(array_.shape[1])
    little = np.ascontiguousarray(array_, dtype=info.dtype.newbyteorder("<"))
    return {
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": 0,
        "step": width * info.bytes_per_pixel,
        "data": little.view(np.uint8).reshape(-1).copy(),
    }
