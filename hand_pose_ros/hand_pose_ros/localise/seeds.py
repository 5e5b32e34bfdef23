"""The seed search: the nearest hand-sized objects of a depth image, nearest first (steps 1
and 2 of ``center_of_mass``'s overview). Depth slices grow from the nearest measurement on a
subsampled copy of the image until a connected component reaches a hand's metric area; its
object is then followed without depth jumps to decide which of its ends is the hand. A seed
only has to land on the right object, the refinement then finds its centre, so this runs
coarse and cheap; what turned out not to be a hand, or is a hand found already, is blocked
from later seeds.
"""

from __future__ import annotations

import cv2
import numpy as np

from hand_pose_ros.geometry import CameraModel
from hand_pose_ros.localise.arm import arm_end, arm_exit, exit_pixels, far_end, label_exits
from hand_pose_ros.localise.config import LocaliserConfig
from hand_pose_ros.localise.pixels import (
    Pixels,
    dilated,
    in_depth_range,
    inside_cube,
    pixels_to_points,
    visible_surface,
)


class SeedSearch:
    """Seeds in order of depth (steps 1 and 2 of ``center_of_mass``'s doc), on the image
    subsampled by ``stride``; a seed is the full-resolution pixels its hand end was sampled
    at."""

    def __init__(self, depth: np.ndarray, camera: CameraModel, config: LocaliserConfig) -> None:
        self._camera = camera
        self._config = config
        self._stride = stride = max(1, round(depth.shape[1] / config.search_width_px))
        self._rows = np.arange(0, depth.shape[0], stride)[:, None]
        self._cols = np.arange(0, depth.shape[1], stride)[None, :]
        small = depth[::stride, ::stride].astype(np.float32)
        self._valid = in_depth_range(small, config)
        self._depth = np.where(self._valid, small, np.float32(np.inf))
        self._surface = visible_surface(self._depth, self._valid, config.depth_jump_m)
        # Metric area of each sampled pixel: it stands for stride^2 full-resolution pixels.
        z = np.where(self._valid, small, 0.0).astype(np.float64)
        self._pixel_area = z * z * (stride * stride / (camera.fx * camera.fy))
        self._blocked = np.zeros(small.shape, dtype=bool)
        self._sorted = np.sort(self._depth[self._valid])
        self._threshold = float(self._sorted[0]) + config.slice_step_m if self._sorted.size else 0

    def next_seed(self) -> Pixels | None:
        """The next seed from the current slice on (that slice again first: what was blocked
        since may have uncovered another component); None when none is left."""
        config = self._config
        while self._sorted.size and self._threshold <= config.max_depth_m + config.slice_step_m:
            component = self._first_in_slice()
            if component is not None:
                v, u = np.nonzero(self._hand_end(component))
                return v * self._stride, u * self._stride
            # Next slice: one step deeper, or straight to the next depth after a gap (a speck
            # far in front of the hand would otherwise cost a slice per step).
            index = int(np.searchsorted(self._sorted, self._threshold, side="right"))
            if index >= self._sorted.size:
                return None
            self._threshold = max(self._threshold, float(self._sorted[index]))
            self._threshold += config.slice_step_m
        return None

    def block_pixels(self, pixels: Pixels) -> None:
        """Leave these full-resolution pixels (their sampled ones) out of later seeds."""
        v, u = pixels
        sampled = (v % self._stride == 0) & (u % self._stride == 0)
        self._blocked[v[sampled] // self._stride, u[sampled] // self._stride] = True

    def block_cube(self, center_xyz: np.ndarray) -> None:
        """Leave the cube of a hand found already out of later seeds."""
        half = self._config.cube_m / 2.0
        self._blocked |= inside_cube(
            self._camera, center_xyz, half, self._depth, self._rows, self._cols
        )

    def _first_in_slice(self) -> np.ndarray | None:
        """bool (h, w): the first hand-sized component of the current slice, or None."""
        config = self._config
        in_slice = self._valid & (self._depth <= self._threshold) & ~self._blocked
        count, labels = cv2.connectedComponents(in_slice.view(np.uint8), connectivity=8)
        if count <= 1:
            return None
        areas = np.bincount(labels[in_slice], self._pixel_area[in_slice], minlength=count)
        # Touching what is blocked means being the arm or body of a hand found already.
        areas[labels[dilated(self._blocked)]] = 0.0
        areas[0] = 0.0
        # Within one slice the largest first: components that qualify in the same step are
        # equally near to within slice_step_m.
        for label in np.argsort(-areas):
            if areas[label] < config.min_area_m2:
                return None
            component: np.ndarray = labels == label
            if areas[label] <= config.max_area_m2:
                return component
            self._blocked |= component  # appeared all at once: a surface
        return None

    def _hand_end(self, component: np.ndarray) -> np.ndarray:
        """bool (h, w): where the hand of ``component``'s object is (step 2)."""
        config = self._config
        near = float(self._depth[component].min())
        slab = self._surface & (self._depth <= near + config.cube_m) & ~self._blocked
        count, labels = cv2.connectedComponents(slab.view(np.uint8), connectivity=8)
        member = np.zeros(count, dtype=bool)
        member[labels[component & slab]] = True
        member[0] = False
        whole = member[labels]
        if not whole.any():
            return component
        # The object goes on deeper than the slab, into a found hand's cube or out of the image.
        exits = exit_pixels(whole, (self._surface & ~slab) | self._blocked, edges=True)
        wv, wu = np.nonzero(whole)
        points = pixels_to_points(
            self._camera, self._depth[wv, wu], wv * self._stride, wu * self._stride
        )
        pitch = self._stride / self._camera.fx
        if arm_exit(points, label_exits(exits)[whole], pitch, config) is not None:
            # An arm leads away from the nearest part: that part is the hand (DeepPrior++).
            # Its far end would not do: with the body in the slab, that is the body's.
            return component
        # All of the object is in sight (a hand, or a hand and a forearm that ends in front
        # of a body): its hand end.
        hand = whole.copy()
        arm_xyz = arm_end(points, config)
        if arm_xyz is not None:
            hand[whole] = far_end(points, arm_xyz, config)
        return hand
