"""Checkpoint files: write -> read round trip, and every way a file can be wrong.

A two-layer network registered for the test keeps these tests fast and independent of the
zoo's architectures (the zoo's own round trip is in test_model_zoo.py).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

import hand_pose_ros
from hand_pose_ros.models import registry
from hand_pose_ros.models.checkpoint import (
    METADATA_KEY,
    CheckpointError,
    load_model,
    read_metadata,
    save_checkpoint,
)
from hand_pose_ros.models.registry import ModelSpec
from hand_pose_ros.skeleton import KEYPOINT_NAMES

TINY = "tiny_test_net"


class TinyNet(nn.Module):
    """Conv -> BN -> ReLU -> pool -> linear to 21 normalised (u, v): the model contract in
    miniature."""

    model_name = TINY

    def __init__(self, width: int = 8, input_size: int = 16) -> None:
        super().__init__()
        self._config = {"width": width, "input_size": input_size}
        self.input_size = input_size
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.norm = nn.BatchNorm2d(width)
        self.head = nn.Linear(width, 42)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(
            input_size=(self.input_size, self.input_size), input_channels=3,
            mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), input_kind="rgb",
            output="coords", decoder="regression", paper="none (test model)",
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        features = torch.relu(self.norm(self.conv(x))).mean(dim=(2, 3))
        return self.head(features).reshape(-1, 21, 2)

    def make_targets(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        return {"coords": (keypoints / self.input_size).astype(np.float32)}

    def loss(self, output: Tensor, targets: dict[str, Tensor]) -> Tensor:
        return (output - targets["coords"]).pow(2).mean()

    def decode(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return output * self.input_size, np.ones(output.shape[:2])


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> TinyNet:
    """TinyNet registered for this test only (the registry is restored afterwards)."""
    monkeypatch.setitem(registry._REGISTRY, TINY, TinyNet)
    torch.manual_seed(0)
    model = TinyNet(width=8)
    # Non-trivial running statistics, so a round trip that dropped buffers would show.
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 16, 16) * 3.0 + 1.0)
    return model.eval()


@pytest.fixture
def saved(tiny: TinyNet, tmp_path: Path) -> Path:
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, tiny, training={"command": "hand-pose train --model tiny", "seed": 3,
                                          "data": {"kind": "synth", "count": 10}},
                    metrics={"epe_px": np.float32(4.5), "auc": float("nan")})  # fmt: skip
    return path


def _rewrite(path: Path, *, metadata: dict[str, str] | None, tensors: dict | None = None) -> None:
    """Write ``path`` again with other header metadata and/or tensors."""
    tensors = load_file(str(path)) if tensors is None else tensors
    save_file(tensors, str(path), metadata=metadata)


def _edit_metadata(path: Path, **changes: Any) -> None:
    metadata = read_metadata(path)
    metadata.update(changes)
    _rewrite(path, metadata={METADATA_KEY: json.dumps(metadata)})


# -- round trip ---------------------------------------------------------------------------------


def test_round_trip_restores_weights_buffers_and_outputs(tiny: TinyNet, saved: Path) -> None:
    loaded, metadata = load_model(saved)
    assert isinstance(loaded, TinyNet) and not loaded.training
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), tiny(x))
    for key, value in tiny.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert metadata == read_metadata(saved)


def test_metadata_describes_model_data_and_code(saved: Path) -> None:
    metadata = read_metadata(saved)
    assert metadata["architecture"] == TINY
    assert metadata["config"] == {"width": 8, "input_size": 16}
    assert metadata["spec"]["input_size"] == [16, 16]
    assert metadata["spec"]["mean"] == [0.5, 0.5, 0.5]
    assert metadata["spec"]["input_kind"] == "rgb"
    assert metadata["spec"]["decoder"] == "regression"
    assert metadata["keypoint_names"] == list(KEYPOINT_NAMES)
    assert metadata["training"] == {"command": "hand-pose train --model tiny", "seed": 3,
                                    "data": {"kind": "synth", "count": 10}}  # fmt: skip
    # numpy scalars become numbers; NaN (not measured) becomes null: strict JSON.
    assert metadata["metrics"] == {"epe_px": 4.5, "auc": None}
    assert metadata["code_version"]["hand_pose_ros"] == hand_pose_ros.__version__
    commit = metadata["code_version"]["git_commit"]
    assert commit == "unknown" or len(commit) == 40
    assert metadata["created"].endswith("+00:00")


def test_save_leaves_one_file(saved: Path) -> None:
    assert sorted(p.name for p in saved.parent.iterdir()) == ["tiny.safetensors"]


def test_load_moves_to_map_location(saved: Path) -> None:
    loaded, _ = load_model(saved, map_location=torch.device("cpu"))
    assert all(p.device.type == "cpu" for p in loaded.parameters())


def test_unregistered_model_cannot_be_saved(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a registered model"):
        save_checkpoint(tmp_path / "x.safetensors", nn.Linear(2, 2))


# -- files that are not checkpoints ------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.safetensors")


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a file"):
        read_metadata(tmp_path)


@pytest.mark.parametrize("content", [b"", b"\x01\x02", bytes(range(256)) * 4],
                         ids=["empty", "short", "random"])  # fmt: skip
def test_corrupt_bytes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "corrupt.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_model(path)


def test_corrupt_header(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    data[8:12] = b"\xff\xfe\x00!"  # the header's JSON
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_model(saved)


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_file(saved: Path, keep: float) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=r"truncated|not a safetensors file"):
        load_model(saved)


class _TouchOnLoad:
    """Unpickling this creates ``marker``: proof that loading ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickle_renamed_is_refused_not_executed(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "code_ran"
    payload = {"state_dict": {"w": torch.zeros(2)}, "hook": _TouchOnLoad(marker)}
    path = tmp_path / "model.safetensors"
    if writer == "pickle":
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path)
    # The payload is live: unpickling it does run code (so the assertion below can fail).
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_TouchOnLoad(probe)))
    assert probe.exists()

    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_model(path)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        read_metadata(path)
    assert not marker.exists()


# -- safetensors files that are not our checkpoints ------------------------------------------


def test_safetensors_without_metadata(saved: Path) -> None:
    _rewrite(saved, metadata=None)
    with pytest.raises(CheckpointError, match="without 'hand_pose_ros' metadata"):
        load_model(saved)


def test_metadata_not_json(saved: Path) -> None:
    _rewrite(saved, metadata={METADATA_KEY: "{architecture: tiny"})
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(saved)


def test_metadata_missing_fields(saved: Path) -> None:
    metadata = read_metadata(saved)
    del metadata["config"], metadata["spec"]
    _rewrite(saved, metadata={METADATA_KEY: json.dumps(metadata)})
    with pytest.raises(CheckpointError, match="lacks config, spec"):
        load_model(saved)


def test_newer_format_version(saved: Path) -> None:
    _edit_metadata(saved, format_version=99)
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_model(saved)


def test_unknown_architecture(saved: Path) -> None:
    _edit_metadata(saved, architecture="hand_former_9000")
    with pytest.raises(CheckpointError, match="unknown architecture 'hand_former_9000'") as info:
        load_model(saved)
    assert TINY in str(info.value)  # lists what is registered


def test_architecture_unregistered_since_saving(saved: Path, monkeypatch) -> None:
    monkeypatch.delitem(registry._REGISTRY, TINY)
    with pytest.raises(CheckpointError, match=f"unknown architecture '{TINY}'"):
        load_model(saved)


def test_config_the_architecture_rejects(saved: Path) -> None:
    _edit_metadata(saved, config={"width": 8, "depth": 3})
    with pytest.raises(CheckpointError, match="cannot build"):
        load_model(saved)


def test_mismatched_tensor_shapes(saved: Path) -> None:
    _edit_metadata(saved, config={"width": 4, "input_size": 16})
    with pytest.raises(CheckpointError) as info:
        load_model(saved)
    message = str(info.value)
    assert "shape mismatch" in message
    assert "conv.weight: checkpoint (8, 3, 3, 3), model (4, 3, 3, 3)" in message
    assert "head.weight: checkpoint (42, 8), model (42, 4)" in message


def test_missing_and_unexpected_tensors(saved: Path) -> None:
    tensors = load_file(str(saved))
    del tensors["head.bias"]
    tensors["head.extra"] = torch.zeros(3)
    metadata = {METADATA_KEY: json.dumps(read_metadata(saved))}
    _rewrite(saved, metadata=metadata, tensors=tensors)
    with pytest.raises(CheckpointError) as info:
        load_model(saved)
    assert "missing (1): head.bias" in str(info.value)
    assert "unexpected (1): head.extra" in str(info.value)


@pytest.mark.parametrize("order", ["swapped", "short"])
def test_wrong_keypoint_order(saved: Path, order: str) -> None:
    names = list(KEYPOINT_NAMES)
    if order == "swapped":  # a tip-to-base order, as some ROS packages publish
        names[1:5] = reversed(names[1:5])
    else:
        names = names[:17]
    _edit_metadata(saved, keypoint_names=names)
    expected = "index 1 is 'thumb_tip'" if order == "swapped" else "17 keypoints"
    with pytest.raises(CheckpointError, match=expected):
        load_model(saved)
    with pytest.raises(CheckpointError, match=expected):
        read_metadata(saved)


def test_spec_changed_in_code_since_saving(saved: Path) -> None:
    metadata = read_metadata(saved)
    metadata["spec"]["mean"] = [0.485, 0.456, 0.406]
    _rewrite(saved, metadata={METADATA_KEY: json.dumps(metadata)})
    with pytest.raises(CheckpointError, match="mean: checkpoint"):
        load_model(saved)
