"""NYU hand pose dataset (Tompson et al., "Real-Time Continuous Pose Recovery of Human Hands
Using Convolutional Networks", ACM ToG 2014).

Layout: ``ROOT/train/`` and ``ROOT/test/``, each with ``joint_data.mat`` and
``depth_<kinect>_<frame:07d>.png`` (kinects 1-3, frames from 1); the test protocol uses
kinect 1.

- Depth: 8-bit RGB PNG, depth mm = (G << 8) | B; R carries nothing. 0 means no depth.
- ``joint_data.mat``: ``joint_xyz`` (kinect, frame, 36, 3) mm with y UP (here x, -y, z),
  ``joint_uvd`` and ``joint_names``.
- Camera (the dataset's convert_xyz_to_uvd.m): fx 588.036865, fy 587.075073, principal
  point (320, 240), 640x480.
- Cube: 300 mm (DeepPrior++ shrinks it to 250 mm for test frames from 2440 on).

The 36 points are the centres of the bounding spheres of Tompson's hand model: per finger
F1 (pinky), F2 (ring), F3 (middle), F4 (index), TH (thumb) six of them, KNU3_A, KNU3_B,
KNU2_A, KNU2_B, KNU1_A, KNU1_B, then PALM_1..PALM_6. KNU3/2/1 are the distal, middle and
proximal bones (thumb: distal, proximal, metacarpal); A sits towards a bone's far end (KNU3_A
is the tip), B near its base joint. Mapping to the project's keypoints:
    KNU3_A -> tip,  KNU3_B -> DIP (thumb IP),  KNU2_B -> PIP (thumb MCP),
    KNU1_B -> MCP (thumb CMC);  KNU2_A, KNU1_A (far ends, joints already covered by a B)
    and PALM_* -> none.
The wrist stays NaN: PALM_1 and PALM_2 are the two sides of the wrist, PALM_3 the palm.
The usual evaluation scores 14 points, ``NYU_EVALUATION_JOINTS``: the tips, the PIPs,
the thumb's IP and MCP (these 11 have project keypoints) and PALM_1..PALM_3 (these do not).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.io import loadmat
from scipy.io.matlab import MatReadError

from hand_pose_ros.datasets.frames import DatasetError, DepthFrame, DepthFrameDataset, remap_joints
from hand_pose_ros.geometry import CameraModel, decode_depth
from hand_pose_ros.geometry.depth import MILLIMETRE
from hand_pose_ros.skeleton import KEYPOINT_INDEX

SPLITS: tuple[str, ...] = ("train", "test")
_FINGERS: dict[str, str] = {"F1": "pinky", "F2": "ring", "F3": "middle", "F4": "index"}
NYU_JOINT_NAMES: tuple[str, ...] = (
    *(f"{finger}_KNU{bone}_{end}" for finger in (*_FINGERS, "TH") for bone in (3, 2, 1)
      for end in "AB"),
    *(f"PALM_{i}" for i in range(1, 7)),
)  # fmt: skip
NYU_EVALUATION_JOINTS: tuple[int, ...] = (0, 3, 6, 9, 12, 15, 18, 21, 24, 25, 27, 30, 31, 32)
_FINGER_POINTS = {"KNU3_A": "tip", "KNU3_B": "dip", "KNU2_B": "pip", "KNU1_B": "mcp"}
_THUMB_POINTS = {"KNU3_A": "tip", "KNU3_B": "ip", "KNU2_B": "mcp", "KNU1_B": "cmc"}


def _project_name(nyu_name: str) -> str | None:
    finger, _, point = nyu_name.partition("_")
    if finger == "TH" and point in _THUMB_POINTS:
        return f"thumb_{_THUMB_POINTS[point]}"
    if finger in _FINGERS and point in _FINGER_POINTS:
        return f"{_FINGERS[finger]}_{_FINGER_POINTS[point]}"
    return None


# Project keypoint index of each NYU point; None for mid-bone and palm points.
NYU_TO_PROJECT: tuple[int | None, ...] = tuple(
    None if (name := _project_name(nyu)) is None else KEYPOINT_INDEX[name]
    for nyu in NYU_JOINT_NAMES
)
# The evaluation points as project keypoint indices; None for PALM_1..PALM_3.
NYU_EVALUATION_KEYPOINTS: tuple[int | None, ...] = tuple(
    NYU_TO_PROJECT[j] for j in NYU_EVALUATION_JOINTS
)
# Optical frame: y up -> y down; NYU's z is already forward.
_TO_OPTICAL = np.array([1.0, -1.0, 1.0]) * MILLIMETRE


class NyuDataset(DepthFrameDataset):
    """The NYU frames of one split seen by one Kinect.

    Args:
        root: the folder holding train/ and test/.
        split: "train" or "test".
        kinect: 1, 2 or 3 (the evaluation protocol uses 1, the frontal view).

    Raises:
        DatasetError: an unknown split, a missing folder or joint_data.mat, a joint_data.mat
            without a (kinect, frame, 36, 3) ``joint_xyz``, or a kinect it does not hold.
    """

    name = "nyu"
    camera = CameraModel.from_intrinsics(588.036865, 587.075073, 320.0, 240.0, 640, 480)
    cube_m = 0.3
    evaluation_joints = tuple(sorted(i for i in NYU_EVALUATION_KEYPOINTS if i is not None))

    def __init__(self, root: str | os.PathLike[str], split: str = "train", kinect: int = 1) -> None:
        if split not in SPLITS:
            raise DatasetError(f"NYU split {split!r}: expected one of {list(SPLITS)}")
        self.root = self._require_folder(Path(root), "NYU root (holding train/ and test/)")
        self.folder = self._require_folder(self.root / split, f"NYU {split} split")
        self.kinect = int(kinect)
        joints_mm = read_joint_xyz(self.folder / "joint_data.mat", self.kinect)
        self._joints = remap_joints(joints_mm * _TO_OPTICAL, NYU_TO_PROJECT)

    def __len__(self) -> int:
        return len(self._joints)

    def _load(self, index: int) -> DepthFrame:
        name = f"depth_{self.kinect}_{index + 1:07d}.png"
        path = self.folder / name
        pixels = self._read_png(
            path,
            dtype=np.uint8,
            channels=3,
            expected="an 8-bit RGB PNG (NYU depth in mm = (G << 8) | B)",
        )
        # OpenCV gives BGR: channel 0 is B (low byte), channel 1 is G (high byte).
        depth_mm = (pixels[:, :, 1].astype(np.uint16) << 8) | pixels[:, :, 0]
        return DepthFrame(
            depth_m=decode_depth(depth_mm, "16UC1"),
            camera=self.camera,
            joints_xyz=self._joints[index].copy(),
            name=f"{self.folder.name}/{name}",
        )


def read_joint_xyz(path: Path, kinect: int) -> np.ndarray:
    """``joint_xyz`` of one kinect from joint_data.mat -> shape (N, 36, 3) mm, NYU frame."""
    if not path.is_file():
        raise DatasetError(f"NYU labels {path} do not exist")
    try:
        mat = loadmat(str(path), variable_names=["joint_xyz"])
    except (OSError, ValueError, NotImplementedError, MatReadError) as exc:
        raise DatasetError(f"{path}: not a readable MATLAB file ({exc})") from exc
    if "joint_xyz" not in mat:
        raise DatasetError(f"{path}: no joint_xyz variable")
    xyz = np.asarray(mat["joint_xyz"])
    if xyz.ndim != 4 or xyz.shape[2:] != (len(NYU_JOINT_NAMES), 3):
        raise DatasetError(
            f"{path}: joint_xyz has shape {xyz.shape}, expected (kinects, frames, 36, 3)"
        )
    if not 1 <= kinect <= xyz.shape[0]:
        raise DatasetError(f"{path}: kinect {kinect} requested, the file holds 1..{xyz.shape[0]}")
    return np.array(xyz[kinect - 1], dtype=np.float64)
