"""Building blocks of the Residual Attention Network, used by seed 002.

Wang, Jiang, Qian, Yang, Li, Zhang, Wang, Tang: "Residual Attention Network for Image
Classification", CVPR 2017.

An attention module has a trunk branch T (``t`` residual units) and a mask branch M
(bottom-up: max-pooling and ``r`` residual units per level down to the lowest resolution;
top-down: bilinear up-sampling back, adding the skip connection of each level; then two
1x1 convolutions and a sigmoid), combined by attention residual learning
``H = (1 + M) * T``. ``p`` residual units run before the split and after the combination.
The paper's defaults are p = 1, t = 2, r = 1.

Residual units are pre-activation bottlenecks (BN-ReLU-1x1, BN-ReLU-3x3, BN-ReLU-1x1, a
quarter of the output width inside), as in the Residual Attention Network.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ResidualUnit(nn.Module):
    """Pre-activation bottleneck: (N, C_in, H, W) -> (N, C_out, H / stride, W / stride).

    The shortcut is a strided 1x1 convolution when the shape changes, else the identity.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        mid = max(1, out_channels // 4)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        pre = F.relu(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        # As in pre-activation ResNets, a projection shortcut reads the activated input.
        identity = x if self.shortcut is None else self.shortcut(pre)
        return out + identity


def _units(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(ResidualUnit(channels, channels) for _ in range(count)))


class AttentionModule(nn.Module):
    """Residual attention module: (N, C, H, W) -> (N, C, H, W).

    Args:
        channels: C (kept throughout).
        levels: how many times the mask branch halves the resolution (H and W must be
            divisible by ``2 ** levels``); the original network uses 3, 2 and 1 for its
            three stages so that every mask bottoms out at the same resolution.
        p, t, r: residual units before/after the module, in the trunk, and between
            adjacent pooling layers of the mask branch.
    """

    def __init__(self, channels: int, levels: int, p: int = 1, t: int = 2, r: int = 1) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.levels = levels
        self.pre = _units(channels, p)
        self.trunk = _units(channels, t)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        # down[i] runs after the (i + 1)-th pooling; the lowest level gets 2 r units (r going
        # down, r coming back up, as in the original network).
        self.down = nn.ModuleList(
            _units(channels, 2 * r if i == levels - 1 else r) for i in range(levels)
        )
        # skips[i] carries level i + 1 (after down[i]) to the way up; none at the bottom.
        self.skips = nn.ModuleList(ResidualUnit(channels, channels) for _ in range(levels - 1))
        self.up = nn.ModuleList(_units(channels, r) for _ in range(levels - 1))
        self.mask_head = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
            nn.Sigmoid(),
        )
        self.post = _units(channels, p)

    def mask(self, x: Tensor) -> Tensor:
        """The soft mask M(x) in [0, 1], shape of x."""
        skips: list[Tensor] = []
        out = x
        for level in range(self.levels):
            out = self.down[level](self.pool(out))
            if level < self.levels - 1:
                skips.append(self.skips[level](out))
        for level in reversed(range(self.levels - 1)):
            out = _upsample(out) + skips[level]
            out = self.up[level](out)
        mask: Tensor = self.mask_head(_upsample(out))
        return mask

    def forward(self, x: Tensor) -> Tensor:
        x = self.pre(x)
        trunk = self.trunk(x)
        out = (1.0 + self.mask(x)) * trunk
        result: Tensor = self.post(out)
        return result


def _upsample(x: Tensor) -> Tensor:
    # A fixed factor (not a size read from another tensor) keeps the ONNX graph static.
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


__all__ = ["AttentionModule", "ResidualUnit"]
