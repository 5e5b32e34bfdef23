"""Loaders for the public depth hand datasets: MSRA15, ICVL and NYU.

Each returns ``DepthFrame``s (depth in metres, joints in metres in the camera optical frame,
project keypoint order) lazily, one file read per frame. ``open_depth_dataset`` turns a
command-line spec into a dataset:

    msra:PATH[:P0,P1,...]       the MSRA15 root, optionally only some subjects
    icvl:PATH[/LABELS.txt]      the ICVL root (Training/labels.txt), or a labels file
    nyu:PATH[:train|test]       the NYU root (holding train/ and test/), kinect 1
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from hand_pose_ros.datasets.frames import DatasetError, DepthFrame, DepthFrameDataset
from hand_pose_ros.datasets.icvl import IcvlDataset
from hand_pose_ros.datasets.msra import MsraDataset
from hand_pose_ros.datasets.nyu import SPLITS as NYU_SPLITS
from hand_pose_ros.datasets.nyu import NyuDataset

_SUBJECT_LIST = re.compile(r"P\d(,P\d)*")


def _open_msra(path: str) -> DepthFrameDataset:
    root, _, subjects = path.rpartition(":")
    if root and _SUBJECT_LIST.fullmatch(subjects):
        return MsraDataset(root, subjects=subjects.split(","))
    return MsraDataset(path)


def _open_icvl(path: str) -> DepthFrameDataset:
    labels = Path(path)
    if labels.suffix == ".txt":
        return IcvlDataset(labels.parent, labels=labels.name)
    return IcvlDataset(labels)


def _open_nyu(path: str) -> DepthFrameDataset:
    root, _, split = path.rpartition(":")
    if root and split in NYU_SPLITS:
        return NyuDataset(root, split=split)
    return NyuDataset(path)


DATASET_KINDS: dict[str, Callable[[str], DepthFrameDataset]] = {
    "msra": _open_msra,
    "icvl": _open_icvl,
    "nyu": _open_nyu,
}


def open_depth_dataset(spec: str) -> DepthFrameDataset:
    """The dataset a ``KIND:PATH`` spec names (see the module docstring).

    Raises:
        DatasetError: a spec without a kind or path, an unknown kind, or a dataset that
            cannot be opened.
    """
    kind, colon, path = spec.partition(":")
    kinds = ", ".join(sorted(DATASET_KINDS))
    if not colon or not path:
        raise DatasetError(f"dataset spec {spec!r}: expected KIND:PATH with KIND one of {kinds}")
    opener = DATASET_KINDS.get(kind.strip().lower())
    if opener is None:
        raise DatasetError(f"unknown dataset kind {kind!r} in {spec!r}: known kinds are {kinds}")
    return opener(path)


__all__ = [
    "DATASET_KINDS",
    "DatasetError",
    "DepthFrame",
    "DepthFrameDataset",
    "IcvlDataset",
    "MsraDataset",
    "NyuDataset",
    "open_depth_dataset",
]
