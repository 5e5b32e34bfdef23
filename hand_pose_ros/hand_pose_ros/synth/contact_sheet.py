"""A contact sheet of generated samples: frames (colour and depth) and training crops with
their ground-truth keypoints drawn, to look at what the world makes.

Keypoints are drawn in their finger's colour: filled where visible, hollow where occluded.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from hand_pose_ros.crop import apply_affine, cube_crop_geometry, invert_affine
from hand_pose_ros.skeleton import BONES, bone_colour, keypoint_colour
from hand_pose_ros.synth.config import SynthConfig
from hand_pose_ros.synth.shards import new_scene
from hand_pose_ros.synth.world import render_crops, render_frame

PANEL_WIDTH = 400  # pixels per frame panel (colour and depth side by side)


def draw_keypoints(
    image: np.ndarray, uv: np.ndarray, visible: np.ndarray, scale: float = 1.0
) -> None:
    """Draw a hand's skeleton on a BGR uint8 image in place (uv in the image's pixels)."""
    radius = max(2, round(2.5 * scale))
    for bone in BONES:
        a, b = uv[bone[0]], uv[bone[1]]
        if np.isfinite([a, b]).all():
            cv2.line(image, _point(a), _point(b), _bgr(bone_colour(bone)), max(1, round(scale)),
                     cv2.LINE_AA)  # fmt: skip
    for index, point in enumerate(uv):
        if np.isfinite(point).all():
            thickness = -1 if visible[index] else 1
            cv2.circle(image, _point(point), radius, _bgr(keypoint_colour(index)), thickness,
                       cv2.LINE_AA)  # fmt: skip


def colourise_depth(depth_m: np.ndarray, near: float = 0.2, far: float = 3.0) -> np.ndarray:
    """BGR image of a depth map (turbo colours, near = blue), black where invalid."""
    scaled = np.clip((np.nan_to_num(depth_m, nan=far) - near) / (far - near), 0.0, 1.0)
    image = cv2.applyColorMap((255 * (1.0 - scaled)).astype(np.uint8), cv2.COLORMAP_TURBO)
    image[~np.isfinite(depth_m)] = 0
    return image


def render_sheet(
    path: str | Path, *, seed: int = 0, frames: int = 6, config: SynthConfig | None = None
) -> Path:
    """Render ``frames`` frames and a row of crops to one PNG at ``path``."""
    config = config or SynthConfig()
    rows = []
    for index in range(frames):
        rng = np.random.default_rng([seed, index])
        frame = render_frame(new_scene(rng, config), rng, config)
        colour = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
        depth = colourise_depth(frame.depth_m)
        for hand in frame.hands:
            draw_keypoints(colour, hand.uv, hand.visible)
            draw_keypoints(depth, hand.uv, hand.visible)
        label = ", ".join(f"{h.side} {h.gesture or 'random pose'}" for h in frame.hands)
        cv2.putText(colour, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2,
                    cv2.LINE_AA)  # fmt: skip
        rows.append(np.hstack([colour, depth]))
    grid = [np.hstack(rows[i : i + 2]) for i in range(0, len(rows) - 1, 2)]
    sheet = np.vstack(grid)
    width = 4 * PANEL_WIDTH  # two frames a row, colour and depth each
    height = round(sheet.shape[0] * width / sheet.shape[1])
    sheet = cv2.resize(sheet, (width, height), interpolation=cv2.INTER_AREA)
    sheet = np.vstack([sheet, _crop_row(seed, config, sheet.shape[1])])
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), sheet)
    return out


def _crop_row(seed: int, config: SynthConfig, width: int) -> np.ndarray:
    """Colour crops and depth cube crops of a few hands, tiled to ``width``."""
    tiles: list[np.ndarray] = []
    index = 0
    size = 160
    while len(tiles) < 2 * (width // (2 * size)):
        rng = np.random.default_rng([seed, 1000 + index])
        index += 1
        scene = new_scene(rng, config)
        crop = render_crops(scene, rng, config)[0]
        assert crop.rgb is not None and crop.depth is not None and crop.rgb_uv is not None
        colour = cv2.cvtColor(crop.rgb, cv2.COLOR_RGB2BGR)
        draw_keypoints(colour, crop.rgb_uv, crop.truth.visible)
        tiles.append(cv2.resize(colour, (size, size), interpolation=cv2.INTER_AREA))
        assert crop.cube_center is not None
        cube = cube_crop_geometry(crop.camera, crop.cube_center, cube_m=crop.cube_m,
                                  output_size=crop.depth.shape[0])  # fmt: skip
        grey = ((1.0 - crop.depth.astype(np.float32)) * 127.5).astype(np.uint8)
        depth = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        uv = apply_affine(invert_affine(cube.crop_to_image), crop.truth.uv)
        draw_keypoints(depth, uv, crop.truth.visible)
        tiles.append(cv2.resize(depth, (size, size), interpolation=cv2.INTER_NEAREST))
    row = np.hstack(tiles)
    pad = width - row.shape[1]
    return np.pad(row, ((0, 0), (pad // 2, pad - pad // 2), (0, 0)))


def _point(uv: np.ndarray) -> tuple[int, int]:
    return round(float(uv[0])), round(float(uv[1]))


def _bgr(rgb: tuple[float, float, float]) -> tuple[int, int, int]:
    return round(255 * rgb[2]), round(255 * rgb[1]), round(255 * rgb[0])
