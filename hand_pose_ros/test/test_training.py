"""The shared trainer: augmentation, determinism, resuming, data parallelism, the commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from training_fixtures import TINY, write_depth_crops

from hand_pose_ros import cli
from hand_pose_ros.crop import CropError, transform_depth_crop
from hand_pose_ros.evaluation import load_results
from hand_pose_ros.models import build_model
from hand_pose_ros.models.checkpoint import load_model, read_metadata
from hand_pose_ros.training.augment import AugmentError, DepthAugmentConfig, augment_depth_crop
from hand_pose_ros.training.depth_data import DepthCropArrays, DepthCropSet
from hand_pose_ros.training.tasks import DepthPoseTask
from hand_pose_ros.training.trainer import TrainConfig, Trainer, TrainError, learning_rate_at

S = 128


def _marked_crop(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A crop whose joints are drawn as 3x3 squares at their (orthographic) pixels, at
    their own depth: the augmented joints must land on their own squares."""
    joints = rng.uniform(-0.6, 0.6, (21, 3))
    depth = np.ones((S, S), np.float32)
    for x, y, z in joints:
        u, v = np.round(np.array([x, y]) * S / 2 + (S - 1) / 2).astype(int)
        depth[v - 1 : v + 2, u - 1 : u + 2] = z
    return depth, joints


@pytest.mark.parametrize(
    ("theta", "scale", "shift"),
    [(0.0, 1.0, (0.0, 0.0, 0.0)), (0.5, 1.0, (0.0, 0.0, 0.0)), (-1.2, 1.1, (0.05, -0.08, 0.1)),
     (2.5, 0.9, (-0.1, 0.02, -0.05))],
)  # fmt: skip
def test_augmented_joints_stay_on_their_pixels_and_depths(theta, scale, shift) -> None:
    depth, joints = _marked_crop(np.random.default_rng(0))
    new_depth, new_joints = transform_depth_crop(depth, joints, theta=theta, scale=scale,
                                                 shift=np.array(shift))  # fmt: skip
    pixels = np.round(new_joints[:, :2] * S / 2 + (S - 1) / 2).astype(int)
    inside = ((pixels >= 0) & (pixels < S)).all(axis=1)
    assert inside.sum() >= 15
    seen = new_depth[pixels[inside, 1], pixels[inside, 0]]
    # Squares overlap now and then: most joints read their own depth back.
    assert np.mean(np.abs(seen - new_joints[inside, 2]) < 1e-4) > 0.8
    # Background stays +1 and the crop stays in range.
    assert new_depth.min() >= -1.0 and new_depth.max() <= 1.0
    assert np.mean(new_depth == 1.0) > 0.9


def test_augmentation_is_seeded_and_checks_its_ranges() -> None:
    depth, joints = _marked_crop(np.random.default_rng(1))
    config = DepthAugmentConfig()
    a = augment_depth_crop(depth, joints, 0.25, np.random.default_rng(5), config)
    b = augment_depth_crop(depth, joints, 0.25, np.random.default_rng(5), config)
    c = augment_depth_crop(depth, joints, 0.25, np.random.default_rng(6), config)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    off = augment_depth_crop(depth, joints, 0.25, np.random.default_rng(5),
                             DepthAugmentConfig(probability=0.0))  # fmt: skip
    assert np.array_equal(off[0], depth) and np.allclose(off[1], joints)
    with pytest.raises(AugmentError, match="rotation_deg"):
        DepthAugmentConfig(rotation_deg=200.0)
    with pytest.raises(CropError, match="scale must be > 0"):
        transform_depth_crop(depth, joints, scale=0.0)


def test_surface_noise_lands_on_measured_pixels_only_and_is_off_by_default() -> None:
    depth, joints = _marked_crop(np.random.default_rng(1))
    still = {"rotation_deg": 0.0, "scale_sigma": 0.0, "shift_sigma_m": 0.0}
    plain = augment_depth_crop(depth, joints, 0.25, np.random.default_rng(5),
                               DepthAugmentConfig(**still))  # fmt: skip
    noisy = augment_depth_crop(depth, joints, 0.25, np.random.default_rng(5),
                               DepthAugmentConfig(surface_noise_m=0.006, **still))  # fmt: skip
    measured = plain[0] < 1.0
    # The background stays background; the measured pixels move, by at most 6 mm's worth
    # (0.048 half-cube units) times a few sigma, and stay in range; joints are untouched.
    assert np.array_equal(noisy[0][~measured], plain[0][~measured])
    assert np.all(noisy[0][measured] < 1.0 + 1e-6) and noisy[0].min() >= -1.0
    step = (noisy[0] - plain[0])[measured]
    assert 0.0 < step.std() < 0.048 and np.abs(step).max() < 6 * 0.048
    assert np.array_equal(noisy[1], plain[1])
    # Off by default.
    assert DepthAugmentConfig().surface_noise_m == 0.0
    with pytest.raises(AugmentError, match="surface_noise_m"):
        DepthAugmentConfig(surface_noise_m=-0.001)


def test_learning_rate_drops_tenfold_at_the_milestones() -> None:
    config = TrainConfig(lr_drop_epochs=(30.0, 50.0))
    assert learning_rate_at(config, 0, 100) == pytest.approx(1e-4)
    assert learning_rate_at(config, 2999, 100) == pytest.approx(1e-4)
    assert learning_rate_at(config, 3000, 100) == pytest.approx(1e-5)
    assert learning_rate_at(config, 5000, 100) == pytest.approx(1e-6)
    with pytest.raises(TrainError, match="precision"):
        TrainConfig(precision="fp8")


def _arrays(count: int, seed: int) -> DepthCropArrays:
    rng = np.random.default_rng(seed)
    depth = np.ones((count, S, S), np.float16)
    joints = rng.uniform(-0.5, 0.5, (count, 21, 3)).astype(np.float32)
    for i in range(count):  # something the net can see: a blob where the wrist is
        u, v = (joints[i, 0, :2] * S / 2 + S / 2).astype(int)
        depth[i, max(v - 10, 0) : v + 10, max(u - 10, 0) : u + 10] = joints[i, 0, 2]
    return DepthCropArrays(depth, joints, np.full(count, 0.25, np.float32),
                           np.tile([0.0, 0.0, 0.5], (count, 1)).astype(np.float32))  # fmt: skip


def _train(out: Path, *, resume: bool = False, **overrides) -> Trainer:
    torch.manual_seed(0)
    model = build_model("residual_attention_3d", **TINY)
    settings = dict(epochs=2, batch_size=8, val_every_steps=3, resume_every_steps=2, seed=3,
                    channels_last=False)
    settings.update(overrides)
    train_set = DepthCropSet(_arrays(32, 0), augment=DepthAugmentConfig(), seed=3)
    trainer = Trainer(model, DepthPoseTask(), train_set, DepthCropSet(_arrays(16, 1)),
                      TrainConfig(**settings), out, describe={"command": "test"},
                      progress=False)  # fmt: skip
    trainer.fit(resume=resume)
    return trainer


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_model(path)[0].state_dict()


def test_training_is_deterministic_and_keeps_the_best_checkpoint(tmp_path: Path) -> None:
    _train(tmp_path / "a")
    _train(tmp_path / "b")
    a, b = (
        _weights(tmp_path / "a" / "last.safetensors"),
        _weights(tmp_path / "b" / "last.safetensors"),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    history = json.loads((tmp_path / "a" / "history.json").read_text())
    assert [h["step"] for h in history] == [3, 6, 8]  # every 3 steps, and the end
    best = min(history, key=lambda h: h["mean_error_mm"])
    meta = read_metadata(tmp_path / "a" / "best.safetensors")
    assert meta["metrics"]["mean_error_mm"] == pytest.approx(best["mean_error_mm"])
    assert meta["training"]["command"] == "test" and meta["training"]["seed"] == 3
    assert meta["training"]["recipe"]["batch_size"] == 8
    # The PCA prior came from the training poses (not its random start).
    assert float(_weights(tmp_path / "a" / "best.safetensors")["prior_basis"].abs().sum()) > 0


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    _train(tmp_path / "whole")
    _train(tmp_path / "parts", max_steps=5)  # stops mid-epoch
    with pytest.raises(TrainError, match="--resume"):
        _train(tmp_path / "elsewhere", resume=True)
    _train(tmp_path / "parts", resume=True)
    whole = _weights(tmp_path / "whole" / "last.safetensors")
    parts = _weights(tmp_path / "parts" / "last.safetensors")
    assert all(torch.equal(whole[k], parts[k]) for k in whole)


def test_bf16_training_runs_and_learns(tmp_path: Path) -> None:
    trainer = _train(tmp_path, precision="bf16", epochs=6, val_every_steps=0)
    history = json.loads((tmp_path / "history.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert trainer.config.precision == "bf16"


@pytest.fixture(scope="module")
def synth_sets(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synth")
    write_depth_crops(root / "train", 48, 1)
    write_depth_crops(root / "val", 16, 2)
    return root / "train", root / "val"


def test_train_and_eval_commands_end_to_end(synth_sets, tmp_path: Path, capsys) -> None:
    train, val = synth_sets
    run = tmp_path / "run"
    argv = ["train", "--model", "residual_attention_3d", "--model-config", json.dumps(TINY),
            "--data", f"synth:{train}", "--val-data", f"synth:{val}", "--out", str(run),
            "--epochs", "1", "--batch-size", "8", "--rotation-deg", "180", "--quiet"]  # fmt: skip
    assert cli.main(argv) == 0
    assert "best validation mean_error_mm" in capsys.readouterr().out
    assert cli.main(argv) == 1  # the folder is not empty any more
    assert "not empty" in capsys.readouterr().err
    meta = read_metadata(run / "best.safetensors")
    assert meta["training"]["data"]["train"] == f"synth:{train}"
    assert meta["training"]["data"]["train_samples"] == 48
    assert meta["training"]["data"]["augment"]["rotation_deg"] == 180.0
    synth = meta["training"]["data"]["synth"]  # the world the data came from
    assert synth["seed"] == 1 and synth["count"] == 48 and "sensor" in synth["config"]

    report = tmp_path / "report"
    assert cli.main(["eval", "--checkpoint", str(run / "best.safetensors"),
                     "--data", f"synth:{val}", "--out", str(report)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "residual_attention_3d: mean" in out and "mean pose (baseline): mean" in out
    results = load_results(report)
    assert sorted(results) == ["mean pose (baseline)", "residual_attention_3d"]
    assert all(np.isfinite(r.mean_mm) and r.frames == 16 for r in results.values())
    assert (report / "per_joint_error.png").stat().st_size > 1000
    text = (report / "report.md").read_text()
    assert "hand-pose train" in text or "Checkpoint" in text
    # Averaged over test-time views: another prediction of the same crops, named in the report.
    assert cli.main(["eval", "--checkpoint", str(run / "best.safetensors"), "--data",
                     f"synth:{val}", "--out", str(report), "--views", "mirror"]) == 0  # fmt: skip
    viewed = load_results(report)["residual_attention_3d"]
    assert viewed.mean_mm != results["residual_attention_3d"].mean_mm
    assert "test-time views: mirror" in (report / "report.md").read_text()
    # Synthetic crops are cut already: there is no frame to run the localiser on.
    localised = ["eval", "--checkpoint", str(run / "best.safetensors"), "--data",
                 f"synth:{val}", "--out", str(report), "--center", "localise"]  # fmt: skip
    assert cli.main(localised) == 1
    assert "needs a public dataset's frames" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "mobile_heatmap", "--data", "synth:x"], "depth models so far"),
        (["--model", "residual_attention_3d", "--data", "nowhere"], "expected KIND:PATH"),
        (
            ["--model", "residual_attention_3d", "--data", "synth:/no/such"],
            "not a synthetic dataset",
        ),
        (["--model", "residual_attention_3d", "--data", "kinect:/x"], "unknown"),
        (["--model", "nope", "--data", "synth:x"], "nope"),
        (
            ["--model", "residual_attention_3d", "--data", "synth:x", "--rotation-deg", "270"],
            "rotation_deg must be in [0, 180]",
        ),
        (
            ["--model", "residual_attention_3d", "--data", "synth:x", "--surface-noise-mm", "90"],
            "surface_noise_m must be in [0, 0.05]",
        ),
        (
            ["--model", "residual_attention_3d", "--data", "synth:x", "--no-augment",
             "--surface-noise-mm", "4"],
            "--no-augment takes no",
        ),
    ],
)
def test_train_command_explains_what_is_wrong(argv, message, tmp_path: Path, capsys) -> None:
    assert cli.main(["train", *argv, "--out", str(tmp_path / "run")]) == 1
    assert message in capsys.readouterr().err


def test_torchrun_trains_with_two_gloo_processes(synth_sets, tmp_path: Path) -> None:
    train, val = synth_sets
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "hand_pose_ros", "train",
               "--model", "residual_attention_3d",
               "--model-config", json.dumps(TINY), "--data", f"synth:{train}",
               "--val-data", f"synth:{val}", "--out", str(run), "--epochs", "1",
               "--batch-size", "8", "--device", "cpu", "--quiet"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    meta = read_metadata(run / "best.safetensors")
    assert meta["training"]["processes"] == 2
    # 48 samples over 2 processes, 8 a batch: 3 steps an epoch, each on 16 samples.
    assert meta["training"]["step"] == 3
    assert "trained 3 steps" in done.stdout


def test_several_synthetic_sets_train_as_one(synth_sets) -> None:
    from hand_pose_ros.synth.shards import ShardError, load_dataset
    from hand_pose_ros.training.sources import open_crop_source

    train, val = synth_sets
    both = open_crop_source(f"synth:{train},{val}").crops
    parts = [load_dataset(train), load_dataset(val)]
    assert len(both) == 64
    np.testing.assert_array_equal(both.depth, np.concatenate([p["depth"] for p in parts]))
    np.testing.assert_array_equal(both.joints, np.concatenate([p["depth_joints"] for p in parts]))
    with pytest.raises(ShardError, match="no array 'rgb'"):  # depth-only shards
        load_dataset([train, val], fields=["depth", "rgb"])
