"""Shared fixtures: the rosbags message namespace and a realistic hand result."""

from __future__ import annotations

import numpy as np
import pytest

from hand_pose_ros.hand import Handedness, HandResult, KeypointStatus
from hand_pose_ros.msg_types import load_typestore, message_classes


@pytest.fixture(scope="session")
def typestore():
    return load_typestore("humble")


@pytest.fixture(scope="session")
def m(typestore):
    return message_classes(typestore)


@pytest.fixture
def hand() -> HandResult:
    """A right hand 0.5 m in front of the camera with a mix of keypoint statuses."""
    rng = np.random.default_rng(7)
    xyz = np.array([0.02, -0.01, 0.5]) + rng.normal(scale=0.03, size=(21, 3))
    uv = 320.0 + 615.0 * xyz[:, :2] / xyz[:, 2:3]
    status = np.full(21, KeypointStatus.DEPTH_MEASURED, dtype=np.uint8)
    status[4] = KeypointStatus.IMAGE_ONLY
    status[8] = KeypointStatus.DEPTH_FROM_MODEL
    status[12] = KeypointStatus.INVALID
    status[16] = KeypointStatus.PREDICTED
    xyz[4] = np.nan
    return HandResult(
        uv=uv,
        xyz=xyz,
        xyz_uncertainty=np.where(np.isfinite(xyz[:, 0]), 0.004, np.nan),
        scores=rng.uniform(0.5, 1.0, size=21),
        status=status,
        score=0.93,
        track_id="hand_3",
        handedness=Handedness.RIGHT,
        handedness_score=0.88,
        palm_position=[0.02, -0.01, 0.5],
        palm_orientation=[0.0, 0.0, np.sin(0.3), np.cos(0.3)],
        gesture="point",
        gesture_score=0.77,
    )
