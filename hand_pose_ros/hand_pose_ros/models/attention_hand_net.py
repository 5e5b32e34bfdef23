"""Seed 000: attention-augmented dense network for holistic 2D hand keypoint regression.

Paper: N. Santavas, I. Kansizoglou, L. Bampis, E. Karakasis, A. Gasteratos, "Attention! A
Lightweight 2D Hand Pose Estimation Approach", IEEE Sensors Journal 21(10), 2021
(arXiv:2001.08047). Architecture from Table I, reconciled with the official Keras code.

Input: (N, 3, 224, 224) float32 RGB crop, ``rgb / 255`` (spec mean 0, std 1). The network
standardises each image itself by its own mean and standard deviation over all pixels and
channels (TensorFlow's ``per_image_standardization``, as in the official training code), so
brightness and contrast offsets of the crop do not matter. Output: (N, 21, 2) keypoint
coordinates normalised by the crop size, (u / 224, v / 224), in [0, 1]; decoded by
``hand_pose_ros.codecs.regression``.

Architecture (growth rate k = 10, expansion e = 4):

- There is no separate stem: dense block 1 runs on the 224 x 224 image itself (Table I; the
  paper's "stem" is dense blocks 1-2, the "tail" blocks 3-8).
- Eight dense blocks of 8, 8, 6, 8, 10, 12, 14, 32 layers at 224, 112, 56, 28, 14, 7, 4, 2 px.
  Each layer (inverted bottleneck) maps the concatenation of all earlier outputs to k new
  channels: 1x1 conv to e k = 40 -> BN -> Mish -> depthwise conv (kernel 5 in blocks 1-2,
  3 in blocks 3-7, 2 in block 8; 'same' padding, the even kernel padded one pixel more
  after) -> BN -> Mish -> [blocks 3-8: + attention-augmented conv of that (same kernel,
  40 outputs of which d_v = 4 from attention, d_k = 4, 1 head in block 3 and 4 after) -> BN
  -> Mish] -> 1x1 conv to k -> BN -> Mish.
- Transition after blocks 1-7: 1x1 conv to 64 (128 after blocks 6 and 7) -> BlurPool
  (stride 2, box filter n = 2, i.e. [1, 2, 1]^2 / 16) -> BN.
- Head: an attention-augmented conv (kernel 2, 100 outputs, d_k = d_v = 10, 10 heads) -> BN
  -> Mish at 2 x 2 ("AA-Bottleneck" of Table I), global average pool, 1x1 conv to 42,
  ReLU clipped at 1.

Parameters: 1.95 M at 224 x 224 (paper: 1.9 M). Loss: RMSE as in the official code (per
keypoint, the root of the mean squared error of its two coordinates, averaged over the
visible keypoints). The official training also puts an L2 penalty (0.01) on the plain
convolutions' kernels and uses SGD with a triangular cyclic learning rate (1e-4 to 0.1); those
belong to the training loop (weight decay, schedule), not to ``loss``.

Departures: the head's bias starts at 0.5 and its weights near 0, so that every coordinate
starts at the crop centre, inside the clipped ReLU's [0, 1] where gradients flow (a random
start below 0 or above 1 leaves a coordinate without gradient).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hand_pose_ros.codecs import regression
from hand_pose_ros.models.attention_layers import (
    AttentionAugmentedConv2d,
    BlurPool2d,
    Mish,
    SamePadConv2d,
    depth_fraction,
)
from hand_pose_ros.models.base import HandPoseModel
from hand_pose_ros.models.registry import ModelError, ModelSpec, register_model

NUM_KEYPOINTS = 21
PAPER = (
    "Santavas et al., Attention! A Lightweight 2D Hand Pose Estimation Approach, "
    "IEEE Sensors Journal 2021 (arXiv:2001.08047)"
)

# Per dense block: layers, depthwise kernel, attention heads (0 = no attention),
# and the width of the transition after it (None after the last block).
BLOCK_LAYERS = (8, 8, 6, 8, 10, 12, 14, 32)
BLOCK_KERNELS = (5, 5, 3, 3, 3, 3, 3, 2)
BLOCK_HEADS = (0, 0, 1, 4, 4, 4, 4, 4)
TRANSITION_WIDTHS = (64, 64, 64, 64, 64, 128, 128)
ATTENTION_FRACTION = 0.1  # d_k / C_out and d_v / C_out
HEAD_WIDTH, HEAD_HEADS, HEAD_KERNEL = 100, 10, 2
RMSE_EPS = 1e-8


def _downsampled(size: int) -> int:
    """Spatial size after a stride-2 BlurPool (zero padding 1 each side, 3 taps)."""
    return (size - 1) // 2 + 1


class _BnMish(nn.Sequential):
    def __init__(self, channels: int) -> None:
        super().__init__(nn.BatchNorm2d(channels), Mish())


class InvertedBottleneckLayer(nn.Module):
    """One dense layer: (N, C_in, H, W) -> (N, growth_rate, H, W). See the module docstring."""

    def __init__(
        self,
        in_channels: int,
        growth_rate: int,
        expansion: int,
        kernel_size: int,
        num_heads: int,
        size: int,
    ) -> None:
        super().__init__()
        width = growth_rate * expansion
        self.expand = nn.Sequential(nn.Conv2d(in_channels, width, 1), _BnMish(width))
        self.depthwise = nn.Sequential(
            SamePadConv2d(width, width, kernel_size, groups=width), _BnMish(width)
        )
        self.attention: nn.Module | None = None
        if num_heads > 0:
            depth = depth_fraction(ATTENTION_FRACTION, width)
            self.attention = nn.Sequential(
                AttentionAugmentedConv2d(
                    width,
                    width,
                    kernel_size,
                    key_depth=depth,
                    value_depth=depth,
                    num_heads=num_heads,
                    height=size,
                    width=size,
                ),
                _BnMish(width),
            )
        self.project = nn.Sequential(nn.Conv2d(width, growth_rate, 1), _BnMish(growth_rate))

    def forward(self, x: Tensor) -> Tensor:
        x = self.depthwise(self.expand(x))
        if self.attention is not None:
            x = x + self.attention(x)
        return self.project(x)


class DenseBlock(nn.Module):
    """``num_layers`` inverted-bottleneck layers, each fed the concatenation of the block input
    and all earlier outputs. (N, C, H, W) -> (N, C + num_layers * growth_rate, H, W)."""

    def __init__(self, in_channels: int, num_layers: int, growth_rate: int, **layer: Any) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            InvertedBottleneckLayer(in_channels + i * growth_rate, growth_rate, **layer)
            for i in range(num_layers)
        )
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x


class Transition(nn.Sequential):
    """1x1 conv -> BlurPool stride 2 -> BN: (N, C_in, H, W) -> (N, C_out, ceil(H/2), ceil(W/2))."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 1),
            BlurPool2d(out_channels, stride=2, box_n=2),
            nn.BatchNorm2d(out_channels),
        )


def standardise_per_image(x: Tensor) -> Tensor:
    """TensorFlow's per_image_standardization: (x - mean) / max(std, 1 / sqrt(#values)) over
    each image's pixels and channels. (N, C, H, W) -> (N, C, H, W)."""
    count = x.shape[1] * x.shape[2] * x.shape[3]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = (x - mean).pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
    return (x - mean) / torch.clamp(std, min=float(count) ** -0.5)


@register_model("attention_hand_net")
class AttentionHandNet(HandPoseModel):
    """Seed-000 holistic regressor: (N, 3, S, S) RGB crop -> (N, 21, 2) normalised (u, v).

    Args:
        input_size: S, the square crop size in pixels (224 in the paper; smaller sizes build
            the same layers for quick tests, the relative embeddings follow the sizes).
        growth_rate: k, channels each dense layer adds (10).
        expansion: e, the inverted bottleneck's expansion factor (4).
        block_layers: layers per dense block (8 blocks).
        per_image_standardization: standardise each input image inside the network (True,
            as the official code); False feeds the input as it is.
    """

    def __init__(
        self,
        input_size: int = 224,
        growth_rate: int = 10,
        expansion: int = 4,
        block_layers: Sequence[int] = BLOCK_LAYERS,
        per_image_standardization: bool = True,
    ) -> None:
        super().__init__()
        block_layers = [int(n) for n in block_layers]
        if len(block_layers) != len(BLOCK_LAYERS) or min(block_layers) < 1:
            raise ModelError(f"block_layers must be {len(BLOCK_LAYERS)} positive counts")
        if input_size < 1:
            raise ModelError(f"input_size must be positive, got {input_size}")
        self._config = {
            "input_size": int(input_size),
            "growth_rate": int(growth_rate),
            "expansion": int(expansion),
            "block_layers": block_layers,
            "per_image_standardization": bool(per_image_standardization),
        }
        self.input_size = int(input_size)
        self.per_image_standardization = bool(per_image_standardization)

        stages: list[nn.Module] = []
        channels, size = 3, self.input_size
        for index, num_layers in enumerate(block_layers):
            block = DenseBlock(
                channels,
                num_layers,
                growth_rate,
                expansion=expansion,
                kernel_size=BLOCK_KERNELS[index],
                num_heads=BLOCK_HEADS[index],
                size=size,
            )
            stages.append(block)
            channels = block.out_channels
            if index < len(TRANSITION_WIDTHS):
                stages.append(Transition(channels, TRANSITION_WIDTHS[index]))
                channels, size = TRANSITION_WIDTHS[index], _downsampled(size)
        head_depth = depth_fraction(ATTENTION_FRACTION, HEAD_WIDTH)
        stages.append(
            nn.Sequential(
                AttentionAugmentedConv2d(
                    channels,
                    HEAD_WIDTH,
                    HEAD_KERNEL,
                    key_depth=head_depth,
                    value_depth=head_depth,
                    num_heads=HEAD_HEADS,
                    height=size,
                    width=size,
                ),
                _BnMish(HEAD_WIDTH),
            )
        )
        self.features = nn.Sequential(*stages)
        self.feature_size = size
        self.head = nn.Conv2d(HEAD_WIDTH, 2 * NUM_KEYPOINTS, 1)
        # Start every coordinate near the crop centre: the clipped ReLU has no gradient
        # outside [0, 1], so a random start there would leave coordinates stuck.
        nn.init.normal_(self.head.weight, std=0.01)
        assert self.head.bias is not None
        nn.init.constant_(self.head.bias, 0.5)

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(
            input_size=(self.input_size, self.input_size),
            input_channels=3,
            mean=(0.0, 0.0, 0.0),
            std=(1.0, 1.0, 1.0),
            input_kind="rgb",
            output="coords",
            decoder="regression",
            paper=PAPER,
            extra={
                "output_shape": [NUM_KEYPOINTS, 2],
                "coordinates": "(u / W, v / H) in [0, 1]",
                "per_image_standardization": self.per_image_standardization,
            },
        )

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 3, S, S) -> (N, 100, s, s) features after the AA bottleneck (s = 2 at 224)."""
        if self.per_image_standardization:
            x = standardise_per_image(x)
        return self.features(x)

    def forward_head(self, features: Tensor) -> Tensor:
        """(N, 100, s, s) -> (N, 21, 2) normalised coordinates in [0, 1]."""
        pooled = features.mean(dim=(2, 3), keepdim=True)
        coords = torch.clamp(self.head(pooled), 0.0, 1.0)
        return coords.reshape(-1, NUM_KEYPOINTS, 2)

    def make_targets(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """Targets for a batch.

        Args:
            keypoints: (N, 21, 2) input-crop pixels (u, v).
            visible: (N, 21) bool.
        Returns:
            {"coords": (N, 21, 2) float32 normalised, "weights": (N, 21) float32}.
        """
        coords, weights = regression.encode(keypoints, visible, (self.input_size,) * 2)
        return {"coords": coords, "weights": weights}

    def loss(self, output: Tensor, targets: dict[str, Tensor]) -> Tensor:
        """RMSE: per keypoint sqrt(mean over (u, v) of the squared error), averaged over the
        visible keypoints. output (N, 21, 2); targets from ``make_targets``."""
        squared = (output - targets["coords"].to(output)).pow(2).mean(dim=-1)
        per_keypoint = torch.sqrt(squared + RMSE_EPS)
        weights = targets["weights"].to(output)
        return (per_keypoint * weights).sum() / weights.sum().clamp(min=1.0)

    def decode(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 21, 2) normalised coordinates -> (keypoints (N, 21, 2) px, confidence (N, 21))."""
        coords = np.asarray(output, dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 2)
        return regression.decode(coords, (self.input_size,) * 2)
