"""Seed 002's pipeline end to end: depth image -> localiser -> cube crop -> model -> metres."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hand_pose_ros import cli
from hand_pose_ros.datasets import MsraDataset
from hand_pose_ros.datasets.msra import MSRA_TO_PROJECT
from hand_pose_ros.evaluation import load_results
from hand_pose_ros.evaluation.input_noise import NoisyInput
from hand_pose_ros.evaluation.real_frames import (
    camera_for,
    check_frame,
    hand_region,
    keypoints_on_region,
    load_depth_png,
)
from hand_pose_ros.evaluation.synthetic_check import check_synthetic_frames
from hand_pose_ros.geometry import CameraModel
from hand_pose_ros.hand import KeypointStatus
from hand_pose_ros.inference import InferenceError, ModelRunner
from hand_pose_ros.inference.depth_hands import DepthHandEstimator
from hand_pose_ros.inference.depth_views import VIEW_SETS, unshow
from hand_pose_ros.inference.refinement import (
    DEFAULT_REFINE_PASSES,
    MAX_REFINE_PASSES,
    refined_center,
)
from hand_pose_ros.localise import LocaliserConfig
from hand_pose_ros.models import build_model
from hand_pose_ros.models.checkpoint import save_checkpoint
from hand_pose_ros.synth.config import SynthConfig

SR305 = Path(__file__).parent / "data" / "sr305_real_depth"
SR305_INTRINSICS = (476.007, 476.007, 313.683, 242.755)
SR305_UNIT_M = 0.000125
SR305_LIKE = Path(__file__).parents[2] / "docs" / "eval" / "sr305_like_open_palms.yaml"
TINY = {"widths": [8, 8, 8, 8], "stem_channels": 8, "fc_units": 16, "embedding": 8}


@pytest.fixture(scope="module")
def mean_pose_checkpoint(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A model that always answers one known pose: its prior's mean (embedding forced to 0)."""
    torch.manual_seed(0)
    model = build_model("residual_attention_3d", **TINY)
    rng = np.random.default_rng(0)
    mean = rng.uniform(-0.5, 0.5, 63)
    basis = np.linalg.qr(rng.normal(size=(63, 8)))[0].T
    model.init_prior(basis, mean)
    last = model.regressor[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    path = tmp_path_factory.mktemp("ckpt") / "mean.safetensors"
    save_checkpoint(path, model.eval(), training={"command": "test"})
    return path, mean.reshape(21, 3)


def _frame(name: str = "20210326-231615/100.png") -> tuple[np.ndarray, object]:
    depth = load_depth_png(SR305 / name, SR305_UNIT_M)
    return depth, camera_for(depth, SR305_INTRINSICS)


def test_the_pipeline_maps_the_models_joints_back_to_metres(mean_pose_checkpoint) -> None:
    path, mean = mean_pose_checkpoint
    depth, camera = _frame()
    hands = DepthHandEstimator.from_checkpoint(path, refine_passes=0).estimate(depth, camera)
    assert len(hands) == 1
    hand = hands[0]
    # Without refinement the cube crop the model saw is centred on the localiser's centre,
    # 250 mm wide.
    np.testing.assert_allclose(hand.cube.center_xyz, hand.location.center_xyz)
    np.testing.assert_allclose(hand.cube.cube_m, 0.25)
    assert hand.crop.shape == (128, 128) and hand.crop.min() >= -1 and hand.crop.max() <= 1
    # Joints: half-cube units around the centre -> camera-frame metres; pixels by projection.
    expected = hand.location.center_xyz + mean * 0.125
    np.testing.assert_allclose(hand.result.xyz, expected, atol=1e-5)
    np.testing.assert_allclose(hand.result.uv, camera.project(expected), atol=1e-3)
    assert (hand.result.status == KeypointStatus.DEPTH_FROM_MODEL).all()
    assert np.all((hand.result.scores >= 0) & (hand.result.scores <= 1))
    # With test-time views, each view's answer (always the same pose, here) is turned back
    # into the crop's frame and averaged: mirrored and turned copies of the pose, not the pose.
    views = VIEW_SETS["six"]
    (viewed,) = DepthHandEstimator.from_checkpoint(path, views=views, refine_passes=0).estimate(
        depth, camera
    )
    averaged = np.mean([unshow(mean[None], view)[0] for view in views], axis=0)
    assert np.abs(averaged - mean).max() > 0.05
    np.testing.assert_allclose(viewed.result.xyz, hand.location.center_xyz + averaged * 0.125,
                               atol=1e-5)  # fmt: skip


def test_refinement_passes_recentre_the_cube_on_the_predicted_keypoints(mean_pose_checkpoint):
    path, mean = mean_pose_checkpoint
    depth, camera = _frame()
    (plain,) = DepthHandEstimator.from_checkpoint(path, refine_passes=0).estimate(depth, camera)
    (refined,) = DepthHandEstimator.from_checkpoint(path, refine_passes=2).estimate(depth, camera)
    # The localiser's result is kept; each pass centres the next cube on the last answer's
    # keypoint centroid. This model always answers the same pose, so every pass moves the
    # centre by that pose's centroid: twice for two passes.
    np.testing.assert_allclose(refined.location.center_xyz, plain.location.center_xyz)
    step = mean.mean(axis=0) * 0.125
    assert np.linalg.norm(step) > 0.005
    np.testing.assert_allclose(refined.cube.center_xyz, plain.location.center_xyz + 2 * step,
                               atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(refined.result.xyz, refined.cube.center_xyz + mean * 0.125,
                               atol=1e-5)  # fmt: skip
    assert not np.array_equal(refined.crop, plain.crop)
    # The default is the pipeline's two passes; out-of-range counts are refused.
    assert DepthHandEstimator.from_checkpoint(path).refine_passes == DEFAULT_REFINE_PASSES == 2
    for passes in (-1, MAX_REFINE_PASSES + 1):
        with pytest.raises(InferenceError, match="refine_passes"):
            DepthHandEstimator.from_checkpoint(path, refine_passes=passes)
    # An unusable answer (not finite, behind the camera, or outside the localiser's cube)
    # leaves the centre where it was; one inside the cube moves it.
    found, previous = np.array([0.0, 0.0, 0.5]), np.array([0.01, 0.0, 0.5])

    def centroid_at(*xyz: float) -> np.ndarray:
        return refined_center(np.tile(xyz, (21, 1)), previous, found, 0.25)

    assert np.array_equal(centroid_at(0.0, 0.0, -0.2), previous)
    assert np.array_equal(centroid_at(np.nan, 0.0, 0.5), previous)
    assert np.array_equal(centroid_at(0.2, 0.0, 0.5), previous)  # 200 mm aside: another object
    np.testing.assert_allclose(centroid_at(0.1, -0.05, 0.6), [0.1, -0.05, 0.6])


def test_no_hand_gives_no_hands_and_rgb_models_are_refused(mean_pose_checkpoint, tmp_path) -> None:
    path, _ = mean_pose_checkpoint
    depth, camera = _frame()
    estimator = DepthHandEstimator.from_checkpoint(path)
    assert estimator.estimate(np.full_like(depth, np.nan), camera) == []
    assert estimator.estimate(np.zeros_like(depth), camera) == []
    rgb = tmp_path / "rgb.safetensors"
    save_checkpoint(rgb, build_model("gesture_net"))
    with pytest.raises(InferenceError, match="not depth cubes"):
        DepthHandEstimator(ModelRunner.from_checkpoint(rgb))
    with pytest.raises(InferenceError, match="max_hands"):
        DepthHandEstimator(ModelRunner.from_checkpoint(path), max_hands=0)
    with pytest.raises(InferenceError, match="at least one view"):
        DepthHandEstimator(ModelRunner.from_checkpoint(path), views=())


def test_the_hand_region_holds_the_hand_not_the_body(mean_pose_checkpoint) -> None:
    path, _ = mean_pose_checkpoint
    depth, camera = _frame()
    (hand,) = DepthHandEstimator.from_checkpoint(path).estimate(depth, camera)
    region = hand_region(depth, hand)
    # Every region pixel is within the cube's depth of the localiser's centre (not the last
    # pass's cube: the region must not depend on the model), and the region is bigger than
    # the localiser's seed (it grows over the whole hand) yet hand-sized.
    assert np.all(np.abs(depth[region] - hand.location.center_xyz[2]) <= 0.125)
    assert region.sum() >= hand.location.mask.sum()
    area_cm2 = region.sum() * (hand.location.center_xyz[2] / camera.fx) ** 2 * 1e4
    assert 50 < area_cm2 < 600
    # A keypoint far off the hand is not on it; the centre is.
    uv = np.array([hand.location.center_uv, [5.0, 5.0]])
    assert keypoints_on_region(uv, region).tolist() == [True, False]
    check = check_frame("x", depth, [hand])
    assert check.on_hand[0].shape == (21,)


def test_eval_real_command_reports_and_draws(mean_pose_checkpoint, tmp_path: Path, capsys) -> None:
    path, _ = mean_pose_checkpoint
    frames = tmp_path / "frames"
    frames.mkdir()
    for name in ("20210326-231615/100.png", "20210326-230536/30.png"):
        (frames / name).parent.mkdir(exist_ok=True)
        (frames / name).write_bytes((SR305 / name).read_bytes())
    sheet = tmp_path / "sheet.png"
    argv = ["eval-real", "--checkpoint", str(path), "--frames", str(frames), "--intrinsics",
            *map(str, SR305_INTRINSICS), "--depth-unit-m", str(SR305_UNIT_M),
            "--out", str(sheet)]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "hands found in 2/2 frames" in out and "keypoints on the hand" in out
    assert "mean pose at the same centres" in out
    # Per recording and per keypoint, adding up to the total.
    shares = re.findall(r"^  20210326-\d+: (\d+)/21 = ", out, flags=re.MULTILINE)
    misses = re.search(r"misses per keypoint: ([\d ]+)", out)
    assert len(shares) == 2 and misses is not None
    total = re.search(r"keypoints on the hand: (\d+)/42", out)
    assert total is not None and sum(map(int, shares)) == int(total.group(1))
    assert sum(map(int, misses.group(1).split())) == 42 - int(total.group(1))
    # The noise probe runs the same check on noised input (the mean-pose "model" gives the
    # same pose whatever it sees, so only the localiser's centres can move).
    assert cli.main([*argv, "--input-noise-mm", "2", "--seed", "1"]) == 0
    assert "keypoints on the hand" in capsys.readouterr().out
    assert sheet.stat().st_size > 10_000
    assert cli.main([*argv[:4], str(tmp_path / "empty"), *argv[5:]]) == 1
    assert "no .png files" in capsys.readouterr().err
    assert cli.main([*argv, "--refine-passes", "0"]) == 0
    assert "keypoints on the hand" in capsys.readouterr().out
    assert cli.main([*argv, "--refine-passes", "9"]) == 1
    assert "refine_passes must be in [0, 5]" in capsys.readouterr().err


def _write_msra_frame(root: Path, depth_m: np.ndarray, joints_xyz: np.ndarray) -> None:
    """One MSRA15 frame in ``root/P0/1``: the ``.bin`` box is the whole image (mm), the
    joints (MSRA's order, metres, optical frame) go to ``joint.txt`` as MSRA stores them
    (mm, y up, z negative)."""
    folder = root / "P0" / "1"
    folder.mkdir(parents=True, exist_ok=True)
    height, width = depth_m.shape
    header = np.array([width, height, 0, 0, width, height], "<u4").tobytes()
    depth_mm = np.nan_to_num(depth_m * 1000.0, nan=0.0).astype("<f4")
    (folder / "000000_depth.bin").write_bytes(header + depth_mm.tobytes())
    msra_mm = joints_xyz * 1000.0 * [1.0, -1.0, -1.0]
    (folder / "joint.txt").write_text("1\n" + " ".join(f"{v:.6f}" for v in msra_mm.ravel()))


def test_eval_on_public_frames_runs_the_pipeline_with_its_refinement_passes(
    mean_pose_checkpoint, tmp_path: Path, capsys
) -> None:
    path, _ = mean_pose_checkpoint
    # An SR305 frame at half size is an MSRA15 frame (f = 238 px against MSRA's 241.42).
    depth, _ = _frame()
    root = tmp_path / "msra"
    _write_msra_frame(root, depth[::2, ::2], np.zeros((21, 3)))
    frame = MsraDataset(root)[0]
    # The labels: what the pipeline answers (MSRA's 200 mm cube, two refinement passes), so
    # the evaluation scores ~0 mm only if it runs those passes.
    estimator = DepthHandEstimator.from_checkpoint(
        path, localiser=LocaliserConfig(cube_m=MsraDataset.cube_m), refine_passes=2
    )
    (hand,) = estimator.estimate(frame.depth_m, frame.camera)
    _write_msra_frame(root, depth[::2, ::2], hand.result.xyz[list(MSRA_TO_PROJECT)])
    np.testing.assert_allclose(MsraDataset(root)[0].joints_xyz, hand.result.xyz, atol=1e-6)

    report = tmp_path / "report"
    argv = ["eval", "--checkpoint", str(path), "--data", f"msra:{root}", "--out", str(report)]
    errors = {}
    for passes in ("2", "0"):
        assert cli.main([*argv, "--center", "localise", "--refine-passes", passes]) == 0
        errors[passes] = load_results(report)["residual_attention_3d"].mean_mm
        assert f"then {passes} refinement passes" in (report / "report.md").read_text()
    assert errors["2"] < 0.01
    # Without the passes the pose sits at the localiser's centre: two passes' steps away.
    assert errors["0"] > 5.0
    capsys.readouterr()
    assert cli.main([*argv, "--refine-passes", "1"]) == 1
    assert "only with --center localise" in capsys.readouterr().err
    assert cli.main([*argv, "--center", "localise", "--refine-passes", "9"]) == 1
    assert "must be in [0, 5]" in capsys.readouterr().err


def test_on_synthetic_frames_the_check_scores_the_truth_and_the_prediction(mean_pose_checkpoint):
    path, _ = mean_pose_checkpoint
    estimator = DepthHandEstimator.from_checkpoint(path)
    result = check_synthetic_frames(estimator, SynthConfig.from_yaml(SR305_LIKE), 3, seed=0)
    assert len(result.checks) == 3 and result.scored >= 2
    # The localiser finds each open palm in front of its person (the head is farther).
    assert result.found == result.scored
    # The truth lies on its own hand: the check's ceiling is high on whole open palms ...
    truth = np.stack(result.truth_on)
    assert truth.shape == (result.found, 21) and truth.mean() >= 0.9
    # ... while a pose unrelated to the hand (the random "mean") is centimetres off and
    # falls off the fingers.
    assert min(result.errors_m) > 0.03
    assert np.stack(result.prediction_on).mean() < truth.mean()


def test_eval_real_on_synthetic_frames(mean_pose_checkpoint, tmp_path: Path, capsys) -> None:
    path, _ = mean_pose_checkpoint
    sheet = tmp_path / "sheet.png"
    argv = ["eval-real", "--checkpoint", str(path), "--synthetic", "2", "--config",
            str(SR305_LIKE), "--out", str(sheet)]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "hands wholly in the image" in out and "keypoints on the hand: truth" in out
    assert sheet.stat().st_size > 10_000
    assert cli.main([*argv, "--views", "mirror"]) == 0  # the averaged pose: another error
    assert capsys.readouterr().out.split("mean 3D error")[1] != out.split("mean 3D error")[1]
    with pytest.raises(SystemExit):  # argparse: not a known set
        cli.main([*argv, "--views", "many"])
    assert "invalid choice" in capsys.readouterr().err
    # Bad arguments are refused with a message, not a traceback.
    assert cli.main([*argv[:4], "0", *argv[5:]]) == 1
    assert "at least 1" in capsys.readouterr().err
    assert cli.main(["eval-real", "--checkpoint", str(path), "--frames", str(SR305),
                     "--out", str(sheet)]) == 1  # fmt: skip
    assert "--intrinsics" in capsys.readouterr().err
    assert cli.main([*argv[:6], str(tmp_path / "missing.yaml"), *argv[7:]]) == 1
    assert "config file not found" in capsys.readouterr().err
    # One mode's options are refused in the other, not silently ignored.
    assert cli.main([*argv, "--depth-unit-m", "0.000125"]) == 1
    assert "--depth-unit-m: only with --frames" in capsys.readouterr().err
    assert cli.main(["eval-real", "--checkpoint", str(path), "--frames", str(SR305),
                     "--intrinsics", "1", "1", "1", "1", "--config", str(SR305_LIKE),
                     "--out", str(sheet)]) == 1  # fmt: skip
    assert "--config: only with --synthetic" in capsys.readouterr().err
    assert cli.main([*argv, "--input-noise-mm", "-1"]) == 1
    assert ">= 0" in capsys.readouterr().err


def test_noisy_input_noises_measured_pixels_only_and_repeats_for_a_seed() -> None:
    seen: list[np.ndarray] = []

    class Recorder:
        def estimate(self, depth_m: np.ndarray, camera: CameraModel) -> list:
            seen.append(depth_m)
            return []

    depth = np.full((60, 80), 0.6, np.float32)
    depth[:10] = 0.0
    depth[10:20] = np.nan
    camera = CameraModel.from_intrinsics(70.0, 70.0, 40.0, 30.0, 80, 60)
    original = depth.copy()
    for seed in (5, 5, 6):
        NoisyInput(Recorder(), 0.004, seed).estimate(depth, camera)
    np.testing.assert_array_equal(depth, original)  # the caller's frame is not touched
    first, again, other = seen
    assert np.all(first[:10] == 0.0) and np.all(np.isnan(first[10:20]))
    assert abs(float(np.std(first[20:] - 0.6)) - 0.004) < 0.0003
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    with pytest.raises(ValueError, match=">= 0"):
        NoisyInput(Recorder(), -0.001)
