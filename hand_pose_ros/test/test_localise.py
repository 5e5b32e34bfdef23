"""The hand localiser puts the depth model's cube on the hand: real SR305 frames, synthetic
frames with exact keypoints, and constructed scenes that isolate one difficulty each."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hand_pose_ros.crop import apply_affine
from hand_pose_ros.geometry import CameraModel, decode_depth
from hand_pose_ros.localise import (
    HandLocation,
    LocaliseError,
    LocaliserConfig,
    crop_hand,
    locate_hands,
)
from hand_pose_ros.synth.config import SynthConfig
from hand_pose_ros.synth.shards import new_scene
from hand_pose_ros.synth.world import render_frame

SR305_DIR = Path(__file__).parent / "data" / "sr305_real_depth"
SR305_FRAMES = sorted(SR305_DIR.glob("*/*.png"))
SR305 = CameraModel.from_intrinsics(476.007, 476.007, 313.683, 242.755, 640, 480)
SR305_DEPTH_UNIT_M = 0.000125

CAMERA = CameraModel.from_intrinsics(600.0, 600.0, 319.5, 239.5, 640, 480)


# --------------------------------------------------------------------------- real frames


def _sr305_depth(path: Path) -> np.ndarray:
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return decode_depth(raw, "16UC1", SR305_DEPTH_UNIT_M)


def _nearest_blob(depth: np.ndarray, *, min_px: int = 5000, slab_m: float = 0.10) -> np.ndarray:
    """The test's own, deliberately simple idea of "the hand": the nearest connected blob of
    ``min_px`` or more pixels within ``slab_m`` of depth of its nearest pixel. Smaller blobs
    are peeled off first: sensor specks, and in two frames an edge of the body that pokes out
    nearer than the hand (the hands here are 7,000-22,000 px). The blob is the hand and the
    start of its forearm in all 19 frames (checked by eye on a rendering of them)."""
    valid = np.isfinite(depth)
    while valid.any():
        nearest = np.where(valid, depth, np.inf)
        v, u = np.unravel_index(np.argmin(nearest), depth.shape)
        near = (valid & (depth <= depth[v, u] + slab_m)).astype(np.uint8)
        _, labels = cv2.connectedComponents(near, connectivity=8)
        blob = labels == labels[v, u]
        if blob.sum() >= min_px:
            return blob
        valid &= ~blob
    raise AssertionError("no blob")


def test_all_19_real_frames_and_their_licence_are_there():
    assert len(SR305_FRAMES) == 19
    assert {p.parent.name for p in SR305_FRAMES} == {"20210326-230536", "20210326-231615"}
    assert "Copyright (c) 2021 Ladislav Ondris" in (SR305_DIR / "LICENSE").read_text()


@pytest.mark.parametrize("path", SR305_FRAMES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_real_frame_cube_is_centred_on_the_hand(path: Path):
    depth = _sr305_depth(path)
    hands = locate_hands(depth, SR305)
    assert len(hands) == 1
    hand = hands[0]
    crop, geometry = crop_hand(depth, SR305, hand)
    assert crop.shape == (128, 128)

    blob = _nearest_blob(depth)
    # Where the crop's centre lands in the image: on the blob.
    u, v = np.rint(apply_affine(geometry.crop_to_image, np.array([[63.5, 63.5]]))[0]).astype(int)
    off_blob_px = cv2.distanceTransform((~blob).astype(np.uint8), cv2.DIST_L2, 5)[v, u]
    assert off_blob_px <= 3.0, (u, v)
    blob_depth = depth[blob]
    assert blob_depth.min() <= hand.center_xyz[2] <= blob_depth.max()
    # The body lies more than 10 cm behind the hand's nearest point: none of it is used.
    assert hand.mask.any()
    assert np.all(depth[hand.mask] <= blob_depth.min() + 0.10)


# --------------------------------------------------------------------------- synthetic frames

SYNTH_SEEDS = range(9)


@pytest.fixture(scope="module")
def synth_frames():
    """Frames of the synthetic world in the localiser's domain: the nearest object is a hand
    whose forearm does not come towards the camera (no tables, boxes or held objects)."""
    config = SynthConfig()
    config.scene.two_hands_probability = 0.5
    config.scene.table_probability = 0.0
    config.scene.boxes = (0, 0)
    config.scene.held_object_probability = 0.0
    config.placement.max_fingers_away = 0.0
    config.render.light_shadows = False  # colour only; the depth is what is tested
    frames = []
    for seed in SYNTH_SEEDS:
        rng = np.random.default_rng(seed)
        frames.append(render_frame(new_scene(rng, config), rng, config))
    return frames


def _visible_px(frame, index: int) -> int:
    return int(((frame.hand_index == index) & np.isfinite(frame.depth_m)).sum())


def _nearest_hand(frame) -> int:
    nearest = [
        np.nanmin(np.where(frame.hand_index == i, frame.depth_m, np.nan))
        if _visible_px(frame, i) else np.inf
        for i in range(len(frame.hands))
    ]  # fmt: skip
    return int(np.argmin(nearest))


def test_synthetic_centre_is_near_the_nearest_hands_keypoint_centroid(synth_frames):
    errors = []
    for frame in synth_frames:
        hands = locate_hands(frame.depth_m, frame.camera)
        assert len(hands) == 1
        centroid = frame.hands[_nearest_hand(frame)].xyz.mean(axis=0)
        errors.append(np.linalg.norm(hands[0].center_xyz - centroid))
    # The crops are trained around the keypoints' centroid with ~1 cm of jitter per axis.
    assert max(errors) < 0.04, np.round(errors, 3)
    assert np.median(errors) < 0.03, np.round(errors, 3)


def test_synthetic_two_separate_hands_are_both_found(synth_frames):
    checked = 0
    for frame in synth_frames:
        if len(frame.hands) != 2 or min(_visible_px(frame, i) for i in range(2)) < 2000:
            continue
        centroids = np.array([truth.xyz.mean(axis=0) for truth in frame.hands])
        pixels = frame.camera.project(centroids)
        if np.linalg.norm(centroids[0] - centroids[1]) < 0.4:
            continue  # within reach of one cube: not what max_hands=2 promises
        if np.linalg.norm(pixels[0] - pixels[1]) < 150:
            continue
        hands = locate_hands(frame.depth_m, frame.camera, max_hands=2)
        assert len(hands) == 2
        found = np.array([hand.center_xyz for hand in hands])
        distances = np.linalg.norm(found[:, None] - centroids[None], axis=2)
        # Each truth hand has its own found hand within 4 cm.
        assert distances.min(axis=0).max() < 0.04, np.round(distances, 3)
        assert set(distances.argmin(axis=1)) == {0, 1}
        checked += 1
    assert checked >= 2


# --------------------------------------------------------------------------- constructed scenes


def _rays() -> tuple[np.ndarray, np.ndarray]:
    v, u = np.mgrid[0 : CAMERA.height, 0 : CAMERA.width].astype(np.float64)
    return (u - CAMERA.cx) / CAMERA.fx, (v - CAMERA.cy) / CAMERA.fy


def _hand(z: float = 0.5, x0: float = 0.0) -> np.ndarray:
    """(H, W) metres: a flat open hand at depth ``z`` facing the camera, fingers up, NaN
    around it: a palm 8.5 x 9 cm centred on (x0, 0), four fingers above it, a thumb."""
    ray_x, ray_y = _rays()
    x, y = ray_x * z - x0, ray_y * z
    palm = (np.abs(x) <= 0.0425) & (np.abs(y) <= 0.045)
    shape = palm | ((x >= 0.0425) & (x <= 0.0975) & (np.abs(y - 0.015) <= 0.01))  # thumb
    for finger_x, length in ((-0.03, 0.065), (-0.01, 0.08), (0.01, 0.075), (0.03, 0.06)):
        shape |= (np.abs(x - finger_x) <= 0.008) & (y < -0.045) & (y >= -0.045 - length)
    return np.where(shape, z, np.nan)


def _forearm(angle_deg: float, *, z_wrist: float = 0.5, length: float = 0.4) -> np.ndarray:
    """(H, W) metres: a 7 cm wide strip from the hand's wrist (y = 4.5 cm) downwards,
    receding from the camera at ``angle_deg`` (0: in the image plane)."""
    ray_x, ray_y = _rays()
    slope = np.tan(np.radians(angle_deg))
    wrist_y = 0.045
    z = (z_wrist - wrist_y * slope) / (1.0 - ray_y * slope)  # the ray meets the strip's plane
    along = (ray_y * z - wrist_y) / np.cos(np.radians(angle_deg))
    inside = (z > 0) & (along >= 0) & (along <= length) & (np.abs(ray_x * z) <= 0.035)
    return np.where(inside, z, np.nan)


def _nearest_of(*layers: np.ndarray) -> np.ndarray:
    return np.fmin.reduce(np.stack(layers), axis=0).astype(np.float32)


def _only_hand(depth: np.ndarray) -> HandLocation:
    hands = locate_hands(depth, CAMERA)
    assert len(hands) == 1
    return hands[0]


@pytest.fixture(scope="module")
def hand_alone() -> HandLocation:
    return _only_hand(_nearest_of(_hand()))


def test_a_lone_hand_is_centred_on_its_palm(hand_alone):
    x, y, z = hand_alone.center_xyz
    # The palm spans |x| <= 4.25 cm, |y| <= 4.5 cm; the surface is at 0.5 m.
    assert abs(x) < 0.02 and -0.045 < y < 0.02
    assert 0.5 <= z <= 0.52
    assert hand_alone.converged


@pytest.mark.parametrize("angle_deg", [0.0, 30.0, 60.0])
def test_a_forearm_does_not_drag_the_centre_down_the_arm(hand_alone, angle_deg):
    with_arm = _only_hand(_nearest_of(_hand(), _forearm(angle_deg)))
    shift = with_arm.center_xyz - hand_alone.center_xyz
    assert np.linalg.norm(shift) < 0.025, shift
    assert shift[1] < 0.005, shift  # not towards the arm (down, +y)
    # The arm is not part of the region the centre comes from.
    _, arm_v = np.nonzero(np.isfinite(_forearm(angle_deg)).T)
    below_palm = int(CAMERA.cy + CAMERA.fy * 0.1 / 0.5)  # 10 cm below the palm centre
    assert not with_arm.mask[below_palm:].any()
    assert arm_v.max() > below_palm


@pytest.mark.parametrize("gap_m", [0.05, 0.07, 0.10])
def test_a_body_just_behind_the_hand_does_not_move_the_centre(hand_alone, gap_m):
    body = np.full((CAMERA.height, CAMERA.width), 0.5 + gap_m)
    body[:, :80] = np.nan  # a body, not a wall: it does not fill the image
    location = _only_hand(_nearest_of(_hand(), body))
    np.testing.assert_allclose(location.center_xyz, hand_alone.center_xyz, atol=0.005)
    assert np.all(_nearest_of(_hand(), body)[location.mask] < 0.5 + gap_m / 2)


def test_a_body_behind_a_hand_and_its_forearm_is_left_out(hand_alone):
    body = np.full((CAMERA.height, CAMERA.width), 0.6)
    depth = _nearest_of(_hand(), _forearm(30.0), body)
    location = _only_hand(depth)
    assert np.linalg.norm(location.center_xyz - hand_alone.center_xyz) < 0.025
    assert np.all(depth[location.mask] < 0.58)


@pytest.mark.parametrize("speck_px", [1, 9])
def test_a_nearer_speck_is_ignored(hand_alone, speck_px):
    depth = _nearest_of(_hand())
    side = int(np.sqrt(speck_px))
    depth[100 : 100 + side, 500 : 500 + side] = 0.3  # flying pixels 20 cm in front
    location = _only_hand(depth)
    np.testing.assert_allclose(location.center_xyz, hand_alone.center_xyz, atol=1e-6)


def test_the_second_hand_is_the_next_one_outside_the_first_cube():
    depth = _nearest_of(_hand(0.5, -0.15), _hand(0.6, 0.2))
    near, far = locate_hands(depth, CAMERA, max_hands=2)
    assert near.center_xyz[0] < -0.1 and abs(near.center_xyz[2] - 0.51) < 0.01
    assert far.center_xyz[0] > 0.15 and abs(far.center_xyz[2] - 0.61) < 0.01
    assert not (near.mask & far.mask).any()
    assert len(locate_hands(depth, CAMERA, max_hands=1)) == 1
    assert len(locate_hands(_nearest_of(_hand()), CAMERA, max_hands=2)) == 1


def test_nothing_hand_like_gives_no_hands():
    shape = (CAMERA.height, CAMERA.width)
    ray_y = _rays()[1]
    floor = 0.6 / (0.1 + ray_y)  # a floor seen from 0.6 m above it, out to the depth limit
    cases = {
        "all NaN": np.full(shape, np.nan),
        "all zero": np.zeros(shape),
        "a wall": np.full(shape, 1.2),
        "a slanted floor": np.where(ray_y > -0.05, floor, np.nan),
        "too near": np.where(np.isfinite(_hand()), 0.1, np.nan),
        "too far": np.where(np.isfinite(_hand(1.4)), 1.6, np.nan),
        "specks": np.where(np.random.default_rng(0).random(shape) < 0.001, 0.5, np.nan),
    }
    for name, depth in cases.items():
        assert locate_hands(depth.astype(np.float32), CAMERA, max_hands=2) == [], name


def test_bad_input_raises_localise_error():
    good = np.full((CAMERA.height, CAMERA.width), np.nan, dtype=np.float32)
    with pytest.raises(LocaliseError, match="480x320"):
        locate_hands(np.zeros((480, 320), dtype=np.float32), CAMERA)
    with pytest.raises(LocaliseError, match="expected \\(height, width\\)"):
        locate_hands(good[..., None], CAMERA)
    with pytest.raises(LocaliseError, match="float metres"):
        locate_hands(np.zeros((480, 640), dtype=np.uint16), CAMERA)
    with pytest.raises(LocaliseError, match="max_hands"):
        locate_hands(good, CAMERA, max_hands=0)
    assert issubclass(LocaliseError, ValueError)


@pytest.mark.parametrize(
    "field, value",
    [("cube_m", 0.0), ("min_area_m2", -1.0), ("max_depth_m", 0.1), ("max_area_m2", 0.001),
     ("iterations", 0), ("depth_jump_m", float("nan"))],
)  # fmt: skip
def test_bad_config_raises_localise_error(field, value):
    with pytest.raises(LocaliseError, match=field):
        LocaliserConfig(**{field: value})
