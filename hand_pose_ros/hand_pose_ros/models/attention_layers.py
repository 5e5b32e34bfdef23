"""Layers of seed 000 (Santavas et al., "Attention! A Lightweight 2D Hand Pose Estimation
Approach", IEEE Sensors Journal 2020): Mish, BlurPool and the attention-augmented convolution.

- ``Mish``: f(x) = x tanh(softplus(x)) (Misra 2019); ONNX exporters write it as the Mish op
  (opset 18) or as Softplus, Tanh and Mul.
- ``BlurPool2d``: anti-aliased downsampling (Zhang 2019) with the paper's box-filter family,
  eq. (5)-(7): B_n is a box of n ones, Box_m = B_n * B_n (m = 2n - 1 taps), the 2D filter is
  the outer product Box_m x Box_m, normalised to sum 1. n = 2 gives [1, 2, 1] x [1, 2, 1] / 16.
- ``AttentionAugmentedConv2d``: Bello et al., "Attention Augmented Convolutional Networks"
  (ICCV 2019): a standard convolution with ``out_channels - value_depth`` outputs,
  concatenated with multi-head self-attention over all spatial positions (``value_depth``
  outputs). Attention logits carry 2D relative position terms (eq. 10-11 of seed 000):
  learned embeddings for the width and height offsets between query and key pixel, turned
  from relative to absolute indexing with the 'rel_to_abs' pad-and-reshape trick
  (``relative_to_absolute``), here used once to build each layer's index table.

Every layer works on (N, C, H, W) float tensors, keeps static shapes and uses no
data-dependent control flow, so the whole model exports to ONNX.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Mish(nn.Module):
    """Mish activation, x * tanh(softplus(x)); any shape in, same shape out."""

    def forward(self, x: Tensor) -> Tensor:
        return F.mish(x)


def same_padding(kernel_size: int) -> tuple[int, int]:
    """(before, after) zero padding that keeps the size for a stride-1 convolution.

    An even kernel needs one more pixel after than before (TensorFlow's 'same', which the
    official code used): kernel 2 -> (0, 1), kernel 3 -> (1, 1), kernel 5 -> (2, 2).
    """
    total = kernel_size - 1
    return total // 2, total - total // 2


class SamePadConv2d(nn.Module):
    """A stride-1 convolution whose output has the input's height and width, for odd and even
    kernels (the even depthwise kernel 2 of the last dense block needs asymmetric padding).

    Args: as ``nn.Conv2d`` (``groups`` for depthwise). Input (N, C_in, H, W), output
    (N, C_out, H, W).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        before, after = same_padding(kernel_size)
        self.symmetric = before == after
        self.pad = (before, after, before, after)
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=before if self.symmetric else 0,
            groups=groups,
            bias=bias,
        )

    def forward(self, x: Tensor) -> Tensor:
        if not self.symmetric:
            x = F.pad(x, self.pad)
        return self.conv(x)


def box_blur_kernel(n: int) -> Tensor:
    """The paper's anti-aliasing filter for box width ``n`` (eq. 5-7): shape (m, m), m = 2n - 1,
    sum 1. n = 1 is the identity (plain subsampling), n = 2 is [1, 2, 1] x [1, 2, 1] / 16."""
    if n < 1:
        raise ValueError(f"box width n must be >= 1, got {n}")
    # B_n * B_n (full 1D convolution of two boxes of n ones): a triangle with 2n - 1 taps.
    taps = torch.tensor([min(i + 1, 2 * n - 1 - i) for i in range(2 * n - 1)], dtype=torch.float64)
    kernel = torch.outer(taps, taps)
    return (kernel / kernel.sum()).to(torch.float32)


class BlurPool2d(nn.Module):
    """Anti-aliased downsampling: blur each channel with ``box_blur_kernel(box_n)``, then take
    every ``stride``-th pixel. Zero padding (m - 1) // 2 before and m // 2 after, as in the
    official code, so H -> ceil(H / stride) for the default filter (224 -> 112, 7 -> 4, 2 -> 1).

    Input (N, C, H, W), output (N, C, H', W'). The filter is a fixed buffer (not a parameter,
    not saved in checkpoints).
    """

    def __init__(self, channels: int, *, stride: int = 2, box_n: int = 2) -> None:
        super().__init__()
        kernel = box_blur_kernel(box_n)
        size = kernel.shape[0]
        self.channels = channels
        self.stride = stride
        self.pad = ((size - 1) // 2, size // 2, (size - 1) // 2, size // 2)
        self.register_buffer(
            "kernel", kernel.expand(channels, 1, size, size).clone(), persistent=False
        )
        self.kernel: Tensor

    def forward(self, x: Tensor) -> Tensor:
        if self.pad[0] == self.pad[1]:
            return F.conv2d(
                x, self.kernel, stride=self.stride, padding=self.pad[0], groups=self.channels
            )
        return F.conv2d(F.pad(x, self.pad), self.kernel, stride=self.stride, groups=self.channels)


def relative_to_absolute(x: Tensor) -> Tensor:
    """Re-index relative logits to absolute key positions (the 'rel_to_abs' trick).

    Args:
        x: shape (M, L, 2L - 1); ``x[m, i, r]`` belongs to query position i and relative
            offset r - (L - 1).
    Returns:
        shape (M, L, L); ``out[m, i, j] = x[m, i, j - i + L - 1]``.

    Padding one column makes each row 2L long; flattened and padded with L - 1 more zeros,
    the buffer re-read as rows of 2L - 1 is shifted by one more position per row, which
    lines every row up on absolute key positions. Only pad, reshape and slice.
    """
    length = x.shape[-2]
    x = F.pad(x, (0, 1))  # (M, L, 2L)
    flat = F.pad(x.reshape(-1, length * 2 * length), (0, length - 1))  # (M, (L+1)(2L-1))
    return flat.reshape(-1, length + 1, 2 * length - 1)[:, :length, length - 1 :]


def relative_index(length: int) -> Tensor:
    """Index of the relative embedding for every (query, key) pair along one axis.

    Returns:
        shape (L, L) int64; ``out[i, j] = j - i + L - 1`` (the row of a (2L - 1, d)
        embedding table for offset key - query).

    Built with ``relative_to_absolute`` from the offsets themselves, once per layer: gathering
    the embedding table with it gives the same logits as Bello et al.'s re-indexing of the
    relative logits, with the re-indexing out of the forward pass (the ONNX graph holds one
    Gather per table instead of pads and batch-dependent reshapes).
    """
    offsets = torch.arange(2 * length - 1, dtype=torch.float64).expand(1, length, -1)
    return relative_to_absolute(offsets)[0].round().long()


class RelativeMultiHeadAttention2d(nn.Module):
    """Multi-head self-attention over the H x W positions of a feature map, with 2D relative
    position logits (Bello et al. 2019; seed 000 eq. 11):

        O_h = softmax((Q K^T + S_H^rel + S_W^rel) / sqrt(d_k^h)) V

    where S_W^rel[i, j] = q_i . r^W_{x_j - x_i} and S_H^rel[i, j] = q_i . r^H_{y_j - y_i}, with
    learned embeddings r^W (2W - 1, d_k^h) and r^H (2H - 1, d_k^h) shared by all heads.

    Input: qkv of shape (N, 2 key_depth + value_depth, H, W) (queries, keys, values stacked
    along channels, each head's channels contiguous). Output (N, value_depth, H, W), heads
    concatenated.
    """

    def __init__(
        self, key_depth: int, value_depth: int, num_heads: int, height: int, width: int
    ) -> None:
        super().__init__()
        if key_depth % num_heads or value_depth % num_heads:
            raise ValueError(
                f"key depth {key_depth} and value depth {value_depth} must be divisible by "
                f"the number of heads {num_heads}"
            )
        self.key_depth = key_depth
        self.value_depth = value_depth
        self.num_heads = num_heads
        self.height = height
        self.width = width
        self.key_depth_per_head = dkh = key_depth // num_heads
        self.relative_width = nn.Parameter(torch.randn(2 * width - 1, dkh) * dkh**-0.5)
        self.relative_height = nn.Parameter(torch.randn(2 * height - 1, dkh) * dkh**-0.5)
        self.register_buffer("index_width", relative_index(width), persistent=False)
        self.register_buffer("index_height", relative_index(height), persistent=False)
        self.index_width: Tensor
        self.index_height: Tensor

    def forward(self, qkv: Tensor) -> Tensor:
        heads, dkh = self.num_heads, self.key_depth_per_head
        dvh = self.value_depth // heads
        h, w = self.height, self.width
        q, k, v = torch.split(qkv, [self.key_depth, self.key_depth, self.value_depth], dim=1)
        # Queries scaled once: the paper divides content and position logits alike.
        q = q.reshape(-1, heads, dkh, h * w).transpose(2, 3) * (dkh**-0.5)  # (N, h, HW, d)
        k = k.reshape(-1, heads, dkh, h * w)  # (N, heads, d, HW)
        v = v.reshape(-1, heads, dvh, h * w).transpose(2, 3)  # (N, heads, HW, dv)
        logits = (q @ k).reshape(-1, heads, h, w, h, w)  # (query y, x, key y, x)

        q_pixels = q.reshape(-1, heads, h, w, 1, dkh)
        # (W, d, W): per query column x, the embeddings of every key column; same for rows.
        table_w = self.relative_width[self.index_width].transpose(1, 2)
        table_h = self.relative_height[self.index_height].transpose(1, 2).unsqueeze(1)
        rel_w = q_pixels @ table_w  # (N, heads, H, W, 1, W): varies with key x
        rel_h = (q_pixels @ table_h).transpose(4, 5)  # (N, heads, H, W, H, 1): with key y
        logits = logits + rel_w + rel_h
        weights = torch.softmax(logits.reshape(-1, heads, h * w, h * w), dim=-1)
        out = weights @ v  # (N, heads, HW, dv)
        return out.transpose(2, 3).reshape(-1, self.value_depth, h, w)


class AttentionAugmentedConv2d(nn.Module):
    """Attention-augmented convolution (Bello et al. 2019): concat[conv(x), MHA(x)].

    Args:
        in_channels: C_in.
        out_channels: C_out = conv outputs + ``value_depth`` attention outputs.
        kernel_size: the convolution branch's kernel (stride 1, 'same' padding, even allowed).
        key_depth, value_depth: d_k and d_v summed over heads (seed 000: 0.1 x C_out each).
        num_heads: N_h; d_k and d_v must be divisible by it.
        height, width: the feature map size the relative embeddings are made for.

    Input (N, C_in, height, width), output (N, C_out, height, width).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        key_depth: int,
        value_depth: int,
        num_heads: int,
        height: int,
        width: int,
    ) -> None:
        super().__init__()
        if not 0 < value_depth < out_channels:
            raise ValueError(f"value depth {value_depth} must be in (0, {out_channels})")
        self.conv = SamePadConv2d(in_channels, out_channels - value_depth, kernel_size)
        self.qkv = nn.Conv2d(in_channels, 2 * key_depth + value_depth, 1)
        self.attention = RelativeMultiHeadAttention2d(
            key_depth, value_depth, num_heads, height, width
        )
        self.project = nn.Conv2d(value_depth, value_depth, 1)

    def forward(self, x: Tensor) -> Tensor:
        attended = self.project(self.attention(self.qkv(x)))
        return torch.cat([self.conv(x), attended], dim=1)


def depth_fraction(fraction: float, channels: int) -> int:
    """``fraction`` of ``channels`` as a whole number of channels (0.1 x 40 -> 4)."""
    return max(1, math.floor(fraction * channels + 1e-6))
