"""Every registered model, random weights: shape, codec round trip, training, checkpoint, ONNX.

One parametrised module over ``list_models()`` (the timm habit). Per model, ``CASES`` says how
to make its targets, what a perfect output is, how tight the decode round trip is, and how
its overfit test trains. A model registered without a case fails ``test_every_model_has_a_case``.

Cost on two CPU cores: the overfit and runner tests run on ``CASES[name].light``, the
default config with fewer layers where the default is too slow for a unit test (only
attention_hand_net, one dense layer per block instead of 8-32: at its default depth the
overfit test takes over a minute). Input sizes and layer types stay those of the default.
Set HAND_POSE_FULL_ZOO=1 to run those tests on the default configs too. The ONNX test
always exports the default configs (attention_hand_net's ~9k-node graph: about a minute).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from hand_pose_ros import cli
from hand_pose_ros.inference import InferenceError, ModelRunner
from hand_pose_ros.models import build_model, list_models, registry
from hand_pose_ros.models.checkpoint import (
    CheckpointError,
    checkpoint_metadata,
    load_model,
    read_metadata,
    save_checkpoint,
)
from hand_pose_ros.models.export import (
    example_input,
    export_onnx,
    read_onnx_metadata,
    verify_onnx,
)
from hand_pose_ros.models.registry import ModelSpec
from hand_pose_ros.models.summary import markdown_table, summarize
from hand_pose_ros.skeleton import NUM_KEYPOINTS

SEED_MODELS = (
    "attention_hand_net", "efficient_1d_heatmap", "gesture_net", "mobile_heatmap", "msahp",
    "residual_attention_3d",
)  # fmt: skip
MODELS = list_models()
FULL = os.environ.get("HAND_POSE_FULL_ZOO", "") not in ("", "0")
ONNX_TOLERANCE = 1e-4


def _uv(rng: np.random.Generator, count: int, size: int, margin: float = 24.0) -> np.ndarray:
    """Keypoints (count, 21, 2) in crop pixels, away from the border (heatmaps cut there)."""
    return rng.uniform(margin, size - 1 - margin, size=(count, NUM_KEYPOINTS, 2))


def _uvz(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """(u px, v px, z m relative to the wrist): efficient_1d_heatmap's keypoints."""
    z = rng.uniform(-0.1, 0.1, size=(count, NUM_KEYPOINTS, 1))
    z[:, 0] = 0.0
    return np.concatenate([_uv(rng, count, size), z], axis=-1)


def _cube(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """Joints (count, 21, 3) in half-cube units: residual_attention_3d's keypoints."""
    return rng.uniform(-0.8, 0.8, size=(count, NUM_KEYPOINTS, 3))


def _labels(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """Class indices (count,): gesture_net's targets."""
    return rng.permutation(13)[:count]


def _log(maps: np.ndarray) -> np.ndarray:
    """Logits whose softmax is ``maps`` (probabilities; zeros become very unlikely)."""
    return np.log(np.maximum(maps, 1e-30))


@dataclass(frozen=True)
class Case:
    """How to test one model.

    Attributes:
        sample: rng, count, crop size -> what ``make_targets`` takes (keypoints or labels).
        perfect: model, targets -> the network output that would match the targets exactly.
        tolerance: largest |decode(perfect) - keypoints| accepted (the keypoints' unit).
        steps, lr: overfit test budget and Adam learning rate.
        light: config overrides for the ONNX, overfit and runner tests (module docstring).
    """

    sample: Callable[[np.random.Generator, int, int], np.ndarray]
    perfect: Callable[[nn.Module, dict[str, np.ndarray]], np.ndarray]
    tolerance: float
    steps: int = 60
    lr: float = 1e-3
    light: dict[str, Any] = field(default_factory=dict)


CASES: dict[str, Case] = {
    # Regression of crop-normalised (u, v): the target is the output.
    "attention_hand_net": Case(
        _uv,
        lambda model, t: t["coords"],
        tolerance=1e-4,
        steps=30,
        lr=2e-3,
        light={"block_layers": [1, 1, 1, 1, 1, 1, 1, 1]},
    ),
    # Gaussian heatmaps + background; the peak refined from the log-map: exact for a Gaussian.
    "mobile_heatmap": Case(_uv, lambda model, t: t["heatmaps"], tolerance=1e-3, steps=40, lr=3e-3),
    # Score-map logits of both stages; the decoder applies a spatial softmax to the last.
    "msahp": Case(
        _uv,
        lambda model, t: np.stack([_log(t["maps"])] * 2, axis=1),
        tolerance=1e-3,
        steps=25,
        lr=2e-3,
    ),
    # 1D heatmap logits, soft-argmax; u, v in px, z in metres (away from the ends: exact).
    "efficient_1d_heatmap": Case(
        _uvz,
        lambda model, t: _log(t["heatmaps"]),
        tolerance=1e-3,
        steps=30,
        lr=1e-2,
    ),
    # Joint regression in half-cube units: the target is the output.
    "residual_attention_3d": Case(
        _cube,
        lambda model, t: t["joints"],
        tolerance=1e-6,
        steps=25,
        lr=3e-4,
    ),
    # Class logits: a confident one-hot decodes to the label.
    "gesture_net": Case(
        _labels,
        lambda model, t: 10.0 * np.eye(len(model.classes))[t["labels"]],
        tolerance=0.0,
        steps=30,
        lr=1e-2,
    ),
}


@pytest.fixture(scope="module")
def zoo() -> dict[str, nn.Module]:
    """Models built once per module, by name and config (tests must not change weights)."""
    return {}


def _model(zoo: dict[str, nn.Module], name: str, *, light: bool = False) -> nn.Module:
    config = _light_config(name) if light else {}
    key = f"{name} {json.dumps(config, sort_keys=True)}"
    if key not in zoo:
        torch.manual_seed(0)
        zoo[key] = build_model(name, **config).eval()
    return zoo[key]


def _targets(model: nn.Module, name: str, count: int, seed: int = 0) -> tuple[Any, dict]:
    rng = np.random.default_rng(seed)
    sample = CASES[name].sample(rng, count, model.spec.input_size[1])
    if model.spec.input_kind == "keypoints":
        return sample, model.make_targets(sample)
    visible = np.ones(sample.shape[:2], dtype=bool)
    return sample, model.make_targets(sample, visible)


def _light_config(name: str) -> dict[str, Any]:
    return {} if FULL else dict(CASES[name].light)


# -- the registry ---------------------------------------------------------------------------------


def test_the_seed_models_are_registered() -> None:
    assert set(SEED_MODELS) <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_every_model_has_a_case(name: str) -> None:
    assert name in CASES, f"add a Case for {name!r} to CASES in this file"


# -- forward, decode ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_output_shape_and_finite(zoo, name: str) -> None:
    model = _model(zoo, name)
    assert isinstance(model.spec, ModelSpec)
    json.dumps(model.config)  # the config must be JSON-able: it goes into every checkpoint
    with torch.no_grad():
        output = model(example_input(model.spec, 2)).numpy()
    assert output.shape[0] == 2
    if "output_shape" in model.spec.extra:
        assert list(output.shape[1:]) == list(model.spec.extra["output_shape"])
    assert np.isfinite(output).all()
    decoded, confidence = model.decode(output)
    if model.spec.input_kind == "keypoints":
        assert decoded.shape == (2,) and confidence.shape == (2,)
    else:
        assert decoded.shape[:2] == (2, NUM_KEYPOINTS) and decoded.shape[2] in (2, 3)
        assert confidence.shape == (2, NUM_KEYPOINTS)
    assert np.isfinite(decoded).all()
    assert ((confidence >= 0.0) & (confidence <= 1.0)).all()


@pytest.mark.parametrize("name", MODELS)
def test_decode_of_perfect_output_gives_the_targets_back(zoo, name: str) -> None:
    model = _model(zoo, name)
    sample, targets = _targets(model, name, 4, seed=1)
    shape = tuple(model.spec.extra.get("output_shape", ()))
    if not shape:
        with torch.no_grad():
            shape = tuple(model(example_input(model.spec, 1)).shape[1:])
    perfect = np.asarray(CASES[name].perfect(model, targets), dtype=np.float32)
    assert perfect.shape[1:] == shape  # the "perfect output" is a possible output
    decoded, confidence = model.decode(perfect)
    error = np.abs(decoded - sample).max()
    assert error <= CASES[name].tolerance, f"round trip error {error}"
    assert (confidence > 0.5).all()


# -- training ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_overfits_a_tiny_batch(name: str) -> None:
    case = CASES[name]
    torch.manual_seed(0)
    model = build_model(name, **_light_config(name))
    model.train()
    inputs = example_input(model.spec, 2, seed=0)
    _, targets = _targets(model, name, 2)
    tensors = {key: torch.from_numpy(np.asarray(value)) for key, value in targets.items()}
    optimiser = torch.optim.Adam(model.parameters(), lr=case.lr)
    losses = []
    started = time.perf_counter()
    for _ in range(case.steps):
        optimiser.zero_grad()
        loss = model.loss(model(inputs), tensors)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        if losses[-1] <= losses[0] / 10.0:
            break
    seconds = time.perf_counter() - started
    assert np.isfinite(losses).all()
    trajectory = [round(value, 5) for value in losses[:: max(1, len(losses) // 10)]]
    assert losses[-1] <= losses[0] / 10.0, (
        f"{name}: loss {losses[0]:.4g} -> {losses[-1]:.4g} after {len(losses)} steps "
        f"({seconds:.1f} s); trajectory {trajectory}"
    )


# -- checkpoint -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_checkpoint_round_trip_gives_identical_outputs(zoo, name: str, tmp_path: Path) -> None:
    model = _model(zoo, name)
    path = tmp_path / f"{name}.safetensors"
    save_checkpoint(path, model, training={"command": "test", "seed": 0})
    loaded, metadata = load_model(path)
    assert type(loaded) is type(model) and not loaded.training
    assert metadata["architecture"] == name and metadata["config"] == json.loads(
        json.dumps(model.config)
    )
    assert read_metadata(path)["spec"]["input_kind"] == model.spec.input_kind
    inputs = example_input(model.spec, 2, seed=3)
    with torch.no_grad():
        assert torch.equal(loaded(inputs), model(inputs))


# -- runner -----------------------------------------------------------------------------------


def _raw_batch(spec: ModelSpec, count: int) -> np.ndarray:
    """What a caller hands ``preprocess``: uint8 crops, depth cubes or normalised keypoints."""
    rng = np.random.default_rng(5)
    height, width = spec.input_size
    if spec.input_kind == "rgb":
        return rng.integers(0, 256, size=(count, height, width, 3), dtype=np.uint8)
    if spec.input_kind == "depth_cube":
        cubes = rng.uniform(-1.0, 1.0, size=(count, height, width)).astype(np.float32)
        cubes[:, :5, :5] = np.nan
        return cubes
    return rng.normal(size=(count, 2, NUM_KEYPOINTS)).astype(np.float32)


@pytest.mark.parametrize("name", MODELS)
def test_runner_preprocesses_as_the_spec_says(zoo, name: str) -> None:
    model = _model(zoo, name, light=True)
    runner = ModelRunner(model)
    raw = _raw_batch(model.spec, 2)
    inputs = runner.preprocess(raw)
    assert inputs.dtype == np.float32 and inputs.shape == tuple(example_input(model.spec, 2).shape)
    if model.spec.input_kind == "rgb":
        mean = np.asarray(model.spec.mean, dtype=np.float32)
        std = np.asarray(model.spec.std, dtype=np.float32)
        expected = ((raw / np.float32(255.0) - mean) / std).transpose(0, 3, 1, 2)
        np.testing.assert_allclose(inputs, expected, atol=1e-6)
    elif model.spec.input_kind == "depth_cube":
        assert (inputs[:, 0, :5, :5] == 1.0).all()  # no depth = far, as the crop marks it
        np.testing.assert_array_equal(inputs[:, 0, 5:, 5:], raw[:, 5:, 5:])
    else:
        np.testing.assert_array_equal(inputs, raw)
    with torch.no_grad():
        expected_output = model(torch.from_numpy(inputs)).numpy()
    np.testing.assert_array_equal(runner.run(inputs), expected_output)
    with pytest.raises(InferenceError, match="expected"):
        runner.run(inputs[:, :, :-1])


# -- ONNX -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_onnx_export_matches_torch_and_describes_itself(name: str, tmp_path: Path) -> None:
    # The default config of every model, the one that ships (attention_hand_net's export
    # takes about a minute on two cores).
    torch.manual_seed(0)
    model = build_model(name).eval()
    path = tmp_path / f"{name}.onnx"
    result = export_onnx(model, path, verify=False)
    assert result.exporter == "dynamo", result.rejected  # the preferred exporter worked
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no external data

    graph = onnx.load(str(path))
    assert [i.name for i in graph.graph.input] == ["input"]
    assert [o.name for o in graph.graph.output] == ["output"]
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert not any(node.metadata_props for node in graph.graph.node)  # no debug stack traces
    metadata = read_onnx_metadata(path)
    expected = checkpoint_metadata(model)
    assert {k: v for k, v in metadata.items() if k != "created"} == {
        k: v for k, v in expected.items() if k != "created"
    }

    # Parity at batch sizes other than the traced one (2), absolute and relative to the
    # output's size (some heads output ~1e-9 at random initialisation).
    for batch, seed in ((3, 11), (1, 12)):
        assert verify_onnx(model, path, batch=batch, seed=seed) <= ONNX_TOLERANCE
        assert verify_onnx(model, path, batch=batch, seed=seed, relative=True) <= ONNX_TOLERANCE

    # onnxruntime decodes without the weights: same keypoints as the torch model's decode.
    runner = ModelRunner.from_checkpoint(path, backend="onnxruntime", intra_op_num_threads=1)
    assert runner.backend == "onnxruntime" and runner.spec == model.spec
    output = runner.run(runner.preprocess(_raw_batch(model.spec, 2)))
    for found, wanted in zip(runner.decode(output), model.decode(output), strict=True):
        np.testing.assert_array_equal(found, wanted)


# -- infrastructure, on the smallest model ------------------------------------------------------

SMALL = "gesture_net"


def test_runner_backends_agree_from_a_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(SMALL).eval()
    path = tmp_path / "small.safetensors"
    save_checkpoint(path, model, training={"command": "test"})
    batch = _raw_batch(model.spec, 3)
    on_torch = ModelRunner.from_checkpoint(path)
    on_onnx = ModelRunner.from_checkpoint(path, backend="onnxruntime")
    assert on_onnx.metadata["training"]["command"] == "test"
    np.testing.assert_allclose(
        on_onnx.run(on_onnx.preprocess(batch)), on_torch.run(on_torch.preprocess(batch)),
        atol=ONNX_TOLERANCE,
    )  # fmt: skip
    labels, confidence = on_onnx.predict(batch)
    assert labels.shape == (3,) and confidence.shape == (3,)


def test_runner_splits_batches_for_a_fixed_batch_graph(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(SMALL).eval()
    path = tmp_path / "fixed.onnx"
    result = export_onnx(model, path, dynamic_batch=False)
    assert not result.dynamic_batch
    runner = ModelRunner(path)
    inputs = runner.preprocess(_raw_batch(model.spec, 5))
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs)).numpy()
    np.testing.assert_allclose(runner.run(inputs), expected, atol=ONNX_TOLERANCE)


def test_runner_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(SMALL)
    with pytest.raises(InferenceError, match="unknown backend"):
        ModelRunner(model, backend="tensorrt")
    path = tmp_path / "small.onnx"
    export_onnx(model, path)
    with pytest.raises(InferenceError, match="runs on onnxruntime"):
        ModelRunner(path, backend="torch")
    with pytest.raises(InferenceError, match="empty batch"):
        ModelRunner(path).run(np.zeros((0, 2, NUM_KEYPOINTS), dtype=np.float32))
    plain = tmp_path / "plain.onnx"
    graph = onnx.load(str(path))
    del graph.metadata_props[:]
    onnx.save(graph, str(plain))
    with pytest.raises(CheckpointError, match="without 'hand_pose_ros' metadata"):
        ModelRunner(plain)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not an ONNX file"):
        read_onnx_metadata(junk)


class _DataDependent(nn.Module):
    """Branches on a tensor value: torch.export refuses it, tracing records the taken branch."""

    model_name = "data_dependent_test_net"

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(NUM_KEYPOINTS, NUM_KEYPOINTS)
        self.config: dict[str, Any] = {}
        self.spec = build_model(SMALL).spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x.abs().sum() >= 0).item()):  # always true, but only known at run time
            return self.linear(x)
        return x


def test_export_falls_back_to_torchscript_and_says_why(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(registry._REGISTRY, _DataDependent.model_name, _DataDependent)
    model = _DataDependent()
    result = export_onnx(model, tmp_path / "fallback.onnx")
    assert result.exporter == "torchscript" and result.dynamic_batch
    assert len(result.rejected) == 1 and result.rejected[0].startswith("dynamo:")
    assert result.max_abs_diff is not None and result.max_abs_diff <= ONNX_TOLERANCE
    assert read_onnx_metadata(result.path)["architecture"] == _DataDependent.model_name


# -- summary and commands ---------------------------------------------------------------------


def test_summary_counts_parameters_and_flops() -> None:
    row = summarize(SMALL)
    model = build_model(SMALL)
    assert row.params == sum(p.numel() for p in model.parameters())
    # Two 1x7 convolutions over 2 x 21 positions, then two fully connected layers.
    convolutions = 2 * (2 * NUM_KEYPOINTS * 16 * 7 * 1 + 2 * NUM_KEYPOINTS * 16 * 7 * 16)
    dense = 2 * (16 * NUM_KEYPOINTS * 128 + 128 * len(model.classes))
    assert row.flops == convolutions + dense
    assert row.input_shape == (2, NUM_KEYPOINTS) and row.output_shape == (len(model.classes),)
    table = markdown_table([row])
    assert f"| {SMALL} |" in table and "| — |" in table


def _cli(argv: list[str]) -> int:
    """The real entry point (``hand-pose`` is ``cli.main``)."""
    return cli.main(argv)


def test_models_command_writes_the_page(tmp_path: Path, capsys, monkeypatch) -> None:
    rows = [summarize(SMALL)]
    monkeypatch.setattr("hand_pose_ros.models.summary.summaries", lambda names=None: rows)
    page = tmp_path / "docs" / "models.md"
    assert _cli(["models", "--markdown", str(page)]) == 0
    assert f"| {SMALL} |" in capsys.readouterr().out
    text = page.read_text()
    assert f"Generated by `hand-pose models --markdown {page}`" in text
    assert f"| {SMALL} |" in text


def test_export_command_checks_every_file(tmp_path: Path, capsys) -> None:
    assert _cli(["export", "--out", str(tmp_path / "onnx"), "--model", SMALL]) == 0
    out = capsys.readouterr().out
    assert f"{SMALL}: {tmp_path / 'onnx' / SMALL}.onnx (dynamo exporter" in out
    assert "max |onnxruntime - torch| = " in out and out.rstrip().endswith("ok")

    torch.manual_seed(0)
    checkpoint = tmp_path / "gestures.safetensors"
    save_checkpoint(checkpoint, build_model(SMALL), training={"command": "train it"})
    assert _cli(["export", "--out", str(tmp_path / "onnx"), "--checkpoint", str(checkpoint)]) == 0
    exported = read_onnx_metadata(tmp_path / "onnx" / "gestures.onnx")
    assert exported["training"]["command"] == "train it"

    capsys.readouterr()
    assert _cli(["export", "--out", str(tmp_path), "--model", "nope"]) == 1
    assert "hand-pose export: error: unknown model" in capsys.readouterr().err
    assert _cli(["export", "--out", str(tmp_path), "--model", SMALL, "--checkpoint", "x"]) == 1
    assert "either --checkpoint or --model" in capsys.readouterr().err
