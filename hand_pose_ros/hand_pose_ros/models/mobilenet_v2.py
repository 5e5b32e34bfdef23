"""MobileNetV2 encoder (no torchvision on this platform, so written here).

Sandler, Howard, Zhu, Zhmoginov, Chen: "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018.

The network is a 3x3 stride-2 stem convolution followed by 17 inverted-residual blocks
(1x1 expansion -> 3x3 depthwise -> linear 1x1 projection, ReLU6, a skip connection when the
shape is kept). Blocks are numbered 1..17 in the order they run, which is the numbering
seed 003 uses ("up to block 13 as is, block 14 without its stride, blocks 15-17 as is").
The classifier's 1x1 expansion to 1280 channels and the classifier are not part of the
encoder: the seed's decoder reads block 17.

Shapes for a 224x224 input and ``width_mult=1``: stride 32 -> (N, 320, 7, 7); with block 14's
stride removed -> (N, 320, 14, 14), output stride 16.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from torch import Tensor, nn

from hand_pose_ros.models.layers import ConvNormAct, init_conv_and_norm

# (expansion t, output channels c, repeats n, first stride s) of the paper's Table 2.
MOBILENET_V2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, never dropping below 90 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNReLU6(ConvNormAct):
    """Conv2d (no bias) -> BatchNorm2d -> ReLU6, 'same' padding for odd kernels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            groups,
            activation=partial(nn.ReLU6, inplace=True),
        )


class InvertedResidual(nn.Module):
    """One MobileNetV2 block: (N, C_in, H, W) -> (N, C_out, H / stride, W / stride).

    1x1 expansion to ``expansion * C_in`` (skipped when the expansion is 1), 3x3 depthwise
    convolution carrying the stride, linear 1x1 projection; the input is added when the
    stride is 1 and the channel count is kept.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNReLU6(in_channels, hidden, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden, hidden, kernel_size=3, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.body = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        return x + out if self.use_residual else out


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 stem + blocks 1..17: (N, 3, H, W) -> (N, C, H / s, W / s).

    Args:
        width_mult: channel multiplier (1.0 is the paper's network); channels are rounded
            to multiples of 8.
        stride_removed_blocks: 1-based numbers of blocks whose stride 2 becomes 1; each
            halves the output stride. Seed 003 removes block 14's, giving stride 16.

    Attributes:
        out_channels: C, the channel count of block 17 (320 for ``width_mult=1``).
        output_stride: s, the total down-sampling (32 / 2 ** removed strides).
    """

    def __init__(self, width_mult: float = 1.0, stride_removed_blocks: Sequence[int] = ()) -> None:
        super().__init__()
        removed = set(stride_removed_blocks)
        stem = make_divisible(STEM_CHANNELS * width_mult)
        self.stem = ConvBNReLU6(3, stem, kernel_size=3, stride=2)
        blocks: list[nn.Module] = []
        in_channels = stem
        output_stride = 2
        number = 0
        for expansion, channels, repeats, first_stride in MOBILENET_V2_STAGES:
            out_channels = make_divisible(channels * width_mult)
            for repeat in range(repeats):
                number += 1
                stride = first_stride if repeat == 0 else 1
                if number in removed:
                    if stride != 2:
                        raise ValueError(f"block {number} has no stride to remove")
                    stride = 1
                output_stride *= stride
                blocks.append(InvertedResidual(in_channels, out_channels, stride, expansion))
                in_channels = out_channels
        unknown = removed - set(range(1, number + 1))
        if unknown:
            raise ValueError(f"no such MobileNetV2 blocks: {sorted(unknown)} (1..{number})")
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = in_channels
        self.output_stride = output_stride
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            init_conv_and_norm(module)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, 3, H, W) normalised RGB -> (N, out_channels, H / s, W / s)."""
        out: Tensor = self.blocks(self.stem(x))
        return out


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


__all__ = [
    "MOBILENET_V2_STAGES",
    "InvertedResidual",
    "MobileNetV2Encoder",
    "count_parameters",
    "make_divisible",
]
