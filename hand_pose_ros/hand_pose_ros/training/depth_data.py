"""Depth cube crops for training and evaluation, from any source, as one torch Dataset.

Sources:
- synthetic crop shards (``hand-pose synth crops --kinds depth``): crops rendered directly
  around each hand, with the localiser's error already in their cube centres;
- public datasets (``hand_pose_ros.datasets``): full depth frames, cropped here around the
  labelled joints' centroid (training; augmentation adds the localiser's error) or around
  what the localiser finds (evaluation that includes localisation).

Every item is model-agnostic: the crop, its joints in half-cube units and which joints are
labelled. The trainer turns a batch into a model's targets with ``model.make_targets``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hand_pose_ros.crop import CubeCrop, depth_cube_crop
from hand_pose_ros.skeleton import NUM_KEYPOINTS
from hand_pose_ros.training.augment import DepthAugmentConfig, augment_depth_crop

CROP_SIZE = 128


class DataError(ValueError):
    """A training or evaluation data source that cannot be used; the message says why."""


@dataclass
class DepthCropArrays:
    """Crops held in memory.

    Attributes:
        depth: (N, S, S) float16/32 normalised depth crops in [-1, 1].
        joints: (N, 21, 3) float32 offsets from the cube centre, half-cube units; NaN rows
            are joints the source has no label for.
        cube_m: (N,) float32 cube sides, metres.
        center: (N, 3) float32 cube centres, metres, camera optical frame.
    """

    depth: np.ndarray
    joints: np.ndarray
    cube_m: np.ndarray
    center: np.ndarray

    def __len__(self) -> int:
        return len(self.depth)

    def crop(self, index: int) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        return (
            self.depth[index].astype(np.float32),
            self.joints[index],
            float(self.cube_m[index]),
            self.center[index].astype(np.float64),
        )


def load_synth_crops(folders: str | Path | Sequence[str | Path]) -> DepthCropArrays:
    """The depth crops of one or more synthetic dataset folders (``hand-pose synth crops``),
    concatenated (``synth.shards.load_dataset``: float16, 32 kB a crop)."""
    from hand_pose_ros.synth.shards import ShardError, load_dataset, read_manifest

    if isinstance(folders, str | Path):
        folders = [folders]
    paths = [Path(folder) for folder in folders]
    for folder in paths:
        if not (folder / "manifest.json").is_file():
            raise DataError(
                f"{folder} is not a synthetic dataset (no manifest.json); make one with "
                f"`hand-pose synth crops --kinds depth --out {folder} --count N --seed S`"
            )
        if "depth" not in read_manifest(folder).get("crop_kinds", ["depth"]):
            raise DataError(f"{folder} holds no depth crops: make it with --kinds depth")
    try:
        arrays = load_dataset(paths, fields=_SYNTH_FIELDS)
    except (OSError, ShardError, ValueError) as error:
        raise DataError(str(error)) from error
    return DepthCropArrays(
        depth=arrays["depth"],
        joints=arrays["depth_joints"].astype(np.float32),
        cube_m=arrays["cube_m"].astype(np.float32),
        center=arrays["cube_center"].astype(np.float32),
    )


_SYNTH_FIELDS = ("depth", "depth_joints", "cube_m", "cube_center")


class FrameCrops:
    """Depth cube crops cut from a public dataset's frames, one per frame, on access.

    Args:
        frames: a ``hand_pose_ros.datasets`` dataset (``__len__``, ``__getitem__`` ->
            ``DepthFrame``, ``cube_m``).
        locate: None to centre the cube on the labelled joints' centroid (the usual
            training protocol), or a function (depth, camera) -> centre (3,) metres or None
            (the localiser: evaluation of the whole pipeline); a frame where it finds
            nothing falls back to the joints' centroid and is counted in ``fallbacks``.
        cube_m: the cube side; default the dataset's customary one.
    """

    def __init__(
        self,
        frames: Any,
        *,
        locate: Callable[[np.ndarray, Any], np.ndarray | None] | None = None,
        cube_m: float | None = None,
    ) -> None:
        self.frames = frames
        self.locate = locate
        self.cube_m = float(cube_m if cube_m is not None else frames.cube_m)
        self.fallbacks = 0

    def __len__(self) -> int:
        return len(self.frames)

    def crop(self, index: int) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        frame = self.frames[index]
        joints = np.asarray(frame.joints_xyz, dtype=np.float64)
        labelled = np.isfinite(joints).all(axis=1)
        if not labelled.any():
            raise DataError(f"{frame.name}: no labelled joint to centre the crop on")
        center = None
        if self.locate is not None:
            center = self.locate(frame.depth_m, frame.camera)
            if center is None:
                self.fallbacks += 1
        if center is None:
            center = joints[labelled].mean(axis=0)
        depth, geometry = depth_cube_crop(
            frame.depth_m, frame.camera, center, cube_m=self.cube_m, output_size=CROP_SIZE
        )
        return depth, to_cube_units(geometry, joints), self.cube_m, geometry.center_xyz


def to_cube_units(geometry: CubeCrop, joints_xyz: np.ndarray) -> np.ndarray:
    """(21, 3) metres -> half-cube units around the crop's centre (NaN rows stay NaN)."""
    return geometry.to_cube_units(joints_xyz).astype(np.float32)


class DepthCropSet(Dataset):
    """Items for the trainer: ``input`` (1, S, S) float32, ``joints`` (21, 3) float32
    (NaN -> 0), ``labelled`` (21,) bool, ``cube_m`` float32, ``center`` (3,) float32.

    With ``augment``, each item is a fresh random view, drawn from a generator seeded by
    (seed, epoch, index): the same in every run and whatever the number of loader workers.
    """

    def __init__(
        self,
        source: DepthCropArrays | FrameCrops,
        *,
        augment: DepthAugmentConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.source = source
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        depth, joints, cube_m, center = self.source.crop(int(index))
        if joints.shape != (NUM_KEYPOINTS, 3):
            raise DataError(f"item {index}: joints must be (21, 3), got {joints.shape}")
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            depth, joints = augment_depth_crop(depth, joints, cube_m, rng, self.augment)
        labelled = np.isfinite(joints).all(axis=1)
        return {
            "input": torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32)[None]),
            "joints": torch.from_numpy(np.where(labelled[:, None], joints, 0.0).astype(np.float32)),
            "labelled": torch.from_numpy(labelled),
            "cube_m": torch.tensor(cube_m, dtype=torch.float32),
            "center": torch.from_numpy(np.asarray(center, dtype=np.float32)),
        }
