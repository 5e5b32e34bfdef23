"""Small building blocks shared by the model zoo's encoders and decoders."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


class ConvNormAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> activation, 'same' padding for odd kernels.

    (N, C_in, H, W) -> (N, C_out, H / stride, W / stride). The submodules are numbered
    0 = conv, 1 = bn, 2 = activation, so state_dict keys read ``<name>.0.weight``,
    ``<name>.1.running_mean`` and so on.

    Args:
        in_channels, out_channels: C_in and C_out.
        kernel_size: square kernel size; padding is ``kernel_size // 2``.
        stride: convolution stride.
        groups: convolution groups (``groups == in_channels`` for a depthwise convolution).
        activation: makes the activation module, e.g. ``functools.partial(nn.ReLU,
            inplace=True)``.
        bn_eps: the BatchNorm's epsilon.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        *,
        activation: Callable[[], nn.Module],
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride,
                kernel_size // 2,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels, eps=bn_eps),
            activation(),
        )


__all__ = ["ConvNormAct"]
