"""Seeds 002-004: residual attention depth regression, MobileNetV2 heatmaps, EfficientNet 1D
heatmaps, and their backbones."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
import torch

from hand_pose_ros.codecs.pca_prior import PCAPrior
from hand_pose_ros.models.efficient_1d_heatmap import (
    Efficient1DHeatmap,
    rotate_images,
    rotate_points,
    rotation_tta,
)
from hand_pose_ros.models.efficientnet import EfficientNetEncoder
from hand_pose_ros.models.mobile_heatmap import MobileHeatmap, mirror_for_left
from hand_pose_ros.models.mobilenet_v2 import MobileNetV2Encoder, count_parameters
from hand_pose_ros.models.registry import ModelSpec
from hand_pose_ros.models.residual_attention_3d import ResidualAttention3D

MODELS = {
    "residual_attention_3d": ResidualAttention3D,
    "mobile_heatmap": MobileHeatmap,
    "efficient_1d_heatmap": Efficient1DHeatmap,
}
OUTPUT_SHAPES = {
    "residual_attention_3d": (63,),
    "mobile_heatmap": (22, 56, 56),
    "efficient_1d_heatmap": (3, 21, 112),
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {name: cls() for name, cls in MODELS.items()}


def _input(model: Any, batch: int = 2) -> torch.Tensor:
    spec: ModelSpec = model.spec
    height, width = spec.input_size
    generator = torch.Generator().manual_seed(1)
    if spec.input_kind == "depth_cube":
        return torch.rand(batch, 1, height, width, generator=generator) * 2.0 - 1.0
    return torch.randn(batch, spec.input_channels, height, width, generator=generator)


def _keypoints(name: str, batch: int = 2) -> np.ndarray:
    rng = np.random.default_rng(5)
    if name == "residual_attention_3d":
        return rng.uniform(-0.8, 0.8, size=(batch, 21, 3))
    uv = rng.uniform(20.0, 204.0, size=(batch, 21, 2))
    if name == "mobile_heatmap":
        return uv
    return np.concatenate([uv, rng.uniform(-0.1, 0.1, size=(batch, 21, 1))], axis=-1)


@pytest.mark.parametrize("name", MODELS)
def test_forward_shape_and_split(models, name):
    model = models[name].eval()
    x = _input(model)
    with torch.no_grad():
        output = model(x)
        split = model.forward_head(model.forward_features(x))
    assert output.shape == (2, *OUTPUT_SHAPES[name])
    assert torch.isfinite(output).all()
    torch.testing.assert_close(output, split)


@pytest.mark.parametrize("name", MODELS)
def test_spec_and_config(models, name):
    model = models[name]
    spec = model.spec
    assert isinstance(spec, ModelSpec)
    assert spec.input_channels == len(spec.mean) == len(spec.std)
    assert spec.paper and spec.output and spec.decoder
    if name == "residual_attention_3d":
        assert (spec.input_size, spec.input_kind, spec.mean, spec.std) == (
            (128, 128),
            "depth_cube",
            (0.0,),
            (1.0,),
        )
    else:
        assert (spec.input_size, spec.input_kind) == ((224, 224), "rgb")
        assert spec.mean == (0.485, 0.456, 0.406) and spec.std == (0.229, 0.224, 0.225)
    # The config rebuilds the same architecture.
    rebuilt = MODELS[name](**model.config)
    assert rebuilt.config == model.config
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }


@pytest.mark.parametrize("name", MODELS)
def test_targets_decode_back_to_the_keypoints(models, name):
    model = models[name]
    keypoints = _keypoints(name)
    targets = model.make_targets(keypoints, np.ones((2, 21)))
    if name == "residual_attention_3d":
        output = targets["joints"]
    elif name == "mobile_heatmap":
        output = targets["heatmaps"]
    else:  # logits whose softmax is the target Gaussians
        output = np.log(targets["heatmaps"] + 1e-30)
    decoded, confidence = model.decode(output)
    assert decoded.shape == keypoints.shape and confidence.shape == (2, 21)
    np.testing.assert_allclose(decoded, keypoints, atol=1e-3)
    assert ((confidence >= 0) & (confidence <= 1)).all() and confidence.min() > 0.9
    # The loss of the targets against themselves is (close to) its minimum.
    tensors = {key: torch.from_numpy(value) for key, value in targets.items()}
    perfect = model.loss(torch.from_numpy(np.asarray(output, dtype=np.float32)), tensors)
    assert float(perfect) < 1e-6


@pytest.mark.parametrize("name", MODELS)
def test_loss_decreases_on_a_tiny_batch(name):
    torch.manual_seed(0)
    model = MODELS[name]().train()
    x = _input(model)
    targets = {
        key: torch.from_numpy(value)
        for key, value in model.make_targets(_keypoints(name), np.ones((2, 21))).items()
    }
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        optimiser.zero_grad()
        loss = model.loss(model(x), targets)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(value) for value in losses)
    assert losses[-1] < 0.9 * losses[0], losses
    assert all(b < a for a, b in itertools.pairwise(losses)), losses


def test_unlabelled_keypoints_do_not_count():
    model = ResidualAttention3D()
    keypoints = _keypoints("residual_attention_3d")
    visible = np.ones((2, 21))
    visible[:, 4] = 0
    targets = {k: torch.from_numpy(v) for k, v in model.make_targets(keypoints, visible).items()}
    output = targets["joints"].clone()
    output[:, 12:15] += 10.0  # joint 4 wildly wrong: unlabelled, so free
    assert float(model.loss(output, targets)) == 0.0


# --- parameter counts -------------------------------------------------------------------


def test_backbones_match_the_reference_networks():
    # Encoder + the classifier layers we leave out = the published ImageNet networks.
    mobilenet = MobileNetV2Encoder()
    head = 320 * 1280 + 2 * 1280 + 1280 * 1000 + 1000
    assert count_parameters(mobilenet) + head == 3_504_872
    for variant, total in (("b0", 5_288_548), ("b4", 19_341_616)):
        encoder = EfficientNetEncoder(variant)
        assert count_parameters(encoder) + encoder.out_channels * 1000 + 1000 == total


def test_parameter_counts_match_the_papers():
    # Seed 004: 19.5M (B4) and 5.4M (B0); within 10 %.
    for variant, paper in (("b0", 5.4e6), ("b4", 19.5e6)):
        count = count_parameters(Efficient1DHeatmap(variant=variant))
        assert abs(count - paper) / paper < 0.10, (variant, count)
    # Seed 003: MobileNetV2 to block 17 (1.81M) + a light depthwise decoder.
    assert 1.8e6 < count_parameters(MobileHeatmap()) < 2.3e6
    assert 5e6 < count_parameters(ResidualAttention3D()) < 8e6


def test_mobile_encoder_has_output_stride_16():
    encoder = MobileNetV2Encoder(stride_removed_blocks=(14,))
    assert encoder.output_stride == 16
    with torch.no_grad():
        assert encoder.eval()(torch.zeros(1, 3, 224, 224)).shape == (1, 320, 14, 14)
    with pytest.raises(ValueError):
        MobileNetV2Encoder(stride_removed_blocks=(15,))  # block 15 has no stride


# --- seed-specific behaviour ------------------------------------------------------------


def test_prior_layer_is_the_pca_reconstruction():
    rng = np.random.default_rng(0)
    poses = rng.normal(scale=0.3, size=(100, 63))
    prior = PCAPrior.fit(poses, n_components=30)
    model = ResidualAttention3D().eval()
    model.init_prior(prior.basis, prior.mean)
    embedding = rng.normal(size=(4, 30))
    with torch.no_grad():
        output = model.prior(torch.from_numpy(embedding).float()).numpy()
    np.testing.assert_allclose(output, prior.reconstruct(embedding), atol=1e-5)
    state = model.state_dict()
    np.testing.assert_allclose(state["prior_basis"].numpy(), prior.basis, atol=1e-7)
    np.testing.assert_allclose(state["prior_mean"].numpy(), prior.mean, atol=1e-7)
    with pytest.raises(ValueError):
        model.init_prior(prior.basis[:10], prior.mean)


def test_mobile_heatmap_reexports_the_mirror_helper():
    image = np.arange(12).reshape(2, 6)
    flipped, _ = mirror_for_left(image)
    np.testing.assert_array_equal(flipped, image[:, ::-1])


def test_rotation_helpers_agree():
    image = torch.zeros(1, 1, 224, 224)
    u, v = 150, 60
    image[0, 0, v - 1 : v + 2, u - 1 : u + 2] = 1.0
    angle = math.radians(72.0)
    rotated = rotate_images(image, angle)[0, 0].numpy()
    rows, cols = np.nonzero(rotated > 0.2)
    weights = rotated[rows, cols]
    found = np.array([np.average(cols, weights=weights), np.average(rows, weights=weights)])
    expected = rotate_points(np.array([u, v], dtype=float), angle, (224, 224))
    assert np.linalg.norm(found - expected) < 0.5
    back = rotate_points(expected, -angle, (224, 224))
    np.testing.assert_allclose(back, [u, v], atol=1e-9)


def test_rotation_tta(models):
    model = models["efficient_1d_heatmap"].eval()
    x = _input(model, batch=1)
    with torch.no_grad():
        plain = model.decode(model(x).numpy())
    single = rotation_tta(model, x, n=1)
    np.testing.assert_allclose(single[0], plain[0], atol=1e-9)
    keypoints, confidence = rotation_tta(model, x, n=3)
    assert keypoints.shape == (1, 21, 3) and confidence.shape == (1, 21)
    assert np.isfinite(keypoints).all()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter
def test_efficient_1d_heatmap_exports_to_onnx(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = Efficient1DHeatmap()
    x = _input(model)
    # A few training-mode passes give BatchNorm real statistics, and larger head weights
    # give logits of order 1: the untrained network's outputs are ~1e-6, and any export
    # would "match" them.
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x)
        for head in (model.u_head, model.v_head, model.z_head):
            head.weight.normal_(std=1.0)
    model.eval()
    path = tmp_path / "model.onnx"
    torch.onnx.export(
        model,
        (x,),
        str(path),
        opset_version=17,
        input_names=["input"],
        output_names=["output"],
        dynamo=False,
    )
    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (result,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    assert expected.std() > 1e-2
    np.testing.assert_allclose(result, expected, atol=1e-4, rtol=1e-4)


def test_optional_heatmap_loss_term():
    plain = Efficient1DHeatmap()
    with_kl = Efficient1DHeatmap(heatmap_loss_weight=1.0)
    targets = plain.make_targets(_keypoints("efficient_1d_heatmap"), np.ones((2, 21)))
    tensors = {key: torch.from_numpy(value) for key, value in targets.items()}
    perfect = torch.from_numpy(np.log(targets["heatmaps"] + 1e-30))
    assert float(with_kl.loss(perfect, tensors)) < 1e-5
    # Flat logits put every coordinate at the centre and spread the maps: KL adds to the MSE.
    flat = torch.zeros(2, 3, 21, 112)
    assert float(with_kl.loss(flat, tensors)) > float(plain.loss(flat, tensors)) + 1.0
