"""The composed synthetic world is honest: its ground truth agrees with what it rendered."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from hand_pose_ros import messages, topics
from hand_pose_ros.crop import apply_affine, cube_crop_geometry, invert_affine
from hand_pose_ros.io.images import image_to_array
from hand_pose_ros.synth.articulation import LOWER_DEG, UPPER_DEG
from hand_pose_ros.synth.config import ConfigError, SynthConfig
from hand_pose_ros.synth.hand_model import chirality
from hand_pose_ros.synth.render import Renderer
from hand_pose_ros.synth.scene import hand_object_id, scene_objects
from hand_pose_ros.synth.sequence import generate_sequence
from hand_pose_ros.synth.sequence_bag import write_sequence_bag
from hand_pose_ros.synth.shards import load_dataset, new_scene, write_dataset
from hand_pose_ros.synth.workers import worker_pool
from hand_pose_ros.synth.world import render_crops, render_frame


@pytest.fixture(scope="module")
def config() -> SynthConfig:
    config = SynthConfig()
    config.scene.two_hands_probability = 0.5  # exercise both hands often
    return config


@pytest.fixture(scope="module")
def frames(config):
    """(scene, frame) for a handful of seeds, rendered once for the module."""
    out = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        scene = new_scene(rng, config)
        out.append((scene, render_frame(scene, rng, config)))
    return out


def test_visible_keypoints_project_onto_their_own_hand(frames):
    checked = 0
    for _scene, frame in frames:
        height, width = frame.hand_index.shape
        for index, hand in enumerate(frame.hands):
            u, v = np.rint(hand.uv[hand.visible]).astype(int).T
            inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
            labels = frame.hand_index[v[inside], u[inside]]
            # A joint centre sits inside its finger, so its pixel shows that hand; allow the
            # odd keypoint on a one-pixel-thin silhouette edge to miss.
            assert (labels == index).mean() >= 0.95, (index, labels)
            checked += int(inside.sum())
    assert checked > 50


def test_visible_keypoints_lie_a_radius_behind_the_rendered_surface(frames):
    """Depth at a visible keypoint's pixel (clean render) = keypoint depth - about its radius."""
    errors = []
    for scene, frame in frames:
        objects, _materials, skeletons = scene_objects(scene)
        clean = Renderer(objects).render(scene.camera)
        for index, (hand, skeleton) in enumerate(zip(frame.hands, skeletons, strict=True)):
            for k in np.flatnonzero(hand.visible):
                u, v = np.rint(hand.uv[k]).astype(int)
                if not (0 <= u < clean.depth.shape[1] and 0 <= v < clean.depth.shape[0]):
                    continue
                if clean.object_id[v, u] != hand_object_id(index):
                    continue
                gap = hand.xyz[k, 2] - clean.depth[v, u]
                errors.append(gap - skeleton.radii[k])
    errors = np.array(errors)
    assert len(errors) > 50
    # The surface is in front of the joint by about its radius (the ray meets the finger's
    # side at an angle, so a little less or more); never behind it, never far in front.
    assert np.abs(errors).max() < 0.008, np.abs(errors).max()
    assert abs(np.median(errors)) < 0.003


def test_occluded_keypoints_are_behind_something_else(frames):
    """An occluded keypoint's pixel shows another object (or its own hand well in front)."""
    for scene, frame in frames:
        objects, _materials, skeletons = scene_objects(scene)
        renderer = Renderer(objects)
        for index, hand in enumerate(frame.hands):
            hidden = ~hand.visible
            if not hidden.any():
                continue
            seen = renderer.cast_points_visibility(hand.xyz[hidden])
            radii = skeletons[index].radii[hidden]
            in_front = seen.range_m - seen.hit_distance_m
            other = seen.object_id != hand_object_id(index)
            assert np.all(other | (in_front > radii)), (in_front, radii)


def test_hands_have_the_chirality_of_their_side_and_angles_within_limits(frames):
    sides = set()
    for scene, frame in frames:
        for scene_hand, truth in zip(scene.hands, frame.hands, strict=True):
            assert chirality(truth.xyz) == (1 if truth.side == "right" else -1)
            degrees = scene_hand.angles.degrees
            assert np.all(degrees >= LOWER_DEG - 1e-9) and np.all(degrees <= UPPER_DEG + 1e-9)
            sides.add(truth.side)
    assert sides == {"left", "right"}


def test_depth_is_metric_and_the_hand_is_in_range(frames, config):
    for _scene, frame in frames:
        assert frame.depth_m.dtype == np.float32
        assert frame.rgb.dtype == np.uint8 and frame.rgb.shape == (480, 640, 3)
        for index in range(len(frame.hands)):
            pixels = frame.depth_m[frame.hand_index == index]
            if not np.isfinite(pixels).any():
                continue  # a hand fully hidden by the other (or out of view) has no pixel
            z = np.nanmedian(pixels)
            low, high = config.placement.distance_m
            assert low - 0.15 < z < high + 0.15


def test_same_seed_same_bytes(config):
    def one(seed):
        rng = np.random.default_rng(seed)
        return render_frame(new_scene(rng, config), rng, config)

    a, b = one(42), one(42)
    assert a.rgb.tobytes() == b.rgb.tobytes()
    assert np.array_equal(a.depth_m, b.depth_m, equal_nan=True)
    assert not np.array_equal(a.rgb, one(43).rgb)


def test_crops_have_consistent_labels(config):
    rng = np.random.default_rng(5)
    crops = render_crops(new_scene(rng, config), rng, config)
    assert len(crops) >= config.crop.views_per_scene
    for crop in crops:
        assert crop.depth is not None and crop.depth.shape == (128, 128)
        assert crop.depth.min() >= -1.0 and crop.depth.max() <= 1.0
        assert crop.rgb is not None and crop.rgb.shape == (256, 256, 3)
        assert crop.cube_center is not None and crop.depth_joints is not None
        # Cube units back to metres give the 3D ground truth.
        back = crop.depth_joints * crop.cube_m / 2.0 + crop.cube_center
        np.testing.assert_allclose(back, crop.truth.xyz, atol=1e-5)
        # The hand is inside its colour crop.
        assert crop.rgb_uv is not None
        assert np.mean((crop.rgb_uv >= 0) & (crop.rgb_uv < 256)) > 0.9


def test_depth_only_crops_show_the_hand_at_its_keypoints(config):
    # Depth-only crops leave out what lies beyond their cubes and read the stereo shadow
    # off the crop: the hand's surface must still be where its keypoints say.
    behind_m = []
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        for crop in render_crops(new_scene(rng, config), rng, config, kinds=("depth",)):
            assert crop.depth is not None and crop.rgb is None
            cube = cube_crop_geometry(crop.camera, crop.cube_center, cube_m=crop.cube_m,
                                      output_size=crop.depth.shape[0])  # fmt: skip
            pixels = apply_affine(invert_affine(cube.crop_to_image), crop.truth.uv)
            pixels = np.round(pixels).astype(int)
            inside = ((pixels >= 0) & (pixels < crop.depth.shape[0])).all(axis=1)
            for k in np.flatnonzero(crop.truth.visible & inside):
                measured = crop.depth[pixels[k, 1], pixels[k, 0]]
                if measured < 1.0:  # not a sensor hole
                    surface_z = crop.cube_center[2] + measured * crop.cube_m / 2.0
                    behind_m.append(crop.truth.xyz[k, 2] - surface_z)
    # A keypoint lies about a finger's radius behind the surface the camera sees there
    # (measured: median 7.9 mm, 5-95 % 2.7-13 mm, the same as crops rendered with colour).
    assert len(behind_m) > 200
    assert 0.003 < np.median(behind_m) < 0.012
    assert np.mean((np.asarray(behind_m) > -0.002) & (np.asarray(behind_m) < 0.02)) > 0.95


def test_worker_processes_run_one_thread_per_pool():
    before = os.environ.get("OPENBLAS_NUM_THREADS")
    with worker_pool(2) as pool:
        seen = pool.map(os.getenv, ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"])
    assert seen == ["1", "1"]
    assert os.environ.get("OPENBLAS_NUM_THREADS") == before


def test_datasets_are_the_same_bytes_whatever_the_worker_count(tmp_path: Path, config):
    kwargs = dict(kind="crops", count=10, seed=9, config=config, shard_size=5,
                  crop_kinds=("depth",))  # fmt: skip
    write_dataset(tmp_path / "one", workers=1, **kwargs)
    write_dataset(tmp_path / "two", workers=2, **kwargs)
    a, b = load_dataset(tmp_path / "one"), load_dataset(tmp_path / "two")
    assert sorted(a) == sorted(b) and "rgb" not in a
    for key in a:
        assert np.array_equal(a[key], b[key], equal_nan=True), key
    assert a["depth"].shape == (10, 128, 128)


def test_sequence_moves_smoothly_and_reads_back_with_a_stock_reader(tmp_path: Path, config):
    fps = 15.0
    frames = list(generate_sequence(config, seed=3, seconds=2.0, fps=fps, hands=1))
    wrists = np.array([frame.hands[0].xyz[0] for _, frame in frames])
    steps = np.linalg.norm(np.diff(wrists, axis=0), axis=1)
    assert steps.max() < 0.08, steps.max()  # < 1.2 m/s between frames at 15 fps
    assert steps.sum() > 0.05  # it does move

    path = tmp_path / "seq"
    assert write_sequence_bag(path, frames) == len(frames)
    with AnyReader([path]) as reader:  # the bag's own stored definitions
        by_topic = {c.topic: c for c in reader.connections}
        assert set(by_topic) == {topics.COLOR_TOPIC, topics.DEPTH_TOPIC,
                                 topics.CAMERA_INFO_TOPIC, topics.GROUND_TRUTH_TOPIC}  # fmt: skip

        def read(topic: str) -> list:
            return [reader.deserialize(raw, c.msgtype)
                    for c, _t, raw in reader.messages([by_topic[topic]])]  # fmt: skip

        truths = read(topics.GROUND_TRUTH_TOPIC)
        colour = read(topics.COLOR_TOPIC)
    assert len(truths) == len(colour) == len(frames)
    for (stamp, frame), truth, image in zip(frames, truths, colour, strict=True):
        assert messages.stamp_to_ns(truth.header.stamp) == stamp
        assert messages.stamp_to_ns(image.header.stamp) == stamp
        back = messages.hand_frame_from_message(truth).hands[0]
        np.testing.assert_allclose(back.xyz, frame.hands[0].xyz, atol=1e-6)
        np.testing.assert_array_equal(back.scores > 0, frame.hands[0].visible & _inside(frame))
    array, encoding = image_to_array(colour[0])
    assert encoding == "rgb8" and array.tobytes() == frames[0][1].rgb.tobytes()


def _inside(frame) -> np.ndarray:
    u, v = frame.hands[0].uv.T
    return (u >= -0.5) & (u < 639.5) & (v >= -0.5) & (v < 479.5)


def test_config_round_trips_through_yaml_and_rejects_unknown_fields(tmp_path: Path):
    config = SynthConfig()
    config.placement.distance_m = (0.3, 0.6)
    path = tmp_path / "synth.yaml"
    config.to_yaml(path)
    assert SynthConfig.from_yaml(path) == config
    path.write_text("placement:\n  distance: [0.3, 0.6]\n")
    with pytest.raises(ConfigError, match=r"config.placement: unknown field\(s\) \['distance'\]"):
        SynthConfig.from_yaml(path)
    path.write_text("placement:\n  distance_m: [0.3, 0.6\n")  # a hand-editing slip
    with pytest.raises(ConfigError, match="not valid YAML"):
        SynthConfig.from_yaml(path)


EVAL_DOCS = Path(__file__).parents[2] / "docs" / "eval"


@pytest.mark.parametrize("path", sorted(EVAL_DOCS.glob("*.yaml")), ids=lambda p: p.name)
def test_the_data_configs_quoted_in_the_eval_docs_still_load(path: Path):
    # The shipped weights' reports give these as --config of their data commands.
    config = SynthConfig.from_yaml(path)
    assert config.to_dict() != SynthConfig().to_dict()


def test_a_different_config_gives_a_differently_distributed_set(tmp_path: Path):
    near = SynthConfig()
    near.placement.distance_m = (0.3, 0.4)
    rng = np.random.default_rng(0)
    depths = [new_scene(rng, near).hands[0].placement.translation[2] for _ in range(50)]
    assert 0.3 <= min(depths) and max(depths) <= 0.4
