"""What every public depth dataset loader returns: depth frames with joints in one convention.

Whatever a dataset stores (millimetres, y up, negative z, pixel + depth), a ``DepthFrame``
holds depth in metres and joints in metres in the camera optical frame (REP 103: x right,
y down, z forward), rows in the project's keypoint order (``hand_pose_ros.skeleton``).
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from hand_pose_ros.geometry import CameraModel
from hand_pose_ros.skeleton import NUM_KEYPOINTS


class DatasetError(ValueError):
    """A dataset folder or file that cannot be read: missing, malformed or the wrong size."""


@dataclass
class DepthFrame:
    """One depth image of a hand with its ground-truth joints.

    Attributes:
        depth_m: shape (H, W) float32, metres; NaN where there is no depth.
        camera: the depth camera (intrinsics of the image as stored).
        joints_xyz: shape (21, 3) float64, metres in the camera optical frame, rows in the
            project's keypoint order; NaN rows for keypoints the dataset does not label.
        name: the frame's file relative to the dataset root, e.g. ``"P0/1/000123_depth.bin"``.
    """

    depth_m: np.ndarray
    camera: CameraModel
    joints_xyz: np.ndarray
    name: str


class DepthFrameDataset(ABC):
    """A lazy, indexable collection of ``DepthFrame``: labels are read when the dataset is
    opened, each depth file only when its frame is asked for (so it serves as a torch
    ``Dataset`` with worker processes).

    Class attributes:
        name: the dataset's short name (the kind in ``open_depth_dataset`` specs).
        camera: the dataset's depth camera.
        cube_m: the side of the crop cube its literature uses, metres.
        evaluation_joints: project keypoint indices its usual evaluation protocol scores.
    """

    name: ClassVar[str]
    camera: ClassVar[CameraModel]
    cube_m: ClassVar[float]
    evaluation_joints: ClassVar[tuple[int, ...]]

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def _load(self, index: int) -> DepthFrame:
        """Read frame ``index`` (0 <= index < len) from disk."""

    def __getitem__(self, index: int) -> DepthFrame:
        position = operator.index(index)
        count = len(self)
        if position < 0:
            position += count
        if not 0 <= position < count:
            raise IndexError(f"frame {index} out of range for {count} frames")
        return self._load(position)

    def __iter__(self) -> Iterator[DepthFrame]:
        for position in range(len(self)):
            yield self._load(position)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {len(self)} frames>"

    @staticmethod
    def _require_folder(path: Path, what: str) -> Path:
        """``path`` if it is a folder, else a DatasetError naming ``what`` it should hold."""
        if not path.is_dir():
            raise DatasetError(f"{what}: folder {path} does not exist")
        return path

    def _read_png(
        self, path: Path, *, dtype: type[np.generic], channels: int, expected: str
    ) -> np.ndarray:
        """A PNG's pixels as stored (no conversion), checked against format and image size.

        Args:
            path: the image file; it must have the size of the dataset's camera.
            dtype, channels: the pixel type and channel count the dataset stores.
            expected: the format in words, for the error message.

        Returns:
            shape (H, W) for one channel, else (H, W, C) in OpenCV's BGR order.
        """
        if not path.is_file():
            raise DatasetError(f"depth image {path} does not exist")
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if pixels is None:
            raise DatasetError(f"depth image {path} cannot be decoded as an image (corrupt file?)")
        found = 1 if pixels.ndim == 2 else pixels.shape[2]
        if pixels.dtype != dtype or found != channels:
            raise DatasetError(
                f"{path}: {pixels.dtype} with {found} channel(s), expected {expected}"
            )
        if pixels.shape[:2] != (self.camera.height, self.camera.width):
            raise DatasetError(
                f"depth image {path} is {pixels.shape[1]}x{pixels.shape[0]} (width x height): "
                f"expected {self.camera.width}x{self.camera.height}"
            )
        return pixels


def remap_joints(joints: np.ndarray, to_project: Sequence[int | None]) -> np.ndarray:
    """Joints in a dataset's order -> the project's order.

    Args:
        joints: shape (..., K, 3), the dataset's K joints.
        to_project: length K, the project keypoint index of each dataset joint, or None
            for a joint with no project counterpart (it is dropped).

    Returns:
        shape (..., 21, 3) float64; NaN rows for keypoints no dataset joint maps to.
    """
    source = np.asarray(joints, dtype=np.float64)
    out = np.full((*source.shape[:-2], NUM_KEYPOINTS, 3), np.nan)
    for dataset_index, project_index in enumerate(to_project):
        if project_index is not None:
            out[..., project_index, :] = source[..., dataset_index, :]
    return out
