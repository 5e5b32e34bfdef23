"""Which end of an object is the hand. A hand in a depth image usually comes with its
forearm, and the plain centre of mass of both lies on the wrist or further down the arm; the
arm is found either where the object leaves what was looked at (an exit about as wide as an
arm: the image's edge, a slab's depth limit, the cube's window) or, if it leaves nowhere, as
its deeper end along its longest axis (a forearm goes back towards the body). The hand is
then the part of the object farthest from the arm.
"""

from __future__ import annotations

import cv2
import numpy as np

from hand_pose_ros.localise.config import LocaliserConfig
from hand_pose_ros.localise.pixels import dilated


def exit_pixels(region: np.ndarray, beyond: np.ndarray, *, edges: bool) -> np.ndarray:
    """bool: pixels of ``region`` next to a pixel of ``beyond`` (where the object goes on),
    and with ``edges`` those on the array's edge (it goes on out of sight)."""
    exits = region & dilated(beyond)
    if edges:
        exits[[0, -1], :] |= region[[0, -1], :]
        exits[:, [0, -1]] |= region[:, [0, -1]]
    return exits


def label_exits(exits: np.ndarray) -> np.ndarray:
    """int32, same shape: connected exit pixels numbered 1, 2, ...; 0 elsewhere."""
    _, groups = cv2.connectedComponents(exits.view(np.uint8), connectivity=8)
    return groups


def arm_exit(
    points: np.ndarray, exit_groups: np.ndarray, pitch_per_m: float, config: LocaliserConfig
) -> np.ndarray | None:
    """shape (3,): where the arm leaves what was looked at, metres; None if nothing does.

    Args:
        points: shape (N, 3), the object's pixels in 3D, metres.
        exit_groups: shape (N,) int, which exit (1, 2, ...) each pixel is on, 0 none: the
            places where the object goes on past what was looked at.
        pitch_per_m: pixel pitch per metre of depth (stride / fx): a pixel at depth z is
            ``z * pitch_per_m`` metres across.

    The arm is the widest exit at least ``min_arm_width_m`` wide (a finger poking out is
    not); of exits about as wide, the deepest (the arm goes back to the body).
    """
    z = points[:, 2].astype(np.float64)
    count = int(exit_groups.max(initial=0)) + 1
    widths = np.bincount(exit_groups, z, minlength=count) * pitch_per_m
    widths[0] = 0.0
    if widths.max() < config.min_arm_width_m:
        return None
    depths = np.bincount(exit_groups, z, minlength=count) / np.maximum(
        np.bincount(exit_groups, minlength=count), 1
    )
    arm = int(np.argmax(np.where(widths >= 0.5 * widths.max(), depths, -np.inf)))
    arm_xyz: np.ndarray = points[exit_groups == arm].mean(axis=0)
    return arm_xyz


def arm_end(points: np.ndarray, config: LocaliserConfig) -> np.ndarray | None:
    """shape (3,): the deeper end (metres) of an object (N, 3) longer than ``hand_end_m``
    along its longest axis (a forearm goes back towards the body); None if it is shorter."""
    centred = points - points.mean(axis=0)
    sample = centred[:: max(1, len(centred) // 2000)]
    if len(sample) < 3:
        return None
    axis = np.linalg.eigh(np.cov(sample.T))[1][:, -1]
    along = centred @ axis
    low, high = np.percentile(along, [2.0, 98.0])
    if high - low <= config.hand_end_m:
        return None
    ends = sorted((points[along <= low], points[along >= high]), key=_mean_depth)
    if _mean_depth(ends[1]) - _mean_depth(ends[0]) < config.arm_recession_m:
        return None  # no end goes back: nothing tells the arm from the fingers
    deeper: np.ndarray = ends[1].mean(axis=0)
    return deeper


def _mean_depth(points: np.ndarray) -> float:
    return float(points[:, 2].mean())


def far_end(points: np.ndarray, arm_xyz: np.ndarray, config: LocaliserConfig) -> np.ndarray:
    """bool (N,): the points (N, 3) within ``hand_end_m`` of the object's end farthest from
    its arm at ``arm_xyz``."""
    distance = np.linalg.norm(points - arm_xyz, axis=1)
    # The 99th percentile: one flying pixel must not decide where the far end is.
    keep: np.ndarray = distance >= np.percentile(distance, 99.0) - config.hand_end_m
    return keep
