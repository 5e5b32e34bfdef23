"""``--data`` specifications -> datasets of depth cube crops.

    synth:DIR[,DIR..]  synthetic crop datasets (``hand-pose synth crops --kinds depth``)
    msra:PATH          MSRA15 (``hand_pose_ros.datasets``)
    icvl:PATH[:FILE]   ICVL, optionally naming its label file
    nyu:PATH[:SPLIT]   NYU hand, split train or test

Public datasets are cut into crops on access (``FrameCrops``); synthetic ones are loaded
into memory (float16, 32 kB a crop).
"""

from __future__ import annotations

from dataclasses import dataclass

from hand_pose_ros.training.depth_data import (
    DataError,
    DepthCropArrays,
    FrameCrops,
    load_synth_crops,
)

SYNTH = "synth"


@dataclass
class CropSource:
    """A parsed ``--data``: its crops and what to call it (``evaluation_joints``: the
    keypoints its usual protocol scores, None for all)."""

    spec: str
    crops: DepthCropArrays | FrameCrops
    evaluation_joints: tuple[int, ...] | None = None


def open_crop_source(spec: str) -> CropSource:
    """The crops ``spec`` names; public frames' cubes are centred on the labelled joints (see
    FrameCrops for other centres)."""
    kind, _, rest = spec.partition(":")
    if not rest:
        raise DataError(f"--data {spec!r}: expected KIND:PATH, e.g. synth:data/synth/train")
    if kind == SYNTH:  # synth:DIR or synth:DIR1,DIR2,... (concatenated)
        return CropSource(spec, load_synth_crops(rest.split(",")))
    from hand_pose_ros.datasets import DatasetError, open_depth_dataset

    try:
        frames = open_depth_dataset(spec)
    except DatasetError as error:
        raise DataError(str(error)) from error
    joints = getattr(frames, "evaluation_joints", None)
    return CropSource(spec, FrameCrops(frames), tuple(joints) if joints else None)


def split_off(crops: DepthCropArrays, fraction: float) -> tuple[DepthCropArrays, DepthCropArrays]:
    """(train, validation): the last ``fraction`` of an in-memory set held out (synthetic
    shards are independent scenes, so a contiguous tail is a fair held-out set)."""
    count = len(crops)
    held = max(1, round(count * fraction))
    if held >= count:
        raise DataError(f"cannot hold out {fraction:.0%} of {count} samples for validation")
    cut = count - held

    def part(s: slice) -> DepthCropArrays:
        return DepthCropArrays(crops.depth[s], crops.joints[s], crops.cube_m[s], crops.center[s])

    return part(slice(0, cut)), part(slice(cut, count))
