"""One RGB-D input, checked: the gate every frame passes before a model sees it.

The live node and bag mode both build an ``RgbdInput`` with ``prepare_input``; whatever is
wrong with the input (no camera_info, depth not aligned to colour, wrong encoding, an
uncalibrated camera) becomes one ``InputError`` whose message names what was expected and
what came, so the caller can publish an empty HandArray for that frame and log why, instead
of crashing or dropping the frame silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hand_pose_ros.geometry import (
    CameraInfoError,
    CameraModel,
    DepthError,
    check_image_size,
    decode_depth,
)


class InputError(ValueError):
    """An RGB-D input cannot be processed; the message says why."""


@dataclass(frozen=True)
class RgbdInput:
    """A colour image with its (optional) aligned depth and its camera.

    Attributes:
        stamp_ns: the colour image's stamp (ns since the epoch): the output's stamp.
        frame_id: the colour image's optical frame: the output's frame.
        rgb: uint8 RGB, shape (H, W, 3).
        depth_m: float32 metres aligned to ``rgb``, shape (H, W), NaN where invalid; None
            when there is no depth.
        camera: the colour camera; None when no camera_info was given (2D output only).
    """

    stamp_ns: int
    frame_id: str
    rgb: np.ndarray
    depth_m: np.ndarray | None
    camera: CameraModel | None

    @property
    def depth_valid_fraction(self) -> float:
        """Fraction of depth pixels holding a measurement (0 without depth)."""
        if self.depth_m is None or self.depth_m.size == 0:
            return 0.0
        return float(np.isfinite(self.depth_m).mean())


def prepare_input(
    *,
    stamp_ns: int,
    frame_id: str,
    rgb: np.ndarray,
    depth: np.ndarray | None = None,
    depth_encoding: str | None = None,
    camera_info: Any = None,
    depth_unit: float = 0.001,
) -> RgbdInput:
    """Check and convert one frame's parts into an ``RgbdInput``.

    Args:
        stamp_ns, frame_id: from the colour image's header.
        rgb: uint8 RGB (H, W, 3), e.g. from ``io.images.to_rgb``.
        depth: the raw depth array in its encoding's units (H, W), aligned to colour; or None.
        depth_encoding: '16UC1' / 'mono16' (integer ``depth_unit`` metres) or '32FC1' (metres).
        camera_info: a sensor_msgs/CameraInfo-shaped object for the colour camera, or None.
        depth_unit: metres per count of integer depth (0.001 = millimetres).

    Raises:
        InputError: naming what was expected and what came.
    """
    if stamp_ns < 0:
        raise InputError(f"stamp must be >= 0 ns, got {stamp_ns}")
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InputError(
            f"colour image must be uint8 RGB of shape (H, W, 3), got {rgb.dtype} {rgb.shape}"
        )
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputError(f"colour image is empty ({rgb.shape[0]}x{rgb.shape[1]})")
    height, width = rgb.shape[:2]

    camera = None
    if camera_info is not None:
        try:
            camera = CameraModel.from_camera_info(camera_info)
            check_image_size(camera, height, width, "colour image")
        except CameraInfoError as error:
            raise InputError(f"camera_info: {error}") from error

    depth_m = None
    if depth is not None:
        if depth_encoding is None:
            raise InputError("depth image given without its encoding (e.g. '16UC1', '32FC1')")
        if camera is None:
            raise InputError(
                "depth image given without camera_info: depth cannot be turned into metres in "
                "the camera frame without the intrinsics (subscribe to the colour camera_info)"
            )
        try:
            depth_m = decode_depth(depth, depth_encoding, depth_unit=depth_unit)
        except DepthError as error:
            raise InputError(f"depth image: {error}") from error
        if depth_m.shape != (height, width):
            raise InputError(
                f"depth image is {depth_m.shape[0]}x{depth_m.shape[1]} but the colour image is "
                f"{height}x{width} (height x width): depth must be aligned to colour (for a "
                "RealSense, the aligned_depth_to_color topic)"
            )
    return RgbdInput(
        stamp_ns=int(stamp_ns), frame_id=str(frame_id), rgb=rgb, depth_m=depth_m, camera=camera
    )
