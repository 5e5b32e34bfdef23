"""Find hands in a depth image: the nearest hand-sized object and its centre of mass.

DeepPrior++-style localisation (ANCHORS section 4, seed 002), shared by the depth model's
training and inference so that both place the cube crop the same way.

1. Seed: the nearest hand-sized object. Depth outside ``[min_depth_m, max_depth_m]`` is
   ignored. On a subsampled copy of the image the slice ``z <= t`` grows from the nearest
   valid depth in steps of ``slice_step_m``; after each step its connected components are
   measured in metric area (pixel count x (z/fx)(z/fy), so the limits mean the same at any
   distance and resolution). The first component to reach ``min_area_m2`` is the seed, never
   a speck or a few flying pixels. One already larger than ``max_area_m2`` when it first gets
   that big appeared all at once (a wall, a torso square to the camera) and is skipped.
2. Its object: everything connected to the seed without a depth jump of more than
   ``depth_jump_m`` and less than ``cube_m`` behind the seed's nearest point. If an arm
   leads out of it (deeper, or out of the image), the seed is the hand: the nearest part,
   DeepPrior++'s assumption. If nothing does, the whole object is in sight (a hand, or a hand
   with a forearm ending in front of the body) and its hand end is the seed instead: that
   keeps a forearm nearer than the hand from taking the centre.
3. Centre of mass in the cube, a few times: the region is the pixels of the object inside
   the cube of side ``cube_m`` around the current centre (its projected window and
   ``|z - z_c| <= cube / 2``), connected to the previous region without a depth jump. The
   jump rule keeps a body a few cm behind the hand out, which the cube's depth limit alone
   would let in. Of the region, the ``hand_end_m`` farthest from the arm is kept (the arm:
   where the region leaves the cube, or its deeper end; see ``arm.py``):
   plain centre of mass slides down a forearm in the cube, and the keypoints' centroid, which
   the crops are trained around, lies near the knuckles. The new centre is the kept pixels'
   centroid (u, v) at their median depth plus ``surface_offset_m``. Stop when it moves less
   than ``tolerance_m``.
4. An object whose part in the cube is outside ``[min_area_m2, max_area_m2]`` (the far end
   of a torso is hand-sized, the torso is not), or that still goes right through the cube
   (a floor, a table's edge), is not a hand: the search goes on past it. For a second hand,
   the first hand's cube, and whatever touches it in the slices (its arm, the body it
   joins), is left out.

Steps 1 and 2 are ``seeds.py``, steps 3 and 4 ``refine.py``, the hand end ``arm.py``; the
settings and results are in ``config.py``, the shared pixel helpers in ``pixels.py``.
"""

from __future__ import annotations

import numpy as np

from hand_pose_ros.crop import CubeCrop, depth_cube_crop
from hand_pose_ros.geometry import CameraModel
from hand_pose_ros.localise.config import HandLocation, LocaliseError, LocaliserConfig
from hand_pose_ros.localise.refine import refine_hand
from hand_pose_ros.localise.seeds import SeedSearch


def locate_hands(
    depth_m: np.ndarray,
    camera: CameraModel,
    config: LocaliserConfig | None = None,
    *,
    max_hands: int = 1,
) -> list[HandLocation]:
    """The nearest hands of a depth image, nearest first.

    Args:
        depth_m: shape (H, W) float metres, NaN (or 0) where there is no measurement (what
            ``geometry.decode_depth`` returns).
        camera: the depth image's camera; (H, W) must be its size.
        config: the localiser's parameters (default ``LocaliserConfig()``).
        max_hands: most hands returned; each next one lies outside the cubes of those before.

    Returns:
        up to ``max_hands`` locations; empty when nothing hand-like is in range.

    Raises:
        LocaliseError: depth that is not 2D float, does not match the camera's size, or
            max_hands < 1.
    """
    config = config or LocaliserConfig()
    depth = _checked_depth(depth_m, camera)
    if max_hands < 1:
        raise LocaliseError(f"max_hands = {max_hands}: expected >= 1")
    search = SeedSearch(depth, camera, config)
    hands: list[HandLocation] = []
    for _ in range(config.max_candidates * max_hands):
        seed = search.next_seed()
        if seed is None:
            break
        location = refine_hand(depth, camera, config, seed, hands)
        if location is None:
            # Not a hand after all (e.g. a slanted wall whose near edge looked hand-sized).
            search.block_pixels(seed)
            continue
        hands.append(location)
        if len(hands) == max_hands:
            break
        search.block_cube(location.center_xyz)
    return hands


def crop_hand(
    depth_m: np.ndarray,
    camera: CameraModel,
    location: HandLocation,
    *,
    cube_m: float = 0.25,
    output_size: int = 128,
) -> tuple[np.ndarray, CubeCrop]:
    """The depth model's input around a found hand: ``crop.depth_cube_crop`` at its centre.

    Returns:
        the normalised crop (output_size, output_size) float32 in [-1, 1] and its geometry.
    """
    return depth_cube_crop(
        depth_m, camera, location.center_xyz, cube_m=cube_m, output_size=output_size
    )


def _checked_depth(depth_m: np.ndarray, camera: CameraModel) -> np.ndarray:
    depth = np.asarray(depth_m)
    if depth.ndim != 2:
        raise LocaliseError(f"depth image has shape {depth.shape}: expected (height, width)")
    if depth.shape != (camera.height, camera.width):
        raise LocaliseError(
            f"depth image is {depth.shape[0]}x{depth.shape[1]} (height x width) but the camera "
            f"is {camera.height}x{camera.width}"
        )
    if depth.dtype.kind != "f":
        raise LocaliseError(f"depth must be float metres, got dtype {depth.dtype}")
    return depth
