"""Seed 001: MSAHP, two stacked encoder-decoders with multi-head self-attention bottlenecks.

Paper: Z. Zhang, B. Zhang, F. Li, D. Kong, "Multihead Self Attention Hand Pose Estimation",
E3S Web of Conferences 218, 01023 (ISCEG 2020). No public code; built from Table 1 and the
text (section 3.2-3.3).

Input: (N, 3, 256, 256) float32 RGB crop, (rgb / 255 - mean) / std with the ImageNet mean and
std (the paper does not say; ImageNet statistics are the usual choice). Output:
(N, 2, 21, 32, 32) score-map logits of both stages (intermediate supervision); a spatial
softmax over each 32 x 32 map gives a probability map; the last stage is the prediction,
decoded by ``hand_pose_ros.codecs.score_map`` (stride 8, pixel centres aligned).

Layers (Table 1 ids; "Conv+relu+bn" is conv -> ReLU -> BN, in the paper's order):

- Stage 1, encoder: 1 conv3 64 @256, 2 maxpool, 3-4 conv3 96 @128, 5 maxpool, 6-7 conv3 128
  @64, 8 maxpool, 9-10 conv3 256 @32. Bottleneck: multi-head self-attention over the
  32 x 32 positions (below). Decoder: 11 conv1 -> 21 maps (stage-1 output).
- Stage 2: 12 concat(attended features, stage-1 maps) = 277 channels; encoder 13-14 conv3 128;
  bottleneck: a second self-attention block (128 channels); decoder 15-16 conv5 128,
  17 add(15, 16), 18 conv3 + ReLU, 19 conv 1x3 -> 21, 20 conv 3x1, 21 conv1 -> 21 maps.

Self-attention bottleneck (section 3.2, Fig. 2; the figure's details are not in the text,
so it is built as a standard pre-norm Transformer encoder layer): tokens = the H x W feature
vectors; y = LayerNorm(tokens); multi-head attention with queries and keys from y + P and
values from y, P a fixed 2D sine-cosine positional encoding (half the channels encode the
row, half the column); residual; LayerNorm -> MLP (GELU, ``mlp_ratio`` x wider) -> residual.

Where we had to interpret the paper:
- Table 1 lists rows 1-21 without the attention modules or the stacking; we read rows 1-11
  as stage 1 (its 1x1 conv, row 11, is the intermediate output that row 12 concatenates) and
  rows 12-21 as stage 2, and put one self-attention bottleneck in each stage, between its
  convolutional encoder and decoder, at the 32 x 32 resolution Table 1 gives for all of them.
- Loss (section 3.3): alpha x cross-entropy + (1 - alpha) x L2, alpha = 0.7. Cross-entropy is
  between the spatial softmax of each map and the normalised target map; we subtract the
  target's entropy (a constant), i.e. report the KL divergence, so that a perfect fit scores
  0 (gradients unchanged). L2 is the squared distance between the soft-argmax of each map and
  the target keypoint, in crop-normalised units (u / W, v / H) so both terms are O(1).
  Per keypoint, averaged over visible keypoints, summed over the two stages.
- Target maps: the paper's "variance of 30 pixels" on 320 x 240 images maps to under one
  pixel of a 32 x 32 map; we use sigma = 1 map pixel (8 crop pixels), the smallest width a
  stride-8 map represents with sub-pixel precision.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hand_pose_ros.codecs import score_map
from hand_pose_ros.models.base import HandPoseModel
from hand_pose_ros.models.registry import ModelError, ModelSpec, register_model

NUM_KEYPOINTS = 21
NUM_STAGES = 2
STRIDE = 8
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAPER = (
    "Zhang, Zhang, Li, Kong, Multihead Self Attention Hand Pose Estimation, "
    "E3S Web of Conferences 218, 01023 (2020)"
)


class ConvReluBn(nn.Sequential):
    """Table 1's "Conv+relu+bn": k x k conv ('same') -> ReLU -> BN. (N, C_in, H, W) ->
    (N, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(out_channels),
        )


def sine_position_encoding(height: int, width: int, channels: int) -> Tensor:
    """Fixed 2D sine-cosine positional encoding: shape (height * width, channels), row-major
    positions. The first half of the channels encodes the row, the second the column, each
    as sin/cos pairs at geometrically spaced frequencies (Vaswani et al. 2017, per axis)."""
    if channels % 4:
        raise ValueError(f"channels must be divisible by 4, got {channels}")
    quarter = channels // 4
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(quarter) / quarter)
    rows = torch.arange(height, dtype=torch.float32)[:, None] * frequencies  # (H, C/4)
    cols = torch.arange(width, dtype=torch.float32)[:, None] * frequencies  # (W, C/4)
    row_code = torch.cat([rows.sin(), rows.cos()], dim=1)[:, None, :].expand(height, width, -1)
    col_code = torch.cat([cols.sin(), cols.cos()], dim=1)[None, :, :].expand(height, width, -1)
    return torch.cat([row_code, col_code], dim=2).reshape(height * width, channels)


class SelfAttentionBottleneck(nn.Module):
    """Pre-norm Transformer encoder layer over the positions of a feature map, with a fixed 2D
    positional encoding added to queries and keys. (N, C, H, W) -> (N, C, H, W).

    Args:
        channels: C (divisible by ``num_heads`` and by 4).
        num_heads: attention heads.
        height, width: the feature map size (the positional encoding is made for it).
        mlp_ratio: the MLP's hidden width / C.
    """

    def __init__(
        self, channels: int, num_heads: int, height: int, width: int, mlp_ratio: float
    ) -> None:
        super().__init__()
        if channels % num_heads:
            raise ModelError(f"{channels} channels are not divisible by {num_heads} heads")
        self.channels = channels
        self.num_heads = num_heads
        self.height = height
        self.width = width
        self.norm_attention = nn.LayerNorm(channels)
        self.query_key = nn.Linear(channels, 2 * channels)
        self.value = nn.Linear(channels, channels)
        self.out = nn.Linear(channels, channels)
        self.norm_mlp = nn.LayerNorm(channels)
        hidden = round(channels * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels)
        )
        self.register_buffer(
            "position", sine_position_encoding(height, width, channels), persistent=False
        )
        self.position: Tensor

    def _heads(self, x: Tensor) -> Tensor:
        # (N, L, C) -> (N, heads, L, C / heads)
        return x.reshape(-1, x.shape[1], self.num_heads, self.channels // self.num_heads).transpose(
            1, 2
        )

    def forward(self, x: Tensor) -> Tensor:
        length = self.height * self.width
        tokens = x.flatten(2).transpose(1, 2)  # (N, HW, C)
        y = self.norm_attention(tokens)
        query, key = self.query_key(y + self.position).chunk(2, dim=-1)
        query, key, value = self._heads(query), self._heads(key), self._heads(self.value(y))
        scale = (self.channels // self.num_heads) ** -0.5
        weights = torch.softmax((query * scale) @ key.transpose(2, 3), dim=-1)
        attended = (weights @ value).transpose(1, 2).reshape(-1, length, self.channels)
        tokens = tokens + self.out(attended)
        tokens = tokens + self.mlp(self.norm_mlp(tokens))
        return tokens.transpose(1, 2).reshape(-1, self.channels, self.height, self.width)


@register_model("msahp")
class MSAHP(HandPoseModel):
    """MSAHP PoseEstimationNet: (N, 3, S, S) -> (N, 2, 21, S/8, S/8) score-map logits.

    Args:
        input_size: S, square crop size in pixels, a multiple of 8 (256 in the paper).
        attention_heads: heads of both self-attention bottlenecks.
        mlp_ratio: hidden width of the bottlenecks' MLP relative to their channels.
        sigma: target Gaussian standard deviation in map pixels.
        ce_weight: alpha, the weight of the cross-entropy term (0.7); L2 gets 1 - alpha.
    """

    def __init__(
        self,
        input_size: int = 256,
        attention_heads: int = 4,
        mlp_ratio: float = 2.0,
        sigma: float = score_map.DEFAULT_SIGMA,
        ce_weight: float = 0.7,
    ) -> None:
        super().__init__()
        if input_size < STRIDE or input_size % STRIDE:
            raise ModelError(f"input_size must be a multiple of {STRIDE}, got {input_size}")
        if sigma <= 0 or not 0.0 <= ce_weight <= 1.0:
            raise ModelError(f"need sigma > 0 and 0 <= ce_weight <= 1, got {sigma}, {ce_weight}")
        self._config = {
            "input_size": int(input_size),
            "attention_heads": int(attention_heads),
            "mlp_ratio": float(mlp_ratio),
            "sigma": float(sigma),
            "ce_weight": float(ce_weight),
        }
        self.input_size = int(input_size)
        self.map_size = self.input_size // STRIDE
        self.sigma = float(sigma)
        self.ce_weight = float(ce_weight)
        size = self.map_size

        self.encoder = nn.Sequential(
            ConvReluBn(3, 64, 3),  # 1
            nn.MaxPool2d(2),  # 2
            ConvReluBn(64, 96, 3),  # 3
            ConvReluBn(96, 96, 3),  # 4
            nn.MaxPool2d(2),  # 5
            ConvReluBn(96, 128, 3),  # 6
            ConvReluBn(128, 128, 3),  # 7
            nn.MaxPool2d(2),  # 8
            ConvReluBn(128, 256, 3),  # 9
            ConvReluBn(256, 256, 3),  # 10
        )
        self.attention1 = SelfAttentionBottleneck(256, attention_heads, size, size, mlp_ratio)
        self.stage1_maps = nn.Conv2d(256, NUM_KEYPOINTS, 1)  # 11
        self.stage2_encoder = nn.Sequential(
            ConvReluBn(256 + NUM_KEYPOINTS, 128, 3),  # 13 (on 12, the concatenation)
            ConvReluBn(128, 128, 3),  # 14
        )
        self.attention2 = SelfAttentionBottleneck(128, attention_heads, size, size, mlp_ratio)
        self.conv15 = ConvReluBn(128, 128, 5)
        self.conv16 = ConvReluBn(128, 128, 5)
        self.stage2_maps = nn.Sequential(
            nn.Conv2d(128, 128, 3, padding=1),  # 18
            nn.ReLU(inplace=True),
            nn.Conv2d(128, NUM_KEYPOINTS, (1, 3), padding=(0, 1)),  # 19
            nn.Conv2d(NUM_KEYPOINTS, NUM_KEYPOINTS, (3, 1), padding=(1, 0)),  # 20
            nn.Conv2d(NUM_KEYPOINTS, NUM_KEYPOINTS, 1),  # 21
        )

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(
            input_size=(self.input_size, self.input_size),
            input_channels=3,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            input_kind="rgb",
            output="score_maps",
            decoder="score_map",
            paper=PAPER,
            extra={
                "output_shape": [NUM_STAGES, NUM_KEYPOINTS, self.map_size, self.map_size],
                "output_meaning": "logits; spatial softmax per map; last stage decoded",
                "stride": STRIDE,
                "sigma": self.sigma,
            },
        )

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 3, S, S) -> (N, 256, S/8, S/8) attended stage-1 features."""
        return self.attention1(self.encoder(x))

    def forward_head(self, features: Tensor) -> Tensor:
        """(N, 256, s, s) -> (N, 2, 21, s, s) score-map logits of both stages."""
        stage1 = self.stage1_maps(features)
        z = self.attention2(self.stage2_encoder(torch.cat([features, stage1], dim=1)))
        z15 = self.conv15(z)
        z = self.conv16(z15) + z15  # 17
        stage2 = self.stage2_maps(z)
        return torch.stack([stage1, stage2], dim=1)

    def make_targets(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """Targets for a batch.

        Args:
            keypoints: (N, 21, 2) input-crop pixels (u, v).
            visible: (N, 21) bool.
        Returns:
            "maps": (N, 21, s, s) float32 normalised Gaussians (zero where weight is 0);
            "coords": (N, 21, 2) float32, crop-normalised (u / S, v / S);
            "weights": (N, 21) float32, 1 for visible keypoints inside the crop.
        """
        size = (self.input_size, self.input_size)
        maps, weights = score_map.encode(
            keypoints, visible, size, (self.map_size, self.map_size), sigma=self.sigma
        )
        coords = np.asarray(keypoints, dtype=np.float64) / self.input_size
        coords = np.where(weights[..., None] > 0, coords, 0.0)
        return {"maps": maps, "coords": coords.astype(np.float32), "weights": weights}

    def soft_argmax(self, logits: Tensor) -> Tensor:
        """Differentiable expected position: (..., s, s) logits -> (..., 2) crop-normalised
        (u / S, v / S)."""
        probabilities = torch.softmax(logits.flatten(-2), dim=-1).unflatten(-1, logits.shape[-2:])
        grid = (torch.arange(self.map_size, device=logits.device, dtype=logits.dtype) + 0.5) * (
            STRIDE / self.input_size
        ) - 0.5 / self.input_size
        x = (probabilities.sum(dim=-2) * grid).sum(dim=-1)
        y = (probabilities.sum(dim=-1) * grid).sum(dim=-1)
        return torch.stack([x, y], dim=-1)

    def loss(self, output: Tensor, targets: dict[str, Tensor]) -> Tensor:
        """0.7 x KL(target map || softmax(map)) + 0.3 x |soft-argmax - keypoint|^2, per visible
        keypoint, averaged, summed over stages. output (N, 2, 21, s, s); targets from
        ``make_targets``."""
        maps = targets["maps"].to(output).flatten(-2).unsqueeze(1)  # (N, 1, K, s*s)
        coords = targets["coords"].to(output).unsqueeze(1)  # (N, 1, K, 2)
        weights = targets["weights"].to(output).unsqueeze(1)  # (N, 1, K)
        log_p = F.log_softmax(output.flatten(-2), dim=-1)
        entropy = torch.special.xlogy(maps, maps).sum(dim=-1)
        divergence = entropy - (maps * log_p).sum(dim=-1)  # (N, stages, K)
        squared = (self.soft_argmax(output) - coords).pow(2).sum(dim=-1)
        per_keypoint = self.ce_weight * divergence + (1.0 - self.ce_weight) * squared
        per_stage = (per_keypoint * weights).sum(dim=(0, 2)) / weights.sum().clamp(min=1.0)
        return per_stage.sum()

    def decode(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2, 21, s, s) logits -> keypoints (N, 21, 2) crop pixels, confidence (N, 21),
        from the last stage."""
        logits = np.asarray(output, dtype=np.float64)
        if logits.ndim == 5:
            logits = logits[:, -1]
        maps = score_map.spatial_softmax(logits)
        return score_map.decode(maps, (self.input_size, self.input_size), sigma=self.sigma)
