"""MobileNetV2 encoder + VNect-style depthwise decoder -> 2D keypoint heatmaps (seed 003).

Paper: Gouidis, Panteleris, Oikonomidis, Argyros, "Accurate Hand Keypoint Localization on
Mobile Devices", MVA 2019 (arXiv:1812.08028). The decoder adapts Mehta et al., "VNect:
Real-time 3D Human Pose Estimation with a Single RGB Camera", SIGGRAPH 2017.

Input: (N, 3, 224, 224) float32 RGB crop, ``(rgb / 255 - mean) / std`` with the ImageNet
mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) (the encoder is an ImageNet
network). The network was meant for right hands: mirror left-hand crops first with
``mirror_for_left`` (re-exported here from ``hand_pose_ros.codecs.heatmap``).

Output: (N, 22, 56, 56) heatmaps, output stride 4: channels 0..20 are the keypoints in the
project's order, channel 21 the background (``1 - max`` of the keypoint maps).
``hand_pose_ros.codecs.heatmap.HeatmapCodec`` encodes targets and decodes (arg-max with
sub-pixel refinement, softmax confidence, the paper's nearest-peak fallback).

Encoder (paper Sec. 3.1): MobileNetV2 blocks 1..13 unchanged, block 14 (the first
160-channel block, stride 2 in MobileNetV2) with its stride removed, blocks 15..17
unchanged; the 1280-channel classifier convolution is not used. For 224 px this gives
(N, 320, 14, 14), output stride 16. (The paper's block numbers are stripped from our copy of
the text; 13 / 14 / 15-17 is the only numbering of MobileNetV2's 17 blocks in which the
modified block has a stride to remove and is followed by three more.)

Decoder (VNect's head with fewer layers and depthwise convolutions, as the paper says):
a depthwise-separable bottleneck at stride 16 (1x1 320->256, 3x3 depthwise, 1x1 256->128,
like VNect's res5b), then two rounds of [4x4 stride-2 depthwise transposed convolution
(VNect's deconvolution, made depthwise) -> depthwise-separable 3x3 convolution], the last
one narrowing to 64 channels, and a 1x1 convolution to 22 heatmaps. VNect stops at stride
8; the second up-sampling reaches the 56 x 56 (stride 4) maps of the official demo.

Loss: mean squared error between predicted and target heatmaps, all 22 channels, keypoint
channels without a label weighted 0 (the paper gives the Gaussian targets of its Eq. 1-2
but not the loss; L2 on heatmaps is what VNect and CPM, which it follows, use).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from torch import Tensor, nn

from hand_pose_ros.codecs.heatmap import HeatmapCodec, mirror_for_left, mirror_keypoints
from hand_pose_ros.models.base import HandPoseModel
from hand_pose_ros.models.layers import ConvNormAct
from hand_pose_ros.models.mobilenet_v2 import MobileNetV2Encoder
from hand_pose_ros.models.registry import ModelError, ModelSpec, register_model
from hand_pose_ros.skeleton import NUM_KEYPOINTS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 224
HEATMAP_SIZE = 56
# MobileNetV2 block whose stride the paper removes (1-based, in running order).
STRIDE_REMOVED_BLOCK = 14


def _conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int = 1, groups: int = 1
) -> list[nn.Module]:
    # The layers of a ConvNormAct, spliced flat into the caller's Sequential (the decoder's
    # state_dict keys are decoder.0.weight, decoder.1.weight, ..., not nested).
    return list(
        ConvNormAct(
            in_channels,
            out_channels,
            kernel_size,
            groups=groups,
            activation=partial(nn.ReLU, inplace=True),
        )
    )


def separable_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 depthwise + 1x1 pointwise, each with BN and ReLU: (N, C_in, H, W) -> (N, C_out, H, W)."""
    return nn.Sequential(
        *_conv_bn_relu(in_channels, in_channels, 3, groups=in_channels),
        *_conv_bn_relu(in_channels, out_channels, 1),
    )


def depthwise_upsample(channels: int) -> nn.Sequential:
    """4x4 stride-2 depthwise transposed convolution + BN + ReLU: (N, C, H, W) -> (N, C, 2H, 2W)."""
    return nn.Sequential(
        nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, groups=channels, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    )


@register_model("mobile_heatmap")
class MobileHeatmap(HandPoseModel):
    """Seed 003: RGB crop (N, 3, 224, 224) -> heatmaps (N, 22, 56, 56), background last.

    Args:
        width_mult: MobileNetV2 width multiplier (1.0 in the paper).
        decoder_channels: channels of the decoder after its bottleneck (VNect: 128).
        sigma: target Gaussian standard deviation in heatmap pixels.
        softmax_beta, fallback_threshold, fallback_peaks: decoding settings of
            ``HeatmapCodec`` (confidence temperature, the confidence below which the
            nearest-peak fallback applies, how many peaks it considers).
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        decoder_channels: int = 128,
        sigma: float = 2.0,
        softmax_beta: float = 30.0,
        fallback_threshold: float = 0.3,
        fallback_peaks: int = 3,
    ) -> None:
        super().__init__()
        if decoder_channels < 8:
            raise ModelError(f"decoder_channels must be >= 8, got {decoder_channels}")
        self._config = {
            "width_mult": width_mult,
            "decoder_channels": decoder_channels,
            "sigma": sigma,
            "softmax_beta": softmax_beta,
            "fallback_threshold": fallback_threshold,
            "fallback_peaks": fallback_peaks,
        }
        self.codec = HeatmapCodec(
            input_size=(INPUT_SIZE, INPUT_SIZE),
            heatmap_size=(HEATMAP_SIZE, HEATMAP_SIZE),
            sigma=sigma,
            softmax_beta=softmax_beta,
            fallback_threshold=fallback_threshold,
            fallback_peaks=fallback_peaks,
        )
        self.encoder = MobileNetV2Encoder(
            width_mult=width_mult, stride_removed_blocks=(STRIDE_REMOVED_BLOCK,)
        )
        encoder_channels = self.encoder.out_channels
        channels = decoder_channels
        bottleneck = 2 * channels
        final = channels // 2
        self.decoder = nn.Sequential(
            # VNect res5b-like bottleneck, depthwise: 1x1 -> 3x3 depthwise -> 1x1.
            *_conv_bn_relu(encoder_channels, bottleneck, 1),
            *_conv_bn_relu(bottleneck, bottleneck, 3, groups=bottleneck),
            *_conv_bn_relu(bottleneck, channels, 1),
            depthwise_upsample(channels),  # stride 16 -> 8
            separable_conv(channels, channels),
            depthwise_upsample(channels),  # stride 8 -> 4
            separable_conv(channels, final),
        )
        self.head = nn.Conv2d(final, NUM_KEYPOINTS + 1, 1)
        for module in self.decoder.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.head.weight, std=0.01)
        if self.head.bias is not None:
            nn.init.zeros_(self.head.bias)

    spec = ModelSpec(
        input_size=(INPUT_SIZE, INPUT_SIZE),
        input_channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        input_kind="rgb",
        output="heatmaps",
        decoder="heatmap",
        paper=(
            "Gouidis, Panteleris, Oikonomidis, Argyros: Accurate Hand Keypoint Localization "
            "on Mobile Devices, MVA 2019 (arXiv:1812.08028)"
        ),
        extra={
            "output_shape": [NUM_KEYPOINTS + 1, HEATMAP_SIZE, HEATMAP_SIZE],
            "background_channel": NUM_KEYPOINTS,
            "output_stride": INPUT_SIZE // HEATMAP_SIZE,
            "handedness": "right hands; mirror left-hand crops (mirror_for_left) before",
        },
    )

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 3, 224, 224) -> (N, 320, 14, 14) encoder features (output stride 16)."""
        out: Tensor = self.encoder(x)
        return out

    def forward_head(self, features: Tensor) -> Tensor:
        """(N, 320, 14, 14) -> (N, 22, 56, 56) heatmaps, background last."""
        out: Tensor = self.head(self.decoder(features))
        return out

    def make_targets(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """Targets from keypoints (N, 21, 2) in input pixels and visibility (N, 21).

        Returns ``heatmaps`` float32 (N, 22, 56, 56) and ``weights`` float32 (N, 22).
        """
        return self.codec.encode(keypoints, visible)

    def loss(self, output: Tensor, targets: dict[str, Tensor]) -> Tensor:
        """Weighted mean squared error over all heatmap pixels."""
        weights = targets["weights"].to(output.dtype)[:, :, None, None]
        squared = (output - targets["heatmaps"].to(output.dtype)) ** 2
        pixels = output.shape[-2] * output.shape[-1]
        return (squared * weights).sum() / (weights.sum().clamp(min=1.0) * pixels)

    def decode(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 22, 56, 56) -> keypoints (N, 21, 2) in input pixels, confidence (N, 21)."""
        return self.codec.decode(np.asarray(output))


__all__ = ["MobileHeatmap", "mirror_for_left", "mirror_keypoints"]
