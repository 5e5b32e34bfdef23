"""Depth image units: the one place raw depth becomes metres.

Every depth image entering the package goes through ``decode_depth``, so no other module
knows about millimetres, encodings or invalid markers:

    ``16UC1``, ``mono16``  unsigned integers in ``depth_unit`` metres (default 1 mm; some
                           RealSense models use 0.125 mm); 0 means no measurement.
    ``32FC1``              float metres; NaN, inf, 0 and negatives mean no measurement.

The result is float32 metres with NaN wherever there is no measurement.
"""

from __future__ import annotations

import math

import numpy as np

MILLIMETRE = 0.001
INTEGER_ENCODINGS: tuple[str, ...] = ("16UC1", "mono16")
FLOAT_ENCODINGS: tuple[str, ...] = ("32FC1",)
DEPTH_ENCODINGS: tuple[str, ...] = INTEGER_ENCODINGS + FLOAT_ENCODINGS
_UINT16_MAX = np.iinfo(np.uint16).max


class DepthError(ValueError):
    """A depth image that cannot be read as depth: wrong encoding, dtype, shape or unit."""


def decode_depth(array: np.ndarray, encoding: str, depth_unit: float = MILLIMETRE) -> np.ndarray:
    """Metres from a raw depth image.

    Args:
        array: shape (H, W) (or (H, W, 1)), the image's pixels: uint16 for ``16UC1`` and
            ``mono16`` (either byte order), float32 for ``32FC1``.
        encoding: the sensor_msgs/Image encoding.
        depth_unit: metres per integer step for the integer encodings; ignored for ``32FC1``.

    Returns:
        shape (H, W) float32, metres; NaN where there is no measurement. Always a new array.

    Raises:
        DepthError: unsupported encoding, a dtype that does not match it, a shape other than
            (H, W), an empty image, or a depth_unit that is not a positive number.
    """
    if encoding not in DEPTH_ENCODINGS:
        raise DepthError(
            f"depth encoding {encoding!r} is not supported: expected one of {list(DEPTH_ENCODINGS)}"
        )
    pixels = np.asarray(array)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim != 2:
        raise DepthError(
            f"depth image has shape {pixels.shape}: expected (height, width) or (height, width, 1)"
        )
    if pixels.size == 0:
        raise DepthError(f"depth image is empty (shape {pixels.shape})")

    if encoding in INTEGER_ENCODINGS:
        if pixels.dtype.kind != "u" or pixels.dtype.itemsize != 2:
            raise DepthError(f"{encoding} depth must be uint16, got {pixels.dtype}")
        if not (math.isfinite(depth_unit) and depth_unit > 0):
            raise DepthError(f"depth_unit = {depth_unit}: expected metres per step > 0")
        metres = np.multiply(pixels, np.float32(depth_unit), dtype=np.float32)
        metres[pixels == 0] = np.nan
        return metres

    if pixels.dtype.kind != "f" or pixels.dtype.itemsize != 4:
        raise DepthError(f"{encoding} depth must be float32, got {pixels.dtype}")
    metres = pixels.astype(np.float32)  # a native-order copy
    metres[~(np.isfinite(metres) & (metres > 0))] = np.nan
    return metres


def encode_depth_mm(depth_m: np.ndarray) -> np.ndarray:
    """A ``16UC1`` millimetre image from metres (what a depth camera driver publishes).

    Args:
        depth_m: any shape, metres; NaN, inf and values <= 0 mean no measurement.

    Returns:
        same shape, uint16 millimetres, rounded to the nearest; 0 where there is no
        measurement; depths beyond 65.535 m saturate at 65535.
    """
    metres = np.asarray(depth_m, dtype=np.float64)
    valid = np.isfinite(metres) & (metres > 0)
    millimetres = np.rint(np.where(valid, metres, 0.0) / MILLIMETRE)
    return np.clip(millimetres, 0, _UINT16_MAX).astype(np.uint16)
