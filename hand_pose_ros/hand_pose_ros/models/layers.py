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


def init_conv(conv: nn.Conv2d | nn.ConvTranspose2d) -> None:
    """He-normal initialisation with the fan-out counted per group: std sqrt(2 / fan_out),
    fan_out = k_h * k_w * C_out / groups.

    The reference MobileNetV2 / EfficientNet initialisations count all output channels even
    for a depthwise convolution, which makes depthwise outputs ~100x smaller than their
    inputs and leaves BatchNorm running variances far from the batch variances for hundreds
    of steps (a short training run then behaves very differently in eval mode). Counting per
    group avoids that and, in our overfitting runs, trains as fast.
    """
    kernel = conv.weight[0, 0].numel()
    fan_out = max(1, conv.out_channels // conv.groups * kernel)
    nn.init.normal_(conv.weight, std=(2.0 / fan_out) ** 0.5)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def init_conv_and_norm(module: nn.Module) -> None:
    """The zoo's initialisation of one module: ``init_conv`` for a convolution, weight 1 and
    bias 0 for a BatchNorm; anything else is left alone. Call it over ``modules()`` (in that
    order: the random draws follow it)."""
    if isinstance(module, nn.Conv2d):
        init_conv(module)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


__all__ = ["ConvNormAct", "init_conv", "init_conv_and_norm"]
