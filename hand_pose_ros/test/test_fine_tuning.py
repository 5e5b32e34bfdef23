"""Fine-tuning: the cosine schedule with warm-up, Adam's L2 against AdamW's decoupled decay,
and warm starts from a checkpoint with some tensors re-initialised."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from torch import nn
from training_fixtures import TINY, write_depth_crops

from hand_pose_ros import cli
from hand_pose_ros.models import build_model
from hand_pose_ros.models.checkpoint import load_model, read_metadata, save_checkpoint
from hand_pose_ros.training.trainer import (
    TrainConfig,
    TrainError,
    learning_rate_at,
    make_optimizer,
)
from hand_pose_ros.training.warm_start import WarmStartError, warm_start

MASKS = r"features\.(1|3|5)\.(down|skips|up|mask_head)\."


def test_cosine_schedule_falls_to_zero_after_a_linear_warm_up() -> None:
    config = TrainConfig(learning_rate=1e-3, epochs=4, lr_schedule="cosine", warmup_steps=10)
    assert learning_rate_at(config, 0, 100) == pytest.approx(1e-4)  # 1/10 of the way up
    assert learning_rate_at(config, 4, 100) == pytest.approx(5e-4, rel=0.01)
    assert learning_rate_at(config, 200, 100) == pytest.approx(5e-4)  # half way: half
    assert learning_rate_at(config, 300, 100) == pytest.approx(1e-3 * (1 - 2**-0.5) / 2)
    assert learning_rate_at(config, 400, 100) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate_at(config, 450, 100) == pytest.approx(0.0, abs=1e-12)  # stays there
    rates = [learning_rate_at(config, step, 100) for step in range(10, 400)]
    assert all(a >= b for a, b in itertools.pairwise(rates))
    for bad, message in ((dict(optimizer="sgd"), "optimizer"),
                         (dict(lr_schedule="linear"), "schedule"),
                         (dict(warmup_steps=-1), "warm-up")):  # fmt: skip
        with pytest.raises(TrainError, match=message):
            TrainConfig(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("optimizer", "lost"), [("adam", (0.05, 0.1)), ("adamw", (0, 1e-5))])
def test_adam_l2_drives_weights_without_loss_gradient_to_zero_and_adamw_does_not(
    optimizer: str, lost: tuple[float, float]
) -> None:
    """The mechanism that silenced residual_attention_3d's attention masks: under Adam the
    L2 term of a weight the loss does not move is normalised like any gradient, so the
    weight falls by about the learning rate per step however small it is; AdamW takes
    lr x decay x weight (3e-8 here) a step."""
    weight = nn.Parameter(torch.full((4,), 0.1))
    model = nn.Module()
    model.weight = weight
    config = TrainConfig(learning_rate=1e-3, weight_decay=3e-4, optimizer=optimizer)
    opt = make_optimizer(config, model)
    for _ in range(100):
        opt.zero_grad()
        (weight.sum() * 0.0).backward()  # a zero loss gradient
        opt.step()
    shrunk = 0.1 - float(weight.detach().abs().max())
    assert lost[0] <= shrunk < lost[1]


def _checkpoint(path: Path, seed: int, **config) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model("residual_attention_3d", **{**TINY, **config})
    save_checkpoint(path, model, training={"command": "the first run"}, metrics={"m": 1.0})
    return model


def test_warm_start_loads_the_weights_except_the_reinitialised_ones(tmp_path: Path) -> None:
    trained = _checkpoint(tmp_path / "trained.safetensors", seed=1)
    torch.manual_seed(2)
    model = build_model("residual_attention_3d", **TINY)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    record = warm_start(model, tmp_path / "trained.safetensors", reinit=MASKS)
    state, source = model.state_dict(), trained.state_dict()
    masked = [k for k in state if ".mask_head." in k or ".down." in k]
    assert masked and record["reinit_tensors"] >= len(masked)
    for name, value in state.items():
        from_checkpoint = torch.equal(value, source[name])
        fresh = torch.equal(value, initial[name])
        if any(f"features.{i}.{part}." in name for i in (1, 3, 5)
               for part in ("down", "skips", "up", "mask_head")):  # fmt: skip
            assert fresh, name
        else:
            assert from_checkpoint, name
    assert not torch.equal(state["stem.0.weight"], initial["stem.0.weight"])
    assert record["training"]["command"] == "the first run" and record["reinit"] == MASKS
    assert warm_start(model, tmp_path / "trained.safetensors")["reinit_tensors"] == 0
    assert all(torch.equal(v, source[k]) for k, v in model.state_dict().items())


def test_warm_start_refuses_what_does_not_fit(tmp_path: Path) -> None:
    _checkpoint(tmp_path / "trained.safetensors", seed=1)
    _checkpoint(tmp_path / "wider.safetensors", seed=1, fc_units=32)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    model = build_model("residual_attention_3d", **TINY)
    cases = [("wider.safetensors", None, "config"), ("junk.safetensors", None, "junk"),
             ("trained.safetensors", "nothing\\.here", "matches no tensor"),
             ("trained.safetensors", "(", "not a regular expression")]  # fmt: skip
    for name, reinit, message in cases:
        with pytest.raises(WarmStartError, match=message):
            warm_start(model, tmp_path / name, reinit=reinit)


def test_joint_distance_loss_is_the_mean_distance_of_the_labelled_joints() -> None:
    torch.manual_seed(0)
    output, target = torch.randn(3, 63), torch.randn(3, 63)
    weights = torch.ones(3, 63)
    weights[1, 6:9] = 0.0  # joint 2 of item 1 unlabelled
    labelled = weights.reshape(3, 21, 3)[..., 0]
    distance = (output - target).reshape(3, 21, 3).norm(dim=-1)
    targets = {"joints": target, "weights": weights}
    by_distance = build_model("residual_attention_3d", **TINY, loss="joint_distance")
    expected = (distance * labelled).sum() / labelled.sum()
    assert float(by_distance.loss(output, targets)) == pytest.approx(float(expected), rel=1e-5)
    squared = ((output - target) ** 2 * weights).sum() / weights.sum()
    paper = build_model("residual_attention_3d", **TINY)  # the default stays the paper's
    assert float(paper.loss(output, targets)) == pytest.approx(float(squared), rel=1e-5)
    perfect = target.clone().requires_grad_()
    exact = by_distance.loss(perfect, targets)
    exact.backward()  # a perfect prediction: the epsilon's floor and a zero gradient, not NaN
    assert float(exact.detach()) == pytest.approx(1e-3) and perfect.grad is not None
    assert torch.equal(perfect.grad, torch.zeros_like(perfect))
    with pytest.raises(ValueError, match="loss"):
        build_model("residual_attention_3d", **TINY, loss="l1")


def test_a_fine_tune_may_change_the_loss_but_not_the_architecture(tmp_path: Path) -> None:
    _checkpoint(tmp_path / "trained.safetensors", seed=1)
    model = build_model("residual_attention_3d", **TINY, loss="joint_distance", dropout=0.1)
    warm_start(model, tmp_path / "trained.safetensors")  # no weight depends on them
    # A checkpoint from before the option has no "loss" in its config at all.
    torch.manual_seed(1)
    older = build_model("residual_attention_3d", **TINY)
    del older._config["loss"]
    save_checkpoint(tmp_path / "older.safetensors", older)
    assert "loss" not in read_metadata(tmp_path / "older.safetensors")["config"]
    assert load_model(tmp_path / "older.safetensors")[0].config["loss"] == "mse"
    warm_start(model, tmp_path / "older.safetensors")


def test_train_command_fine_tunes_from_a_checkpoint(tmp_path: Path, capsys) -> None:
    data = write_depth_crops(tmp_path / "train", 24, 1)
    _checkpoint(tmp_path / "trained.safetensors", seed=1)
    run = tmp_path / "run"
    common = ["train", "--model", "residual_attention_3d", "--data", f"synth:{data}",
              "--epochs", "1", "--batch-size", "8", "--quiet"]  # fmt: skip
    argv = [*common, "--out", str(run), "--init-from", str(tmp_path / "trained.safetensors"),
            "--reinit", MASKS, "--optimizer", "adamw", "--lr-schedule", "cosine",
            "--warmup-steps", "2", "--model-config", '{"loss": "joint_distance"}']  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    meta = read_metadata(run / "last.safetensors")
    # The checkpoint's config, with --model-config's key on top.
    assert meta["config"] == {**meta["config"], **TINY, "loss": "joint_distance"}
    start = meta["training"]["init_from"]
    assert start["training"]["command"] == "the first run" and start["reinit"] == MASKS
    recipe = meta["training"]["recipe"]
    assert (recipe["optimizer"], recipe["lr_schedule"], recipe["warmup_steps"]) == (
        "adamw", "cosine", 2)  # fmt: skip
    # The PCA prior was not refitted: the prior layer moved only by training from the
    # checkpoint's (random) start, and its buffers are the checkpoint's.
    source = load_model(tmp_path / "trained.safetensors")[0].state_dict()
    tuned = load_model(run / "last.safetensors")[0].state_dict()
    assert torch.equal(tuned["prior_basis"], source["prior_basis"])
    history = json.loads((run / "history.json").read_text())
    assert history[0]["step"] == 2  # a new run: step 0 onwards, not the checkpoint's steps
    # Resumed for a longer schedule, the run keeps its weights and its record of the start.
    longer = [a if a != "1" else "2" for a in argv]  # --epochs 2
    assert cli.main([*longer, "--resume"]) == 0, capsys.readouterr().err
    resumed = read_metadata(run / "last.safetensors")
    assert resumed["training"]["init_from"]["reinit"] == MASKS
    assert resumed["training"]["step"] == 2 * history[-1]["step"]
    for extra, message in (
        (["--reinit", MASKS], "needs --init-from"),
        (
            ["--init-from", str(tmp_path / "trained.safetensors"), "--reinit", "(", "--resume"],
            "not a regular expression",
        ),
        (["--init-from", str(tmp_path / "none.safetensors")], "none.safetensors"),
    ):
        assert cli.main([*common, "--out", str(tmp_path / "other"), *extra]) == 1
        assert message in capsys.readouterr().err
