"""ICVL hand posture dataset (Tang et al., "Latent Regression Forest", CVPR 2014).

Layout: ``ROOT/Training/labels.txt`` with ``ROOT/Training/Depth/<sequence>/image_NNNN.png``,
and ``ROOT/Testing/test_seq_1.txt``, ``test_seq_2.txt`` with ``ROOT/Testing/Depth/test_seq_1/``
and ``.../test_seq_2/``: the depth folder is always ``Depth`` beside the labels file.
Training/labels.txt also lists in-plane rotated copies of the training sequences (the
sub-folders with short, angle-like names).

- Depth: 16-bit single-channel PNG, mm; 0 and 32001 mean no depth.
- Labels: one line per frame, ``path u1 v1 d1 ... u16 v16 d16``: the image path relative to
  the Depth folder, then per joint the pixel (u = column, v = row) and the depth in mm.
- Camera: fx 240.99, fy 240.96, principal point (160, 120), 320x240 (many loaders use
  241.42 for both; the joints are stored as pixels, so they reproject exactly either way).

Joints: palm, then thumb, index, middle, ring, pinky with three each (root, mid, tip).
Mapping to the project's keypoints (three points a finger, read as its base joint, the
next joint and the tip, so the joint before the tip is the one not labelled):
    palm        -> none (the centre of the palm, not the wrist: the wrist stays NaN)
    finger root -> MCP,  finger mid -> PIP,  finger tip -> tip  (no DIP)
    thumb root  -> thumb CMC,  thumb mid -> thumb MCP,  thumb tip -> tip  (no IP)
The tips and the finger roots are unambiguous; the mids and the thumb root are the best
reading of the annotation, not confirmed by its authors, so treat them with some care.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hand_pose_ros.datasets.frames import DatasetError, DepthFrame, DepthFrameDataset, remap_joints
from hand_pose_ros.geometry import CameraModel, decode_depth
from hand_pose_ros.geometry.depth import MILLIMETRE
from hand_pose_ros.skeleton import KEYPOINT_INDEX

LABEL_FILES: dict[str, str] = {
    "train": "Training/labels.txt",
    "test_seq_1": "Testing/test_seq_1.txt",
    "test_seq_2": "Testing/test_seq_2.txt",
}
INVALID_DEPTH = 32001
_FINGERS = ("thumb", "index", "middle", "ring", "pinky")
ICVL_JOINT_NAMES: tuple[str, ...] = (
    "palm",
    *(f"{finger}_{joint}" for finger in _FINGERS for joint in ("root", "mid", "tip")),
)
_PROJECT_NAMES: dict[str, str] = {
    **{f"{finger}_root": f"{finger}_mcp" for finger in _FINGERS[1:]},
    **{f"{finger}_mid": f"{finger}_pip" for finger in _FINGERS[1:]},
    **{f"{finger}_tip": f"{finger}_tip" for finger in _FINGERS},
    "thumb_root": "thumb_cmc",
    "thumb_mid": "thumb_mcp",
}
# Project keypoint index of each ICVL joint; None for the palm centre.
ICVL_TO_PROJECT: tuple[int | None, ...] = tuple(
    KEYPOINT_INDEX[_PROJECT_NAMES[name]] if name in _PROJECT_NAMES else None
    for name in ICVL_JOINT_NAMES
)
_NUMBERS_PER_LINE = 3 * len(ICVL_JOINT_NAMES)


class IcvlDataset(DepthFrameDataset):
    """The ICVL frames of one labels file.

    Args:
        root: the ICVL folder (holding Training/ and Testing/), or the folder of the labels.
        labels: the labels file, relative to root (or absolute), or one of ``LABEL_FILES``'
            keys; a bare file name is also looked for in root/Training and root/Testing.

    Raises:
        DatasetError: no such labels file or Depth folder, or a malformed labels line.
    """

    name = "icvl"
    camera = CameraModel.from_intrinsics(240.99, 240.96, 160.0, 120.0, 320, 240)
    cube_m = 0.25
    evaluation_joints = tuple(sorted(i for i in ICVL_TO_PROJECT if i is not None))

    def __init__(self, root: str | os.PathLike[str], labels: str = LABEL_FILES["train"]) -> None:
        self.root = self._require_folder(Path(root), "ICVL root")
        self.labels_path = _find_labels(self.root, labels)
        self.depth_dir = self._require_folder(
            self.labels_path.parent / "Depth", f"ICVL depth images of {self.labels_path.name}"
        )
        self._files, self._uvd = read_labels(self.labels_path)

    def __len__(self) -> int:
        return len(self._files)

    def _load(self, index: int) -> DepthFrame:
        name = self._files[index]
        pixels = self._read_png(
            self.depth_dir / name,
            dtype=np.uint16,
            channels=1,
            expected="a 16-bit single-channel PNG (ICVL depth in mm)",
        )
        pixels = np.where(pixels == INVALID_DEPTH, 0, pixels).astype(np.uint16)
        uvd = self._uvd[index]
        xyz = self.camera.backproject(uvd[:, :2], uvd[:, 2] * MILLIMETRE)
        return DepthFrame(
            depth_m=decode_depth(pixels, "16UC1"),
            camera=self.camera,
            joints_xyz=remap_joints(xyz, ICVL_TO_PROJECT),
            name=name,
        )


def read_labels(path: Path) -> tuple[list[str], np.ndarray]:
    """An ICVL labels file -> image paths and shape (N, 16, 3) (u px, v px, depth mm)."""
    try:
        lines = [line for line in path.read_text().split("\n") if line.strip()]
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    if not lines:
        raise DatasetError(f"{path}: no labels")
    fields = [line.split() for line in lines]
    for number, row in enumerate(fields, start=1):
        if len(row) != 1 + _NUMBERS_PER_LINE:
            raise DatasetError(
                f"{path}: label {number} has {len(row)} fields, expected {1 + _NUMBERS_PER_LINE}"
                " (an image path and 16 joints x u, v, depth mm)"
            )
    try:
        values = np.loadtxt(lines, usecols=range(1, 1 + _NUMBERS_PER_LINE), ndmin=2)
    except ValueError as exc:
        raise DatasetError(f"{path}: {exc}") from None
    files = [row[0] for row in fields]
    return files, values.reshape(-1, len(ICVL_JOINT_NAMES), 3)


def _find_labels(root: Path, labels: str) -> Path:
    given = Path(LABEL_FILES.get(labels, labels))
    candidates = [root / given, root / "Training" / given, root / "Testing" / given]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise DatasetError(
        f"ICVL labels {labels!r} not found (tried {tried}); the dataset ships "
        f"{', '.join(LABEL_FILES.values())}"
    )
