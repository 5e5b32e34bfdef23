"""A calibrated camera: intrinsics from sensor_msgs/CameraInfo, lens distortion, projection.

Conventions: pixels are ``(u, v)`` = (column, row) in the image *as published*, with (0, 0)
the centre of the top-left pixel (the CameraInfo K convention). Points are metres in the
camera optical frame (REP 103: x right, y down, z forward). Depth is the z coordinate (what a
depth image stores), not the distance along the ray. Unknown values are NaN: a NaN input row
gives a NaN output row, never an exception.

Binning and ROI follow image_geometry: K in CameraInfo describes the full-resolution sensor
the camera was calibrated at; a published image that is cropped to ``roi`` and then binned
has pixel ``u_img = (u_full - roi.x_offset) / binning_x`` (and the same for v), so its
intrinsics are ``fx / binning_x`` and ``(cx - roi.x_offset) / binning_x``. Distortion acts on
normalised coordinates, which that change leaves untouched, so D is used as is.

Distortion models (the names CameraInfo uses):
    ``plumb_bob``           k1, k2, p1, p2[, k3]               (OpenCV's 5-coefficient model)
    ``rational_polynomial`` k1, k2, p1, p2, k3, k4, k5, k6     (OpenCV's 8-coefficient model)
    ``equidistant``         k1, k2, k3, k4                     (OpenCV's fisheye model)
An empty or all-zero D means an ideal pinhole, handled without OpenCV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

PLUMB_BOB = "plumb_bob"
RATIONAL_POLYNOMIAL = "rational_polynomial"
EQUIDISTANT = "equidistant"

# How many D coefficients each model accepts. An empty D is accepted for every model.
DISTORTION_COEFFICIENTS: dict[str, tuple[int, ...]] = {
    PLUMB_BOB: (4, 5),
    RATIONAL_POLYNOMIAL: (8,),
    EQUIDISTANT: (4,),
}

# cv2.undistortPoints stops after 5 iterations by default, which leaves errors of a tenth of
# a pixel and more near the image corners of a RealSense/Kinect-like lens. Iterate until the
# reprojection error (in pixels) is negligible instead.
UNDISTORT_CRITERIA: tuple[int, int, float] = (
    cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS,
    200,
    1e-10,
)
# A pixel whose undistorted position does not reproject to within this many pixels lies
# where the distortion model cannot be inverted (OpenCV then returns garbage or, for the
# fisheye model, a -1e6 sentinel); it becomes NaN.
MAX_UNDISTORT_RESIDUAL_PX = 1e-3

_ZERO_VECTOR = np.zeros((3, 1), dtype=np.float64)
_IDENTITY = np.eye(3, dtype=np.float64)


class CameraInfoError(ValueError):
    """A camera_info (or the intrinsics given instead) cannot describe a calibrated camera."""


@dataclass(frozen=True)
class CameraModel:
    """A pinhole camera with optional lens distortion, for the image as published.

    Attributes:
        fx, fy: focal lengths in pixels.
        cx, cy: principal point in pixels.
        width, height: size of the published image in pixels.
        distortion_model: one of ``DISTORTION_COEFFICIENTS`` (or "" with no coefficients).
        d: distortion coefficients in CameraInfo order.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    distortion_model: str = PLUMB_BOB
    d: tuple[float, ...] = ()
    _k: np.ndarray = field(init=False, repr=False, compare=False)
    _dist: np.ndarray = field(init=False, repr=False, compare=False)
    _distorted: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("fx", "fy"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise CameraInfoError(
                    f"{name} = {value}: expected a finite focal length > 0 pixels "
                    "(a camera_info with K all zeros means the camera is not calibrated)"
                )
        for name in ("cx", "cy"):
            if not math.isfinite(getattr(self, name)):
                raise CameraInfoError(f"{name} = {getattr(self, name)}: expected a finite value")
        if self.width <= 0 or self.height <= 0:
            raise CameraInfoError(
                f"image size is {self.width}x{self.height} (width x height): expected both > 0"
            )
        coefficients = tuple(float(c) for c in self.d)
        _check_distortion(self.distortion_model, coefficients)
        k = np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64
        )
        # Frozen dataclass: the derived, cached fields are set once here.
        object.__setattr__(self, "d", coefficients)
        object.__setattr__(self, "_k", k)
        object.__setattr__(self, "_dist", np.array(coefficients, dtype=np.float64))
        object.__setattr__(self, "_distorted", any(c != 0.0 for c in coefficients))

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_intrinsics(
        cls,
        fx: float,
        fy: float,
        cx: float,
        cy: float,
        width: int,
        height: int,
        distortion_model: str = PLUMB_BOB,
        d: Sequence[float] = (),
    ) -> CameraModel:
        """A camera from explicit intrinsics (pixels) and image size (pixels)."""
        return cls(
            float(fx),
            float(fy),
            float(cx),
            float(cy),
            int(width),
            int(height),
            str(distortion_model),
            tuple(float(c) for c in d),
        )

    @classmethod
    def from_camera_info(cls, msg: Any, *, rectified: bool = False) -> CameraModel:
        """A camera from any sensor_msgs/CameraInfo-shaped object.

        Works with rclpy messages (array.array fields), rosbags messages (numpy fields),
        ROS 1 field names (``K``, ``D``, ``P``) and plain namespaces. Binning and ROI are
        applied, so the model describes the image as published (see the module docstring).

        Args:
            msg: the camera_info.
            rectified: describe the rectified image (``image_rect``): intrinsics from P and
                no distortion, instead of the raw image's K and D.

        Raises:
            CameraInfoError: uncalibrated camera (K or P zero), malformed K/P/D, unknown
                distortion model, zero image size, or a ROI outside the image.
        """
        k = _floats(_field(msg, "k", "K"), "K")
        if len(k) != 9:
            raise CameraInfoError(f"K has {len(k)} values: expected 9 (3x3, row-major)")
        if k[0] == 0.0:
            raise CameraInfoError(
                "K[0] (fx) is 0: the camera is not calibrated (expected fx, fy > 0)"
            )
        d: tuple[float, ...] = ()
        if rectified:
            p = _floats(_field(msg, "p", "P"), "P")
            if len(p) != 12:
                raise CameraInfoError(f"P has {len(p)} values: expected 12 (3x4, row-major)")
            if p[0] == 0.0:
                raise CameraInfoError("P[0] (fx) is 0: the rectified camera is not calibrated")
            fx, fy, cx, cy, skew, bottom = p[0], p[5], p[2], p[6], p[1], (p[8], p[9], p[10])
            distortion_model = PLUMB_BOB
        else:
            fx, fy, cx, cy, skew, bottom = k[0], k[4], k[2], k[5], k[1], (k[6], k[7], k[8])
            distortion_model = str(getattr(msg, "distortion_model", ""))
            d = tuple(_floats(_field(msg, "d", "D"), "D"))
        matrix = "P" if rectified else "K"
        if skew != 0.0 or tuple(bottom) != (0.0, 0.0, 1.0):
            raise CameraInfoError(
                f"{matrix} has skew {skew} and last row {tuple(bottom)}: expected skew 0 and "
                "last row (0, 0, 1)"
            )

        width, height = int(msg.width), int(msg.height)
        if width <= 0 or height <= 0:
            raise CameraInfoError(
                f"camera_info size is {width}x{height} (width x height): expected the size the "
                "camera was calibrated at, both > 0"
            )
        # CameraInfo: binning 0 and 1 both mean no binning.
        binning_x = max(int(getattr(msg, "binning_x", 0) or 0), 1)
        binning_y = max(int(getattr(msg, "binning_y", 0) or 0), 1)
        roi = getattr(msg, "roi", None)
        x_offset = int(getattr(roi, "x_offset", 0) or 0)
        y_offset = int(getattr(roi, "y_offset", 0) or 0)
        # An all-zero ROI means the full image.
        roi_width = int(getattr(roi, "width", 0) or 0) or width - x_offset
        roi_height = int(getattr(roi, "height", 0) or 0) or height - y_offset
        if (
            x_offset < 0
            or y_offset < 0
            or roi_width <= 0
            or roi_height <= 0
            or x_offset + roi_width > width
            or y_offset + roi_height > height
        ):
            raise CameraInfoError(
                f"roi (x_offset {x_offset}, y_offset {y_offset}, {roi_width}x{roi_height}) "
                f"does not fit in the {width}x{height} calibrated image"
            )
        return cls.from_intrinsics(
            fx / binning_x,
            fy / binning_y,
            (cx - x_offset) / binning_x,
            (cy - y_offset) / binning_y,
            roi_width // binning_x,
            roi_height // binning_y,
            distortion_model,
            d,
        )

    # ----------------------------------------------------------------- properties

    @property
    def k(self) -> np.ndarray:
        """shape (3, 3): the intrinsic matrix of the published image (a copy)."""
        return self._k.copy()

    @property
    def has_distortion(self) -> bool:
        """True when D has a non-zero coefficient."""
        return self._distorted

    # ----------------------------------------------------------------- geometry

    def project(self, points_xyz: np.ndarray) -> np.ndarray:
        """Pixels of 3D points, with lens distortion.

        Args:
            points_xyz: shape (N, 3), metres in the optical frame.

        Returns:
            shape (N, 2) float64, pixels (u, v); NaN rows for NaN input or z <= 0 (a point
            not in front of the camera has no pixel).
        """
        points = _rows(points_xyz, 3, "points_xyz")
        out = np.full((len(points), 2), np.nan)
        ok = np.isfinite(points).all(axis=1) & (points[:, 2] > 0.0)
        if ok.any():
            z = points[ok, 2]
            # Absurd inputs (x / z beyond 1e308) overflow; they end as NaN below, quietly.
            with np.errstate(over="ignore", invalid="ignore"):
                out[ok] = self._distort_normalized(points[ok, :2] / z[:, None])
        out[~np.isfinite(out).all(axis=1)] = np.nan
        return out

    def undistort_pixels(self, uv: np.ndarray) -> np.ndarray:
        """Ideal pinhole pixels of distorted (as measured) pixels.

        Args:
            uv: shape (N, 2), pixels in the published (distorted) image.

        Returns:
            shape (N, 2) float64, pixels an ideal pinhole camera with the same K would see;
            NaN rows for NaN input and for pixels where the distortion model cannot be
            inverted.
        """
        pixels = _rows(uv, 2, "uv")
        out = np.full((len(pixels), 2), np.nan)
        ok = np.isfinite(pixels).all(axis=1)
        if not ok.any():
            return out
        if not self._distorted:
            out[ok] = pixels[ok]
            return out
        source = np.ascontiguousarray(pixels[ok].reshape(-1, 1, 2))
        if self.distortion_model == EQUIDISTANT:
            ideal = cv2.fisheye.undistortPoints(
                source, self._k, self._dist, R=_IDENTITY, P=self._k, criteria=UNDISTORT_CRITERIA
            )
        else:
            ideal = cv2.undistortPointsIter(
                source, self._k, self._dist, _IDENTITY, self._k, UNDISTORT_CRITERIA
            )
        ideal = ideal.reshape(-1, 2)
        # Keep only solutions that map back onto the measured pixel (see
        # MAX_UNDISTORT_RESIDUAL_PX).
        with np.errstate(over="ignore", invalid="ignore"):
            redistorted = self._distort_normalized(self._normalized(ideal))
            residual = np.abs(redistorted - pixels[ok]).max(axis=1)
        ideal[~(residual <= MAX_UNDISTORT_RESIDUAL_PX)] = np.nan
        out[ok] = ideal
        return out

    def distort_pixels(self, uv_ideal: np.ndarray) -> np.ndarray:
        """Distorted (as measured) pixels of ideal pinhole pixels; inverse of undistort_pixels.

        Args:
            uv_ideal: shape (N, 2), ideal pinhole pixels.

        Returns:
            shape (N, 2) float64 pixels in the published image; NaN rows for NaN input.
        """
        pixels = _rows(uv_ideal, 2, "uv_ideal")
        out = np.full((len(pixels), 2), np.nan)
        ok = np.isfinite(pixels).all(axis=1)
        if ok.any():
            out[ok] = self._distort_normalized(self._normalized(pixels[ok]))
        return out

    def rays(self, uv: np.ndarray) -> np.ndarray:
        """Viewing rays through pixels, scaled to z = 1 (so ``ray * depth`` is the point).

        Args:
            uv: shape (N, 2), pixels in the published (distorted) image.

        Returns:
            shape (N, 3) float64 ``(x/z, y/z, 1)``; NaN rows where ``undistort_pixels`` gives
            NaN.
        """
        ideal = self.undistort_pixels(uv)
        rays = np.ones((len(ideal), 3))
        rays[:, :2] = self._normalized(ideal)
        rays[~np.isfinite(ideal).all(axis=1)] = np.nan
        return rays

    def backproject(self, uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """3D points at the given depth behind pixels; inverse of ``project``.

        Args:
            uv: shape (N, 2), pixels in the published (distorted) image.
            depth: shape (N,), z in metres (what a depth image stores).

        Returns:
            shape (N, 3) float64, metres in the optical frame; NaN rows where uv or depth
            is NaN or depth <= 0.
        """
        rays = self.rays(uv)
        z = np.asarray(depth, dtype=np.float64)
        if z.shape != (len(rays),):
            raise ValueError(f"depth: expected shape ({len(rays)},), got {z.shape}")
        z = np.where(z > 0.0, z, np.nan)  # NaN stays NaN; 0 and negative are not a depth
        return rays * z[:, None]

    # ----------------------------------------------------------------- internals

    def _normalized(self, ideal_uv: np.ndarray) -> np.ndarray:
        """(N, 2) ideal pixels -> (N, 2) normalised image coordinates (x/z, y/z)."""
        return (ideal_uv - (self.cx, self.cy)) / (self.fx, self.fy)

    def _distort_normalized(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) finite normalised coordinates -> (N, 2) distorted pixels."""
        if not self._distorted or len(xy) == 0:
            return np.asarray(xy * (self.fx, self.fy) + (self.cx, self.cy), dtype=np.float64)
        points = np.empty((len(xy), 1, 3))
        points[:, 0, :2] = xy
        points[:, 0, 2] = 1.0
        if self.distortion_model == EQUIDISTANT:
            pixels, _ = cv2.fisheye.projectPoints(
                points, _ZERO_VECTOR, _ZERO_VECTOR, self._k, self._dist
            )
        else:
            pixels, _ = cv2.projectPoints(points, _ZERO_VECTOR, _ZERO_VECTOR, self._k, self._dist)
        return np.asarray(pixels, dtype=np.float64).reshape(-1, 2)


def check_image_size(camera: CameraModel, height: int, width: int, what: str) -> None:
    """Raise unless an image of ``height`` x ``width`` pixels matches the camera.

    Args:
        camera: the camera the image should come from.
        height, width: the image's size in pixels (``array.shape[:2]``).
        what: the image's name for the message, e.g. "depth image".

    Raises:
        CameraInfoError: e.g. "depth image is 480x640 but camera_info says 240x320 ...".
    """
    if (int(height), int(width)) != (camera.height, camera.width):
        raise CameraInfoError(
            f"{what} is {height}x{width} but camera_info says {camera.height}x{camera.width} "
            "(height x width, after binning and ROI): use the camera_info that belongs to "
            "this image (for aligned depth, the colour camera's)"
        )


def _check_distortion(model: str, d: tuple[float, ...]) -> None:
    if not all(math.isfinite(c) for c in d):
        raise CameraInfoError(f"D = {list(d)}: expected finite coefficients")
    if model == "" and not any(d):
        return  # some drivers publish an empty model name for a lens without distortion
    if model not in DISTORTION_COEFFICIENTS:
        raise CameraInfoError(
            f"distortion model {model!r} is not supported: expected one of "
            f"{sorted(DISTORTION_COEFFICIENTS)} (or an empty D)"
        )
    allowed = DISTORTION_COEFFICIENTS[model]
    if d and len(d) not in allowed:
        raise CameraInfoError(
            f"distortion model {model!r} takes {' or '.join(map(str, allowed))} coefficients, "
            f"D has {len(d)}"
        )


def _field(msg: Any, name: str, ros1_name: str) -> Any:
    """A CameraInfo field by its ROS 2 name, else its ROS 1 name."""
    if hasattr(msg, name):
        return getattr(msg, name)
    if hasattr(msg, ros1_name):
        return getattr(msg, ros1_name)
    raise CameraInfoError(f"camera_info has no field {name!r}: expected a sensor_msgs/CameraInfo")


def _floats(values: Any, name: str) -> list[float]:
    try:
        return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
    except (TypeError, ValueError) as error:
        raise CameraInfoError(f"{name} = {values!r}: expected a sequence of numbers") from error


def _rows(values: np.ndarray, columns: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != columns:
        raise ValueError(f"{name}: expected shape (N, {columns}), got {array.shape}")
    return array
