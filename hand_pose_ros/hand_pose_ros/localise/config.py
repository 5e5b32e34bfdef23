"""The localiser's settings, its error and its result: ``LocaliserConfig`` holds every
number the search uses (with why each default is what it is), ``LocaliseError`` rejects
settings and depth images hands cannot be searched with, and ``HandLocation`` is one hand
found. They live apart from the algorithm so that every step's module can share them
without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class LocaliseError(ValueError):
    """A depth image or localiser setting that hands cannot be searched with."""


@dataclass(frozen=True)
class LocaliserConfig:
    """Every number of the localiser.

    Attributes:
        min_depth_m, max_depth_m: the depth range searched, metres; nearer or farther
            measurements are ignored (15 cm is inside most depth cameras' minimum range; at
            1.5 m a hand is ~30 px across at 640x480).
        cube_m: side of the cube around the hand, metres (the crop's cube: 0.25 m fits a
            spread hand, ANCHORS section 4).
        min_area_m2: least area (pixel count x (z/fx)(z/fy), m^2, as the camera sees it) of a
            hand-like region: 20 cm^2 is a few fingertips or a fist seen from the side, ~200
            times a sensor speck at 0.5 m.
        max_area_m2: most area of a hand-like region, m^2: a spread hand is ~150 cm^2 and the
            forearm left in the cube adds < 100; a wall or a torso fills the cube's whole
            625 cm^2 face.
        slice_step_m: how much deeper each slice of the seed search reaches, metres.
        depth_jump_m: a depth step between neighbouring pixels larger than this separates two
            objects, metres: above sensor noise and the steps within a hand (a finger over
            the palm), below the gap to a body just behind it.
        hand_end_m: how much of a region's end far from its arm the centre is taken over,
            metres (step 3): a hand is ~18 cm from wrist to fingertip and its keypoints
            centre ~9 cm from the fingertips; of 9-20 cm, 10-12 cm put the centre nearest
            the keypoints' centroid on synthetic frames.
        min_arm_width_m: an exit narrower than this is a finger or two poking out of the
            cube, not the arm, metres.
        arm_recession_m: with no exit, an object's end is its arm only if it lies this much
            deeper than the other end (a forearm goes back towards the body), metres.
        surface_offset_m: added to the region's median depth, metres: the camera sees the
            hand's front surface, the hand's centre (and its keypoints' centroid) lies about
            half a hand's thickness behind it.
        iterations: most centre-of-mass iterations (DeepPrior++ uses a few).
        tolerance_m: converged when the centre moves less than this, metres.
        search_width_px: the seed search runs on the image subsampled to about this width,
            pixels (the seed only has to find the object).
        refine_width_px: the cube refinement samples at most this many pixels across the
            cube's window (thousands of samples fix a centroid to a fraction of a mm; a close
            hand at full resolution would cost ten times as much for no better a centre).
        max_candidates: most seeds tried per hand (each one that turns out not to be a hand
            costs one refinement).
    """

    min_depth_m: float = 0.15
    max_depth_m: float = 1.5
    cube_m: float = 0.25
    min_area_m2: float = 0.002
    max_area_m2: float = 0.04
    slice_step_m: float = 0.01
    depth_jump_m: float = 0.03
    hand_end_m: float = 0.12
    min_arm_width_m: float = 0.03
    arm_recession_m: float = 0.02
    surface_offset_m: float = 0.01
    iterations: int = 4
    tolerance_m: float = 0.001
    search_width_px: int = 160
    refine_width_px: int = 120
    max_candidates: int = 6

    def __post_init__(self) -> None:
        positive = ("min_depth_m", "cube_m", "min_area_m2", "slice_step_m", "depth_jump_m",
                    "hand_end_m", "min_arm_width_m", "arm_recession_m", "tolerance_m")  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise LocaliseError(f"{name} = {value}: expected a finite number > 0")
        if not np.isfinite(self.surface_offset_m):
            raise LocaliseError(f"surface_offset_m = {self.surface_offset_m}: expected finite")
        for low, high in (("min_depth_m", "max_depth_m"), ("min_area_m2", "max_area_m2")):
            if not getattr(self, high) > getattr(self, low):
                raise LocaliseError(
                    f"{low} = {getattr(self, low)}, {high} = {getattr(self, high)}: "
                    f"expected {high} > {low}"
                )
        for name in ("iterations", "search_width_px", "refine_width_px", "max_candidates"):
            if int(getattr(self, name)) < 1:
                raise LocaliseError(f"{name} = {getattr(self, name)}: expected an integer >= 1")


@dataclass
class HandLocation:
    """One hand found in a depth image.

    Attributes:
        center_xyz: shape (3,), the hand's centre in metres, camera optical frame.
        center_uv: shape (2,), its pixel (u = column, v = row).
        mask: shape (H, W) bool, the hand region's pixels the centre was computed from.
        area_px: the region's pixel count.
        area_m2: its metric area (pixel count x (z/fx)(z/fy)), m^2.
        iterations: centre-of-mass iterations run.
        converged: the last iteration moved the centre less than the tolerance.
    """

    center_xyz: np.ndarray
    center_uv: np.ndarray
    mask: np.ndarray
    area_px: int
    area_m2: float
    iterations: int
    converged: bool
