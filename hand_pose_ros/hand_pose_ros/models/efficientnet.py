"""EfficientNet encoder, B0-B7 by compound scaling (no torchvision here, so written here).

Tan, Le: "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
ICML 2019.

The B0 baseline is a 3x3 stride-2 stem (32 channels), seven stages of MBConv blocks
(1x1 expansion -> kxk depthwise -> squeeze-and-excitation -> linear 1x1 projection, swish
activations, identity skip with stochastic depth when the shape is kept) and a 1x1 "head"
convolution to 1280 channels. A variant scales channels by ``width`` (rounded to multiples
of 8) and block repeats by ``depth`` (rounded up); resolution is the third factor of the
compound scaling and is the caller's choice of input size.

Shapes for a 224x224 input: B0 (N, 1280, 7, 7) with the head convolution, (N, 320, 7, 7)
without; B4 (N, 1792, 7, 7) with, (N, 448, 7, 7) without.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from hand_pose_ros.models.layers import ConvNormAct, init_conv_and_norm


@dataclass(frozen=True)
class StageArgs:
    """One B0 stage: kernel size, first stride, expansion ratio, channels out, repeats."""

    kernel_size: int
    stride: int
    expansion: int
    out_channels: int
    repeats: int


# The B0 baseline (the paper's Table 1); squeeze-excitation ratio 0.25 everywhere.
B0_STAGES: tuple[StageArgs, ...] = (
    StageArgs(3, 1, 1, 16, 1),
    StageArgs(3, 2, 6, 24, 2),
    StageArgs(5, 2, 6, 40, 2),
    StageArgs(3, 2, 6, 80, 3),
    StageArgs(5, 1, 6, 112, 3),
    StageArgs(5, 2, 6, 192, 4),
    StageArgs(3, 1, 6, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
SE_RATIO = 0.25

# variant -> (width coefficient, depth coefficient, native resolution, classifier dropout)
EFFICIENTNET_VARIANTS: dict[str, tuple[float, float, int, float]] = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width``, rounded to a multiple of ``divisor`` (never < 90 %)."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    """Block repeats scaled by ``depth``, rounded up."""
    return math.ceil(depth * repeats)


class ConvBNSwish(ConvNormAct):
    """Conv2d (no bias) -> BatchNorm2d -> swish (SiLU); 'same' padding for odd kernels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            groups,
            activation=partial(nn.SiLU, inplace=True),
            # eps as in the reference implementation; PyTorch's default momentum (0.1, not
            # TF's 0.01) so running statistics settle within short fine-tuning runs.
            bn_eps=1e-3,
        )


class SqueezeExcite(nn.Module):
    """Channel gating: (N, C, H, W) -> (N, C, H, W) scaled by sigmoid(fc(swish(fc(mean))))."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.act = nn.SiLU(inplace=True)
        self.expand = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        scale = x.mean(dim=(2, 3), keepdim=True)
        scale = torch.sigmoid(self.expand(self.act(self.reduce(scale))))
        return x * scale


class DropPath(nn.Module):
    """Stochastic depth: drops a sample's residual branch with probability ``rate`` while
    training (rescaling the kept ones); the identity at inference and in ONNX export."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = torch.rand((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device) < keep
        return x * mask.to(x.dtype) / keep


class MBConv(nn.Module):
    """Mobile inverted bottleneck with squeeze-excitation: (N, C_in, H, W) -> (N, C_out, H/s, W/s).

    The squeeze width is ``SE_RATIO * C_in`` (of the block input, not of the expansion),
    as in the reference implementation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        expansion: int,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNSwish(in_channels, hidden, 1))
        layers += [
            ConvBNSwish(hidden, hidden, kernel_size, stride, groups=hidden),
            SqueezeExcite(hidden, max(1, int(in_channels * SE_RATIO))),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels, eps=1e-3),
        ]
        self.body = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.drop_path = DropPath(drop_path) if self.use_residual else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.body(x)
        if self.use_residual:
            out = x + self.drop_path(out)
        return out


class EfficientNetEncoder(nn.Module):
    """EfficientNet stem, MBConv stages and (optionally) the 1x1 head convolution.

    (N, 3, H, W) normalised RGB -> (N, out_channels, H / 32, W / 32).

    Args:
        variant: "b0" .. "b7" (compound scaling coefficients of the paper).
        include_head: keep the 1x1 convolution to ``round_filters(1280)`` channels that
            ends the classifier's feature extractor (what EfficientNet-PyTorch's
            ``extract_features`` returns).
        drop_path_rate: stochastic depth rate of the last block (linear in block index,
            0 for the first), the paper uses 0.2 when training from scratch.
    """

    def __init__(
        self, variant: str = "b0", include_head: bool = True, drop_path_rate: float = 0.0
    ) -> None:
        super().__init__()
        if variant not in EFFICIENTNET_VARIANTS:
            raise ValueError(
                f"unknown EfficientNet variant {variant!r}; known: {sorted(EFFICIENTNET_VARIANTS)}"
            )
        width, depth, resolution, _ = EFFICIENTNET_VARIANTS[variant]
        self.variant = variant
        self.native_resolution = resolution
        stem = round_filters(STEM_CHANNELS, width)
        self.stem = ConvBNSwish(3, stem, 3, stride=2)
        total = sum(round_repeats(stage.repeats, depth) for stage in B0_STAGES)
        blocks: list[nn.Module] = []
        in_channels = stem
        index = 0
        for stage in B0_STAGES:
            out_channels = round_filters(stage.out_channels, width)
            for repeat in range(round_repeats(stage.repeats, depth)):
                blocks.append(
                    MBConv(
                        in_channels,
                        out_channels,
                        stage.kernel_size,
                        stage.stride if repeat == 0 else 1,
                        stage.expansion,
                        drop_path=drop_path_rate * index / total,
                    )
                )
                in_channels = out_channels
                index += 1
        self.blocks = nn.Sequential(*blocks)
        self.blocks_out_channels = in_channels
        self.head: nn.Module = nn.Identity()
        if include_head:
            head = round_filters(HEAD_CHANNELS, width)
            self.head = ConvBNSwish(in_channels, head, 1)
            in_channels = head
        self.out_channels = in_channels
        self.output_stride = 32
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            init_conv_and_norm(module)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, 3, H, W) -> (N, out_channels, H / 32, W / 32)."""
        out: Tensor = self.head(self.blocks(self.stem(x)))
        return out


__all__ = [
    "B0_STAGES",
    "EFFICIENTNET_VARIANTS",
    "EfficientNetEncoder",
    "MBConv",
    "SqueezeExcite",
    "round_filters",
    "round_repeats",
]
