"""The depth model's shipped weights: where they came from, and that they still work.

The weights are made by the repo's own command (docs/eval/residual_attention_3d.md); these
tests hold the checkpoint to its record and to a fresh held-out sample of the world.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hand_pose_ros.inference import ModelRunner
from hand_pose_ros.models.checkpoint import read_metadata
from hand_pose_ros.synth.config import SynthConfig
from hand_pose_ros.synth.shards import new_scene
from hand_pose_ros.synth.world import render_crops

PACKAGE = Path(__file__).resolve().parents[1]
WEIGHTS = PACKAGE / "models" / "residual_attention_3d.safetensors"
REPORT = PACKAGE.parent / "docs" / "eval" / "residual_attention_3d.md"
HELD_OUT = PACKAGE.parent / "docs" / "eval" / "residual_attention_3d_synth" / "metrics.json"


def test_the_weights_say_how_they_were_made() -> None:
    meta = read_metadata(WEIGHTS)
    assert meta["architecture"] == "residual_attention_3d"
    training = meta["training"]
    assert training["command"].startswith("hand-pose train --model residual_attention_3d")
    assert training["data"]["train"].startswith("synth:")
    configs = training["data"]["synth"]["config"]  # the world's whole config, one per set
    assert all(c["sensor"] for c in (configs if isinstance(configs, list) else [configs]))
    started = training.get("init_from")  # a fine-tuned run records the run it began from
    if started is not None:
        assert started["training"]["command"].startswith("hand-pose train --model")
    assert training["hardware"] and training["train_seconds"] > 0
    assert re.fullmatch(r"[0-9a-f]{40}", meta["code_version"]["git_commit"])
    assert np.isfinite(meta["metrics"]["mean_error_mm"])


def test_the_report_quotes_the_held_out_evaluation() -> None:
    results = json.loads(HELD_OUT.read_text())["results"]
    model = results["residual_attention_3d"]["mean_mm"]
    baseline = results["mean pose (baseline)"]["mean_mm"]
    text = REPORT.read_text()
    assert f"{model:.1f} mm" in text and f"{baseline:.1f} mm" in text
    assert read_metadata(WEIGHTS)["training"]["command"] in text


@pytest.fixture(scope="module")
def fresh_crops() -> list:
    """Crops of scenes no training or evaluation set used (seed 20261121)."""
    rng = np.random.default_rng(20261121)
    config = SynthConfig()
    crops: list = []
    while len(crops) < 32:
        crops.extend(render_crops(new_scene(rng, config), rng, config, kinds=("depth",)))
    return crops[:32]


def test_the_model_beats_the_mean_pose_on_fresh_scenes(fresh_crops) -> None:
    runner = ModelRunner.from_checkpoint(WEIGHTS, backend="onnxruntime")
    joints, _ = runner.predict(np.stack([crop.depth for crop in fresh_crops]))
    truth = np.stack([crop.depth_joints for crop in fresh_crops])
    half_cube_mm = 125.0
    error = np.linalg.norm(joints.reshape(-1, 21, 3) - truth, axis=-1).mean() * half_cube_mm
    from safetensors import safe_open

    with safe_open(str(WEIGHTS), framework="np") as handle:
        mean_pose = handle.get_tensor("prior_mean").reshape(21, 3)
    baseline = np.linalg.norm(mean_pose - truth, axis=-1).mean() * half_cube_mm
    assert error < 0.8 * baseline, (error, baseline)


def test_the_attention_masks_attend(fresh_crops) -> None:
    """Seed 002's point is its attention: every module's soft mask must vary over the image.
    (The first shipped run's masks were 0.5 everywhere: Adam's L2 had zeroed their weights;
    docs/eval/residual_attention_3d.md.)"""
    import torch

    from hand_pose_ros.models.checkpoint import load_model
    from hand_pose_ros.models.residual_attention_blocks import AttentionModule

    model, _ = load_model(WEIGHTS)
    masks: list[torch.Tensor] = []
    modules = [m for m in model.modules() if isinstance(m, AttentionModule)]
    for module in modules:
        module.mask_head.register_forward_hook(lambda _m, _i, out: masks.append(out))
    with torch.no_grad():
        model(torch.from_numpy(np.stack([c.depth for c in fresh_crops])[:, None]).float())
    assert len(masks) == len(modules) == 3
    for mask in masks:
        assert float(mask.std(dim=(2, 3)).mean()) > 0.01  # spread over each feature map
