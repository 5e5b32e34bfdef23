"""Refinement passes of the depth pipeline: where the next pass's cube goes.

Training crops are centred on the hand's keypoint centroid (plus a jitter standing for the
localiser's error), but the localiser's centre of mass is a different point: the centroid
of the visible surface, pulled by the palm and by what of the wrist is in the cube (22 mm
from the predicted centroid on the SR305 frames). Each pass cuts the crop again from the
frame around the last prediction's centroid, as training centred its crops, much as
DeepPrior++ refines its centre before the pose network. It lowers the error on whole
synthetic frames and raises the real on-hand share; why the re-cut helps more than a better
centre alone is not pinned down (docs/eval/residual_attention_3d.md, "Refinement passes").

Torch-free, so that the command line can show the default without loading a model.
"""

from __future__ import annotations

import numpy as np

# Two passes after the localiser's crop: on the SR305 frames the share of keypoints on the
# hand rose 77.4 -> 78.9 -> 81.7 % (a third pass: 81.5 %), on their synthetic likeness the
# error fell 7.7 -> 7.05 -> 6.99 mm.
DEFAULT_REFINE_PASSES = 2
MAX_REFINE_PASSES = 5
# A centre nearer than this is no hand a depth camera measures (their minimum range is
# 0.1-0.3 m): the prediction is unusable.
_MIN_CENTER_DEPTH_M = 0.1


def refined_center(
    keypoints_xyz: np.ndarray, previous: np.ndarray, found: np.ndarray, cube_m: float
) -> np.ndarray:
    """The next pass's cube centre: the keypoints' (21, 3) centroid, metres, optical frame.

    ``previous`` instead if the prediction is unusable: not finite, not in front of the
    camera, or outside the cube of side ``cube_m`` around the localiser's centre ``found``.
    The passes refine where the localiser found a hand; they must not wander off to
    another object (or onto the other hand, giving one hand twice).
    """
    center = np.asarray(keypoints_xyz, dtype=np.float64).mean(axis=0)
    usable = np.all(np.isfinite(center)) and center[2] > _MIN_CENTER_DEPTH_M
    if not (usable and np.all(np.abs(center - found) <= cube_m / 2.0)):
        return previous
    return center
