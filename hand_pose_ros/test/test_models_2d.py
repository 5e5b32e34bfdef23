"""The 2D RGB models of seeds 000 and 001 and GestureNet: shapes, sizes, layers, training wiring.

Parameter counts are printed (``pytest -s``) and pinned: a change to an architecture shows up
here. Training checks use reduced input sizes so that the file runs in seconds on one core.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from hand_pose_ros.codecs import classification, score_map
from hand_pose_ros.hand import Handedness
from hand_pose_ros.models import build_model, list_models
from hand_pose_ros.models.attention_hand_net import (
    AttentionHandNet,
    DenseBlock,
    standardise_per_image,
)
from hand_pose_ros.models.attention_layers import (
    AttentionAugmentedConv2d,
    BlurPool2d,
    RelativeMultiHeadAttention2d,
    SamePadConv2d,
    box_blur_kernel,
    relative_index,
    relative_to_absolute,
)
from hand_pose_ros.models.gesture_net import GestureNet, normalise_keypoints
from hand_pose_ros.models.msahp import MSAHP
from hand_pose_ros.synth.gestures import GESTURES

PAPER_PARAMETERS_SEED_000 = 1.9e6
MSAHP_PARAMETERS = 3_395_576
GESTURE_NET_PARAMETERS = 46_749


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _targets(model, *args) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(value) for key, value in model.make_targets(*args).items()}


def _train(model, inputs, targets, steps: int) -> list[float]:
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = model.loss(model(inputs), targets)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


def test_models_are_registered():
    assert {"attention_hand_net", "msahp", "gesture_net"} <= set(list_models())


@pytest.mark.parametrize("name", ["attention_hand_net", "msahp", "gesture_net"])
def test_config_rebuilds_the_same_model(name):
    model: Any = build_model(name)
    rebuilt: Any = build_model(name, **model.config)
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.config == model.config and _parameters(rebuilt) == _parameters(model)


# --- seed 000 layers ---------------------------------------------------------------------------


def test_relative_to_absolute_reindexes_offsets():
    length = 5
    x = torch.randn(3, length, 2 * length - 1)
    out = relative_to_absolute(x)
    for i in range(length):
        for j in range(length):
            torch.testing.assert_close(out[:, i, j], x[:, i, j - i + length - 1])
    assert relative_index(3).tolist() == [[2, 3, 4], [1, 2, 3], [0, 1, 2]]


def test_relative_attention_matches_the_definition():
    """softmax_j(q_i . (k_j + r^W[x_j - x_i] + r^H[y_j - y_i]) / sqrt(d)) v_j, by brute force."""
    height, width, heads, key_depth, value_depth = 3, 4, 2, 4, 6
    attention = RelativeMultiHeadAttention2d(key_depth, value_depth, heads, height, width)
    qkv = torch.randn(2, 2 * key_depth + value_depth, height, width)
    out = attention(qkv)
    dk, dv = key_depth // heads, value_depth // heads
    q, k, v = qkv.split([key_depth, key_depth, value_depth], dim=1)
    expected = torch.zeros(2, value_depth, height, width)
    positions = [(y, x) for y in range(height) for x in range(width)]
    for n in range(2):
        for h in range(heads):
            qh = q[n, h * dk : (h + 1) * dk].reshape(dk, -1).t() / dk**0.5
            kh = k[n, h * dk : (h + 1) * dk].reshape(dk, -1).t()
            vh = v[n, h * dv : (h + 1) * dv].reshape(dv, -1).t()
            logits = torch.zeros(height * width, height * width)
            for i, (yi, xi) in enumerate(positions):
                for j, (yj, xj) in enumerate(positions):
                    key = (
                        kh[j]
                        + attention.relative_width[xj - xi + width - 1]
                        + attention.relative_height[yj - yi + height - 1]
                    )
                    logits[i, j] = qh[i] @ key
            heads_out = torch.softmax(logits, dim=-1) @ vh
            expected[n, h * dv : (h + 1) * dv] = heads_out.t().reshape(dv, height, width)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_attention_augmented_conv_concatenates_conv_and_attention():
    layer = AttentionAugmentedConv2d(
        40, 40, 2, key_depth=4, value_depth=4, num_heads=4, height=2, width=2
    )
    x = torch.randn(2, 40, 2, 2)
    out = layer(x)
    assert out.shape == (2, 40, 2, 2)
    torch.testing.assert_close(out[:, :36], layer.conv(x))


def test_blurpool_is_the_papers_box_filter_and_halves_sizes():
    torch.testing.assert_close(
        box_blur_kernel(2), torch.outer(torch.tensor([1.0, 2, 1]), torch.tensor([1.0, 2, 1])) / 16
    )
    assert box_blur_kernel(1).tolist() == [[1.0]]
    assert box_blur_kernel(3).sum().item() == pytest.approx(1.0)
    pool = BlurPool2d(4)
    for size, expected in [(224, 112), (7, 4), (4, 2), (2, 1)]:
        assert pool(torch.zeros(1, 4, size, size)).shape[-1] == expected
    # Anti-aliasing: a one-pixel checkerboard (the Nyquist frequency) is blurred away.
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2
    out = pool(checker.float().expand(1, 4, 8, 8))
    torch.testing.assert_close(out[..., 1:, 1:], torch.full_like(out[..., 1:, 1:], 0.5))


@pytest.mark.parametrize("kernel", [2, 3, 5])
def test_same_pad_conv_keeps_size_for_even_and_odd_kernels(kernel):
    conv = SamePadConv2d(3, 3, kernel, groups=3)
    assert conv(torch.zeros(1, 3, 7, 6)).shape == (1, 3, 7, 6)


def test_per_image_standardisation_ignores_brightness_and_contrast():
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(standardise_per_image(x), standardise_per_image(0.5 * x + 0.2))
    flat = torch.full((1, 3, 4, 4), 0.3)
    assert torch.all(standardise_per_image(flat) == 0)


# --- attention_hand_net ------------------------------------------------------------------------


def test_attention_hand_net_size_matches_the_paper():
    model = AttentionHandNet()
    count = _parameters(model)
    print(f"attention_hand_net parameters: {count:,} (paper: 1.9 M)")
    assert abs(count - PAPER_PARAMETERS_SEED_000) <= 0.15 * PAPER_PARAMETERS_SEED_000
    assert model.feature_size == 2  # Table I: dense block 8 at 2 x 2
    dense_layers = [len(b.layers) for b in model.features if isinstance(b, DenseBlock)]
    assert dense_layers == [8, 8, 6, 8, 10, 12, 14, 32]


def test_attention_hand_net_output_at_paper_size():
    model = AttentionHandNet().eval()
    spec = model.spec
    assert spec.input_size == (224, 224) and spec.input_channels == 3
    assert spec.decoder == "regression" and spec.input_kind == "rgb"
    with torch.no_grad():
        out = model(torch.rand(2, 3, 224, 224))
    assert out.shape == (2, 21, 2)
    assert torch.all((out >= 0) & (out <= 1))
    keypoints, confidence = model.decode(out.numpy())
    assert keypoints.shape == (2, 21, 2) and confidence.shape == (2, 21)
    # The head starts at the crop centre, where the clipped ReLU passes gradients.
    np.testing.assert_allclose(keypoints, 112.0, atol=10.0)


def test_attention_hand_net_targets_loss_and_decode_agree():
    model = AttentionHandNet(input_size=64)
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(0, 63, size=(2, 21, 2))
    visible = np.ones((2, 21), dtype=bool)
    visible[1, 4] = False
    targets = _targets(model, keypoints, visible)
    assert targets["coords"].shape == (2, 21, 2)
    assert float(model.loss(targets["coords"], targets)) < 1e-3  # a perfect output
    decoded, confidence = model.decode(targets["coords"].numpy())
    np.testing.assert_allclose(decoded[visible], keypoints[visible], atol=1e-4)
    assert np.all(confidence == 1.0)
    # An invisible keypoint's error does not count.
    output = targets["coords"].clone()
    output[1, 4] += 0.5
    assert float(model.loss(output, targets)) < 1e-3
    # RMSE per keypoint: an error of (0.1, 0.1) on every keypoint costs 0.1.
    assert float(model.loss(targets["coords"] + 0.1, targets)) == pytest.approx(0.1, abs=1e-4)


def test_attention_hand_net_learns_a_batch():
    # Every layer kind (attention at 16 x 16 down to 1 x 1, kernels 5, 3 and 2, BlurPool),
    # two layers per block instead of up to 32, to keep the test fast.
    model = AttentionHandNet(input_size=64, block_layers=[2] * 8)
    images = torch.rand(2, 3, 64, 64)
    keypoints = np.random.default_rng(1).uniform(8, 56, size=(2, 21, 2))
    targets = _targets(model, keypoints, np.ones((2, 21), dtype=bool))
    losses = _train(model, images, targets, steps=20)
    assert all(np.isfinite(losses))
    assert min(losses[-3:]) < 0.5 * losses[0]


# --- msahp ---------------------------------------------------------------------------------------


def test_msahp_shapes_size_and_spec():
    model = MSAHP().eval()
    count = _parameters(model)
    print(f"msahp parameters: {count:,}")
    assert count == MSAHP_PARAMETERS
    spec = model.spec
    assert spec.input_size == (256, 256) and spec.decoder == "score_map"
    with torch.no_grad():
        out = model(torch.randn(2, 3, 256, 256))
    assert out.shape == (2, 2, 21, 32, 32) and torch.all(torch.isfinite(out))
    keypoints, confidence = model.decode(out.numpy())
    assert keypoints.shape == (2, 21, 2) and np.all((confidence >= 0) & (confidence <= 1))


def test_msahp_targets_loss_and_decode_agree():
    model = MSAHP(input_size=64)
    rng = np.random.default_rng(2)
    keypoints = rng.uniform(12, 51, size=(2, 21, 2))  # peaks off the 8 x 8 maps' border
    visible = np.ones((2, 21), dtype=bool)
    visible[0, 7] = False
    targets = _targets(model, keypoints, visible)
    assert targets["maps"].shape == (2, 21, 8, 8) and targets["weights"][0, 7] == 0
    # Logits = log(target maps) in both stages: zero divergence, soft-argmax near the target.
    logits = torch.log(targets["maps"].clamp(min=1e-12)).unsqueeze(1).repeat(1, 2, 1, 1, 1)
    perfect = float(model.loss(logits, targets))
    assert perfect < 1e-3
    assert float(model.loss(torch.zeros_like(logits), targets)) > 100 * max(perfect, 1e-5)
    # A wrong map for the invisible keypoint costs nothing.
    logits[0, :, 7] = torch.randn(2, 8, 8)
    assert float(model.loss(logits, targets)) == pytest.approx(perfect, abs=1e-6)
    decoded, confidence = model.decode(logits.numpy())
    np.testing.assert_allclose(decoded[visible], keypoints[visible], atol=1e-2)
    assert np.all(confidence[visible] > 0.9)


def test_msahp_soft_argmax_matches_the_codec():
    model = MSAHP(input_size=64)
    logits = torch.randn(2, 21, 8, 8) * 3
    expected, _ = score_map.decode(
        score_map.spatial_softmax(logits.numpy()), (64, 64), method="soft_argmax"
    )
    torch.testing.assert_close(
        model.soft_argmax(logits).double(), torch.from_numpy(expected / 64), atol=1e-6, rtol=0
    )


def test_msahp_learns_a_batch():
    model = MSAHP(input_size=64)
    images = torch.randn(2, 3, 64, 64)
    keypoints = np.random.default_rng(3).uniform(4, 59, size=(2, 21, 2))
    targets = _targets(model, keypoints, np.ones((2, 21), dtype=bool))
    losses = _train(model, images, targets, steps=20)
    assert all(np.isfinite(losses))
    assert min(losses[-3:]) < 0.5 * losses[0]


# --- gesture_net -------------------------------------------------------------------------------


def _hand(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-1, 1, size=(21, 2)) * 40 + [320, 240]


def test_normalise_keypoints_is_translation_scale_and_side_invariant():
    rng = np.random.default_rng(4)
    right = _hand(rng)
    out = normalise_keypoints(right, "right")
    assert out.shape == (1, 2, 21) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, :, 0], 0.0)  # wrist at the origin
    assert np.linalg.norm(out[0, :, 9]) == pytest.approx(1.0)  # palm length 1
    moved = 2.5 * right + [17.0, -40.0]
    np.testing.assert_allclose(normalise_keypoints(moved, "right"), out, atol=1e-5)
    left = right.copy()
    left[:, 0] = 1000.0 - left[:, 0]  # the mirror image: a left hand
    np.testing.assert_allclose(normalise_keypoints(left, Handedness.LEFT), out, atol=1e-5)
    both = normalise_keypoints(np.stack([right, left]), ["Right", "left"])
    np.testing.assert_allclose(both[0], both[1], atol=1e-5)
    broken = right.copy()
    broken[3] = np.nan
    assert np.all(np.isfinite(normalise_keypoints(broken, "unknown")))
    with pytest.raises(ValueError):
        normalise_keypoints(right, "ambidextrous")


def test_gesture_net_shapes_size_and_spec():
    model = GestureNet().eval()
    count = _parameters(model)
    print(f"gesture_net parameters: {count:,}")
    assert count == GESTURE_NET_PARAMETERS
    spec = model.spec
    assert spec.input_kind == "keypoints" and spec.input_channels == 0
    assert spec.input_size == (2, 21) and spec.decoder == "classification"
    assert spec.extra["classes"] == [*GESTURES, "none"]
    hands = np.random.default_rng(6).random((2, 21, 2))
    out = model(torch.from_numpy(normalise_keypoints(hands, "right")))
    assert out.shape == (2, 13) and torch.all(torch.isfinite(out))
    indices, confidence = model.decode(out.detach().numpy())
    assert indices.shape == (2,) and np.all((confidence > 0) & (confidence <= 1))


def test_gesture_net_learns_labels():
    model = GestureNet()
    rng = np.random.default_rng(5)
    hands = np.stack([_hand(rng) for _ in range(4)])
    inputs = torch.from_numpy(normalise_keypoints(hands, "right"))
    labels = ["fist", "pinch", "none", 3]
    targets = _targets(model, labels)
    assert targets["labels"].tolist() == [1, 3, 12, 3]
    losses = _train(model, inputs, targets, steps=60)
    assert losses[-1] < 0.2 * losses[0]
    model.eval()
    indices, _ = model.decode(model(inputs).detach().numpy())
    assert classification.names(indices) == ["fist", "pinch", "none", "pinch"]
