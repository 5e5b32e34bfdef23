"""The refinement: from a seed, the hand's centre by centre of mass in a cube (steps 3 and 4
of ``center_of_mass``'s overview). Each iteration takes the pixels of the seed's object inside
the cube of side ``cube_m`` around the current centre, connected without a depth jump so that
a body just behind the hand stays out, keeps the hand end away from the forearm, and moves the
centre to their centroid. The region's object is then judged: too small, too large, or still
running right through the cube (a floor, a table's edge) means it was not a hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hand_pose_ros.geometry import CameraModel
from hand_pose_ros.localise.arm import arm_end, arm_exit, exit_pixels, far_end, label_exits
from hand_pose_ros.localise.config import HandLocation, LocaliserConfig
from hand_pose_ros.localise.pixels import (
    Pixels,
    in_depth_range,
    inside_cube,
    pixels_to_points,
    visible_surface,
)


def refine_hand(
    depth: np.ndarray,
    camera: CameraModel,
    config: LocaliserConfig,
    seed: Pixels,
    found: list[HandLocation],
) -> HandLocation | None:
    """Iterate the centre of mass from ``seed`` (step 3); None when it is not hand-like."""
    region = seed
    center = _center_of(depth, region, config.surface_offset_m)
    converged = False
    iterations = 0
    while iterations < config.iterations and not converged:
        iterations += 1
        cube = _cube_region(depth, camera, config, center, region, found)
        region, stride = cube.hand, cube.stride
        if region[0].size == 0:
            return None
        new_center = _center_of(depth, region, config.surface_offset_m)
        shift = _pinhole_xyz(camera, new_center) - _pinhole_xyz(camera, center)
        center = new_center
        converged = float(np.linalg.norm(shift)) < config.tolerance_m
    # Judged with its forearm: the far end of a torso or a wall is hand-sized too, and an
    # object that still goes through the cube (a floor, a table's edge) has no hand end in it.
    if not config.min_area_m2 <= cube.object_area_m2 <= config.max_area_m2 or cube.spans_cube:
        return None
    mask = np.zeros(depth.shape, dtype=bool)
    # A strided region stands for the pixels of each sample's stride x stride block that lie
    # on the sample's surface (no depth jump from it).
    sampled = depth[region]
    for dv in range(stride):
        for du in range(stride):
            rows = np.minimum(region[0] + dv, depth.shape[0] - 1)
            cols = np.minimum(region[1] + du, depth.shape[1] - 1)
            block = depth[rows, cols]
            with np.errstate(invalid="ignore"):
                near = np.abs(block - sampled) <= config.depth_jump_m
            mask[rows, cols] |= in_depth_range(block, config) & near
    z = depth[mask].astype(np.float64)
    return HandLocation(
        center_xyz=camera.backproject(center[None, :2], center[2:])[0],
        center_uv=center[:2].copy(),
        mask=mask,
        area_px=int(mask.sum()),
        area_m2=float(np.sum(z * z) / (camera.fx * camera.fy)),
        iterations=iterations,
        converged=converged,
    )


@dataclass
class _CubeRegion:
    """The hand in one cube (step 3): its pixels, sampled every ``stride`` pixels; the metric
    area (m^2) of its whole object inside the cube, forearm included; whether that object
    leaves the cube's window, arm-wide, on two opposite sides."""

    hand: Pixels
    stride: int
    object_area_m2: float
    spans_cube: bool


def _cube_region(
    depth: np.ndarray,
    camera: CameraModel,
    config: LocaliserConfig,
    center: np.ndarray,
    previous: Pixels,
    found: list[HandLocation],
) -> _CubeRegion:
    """The pixels of the cube around ``center`` (u, v, z) that belong to the object of
    ``previous``, less its forearm."""
    half = config.cube_m / 2.0
    rows, cols = _window(camera, center, half, depth.shape)
    stride = max(1, int(np.ceil((cols.stop - cols.start) / config.refine_width_px)))
    window = depth[rows, cols][::stride, ::stride].astype(np.float32)
    v = np.arange(rows.start, rows.stop, stride)[:, None]
    u = np.arange(cols.start, cols.stop, stride)[None, :]
    valid = in_depth_range(window, config)
    filled = np.where(valid, window, np.float32(np.inf))
    surface = visible_surface(filled, valid, config.depth_jump_m)
    other_hands = np.zeros_like(valid)
    for hand in found:
        other_hands |= inside_cube(camera, hand.center_xyz, half, window, v, u)
    with np.errstate(invalid="ignore"):
        candidates = surface & ~other_hands & (np.abs(window - np.float32(center[2])) <= half)
    count, labels = cv2.connectedComponents(candidates.view(np.uint8), connectivity=8)
    pv, pu = previous
    inside = (pv >= rows.start) & (pv < rows.stop) & (pu >= cols.start) & (pu < cols.stop)
    member = np.zeros(count, dtype=bool)
    member[labels[(pv[inside] - rows.start) // stride, (pu[inside] - cols.start) // stride]] = 1
    member[0] = False
    region = member[labels]
    z = window[region].astype(np.float64)
    object_area_m2 = float(np.sum(z * z) * stride * stride / (camera.fx * camera.fy))
    # Window edges on the image's border do not count: a hand may be cut by the border.
    inner = (cols.start > 0, cols.stop < depth.shape[1], rows.start > 0, rows.stop < depth.shape[0])
    spans_cube = _spans(region, window, inner, stride / camera.fx, config.min_arm_width_m)
    if region.any():
        # The object goes on past the window's edge, the cube's depth limit or another hand.
        exits = exit_pixels(region, (surface & ~candidates) | other_hands, edges=True)
        rv, ru = np.nonzero(region)
        points = pixels_to_points(camera, window[rv, ru], v[rv, 0], u[0, ru])
        arm_xyz = arm_exit(points, label_exits(exits)[region], stride / camera.fx, config)
        if arm_xyz is None:
            arm_xyz = arm_end(points, config)
        if arm_xyz is not None:
            region[region] = far_end(points, arm_xyz, config)
    kv, ku = np.nonzero(region)
    pixels = (kv * stride + rows.start, ku * stride + cols.start)
    return _CubeRegion(pixels, stride, object_area_m2, spans_cube)


def _spans(
    region: np.ndarray,
    window: np.ndarray,
    inner: tuple[bool, bool, bool, bool],
    pitch_per_m: float,
    width_m: float,
) -> bool:
    """Whether ``region`` (h, w) covers ``width_m`` or more of both the left and the right
    edge of the window (depths ``window``), or of both its top and bottom edge; only edges
    flagged in ``inner`` (left, right, top, bottom) count."""
    edges = (
        (window[:, 0], region[:, 0]),
        (window[:, -1], region[:, -1]),
        (window[0], region[0]),
        (window[-1], region[-1]),
    )
    widths = [
        float(np.sum(depths[on]) * pitch_per_m) if counts else 0.0
        for (depths, on), counts in zip(edges, inner, strict=True)
    ]
    return min(widths[0], widths[1]) >= width_m or min(widths[2], widths[3]) >= width_m


def _center_of(depth: np.ndarray, region: Pixels, offset_m: float) -> np.ndarray:
    """shape (3,): (u, v) pixel centroid of ``region`` and its median depth + offset, m."""
    v, u = region
    return np.array([u.mean(), v.mean(), float(np.median(depth[v, u])) + offset_m])


def _pinhole_xyz(camera: CameraModel, center: np.ndarray) -> np.ndarray:
    """(u, v, z) -> xyz through the pinhole, for the distance between two nearby centres."""
    u, v, z = center
    return np.array([(u - camera.cx) * z / camera.fx, (v - camera.cy) * z / camera.fy, z])


def _window(
    camera: CameraModel, center: np.ndarray, half_m: float, shape: tuple[int, ...]
) -> tuple[slice, slice]:
    """Rows and columns of the square of half side ``half_m`` at depth ``center[2]`` around
    pixel ``center[:2]`` (u, v), clipped to the image."""
    half_u = half_m * camera.fx / center[2]
    half_v = half_m * camera.fy / center[2]
    u0, u1 = int(np.ceil(center[0] - half_u)), int(np.floor(center[0] + half_u)) + 1
    v0, v1 = int(np.ceil(center[1] - half_v)), int(np.floor(center[1] + half_v)) + 1
    return slice(max(v0, 0), min(v1, shape[0])), slice(max(u0, 0), min(u1, shape[1]))
