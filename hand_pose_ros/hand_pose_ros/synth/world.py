"""Render a scene: full RGB-D frames and training crops, each with exact ground truth.

Ground truth per hand: keypoint pixels (projection of the 3D keypoints through the same
camera that rendered the image), 3D keypoints (metres, optical frame), per-keypoint
visibility by ray test, handedness, gesture, a mask and its bounding box.

Visibility rule: a keypoint is a joint centre inside the finger, ``radius`` from the skin.
It is visible when the first surface on the camera ray towards it belongs to its own hand
(palm and fingers, not the forearm or a held object) and lies no farther in front of the
keypoint than its radius plus ``VISIBILITY_TOLERANCE_M``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from hand_pose_ros.crop import apply_affine, crop_to_image_matrix, cube_crop_geometry, invert_affine
from hand_pose_ros.geometry import CameraModel
from hand_pose_ros.synth.appearance import light_shadows, shade
from hand_pose_ros.synth.config import SynthConfig
from hand_pose_ros.synth.hand_model import HandSkeleton
from hand_pose_ros.synth.render import Renderer, RenderResult, image_stereo_shadow
from hand_pose_ros.synth.scene import Scene, hand_object_id, scene_objects
from hand_pose_ros.synth.sensor import apply_depth_sensor
from hand_pose_ros.synth.truth import HandTruth, SynthFrame

VISIBILITY_TOLERANCE_M = 0.004
# Depth-only crops leave out surfaces this far (metres) beyond their cube's back face:
# sensor noise cannot bring them inside it.
_BEYOND_CUBE_MARGIN_M = 0.05


def render_frame(scene: Scene, rng: np.random.Generator, config: SynthConfig) -> SynthFrame:
    """The full colour and depth images of ``scene`` with every hand's ground truth."""
    objects, materials, skeletons = scene_objects(scene)
    renderer = Renderer(objects, nthreads=config.render.threads)
    camera = scene.camera
    result = renderer.render(camera)
    occluded = _stereo_shadow(renderer, result, camera, config)
    depth = apply_depth_sensor(result.depth, result.normal, rng, config.sensor, camera,
                               occluded=occluded)  # fmt: skip
    shadows = None
    if config.render.light_shadows and scene.lighting is not None:
        shadows = light_shadows(renderer, result, scene.lighting)
    rgb = shade(result, materials, rng, config.appearance, lighting=scene.lighting,
                backdrop=scene.backdrop, shadows=shadows)  # fmt: skip

    hand_index = np.full(result.object_id.shape, -1, dtype=np.int8)
    hands = []
    for index, (hand, skeleton) in enumerate(zip(scene.hands, skeletons, strict=True)):
        mask = result.object_id == hand_object_id(index)
        hand_index[mask] = index
        hands.append(_truth(renderer, camera, index, hand.side, hand.gesture, hand.track_id,
                            skeleton, _mask_box(mask)))  # fmt: skip
    return SynthFrame(rgb=rgb, depth_m=depth, hand_index=hand_index, hands=hands, camera=camera)


@dataclass
class CropSample:
    """Training crops of one hand with their labels (a field is None when its kind of
    crop was not asked for).

    Attributes:
        depth: float32 (S, S), the seed-002 normalised depth cube crop in [-1, 1].
        cube_center: shape (3,), metres; cube_m: the cube's side in metres.
        depth_joints: shape (21, 3), keypoints in half-cube units relative to the centre.
        rgb: uint8 (R, R, 3), the colour crop.
        rgb_crop_to_image: shape (2, 3), colour crop pixel -> source image pixel.
        rgb_uv: shape (21, 2), keypoints in colour-crop pixels.
        truth: the hand's ground truth in the source image (uv, xyz, visibility, ...).
        camera: the source camera.
    """

    truth: HandTruth
    camera: CameraModel
    depth: np.ndarray | None = None
    cube_center: np.ndarray | None = None
    cube_m: float = 0.0
    depth_joints: np.ndarray | None = None
    rgb: np.ndarray | None = None
    rgb_crop_to_image: np.ndarray | None = None
    rgb_uv: np.ndarray | None = None


CROP_KINDS = ("depth", "rgb")


def render_crops(
    scene: Scene,
    rng: np.random.Generator,
    config: SynthConfig,
    *,
    kinds: tuple[str, ...] = CROP_KINDS,
) -> list[CropSample]:
    """Crops of every hand of ``scene``: ``config.crop.views_per_scene`` augmented views
    each (own window jitter, rotation, sensor noise and camera effects), all rendered
    directly at crop resolution (one ray per crop pixel) from one culled scene.

    Why several views per scene: sampling the scene and building its ray-casting
    structure cost more than casting a crop, so views of one scene are cheap, and distinct
    views of a hand are what augmentation would make anyway.
    """
    unknown = set(kinds) - set(CROP_KINDS)
    if unknown or not kinds:
        raise ValueError(f"crop kinds must be some of {CROP_KINDS}, got {kinds}")
    objects, materials, skeletons = scene_objects(scene)
    renderer = Renderer(objects, nthreads=config.render.threads)
    camera, crop = scene.camera, config.crop

    # Windows first (they need only the keypoints' pixels), so that visibility is then
    # ray-tested in the small culled scene the windows are rendered from.
    views: list[tuple[int, dict[str, Any]]] = []
    windows: list[tuple[np.ndarray, int]] = []
    for index, skeleton in enumerate(skeletons):
        uv = camera.project(skeleton.keypoints)
        for _ in range(crop.views_per_scene):
            view: dict[str, Any] = {}
            if "depth" in kinds:
                center = skeleton.keypoints.mean(axis=0) + rng.normal(
                    0.0, crop.cube_center_jitter_m, 3
                )
                cube = cube_crop_geometry(camera, center, cube_m=crop.cube_m,
                                          output_size=crop.depth_size)  # fmt: skip
                view["cube_center"], view["cube_m"] = cube.center_xyz, float(crop.cube_m)
                joints = cube.to_cube_units(skeleton.keypoints)
                view["depth_joints"] = joints.astype(np.float32)
                windows.append((cube.crop_to_image, crop.depth_size))
            if "rgb" in kinds:
                matrix = _rgb_window(uv, rng, config)
                view["rgb_crop_to_image"] = matrix
                view["rgb_uv"] = apply_affine(invert_affine(matrix), uv).astype(np.float32)
                windows.append((matrix, crop.rgb_size))
            views.append((index, view))

    rays_for_shadow = config.render.stereo_shadow and config.render.crop_stereo_shadow == "rays"
    viewpoint = config.sensor.stereo_viewpoint_m if rays_for_shadow else None
    max_depth = None
    if kinds == ("depth",):  # nothing beyond the cubes shows in the crops
        backs = [view["cube_center"][2] for _, view in views]
        max_depth = max(backs) + crop.cube_m / 2.0 + _BEYOND_CUBE_MARGIN_M
    results = iter(renderer.render_windows(camera, windows, shadow_viewpoint=viewpoint,
                                           max_depth_m=max_depth))  # fmt: skip
    no_box = np.full(4, np.nan)
    truths = [
        _truth(renderer, camera, index, hand.side, hand.gesture, hand.track_id, skeleton, no_box)
        for index, (hand, skeleton) in enumerate(zip(scene.hands, skeletons, strict=True))
    ]
    samples = []
    for index, view in views:
        sample = CropSample(truth=truths[index], camera=camera, **view)
        if "depth" in kinds:
            result = next(results)
            assert sample.cube_center is not None
            cube = cube_crop_geometry(camera, sample.cube_center, cube_m=crop.cube_m,
                                      output_size=crop.depth_size)  # fmt: skip
            depth_m = apply_depth_sensor(
                result.depth, result.normal, rng, config.sensor, camera,
                crop_to_image=cube.crop_to_image,
                occluded=_crop_stereo_shadow(renderer, result, camera, config),
            )  # fmt: skip
            sample.depth = cube.normalise_depth(depth_m)
        if "rgb" in kinds:
            result = next(results)
            sample.rgb = shade(result, materials, rng, config.appearance,
                               lighting=scene.lighting, backdrop=scene.backdrop)  # fmt: skip
        samples.append(sample)
    return samples


def _rgb_window(uv: np.ndarray, rng: np.random.Generator, config: SynthConfig) -> np.ndarray:
    """An augmented square window around the keypoints: padded, shifted, rotated."""
    crop = config.crop
    lo, hi = np.nanmin(uv, axis=0), np.nanmax(uv, axis=0)
    side = float(np.max(hi - lo)) * rng.uniform(*crop.rgb_padding)
    center = (lo + hi) / 2.0 + rng.normal(0.0, crop.rgb_center_jitter * side, 2)
    rotation = np.radians(rng.uniform(*crop.rgb_rotation_deg))
    return crop_to_image_matrix(center, side, crop.rgb_size, rotation)


def _stereo_shadow(
    renderer: Renderer, result: RenderResult, camera: CameraModel, config: SynthConfig
) -> np.ndarray | None:
    if not config.render.stereo_shadow:
        return None
    return renderer.occluded_from(result, config.sensor.stereo_viewpoint_m, camera)


def _crop_stereo_shadow(
    renderer: Renderer, result: RenderResult, camera: CameraModel, config: SynthConfig
) -> np.ndarray | None:
    """The crop's stereo shadow, read off its depth when configured and possible (a window
    without rotation), else ray-tested as for frames."""
    if config.render.stereo_shadow and config.render.crop_stereo_shadow == "image":
        viewpoint = config.sensor.stereo_viewpoint_m
        shadow = image_stereo_shadow(result.depth, result.crop_to_image, viewpoint, camera)
        if shadow is not None:
            return shadow
    return _stereo_shadow(renderer, result, camera, config)


def _truth(
    renderer: Renderer,
    camera: CameraModel,
    index: int,
    side: str,
    gesture: str,
    track_id: str,
    skeleton: HandSkeleton,
    box: np.ndarray,
) -> HandTruth:
    xyz = skeleton.keypoints
    seen = renderer.cast_points_visibility(xyz)
    own = seen.object_id == hand_object_id(index)
    with np.errstate(invalid="ignore"):
        slack = skeleton.radii + VISIBILITY_TOLERANCE_M
        near_enough = seen.hit_distance_m >= seen.range_m - slack
    return HandTruth(
        side=side,
        gesture=gesture,
        uv=camera.project(xyz),
        xyz=xyz.copy(),
        visible=own & near_enough,
        palm_position=skeleton.palm_origin.copy(),
        palm_orientation=Rotation.from_matrix(skeleton.palm_rotation).as_quat(),
        box=box,
        track_id=track_id,
    )


def _mask_box(mask: np.ndarray) -> np.ndarray:
    """(u_min, v_min, u_max, v_max) of a boolean mask's pixels; NaN when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.full(4, np.nan)
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1], rows[-1]], dtype=np.float64)
