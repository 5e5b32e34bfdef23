"""MSRA15 hand gesture dataset (Sun et al., "Cascaded Hand Pose Regression", CVPR 2015).

Layout: ``ROOT/P0..P8/<gesture>/000000_depth.bin ...`` and ``joint.txt`` per gesture folder;
gestures 1-9, I, IP, L, MP, RP, T, TIP, Y. Usual protocol: leave one subject out.

- ``.bin``: six little-endian uint32 (image width, height, box left, top, right, bottom;
  right and bottom exclusive), then float32 depth in mm for the box, row by row. Pixels
  outside the box have no depth.
- ``joint.txt``: the frame count, then one line per frame of 21 x (x, y, z) in mm, camera
  frame with y UP and z NEGATIVE in front of the camera (OpenGL style); here x, -y, -z.
- Camera (the dataset's readme): f = 241.42 px, principal point (160, 120), 320x240.

Joint order (the dataset's readme): wrist, then index, middle, ring, little finger
(mcp, pip, dip, tip each), then thumb (mcp, pip, dip, tip). The thumb's four names are
positional, base to tip, like the other fingers': its "mcp" is the chain's base, our CMC.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hand_pose_ros.datasets.frames import DatasetError, DepthFrame, DepthFrameDataset, remap_joints
from hand_pose_ros.geometry import CameraModel, decode_depth
from hand_pose_ros.geometry.depth import MILLIMETRE
from hand_pose_ros.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS

SUBJECTS: tuple[str, ...] = tuple(f"P{i}" for i in range(9))
GESTURES: tuple[str, ...] = (
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "I", "IP", "L", "MP", "RP", "T", "TIP", "Y",
)  # fmt: skip
MSRA_JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    *(f"{finger}_{joint}" for finger in ("index", "middle", "ring", "little", "thumb")
      for joint in ("mcp", "pip", "dip", "tip")),
)  # fmt: skip
_THUMB_NAMES = {"thumb_mcp": "thumb_cmc", "thumb_pip": "thumb_mcp", "thumb_dip": "thumb_ip"}
# Project keypoint index of each MSRA joint (a permutation: MSRA labels all 21).
MSRA_TO_PROJECT: tuple[int, ...] = tuple(
    KEYPOINT_INDEX[_THUMB_NAMES.get(name, name.replace("little", "pinky"))]
    for name in MSRA_JOINT_NAMES
)

_HEADER = np.dtype("<u4")
_HEADER_BYTES = 6 * _HEADER.itemsize
_DEPTH = np.dtype("<f4")
# Optical frame = MSRA frame turned half a turn about x: y up -> down, z backward -> forward.
_TO_OPTICAL = np.array([1.0, -1.0, -1.0]) * MILLIMETRE


class MsraDataset(DepthFrameDataset):
    """MSRA15 frames of the chosen subjects and gestures (default: all found under root).

    Args:
        root: the folder holding P0..P8.
        subjects: e.g. ``["P0", "P1"]`` (or indices 0..8).
        gestures: e.g. ``["1", "TIP"]``.

    Raises:
        DatasetError: a missing folder or joint.txt, a malformed joint.txt, or a joint.txt
            with another number of frames than the folder has depth files.
    """

    name = "msra"
    camera = CameraModel.from_intrinsics(241.42, 241.42, 160.0, 120.0, 320, 240)
    cube_m = 0.2
    evaluation_joints = tuple(range(NUM_KEYPOINTS))

    def __init__(
        self,
        root: str | os.PathLike[str],
        subjects: Iterable[str | int] | None = None,
        gestures: Iterable[str] | None = None,
    ) -> None:
        self.root = self._require_folder(Path(root), "MSRA15 root (holding P0..P8)")
        self._files: list[Path] = []
        joints: list[np.ndarray] = []
        subject_names = None if subjects is None else [_subject(s) for s in subjects]
        gesture_names = None if gestures is None else list(gestures)
        for subject in self._pick(self.root, subject_names, SUBJECTS, "subject"):
            for gesture in self._pick(self.root / subject, gesture_names, GESTURES, "gesture"):
                folder = self.root / subject / gesture
                files = sorted(folder.glob("*_depth.bin"))
                rows = read_joint_file(folder / "joint.txt")
                if len(rows) != len(files):
                    raise DatasetError(
                        f"{folder}: {len(files)} depth files but joint.txt has {len(rows)} "
                        "frames: expected one joint line per depth file"
                    )
                self._files.extend(files)
                joints.append(rows)
        if not self._files:
            raise DatasetError(f"no *_depth.bin files under {self.root}")
        self._joints = np.concatenate(joints)

    def __len__(self) -> int:
        return len(self._files)

    def _load(self, index: int) -> DepthFrame:
        path = self._files[index]
        return DepthFrame(
            depth_m=read_depth_bin(path, self.camera),
            camera=self.camera,
            joints_xyz=self._joints[index].copy(),
            name=path.relative_to(self.root).as_posix(),
        )

    def _pick(
        self, folder: Path, chosen: list[str] | None, known: tuple[str, ...], what: str
    ) -> list[str]:
        """Sub-folders of ``folder`` to read: the chosen ones (all must exist) or all known."""
        if chosen is None:
            found = [name for name in known if (folder / name).is_dir()]
            if not found:
                raise DatasetError(f"{folder}: no {what} folder, expected some of {list(known)}")
            return found
        for name in chosen:
            self._require_folder(folder / name, f"MSRA15 {what} {name!r}")
        return chosen


def read_joint_file(path: Path) -> np.ndarray:
    """A gesture's joint.txt -> shape (N, 21, 3) float64, optical-frame metres, project order."""
    try:
        lines = path.read_text().split("\n")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    try:
        declared = int(lines[0])
    except ValueError:
        raise DatasetError(f"{path}: first line {lines[0]!r} should be the frame count") from None
    body = [line for line in lines[1:] if line.strip()]
    if len(body) != declared:
        raise DatasetError(f"{path}: declares {declared} frames but has {len(body)} joint lines")
    if not body:
        return np.empty((0, NUM_KEYPOINTS, 3))
    try:
        values = np.loadtxt(body, ndmin=2)
    except ValueError as exc:
        raise DatasetError(f"{path}: {exc}") from None
    if values.shape[1] != 3 * NUM_KEYPOINTS:
        raise DatasetError(f"{path}: {values.shape[1]} numbers a line, expected 63 (21 x 3)")
    xyz = values.reshape(-1, NUM_KEYPOINTS, 3) * _TO_OPTICAL
    return remap_joints(xyz, MSRA_TO_PROJECT)


def read_depth_bin(path: Path, camera: CameraModel) -> np.ndarray:
    """An MSRA ``*_depth.bin`` -> shape (H, W) float32 metres, NaN outside the box and at 0."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    if len(raw) < _HEADER_BYTES:
        raise DatasetError(f"{path}: {len(raw)} bytes, shorter than the 24-byte header")
    width, height, left, top, right, bottom = (int(x) for x in np.frombuffer(raw, _HEADER, 6))
    if (width, height) != (camera.width, camera.height):
        raise DatasetError(
            f"{path}: image size {width}x{height} in the header, expected "
            f"{camera.width}x{camera.height}"
        )
    if not (left <= right <= width and top <= bottom <= height):
        raise DatasetError(
            f"{path}: box (left {left}, top {top}, right {right}, bottom {bottom}) does not fit "
            f"the {width}x{height} image"
        )
    box_shape = (bottom - top, right - left)
    expected = _HEADER_BYTES + _DEPTH.itemsize * box_shape[0] * box_shape[1]
    if len(raw) != expected:
        raise DatasetError(
            f"{path}: {len(raw)} bytes, expected {expected} for a {box_shape[1]}x{box_shape[0]} "
            "box (truncated or not an MSRA depth file)"
        )
    depth_mm = np.zeros((height, width), np.float32)
    depth_mm[top:bottom, left:right] = np.frombuffer(raw, _DEPTH, offset=_HEADER_BYTES).reshape(
        box_shape
    )
    return decode_depth(depth_mm * np.float32(MILLIMETRE), "32FC1")


def _subject(subject: str | int) -> str:
    return f"P{subject}" if isinstance(subject, int) else str(subject)
