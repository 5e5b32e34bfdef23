"""The synthetic hand: anthropometry, kinematics, chirality, gestures and mesh."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hand_pose_ros.skeleton import BONES, FINGERS
from hand_pose_ros.synth.articulation import (
    DIP_FLEX,
    JOINT_NAMES,
    LOWER_DEG,
    MCP_FLEX,
    NUM_JOINTS,
    PIP_FLEX,
    UPPER_DEG,
    HandPoseAngles,
    clip_to_limits,
)
from hand_pose_ros.synth.gestures import (
    GESTURES,
    bent_finger_angles,
    gesture_angles,
    gesture_template,
    interpolate,
    random_angles,
    sample_gesture,
)
from hand_pose_ros.synth.hand_mesh import (
    PART_FOREARM,
    PART_NAMES,
    PART_PALM,
    PART_THUMB,
    HandMeshError,
    hand_mesh,
)
from hand_pose_ros.synth.hand_model import (
    HandShape,
    HandShapeConfig,
    chirality,
    forward_kinematics,
    measured_hand_length,
    palm_frame,
    sample_hand_shape,
)

CHAINS = list(FINGERS.values())
TIPS = [chain[-1] for chain in CHAINS]
MEAN = HandShape.mean()


def _shapes(count: int, seed: int = 0) -> list[HandShape]:
    rng = np.random.default_rng(seed)
    return [sample_hand_shape(rng) for _ in range(count)]


def _posed(name: str, seed: int, shape: HandShape = MEAN, side: str = "right"):
    angles = gesture_angles(name, np.random.default_rng(seed), shape=shape)
    return forward_kinematics(shape, angles, side)


def _kabsch_residual(source: np.ndarray, target: np.ndarray) -> float:
    """RMS distance (m) after the best proper rotation + translation of source onto target."""
    a = source - source.mean(axis=0)
    b = target - target.mean(axis=0)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return float(np.sqrt(np.mean(np.sum((a @ rotation.T - b) ** 2, axis=1))))


def _signed_volume(vertices: np.ndarray, triangles: np.ndarray) -> float:
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    return float(np.sum(np.einsum("ij,ij->i", a, np.cross(b, c))) / 6.0)


# --- Shape ------------------------------------------------------------------------------------


def test_hand_length_is_sampled_within_the_configured_range_and_is_exact():
    config = HandShapeConfig()
    lengths = []
    for shape in _shapes(60):
        low, high = config.hand_length_range_m
        assert low <= shape.hand_length <= high
        assert measured_hand_length(shape) == pytest.approx(shape.hand_length, abs=1e-9)
        # Measured on the posed flat hand: wrist keypoint to the middle fingertip's skin.
        flat = forward_kinematics(shape, HandPoseAngles.zeros())
        skin_tip = flat.skin_tips[2]
        assert np.linalg.norm(skin_tip - flat.keypoints[0]) == pytest.approx(shape.hand_length)
        lengths.append(shape.hand_length)
    assert np.ptp(lengths) > 0.03  # really varied, not a constant hand


def test_config_ranges_are_honoured_and_checked():
    config = HandShapeConfig(hand_length_range_m=(0.2, 0.2), palm_thickness_range_m=(0.03, 0.03))
    shape = sample_hand_shape(np.random.default_rng(1), config)
    assert shape.hand_length == pytest.approx(0.2)
    assert HandShape.mean(config).hand_length == pytest.approx(0.2)
    with pytest.raises(ValueError):
        HandShapeConfig(hand_length_range_m=(0.21, 0.16))
    with pytest.raises(ValueError):
        HandShapeConfig(segment_length_jitter=-0.1)


def test_proportions_are_anthropometric():
    for shape in [MEAN, *_shapes(20, seed=3)]:
        length = shape.hand_length
        assert 0.40 < shape.palm_width / length < 0.50
        assert 0.024 <= shape.palm_thickness <= 0.031
        # Middle finger longest, little finger shortest (phalanges only).
        finger_lengths = shape.lengths[1:].sum(axis=1)
        assert np.argmax(finger_lengths) == 1 and np.argmin(finger_lengths) == 3
        # Radii taper to the tips, the thumb is the thickest digit; plausible millimetres.
        assert np.all(np.diff(shape.radii, axis=1) < 0)
        assert shape.radii[0, 1] > shape.radii[1:, 1].max()
        assert np.all((0.007 < shape.radii[1:, 0]) & (shape.radii[1:, 0] < 0.012))
        assert np.all((0.005 < shape.radii[1:, 3]) & (shape.radii[1:, 3] < 0.0085))
        # The wrist is 50-70 mm wide.
        assert 0.050 < 2 * shape.wrist_half_width < 0.072


def test_bone_lengths_from_keypoints_equal_the_shape_segments():
    rng = np.random.default_rng(5)
    for shape in _shapes(10, seed=7):
        for _ in range(5):
            skeleton = forward_kinematics(shape, random_angles(rng), "left")
            k = skeleton.keypoints
            for c, chain in enumerate(CHAINS):
                lengths = np.linalg.norm(np.diff(k[list(chain)], axis=0), axis=1)
                np.testing.assert_allclose(lengths, shape.lengths[c], atol=1e-12)
                # The wrist-to-base bone is rigid in the palm.
                assert np.linalg.norm(k[chain[0]] - k[0]) == pytest.approx(
                    np.linalg.norm(shape.bases[c] - shape.wrist)
                )
    assert len(BONES) == 20


# --- Frames, mirror, chirality ----------------------------------------------------------------


@pytest.mark.parametrize("side", ["right", "left"])
def test_palm_frame_of_the_model_is_the_hand_frame(side):
    skeleton = _posed("relaxed", 0, side=side)
    rotation, origin = palm_frame(skeleton.keypoints, side)
    np.testing.assert_allclose(rotation, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(origin, 0.0, atol=1e-12)
    # A rigid placement is recovered from the keypoints alone.
    r = Rotation.random(random_state=4).as_matrix()
    t = np.array([0.1, -0.05, 0.6])
    placed = skeleton.transformed(r, t)
    rotation, origin = palm_frame(placed.keypoints, side)
    np.testing.assert_allclose(rotation, r, atol=1e-12)
    np.testing.assert_allclose(origin, t, atol=1e-12)
    np.testing.assert_allclose(placed.palm_rotation, r)
    np.testing.assert_allclose(placed.in_hand_frame().keypoints, skeleton.keypoints, atol=1e-12)


def test_left_hand_is_the_mirror_image_with_the_thumb_on_the_other_side():
    right = _posed("open_palm", 2)
    left = _posed("open_palm", 2, side="left")
    np.testing.assert_allclose(left.keypoints, right.keypoints * [1.0, -1.0, 1.0])
    # Same palm frame convention (x to the middle finger, z out of the palm), thumbs apart.
    assert right.keypoints[4, 1] < -0.04 and left.keypoints[4, 1] > 0.04
    assert right.keypoints[17, 1] > 0 > left.keypoints[17, 1]
    for frames in (right.segment_rotations, left.segment_rotations):
        np.testing.assert_allclose(np.linalg.det(frames), 1.0)


def test_a_mirrored_hand_is_not_a_rotation_of_the_original():
    for name in ("relaxed", "pinch", "fist"):
        right = _posed(name, 1).keypoints
        left = _posed(name, 1, side="left").keypoints
        rotated = right @ Rotation.random(random_state=9).as_matrix().T + [0.3, 0.1, 0.5]
        assert _kabsch_residual(rotated, right) < 1e-9
        assert _kabsch_residual(left, right) > 0.005  # metres: no rotation aligns them


def test_chirality_is_right_or_left_under_any_rigid_placement():
    rng = np.random.default_rng(11)
    shapes = _shapes(6, seed=11)
    poses = [gesture_angles(name, rng, shape=shapes[0]) for name in GESTURES]
    poses += [random_angles(rng) for _ in range(20)]
    rotations = Rotation.random(100, random_state=12).as_matrix()
    translations = rng.uniform(-1.0, 1.0, (100, 3))
    for i, angles in enumerate(poses):
        shape = shapes[i % len(shapes)]
        for side, expected in (("right", 1), ("left", -1)):
            k = forward_kinematics(shape, angles, side).keypoints
            placed = np.einsum("nij,kj->nki", rotations, k) + translations[:, None]
            assert {chirality(p) for p in placed} == {expected}, (i, side)


def test_chirality_of_degenerate_keypoints_is_zero():
    assert chirality(np.zeros((21, 3))) == 0
    assert chirality(np.full((21, 3), np.nan)) == 0


# --- Articulation -----------------------------------------------------------------------------


def test_every_gesture_and_random_articulation_is_within_the_joint_limits():
    rng = np.random.default_rng(21)
    shapes = _shapes(4, seed=21)
    for name in GESTURES:
        for k in range(4):
            angles = gesture_angles(name, rng, variation=2.0, shape=shapes[k])
            assert angles.within_limits(), name
    samples = np.array([random_angles(rng).degrees for _ in range(1000)])
    assert np.all(samples >= LOWER_DEG) and np.all(samples <= UPPER_DEG)
    # Physiological, not uniform in the box: DIP follows PIP at about two thirds.
    pip, dip = samples[:, PIP_FLEX].ravel(), samples[:, DIP_FLEX].ravel()
    assert np.corrcoef(pip, dip)[0, 1] > 0.8
    ratio = np.median(dip[pip > 30] / pip[pip > 30])
    assert 0.55 < ratio < 0.75


def test_bent_finger_poses_bend_up_to_three_digits_of_an_open_hand():
    rng = np.random.default_rng(8)
    samples = np.array([bent_finger_angles(rng).degrees for _ in range(2000)])
    assert np.all(samples >= LOWER_DEG) and np.all(samples <= UPPER_DEG)
    # A long finger is bent when its MCP and PIP flexion add up to more than 30 degrees
    # (the least bend drawn is about 50; the open palm's straight fingers stay below 20).
    flexion = samples[:, MCP_FLEX] + samples[:, PIP_FLEX]
    bent = flexion > 30.0
    assert np.all(flexion[~bent] < 20.0)
    per_pose = bent.sum(axis=1)
    assert per_pose.max() <= 3
    # One to three digits of five, the thumb among them: 1.32 long fingers on average, and
    # a pose with no long finger bent only when the thumb alone is (1 in 10).
    assert 1.2 < per_pose.mean() < 1.45
    assert 0.06 < np.mean(per_pose == 0) < 0.14
    # Each long finger is bent on its own about as often as the others.
    assert np.all(np.abs(bent.mean(axis=0) - 0.33) < 0.05)


def test_the_scene_draws_bent_finger_poses_only_when_enabled(monkeypatch):
    from hand_pose_ros.synth import scene as scene_module
    from hand_pose_ros.synth.config import SynthConfig
    from hand_pose_ros.synth.shards import new_scene

    calls = {"bent": 0, "random": 0}

    def counted(name, function):
        def wrapper(rng):
            calls[name] += 1
            return function(rng)

        return wrapper

    monkeypatch.setattr(scene_module, "bent_finger_angles", counted("bent", bent_finger_angles))
    monkeypatch.setattr(scene_module, "random_angles", counted("random", random_angles))
    config = SynthConfig.from_dict({"scene": {"gesture_probability": 0.0}})
    rng = np.random.default_rng(4)
    for _ in range(5):
        new_scene(rng, config)
    assert calls["bent"] == 0 and calls["random"] > 0
    calls["random"] = 0
    config = SynthConfig.from_dict(
        {"scene": {"gesture_probability": 0.0, "bent_fingers_probability": 1.0}}
    )
    for _ in range(5):
        new_scene(rng, config)
    assert calls["bent"] > 0 and calls["random"] == 0


def test_angles_accessors_and_clipping():
    angles = HandPoseAngles.from_dict({"index_pip_flex": 150.0, "wrist_dev": -40.0})
    assert not angles.within_limits()
    clipped = clip_to_limits(angles)
    assert clipped["index_pip_flex"] == 110.0 and clipped["wrist_dev"] == -20.0
    assert clipped.within_limits()
    assert list(clipped.as_dict()) == list(JOINT_NAMES)
    assert clipped.finger("index").shape == (4,) and clipped.finger("thumb").shape == (5,)
    assert clipped.replace(index_pip_flex=30.0)["index_pip_flex"] == 30.0
    with pytest.raises(ValueError):
        HandPoseAngles(np.zeros(NUM_JOINTS + 1))
    with pytest.raises(ValueError):
        HandPoseAngles.from_dict({"index_knuckle": 1.0})


def test_interpolation_is_smooth_between_its_end_points():
    rng = np.random.default_rng(2)
    a, b = gesture_angles("open_palm", rng), gesture_angles("fist", rng)
    np.testing.assert_allclose(interpolate(a, b, 0.0).degrees, a.degrees)
    np.testing.assert_allclose(interpolate(a, b, 1.0).degrees, b.degrees)
    path = np.array([interpolate(a, b, t).degrees for t in np.linspace(0, 1, 11)])
    steps = np.abs(np.diff(path, axis=0))
    assert steps.max() <= np.abs(b.degrees - a.degrees).max() / 10 + 1e-9
    assert all(HandPoseAngles(p).within_limits() for p in path)


# --- Gestures ---------------------------------------------------------------------------------


def _tip_extension(skeleton, shape: HandShape, finger: int) -> float:
    """Base-to-tip distance over the chain's length: 1 when straight."""
    chain = CHAINS[finger]
    k = skeleton.keypoints
    return float(np.linalg.norm(k[chain[-1]] - k[chain[0]]) / shape.lengths[finger].sum())


@pytest.mark.parametrize("seed", range(4))
def test_gestures_keep_their_meaning_for_any_hand(seed):
    shape = _shapes(1, seed=100 + seed)[0]
    length = shape.hand_length

    def posed(name):
        return _posed(name, seed, shape)

    pinch = posed("pinch").keypoints
    assert np.linalg.norm(pinch[4] - pinch[8]) < 0.020
    ok = posed("ok")
    assert np.linalg.norm(ok.keypoints[4] - ok.keypoints[8]) < 0.020
    assert all(_tip_extension(ok, shape, f) > 0.95 for f in (2, 3, 4))
    fist = posed("fist")
    assert np.all(np.linalg.norm(fist.keypoints[TIPS[1:]], axis=1) < 0.35 * length)
    assert np.all(fist.keypoints[TIPS[1:], 2] > 0)  # curled towards the palm side
    point = posed("point")
    assert _tip_extension(point, shape, 1) > 0.97
    assert all(_tip_extension(point, shape, f) < 0.6 for f in (2, 3, 4))
    victory = posed("victory")
    assert all(_tip_extension(victory, shape, f) > 0.97 for f in (1, 2))
    assert all(_tip_extension(victory, shape, f) < 0.6 for f in (3, 4))
    index_dir, middle_dir = (victory.segment_rotations[f, 2, :, 0] for f in (1, 2))
    assert np.degrees(np.arccos(index_dir @ middle_dir)) > 10.0  # spread into a V
    thumbs_up = posed("thumbs_up")
    assert _tip_extension(thumbs_up, shape, 0) > 0.97
    assert all(_tip_extension(thumbs_up, shape, f) < 0.6 for f in (1, 2, 3, 4))
    open_palm = posed("open_palm")
    assert all(_tip_extension(open_palm, shape, f) > 0.97 for f in range(5))
    assert np.all(np.linalg.norm(open_palm.keypoints[TIPS[1:]], axis=1) > 0.4 * length)


def test_open_palms_range_from_fingers_together_to_fully_splayed():
    # People show a camera anything from a flat hand to a "five": the index-to-pinky angle
    # must cover both, up to the abduction limits, and the template itself at variation 0.
    index_abd, pinky_abd = (JOINT_NAMES.index(f"{f}_mcp_abd") for f in ("index", "pinky"))
    rng = np.random.default_rng(7)
    angles = np.array([gesture_angles("open_palm", rng).degrees for _ in range(300)])
    fan = angles[:, index_abd] + angles[:, pinky_abd]
    assert fan.min() < 12.0 and fan.max() > 40.0
    assert angles[:, pinky_abd].max() == pytest.approx(UPPER_DEG[pinky_abd])
    assert np.all((angles >= LOWER_DEG) & (angles <= UPPER_DEG))
    template = gesture_angles("open_palm", np.random.default_rng(0), variation=0.0)
    np.testing.assert_allclose(template.degrees, gesture_template("open_palm").degrees)


@pytest.mark.parametrize("name", ["grasp_cylinder", "grasp_ball"])
def test_grasps_wrap_an_object_of_the_stated_size(name):
    for seed, shape in enumerate(_shapes(3, seed=40)):
        sample = sample_gesture(name, np.random.default_rng(seed), shape=shape)
        grasped = sample.grasped
        assert grasped is not None
        low, high = (0.040, 0.070) if name == "grasp_cylinder" else (0.060, 0.090)
        assert low <= 2 * grasped.radius <= high
        for side in ("right", "left"):
            skeleton = forward_kinematics(shape, sample.angles, side)
            held = grasped.for_side(side)
            # Distal phalanges of the long fingers rest on the surface (skin to skin).
            distal = [7, 8, 11, 12, 15, 16]
            offset = skeleton.keypoints[distal] - held.centre
            if held.kind == "cylinder":
                offset -= np.outer(offset @ held.axis, held.axis)
            gap = np.linalg.norm(offset, axis=1) - held.radius - skeleton.radii[distal]
            assert np.median(np.abs(gap)) < 0.004 and np.abs(gap).max() < 0.010


def test_unknown_gesture_is_rejected():
    with pytest.raises(ValueError):
        gesture_angles("wave", np.random.default_rng(0))


def test_same_seed_same_hand_same_pose_same_mesh():
    def build(seed):
        rng = np.random.default_rng(seed)
        shape = sample_hand_shape(rng)
        angles = [gesture_angles(name, rng, shape=shape) for name in GESTURES]
        angles.append(random_angles(rng))
        skeleton = forward_kinematics(shape, angles[3], "left")
        return shape, angles, skeleton, hand_mesh(skeleton, shape)

    one, two, other = build(5), build(5), build(6)
    for a, b in zip(
        (one[0].bases, one[0].lengths, one[0].radii, one[2].keypoints, one[3].vertices),
        (two[0].bases, two[0].lengths, two[0].radii, two[2].keypoints, two[3].vertices),
        strict=True,
    ):
        assert np.array_equal(a, b)
    assert all(np.array_equal(a.degrees, b.degrees) for a, b in zip(one[1], two[1], strict=True))
    assert not np.array_equal(one[2].keypoints, other[2].keypoints)


# --- Mesh -------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["right", "left"])
def test_mesh_arrays_and_part_labels(side):
    skeleton = _posed("relaxed", 0, side=side)
    mesh = hand_mesh(skeleton, MEAN)
    assert mesh.vertices.ndim == 2 and mesh.vertices.shape[1] == 3
    assert mesh.vertices.dtype == np.float64 and mesh.triangles.dtype == np.int32
    assert mesh.part.shape == (len(mesh.triangles),)
    assert set(np.unique(mesh.part)) == set(PART_NAMES)
    assert 1000 < len(mesh.triangles) < 10000
    no_forearm = hand_mesh(skeleton, MEAN, forearm_length=0.0)
    assert PART_FOREARM not in no_forearm.part
    with pytest.raises(HandMeshError):
        hand_mesh(skeleton, MEAN, forearm_length=-0.1)


def test_mesh_normals_point_outward_for_both_hands():
    right = _posed("open_palm", 1)
    left = _posed("open_palm", 1, side="left")
    right_mesh, left_mesh = hand_mesh(right, MEAN), hand_mesh(left, MEAN)
    # Every primitive is closed and outward, so the summed signed volume is positive, and
    # the mirror image has the same volume.
    volume = _signed_volume(right_mesh.vertices, right_mesh.triangles)
    assert volume > 0
    assert _signed_volume(left_mesh.vertices, left_mesh.triangles) == pytest.approx(volume)
    # Around each fingertip the faces look away from the tip keypoint.
    for skeleton, mesh in ((right, right_mesh), (left, left_mesh)):
        a, b, c = (mesh.vertices[mesh.triangles[:, i]] for i in range(3))
        centroids = (a + b + c) / 3
        normals = np.cross(b - a, c - a)
        for finger, tip in enumerate(TIPS):
            # The fingertip's cap: faces of that finger beyond the tip keypoint.
            axis = skeleton.segment_rotations[finger, 2, :, 0]
            beyond = (centroids - skeleton.keypoints[tip]) @ axis
            cap = (
                (mesh.part == PART_THUMB + finger)
                & (beyond > 0.0005)
                & (
                    np.linalg.norm(centroids - skeleton.keypoints[tip], axis=1)
                    < skeleton.radii[tip] + 0.001
                )
            )
            outward = np.einsum("ij,ij->i", normals[cap], centroids[cap] - skeleton.keypoints[tip])
            assert cap.sum() > 20 and np.all(outward > 0)


def _first_hits(mesh, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Where rays first meet the mesh, as a depth camera sees it: (N, 3), NaN for a miss."""
    o3d = pytest.importorskip("open3d")
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(mesh.vertices.astype(np.float32)),
        o3d.core.Tensor(mesh.triangles.astype(np.uint32)),
    )
    rays = np.hstack([origins, directions]).astype(np.float32)
    t_hit = scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy().astype(np.float64)
    return origins + directions * t_hit[:, None]


@pytest.mark.parametrize("side", ["right", "left"])
def test_fingertip_skin_lies_one_radius_from_the_tip_keypoint(side):
    skeleton = _posed("open_palm", 3, side=side)
    mesh = hand_mesh(skeleton, MEAN)
    for finger, tip in enumerate(TIPS):
        axis = skeleton.segment_rotations[finger, 2, :, 0]
        pad = skeleton.segment_rotations[finger, 2, :, 2]
        # Rays from 10 cm out towards the tip keypoint: along the finger and 40° off it.
        directions = [axis]
        for turn in np.radians([0, 90, 180, 270]):
            side_dir = np.cos(turn) * pad + np.sin(turn) * np.cross(axis, pad)
            directions.append(np.cos(np.radians(40)) * axis + np.sin(np.radians(40)) * side_dir)
        directions = -np.array(directions)
        hits = _first_hits(mesh, skeleton.keypoints[tip] - 0.1 * directions, directions)
        depth = np.linalg.norm(hits - skeleton.keypoints[tip], axis=1)
        radius = skeleton.radii[tip]
        # The finger is a little flatter than wide (0.85-0.9 of the radius to nail and pad).
        assert np.all((0.84 * radius <= depth) & (depth <= radius + 1e-4)), (finger, depth)
        assert depth[0] == pytest.approx(radius, abs=1e-4)
        np.testing.assert_allclose(hits[0], skeleton.skin_tips[finger], atol=1e-4)


def test_visible_keypoints_lie_within_a_few_millimetres_of_the_skin():
    skeleton = _posed("open_palm", 4)
    mesh = hand_mesh(skeleton, MEAN)
    # Seen from the back of the hand (-z) every keypoint but the thumb's is under the skin
    # one radius deep; the thumb's are seen through its nail side.
    directions = np.tile([0.0, 0.0, 1.0], (21, 1))
    thumb_nail = -skeleton.segment_rotations[0, :, :, 2]
    directions[1:5] = -np.vstack([thumb_nail[0], thumb_nail[0], thumb_nail[1], thumb_nail[2]])
    hits = _first_hits(mesh, skeleton.keypoints - 0.2 * directions, directions)
    depth = np.linalg.norm(hits - skeleton.keypoints, axis=1)
    assert np.all(depth >= 0.75 * skeleton.radii), depth
    assert np.all(depth <= skeleton.radii + 0.003), depth - skeleton.radii


def test_mesh_follows_a_rigid_placement_and_the_forearm_axis():
    skeleton = forward_kinematics(MEAN, gesture_angles("open_palm", np.random.default_rng(0))
                                  .replace(wrist_flex=40.0, wrist_dev=0.0))  # fmt: skip
    direction = skeleton.forearm_direction
    assert direction[2] > 0.5 and direction[0] < 0  # flexion: forearm leans to the palm side
    mesh = hand_mesh(skeleton, MEAN, forearm_length=0.2)
    forearm = mesh.vertices[np.unique(mesh.triangles[mesh.part == PART_FOREARM])]
    reach = (forearm - skeleton.forearm_origin) @ direction
    assert reach.max() > 0.2
    r = Rotation.random(random_state=3).as_matrix()
    t = np.array([0.0, 0.1, 0.5])
    placed = hand_mesh(skeleton.transformed(r, t), MEAN, forearm_length=0.2)
    np.testing.assert_allclose(placed.vertices, mesh.vertices @ r.T + t, atol=1e-12)
    assert np.array_equal(placed.triangles, mesh.triangles)
    assert {PART_PALM, PART_THUMB} <= set(np.unique(placed.part))
