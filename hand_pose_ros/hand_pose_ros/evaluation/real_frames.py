"""Depth frames without ground truth (e.g. the SR305 test frames): where the predicted
keypoints fall, and pictures of them.

With no labels, what can be checked is whether the predicted skeleton lies on the hand:
the share of keypoints whose pixel is on the hand's region. The region is the nearest
connected surface the localiser found, grown through neighbours without a depth step
(``_MAX_STEP_M``) and kept within the cube around the hand: the hand with the start of the
forearm, never the body behind it. A keypoint within ``tolerance_px`` of it counts (a
fingertip keypoint sits inside the finger, at its edge in the image).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hand_pose_ros.geometry import CameraModel, decode_depth
from hand_pose_ros.inference.depth_hands import DepthHand

# Neighbours on one surface differ by less than this in depth (metres).
_MAX_STEP_M = 0.03


@dataclass
class FrameCheck:
    """One frame: its name, the hands found, and per hand the keypoints on its region."""

    name: str
    depth_m: np.ndarray
    hands: list[DepthHand]
    regions: list[np.ndarray] = field(default_factory=list)
    on_hand: list[np.ndarray] = field(default_factory=list)


def load_depth_png(path: str | Path, depth_unit_m: float) -> np.ndarray:
    """(H, W) float32 metres from a 16-bit depth PNG (0 = no depth)."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16 or raw.ndim != 2:
        raise ValueError(f"{path}: expected a single-channel 16-bit depth PNG")
    return decode_depth(raw, "16UC1", depth_unit_m)


def hand_region(depth_m: np.ndarray, hand: DepthHand) -> np.ndarray:
    """(H, W) bool: the connected surface of the localiser's mask, within the cube around
    the localiser's centre (not the last pass's cube: the region must not depend on the
    model whose keypoints it scores)."""
    center = hand.location.center_xyz
    half = float(hand.cube.cube_m[2]) / 2.0
    with np.errstate(invalid="ignore"):
        near = np.abs(depth_m - center[2]) <= half
    # Connected through small depth steps: quantise depth into 3 cm-wide bands that
    # overlap (two offsets), so a step under 3 cm joins and a larger one separates.
    region = hand.location.mask & near
    if not region.any():
        return region
    candidates = near & np.isfinite(depth_m)
    for _ in range(64):  # grow until stable (a region rarely needs more than a few rounds)
        grown = cv2.dilate(region.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        grown &= candidates
        # Only across small steps: the grown pixel must be near a region pixel's depth.
        reference = np.where(region, depth_m, np.nan)
        nearest = cv2.dilate(np.nan_to_num(reference, nan=-1.0), np.ones((3, 3), np.uint8))
        lowest = -cv2.dilate(-np.nan_to_num(reference, nan=1e6), np.ones((3, 3), np.uint8))
        with np.errstate(invalid="ignore"):
            steps_ok = (depth_m <= nearest + _MAX_STEP_M) & (depth_m >= lowest - _MAX_STEP_M)
        grown &= steps_ok
        grown |= region
        if np.array_equal(grown, region):
            break
        region = grown
    return region


def keypoints_on_region(uv: np.ndarray, region: np.ndarray, tolerance_px: int = 2) -> np.ndarray:
    """(21,) bool: keypoints whose pixel is on ``region`` (dilated by ``tolerance_px``)."""
    size = 2 * tolerance_px + 1
    widened = cv2.dilate(region.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)
    pixels = np.round(np.nan_to_num(uv, nan=-1.0)).astype(int)
    height, width = region.shape
    inside = (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0)
    inside &= pixels[:, 1] < height
    on = np.zeros(len(uv), dtype=bool)
    on[inside] = widened[pixels[inside, 1], pixels[inside, 0]]
    return on


def check_frame(name: str, depth_m: np.ndarray, hands: list[DepthHand]) -> FrameCheck:
    check = FrameCheck(name, depth_m, hands)
    for hand in hands:
        region = hand_region(depth_m, hand)
        check.regions.append(region)
        check.on_hand.append(keypoints_on_region(hand.result.uv, region))
    return check


def render_checks(path: str | Path, checks: list[FrameCheck], *, columns: int = 5,
                  panel_width: int = 320) -> Path:  # fmt: skip
    """A contact sheet: each frame's depth (turbo, near = red), the hand region's outline,
    the cube window and the predicted skeleton; keypoints off the hand drawn as rings."""
    from hand_pose_ros.synth.contact_sheet import colourise_depth, draw_keypoints

    panels = []
    for check in checks:
        finite = check.depth_m[np.isfinite(check.depth_m)]
        near, far = (
            (float(np.percentile(finite, 1)), float(np.percentile(finite, 99)))
            if finite.size
            else (0.2, 3.0)
        )
        image = colourise_depth(check.depth_m, near=near - 0.05, far=far + 0.05)
        for hand, region, on in zip(check.hands, check.regions, check.on_hand, strict=True):
            contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_NONE)  # fmt: skip
            cv2.drawContours(image, contours, -1, (255, 255, 255), 1, cv2.LINE_AA)
            corners = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float) * (
                hand.cube.output_size - 1
            )
            window = corners @ hand.cube.crop_to_image[:, :2].T + hand.cube.crop_to_image[:, 2]
            cv2.polylines(image, [np.round(window).astype(np.int32)], True, (200, 200, 200), 1)
            draw_keypoints(image, hand.result.uv, on, scale=image.shape[1] / 400)
        scale = panel_width / image.shape[1]
        panel = cv2.resize(image, (panel_width, round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)  # fmt: skip
        share = np.concatenate(check.on_hand).mean() if check.on_hand else float("nan")
        label = (
            f"{check.name}  {100 * share:.0f}% on hand" if check.hands else f"{check.name}  no hand"
        )
        cv2.putText(panel, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                    cv2.LINE_AA)  # fmt: skip
        panels.append(panel)
    height = max(p.shape[0] for p in panels)
    blank = np.zeros((height, panel_width, 3), np.uint8)
    rows = []
    for start in range(0, len(panels), columns):
        row = panels[start : start + columns]
        row += [blank] * (columns - len(row))
        rows.append(np.hstack([np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0))) for p in row]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack(rows))
    return path


def camera_for(depth_m: np.ndarray, intrinsics: tuple[float, float, float, float]) -> CameraModel:
    fx, fy, cx, cy = intrinsics
    return CameraModel.from_intrinsics(fx, fy, cx, cy, depth_m.shape[1], depth_m.shape[0])
