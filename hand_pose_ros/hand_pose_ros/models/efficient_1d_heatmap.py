"""EfficientNet encoder + separable transposed-convolution decoder -> 1D heatmaps (seed 004).

Paper: Schneider, Micheletti, Groenewald, "An Efficient Encoder-Decoder Architecture for 3D
Hand Pose Estimation" (ETH Zurich). Encoder: Tan and Le, "EfficientNet", ICML 2019;
1D heatmaps: Moon and Lee, "I2L-MeshNet", ECCV 2020.

Input: (N, 3, 224, 224) float32 RGB crop, ``(rgb / 255 - mean) / std`` with the ImageNet
mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).

Output: (N, 3, 21, 112) logits of 1D heatmaps, axis 1 = (u, v, z). A softmax along the last
axis and its expectation (soft-argmax) give each coordinate in bins;
``hand_pose_ros.codecs.heatmap_1d.Heatmap1DCodec`` maps bins to u, v in input pixels
(2 px per bin) and z in metres relative to the wrist (``z_range_m`` = 0.15 m by default:
[-0.15, 0.15] m over the 112 bins). ``make_targets`` takes (N, 21, 3) = (u px, v px,
z metres relative to the wrist).

Encoder: EfficientNet-B0 (default, for real time on a CPU) or B4 (the paper's choice),
including the 1x1 head convolution (1280 / 1792 channels) with which the ``extract_features``
of EfficientNet-PyTorch (the implementation the paper used) ends. The paper writes that the
encoder returns 7 x 7 x 448 (B4's last block), but its parameter counts, 19.5M for B4 and
5.4M for B0, are only reached with the head convolution in (without it: 17.4M and 4.1M); we
follow the counts.

Decoder (paper Sec. 3.3, C = 128, N = 4, heatmap size 7 * 2^N = 112): one ordinary
ConvTranspose2d(k=3, s=2, p=1) from the encoder to C channels, shared, then two branches of
N - 1 separable transposed convolutions (a 3x3 stride-2 depthwise transposed convolution and
a 1x1 pointwise convolution), each block followed by BN and ReLU; an output padding of 1
makes every block exactly double the resolution (7 -> 14 -> 28 -> 56 -> 112). The u/v branch
is averaged over rows (-> C x 112 along u) and over columns (-> C x 112 along v); the
separate z branch (the paper found a shared one poor in z) is averaged over rows. A 1x1
Conv1d per axis maps C to 21 heatmaps. The figure with the exact branching point is not in
our copy of the paper; sharing the first, non-separable block is our reading, and the one
that reproduces both published parameter counts (a second copy of it would add 2.1M to B4).

Loss: mean squared error between the soft-argmax coordinates and the targets (the paper
trains on the MSE of the points). Coordinates are compared in bins divided by
``bins - 1`` (u, v, z all in [0, 1]), so the three axes weigh alike.

Test-time augmentation: ``rotation_tta`` averages the predictions of ``n`` rotated copies of
the input (10 in the paper), rotated back.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hand_pose_ros.codecs.heatmap_1d import Heatmap1DCodec
from hand_pose_ros.models.base import HandPoseModel
from hand_pose_ros.models.efficientnet import EFFICIENTNET_VARIANTS, EfficientNetEncoder
from hand_pose_ros.models.registry import ModelError, ModelSpec, register_model
from hand_pose_ros.skeleton import NUM_KEYPOINTS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 224
ENCODER_STRIDE = 32


def separable_transposed_block(channels: int) -> nn.Sequential:
    """(N, C, H, W) -> (N, C, 2H, 2W): 3x3 stride-2 depthwise transposed conv, 1x1 conv,
    BN, ReLU (the paper's ConvTranspose2d(k=3, s=2, p=1, sep=True))."""
    return nn.Sequential(
        nn.ConvTranspose2d(
            channels,
            channels,
            3,
            stride=2,
            padding=1,
            output_padding=1,
            groups=channels,
            bias=False,
        ),
        nn.Conv2d(channels, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    )


def soft_argmax_1d(logits: Tensor) -> Tensor:
    """Expected bin under softmax(logits) along the last axis: (..., B) -> (...,) in [0, B-1]."""
    probability = torch.softmax(logits, dim=-1)
    positions = torch.arange(logits.shape[-1], dtype=logits.dtype, device=logits.device)
    return (probability * positions).sum(dim=-1)


@register_model("efficient_1d_heatmap")
class Efficient1DHeatmap(HandPoseModel):
    """Seed 004: RGB crop (N, 3, 224, 224) -> 1D heatmap logits (N, 3, 21, 112).

    Args:
        variant: EfficientNet variant, "b0" (default, 5.5M parameters) or "b4" (the paper's,
            19.7M); any of b0..b7 builds.
        decoder_channels: C of the decoder (128 in the paper).
        num_upsamplings: N, the number of resolution doublings (4: 7 -> 112 bins).
        z_range_m: half-range of wrist-relative depth over the bins, metres.
        sigma: width (bins) of the 1D Gaussian targets and of the confidence reference.
        drop_path_rate: EfficientNet stochastic depth rate (0: the paper fine-tunes a
            pre-trained encoder and mentions none).
        encoder_head: keep EfficientNet's 1x1 head convolution (see the module docstring).
        heatmap_loss_weight: weight of an extra KL divergence between the predicted 1D
            distributions and Gaussian targets of ``sigma`` bins (0: the paper's loss; the
            paper tried a similar regulariser and saw no accuracy gain, but it makes the
            sharpness-based confidence meaningful).
    """

    def __init__(
        self,
        variant: str = "b0",
        decoder_channels: int = 128,
        num_upsamplings: int = 4,
        z_range_m: float = 0.15,
        sigma: float = 2.0,
        drop_path_rate: float = 0.0,
        encoder_head: bool = True,
        heatmap_loss_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if variant not in EFFICIENTNET_VARIANTS:
            raise ModelError(f"unknown variant {variant!r}; known: {sorted(EFFICIENTNET_VARIANTS)}")
        if num_upsamplings < 1 or decoder_channels < 1:
            raise ModelError("num_upsamplings and decoder_channels must be >= 1")
        self._config = {
            "variant": variant,
            "decoder_channels": decoder_channels,
            "num_upsamplings": num_upsamplings,
            "z_range_m": z_range_m,
            "sigma": sigma,
            "drop_path_rate": drop_path_rate,
            "encoder_head": encoder_head,
            "heatmap_loss_weight": heatmap_loss_weight,
        }
        self.bins = (INPUT_SIZE // ENCODER_STRIDE) * 2**num_upsamplings
        self.codec = Heatmap1DCodec(
            input_size=(INPUT_SIZE, INPUT_SIZE),
            bins=self.bins,
            z_range_m=z_range_m,
            sigma=sigma,
        )
        self.encoder = EfficientNetEncoder(
            variant, include_head=encoder_head, drop_path_rate=drop_path_rate
        )
        channels = decoder_channels
        self.shared = nn.Sequential(
            nn.ConvTranspose2d(
                self.encoder.out_channels,
                channels,
                3,
                stride=2,
                padding=1,
                output_padding=1,
                bias=False,
            ),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.uv_branch = nn.Sequential(
            *(separable_transposed_block(channels) for _ in range(num_upsamplings - 1))
        )
        self.z_branch = nn.Sequential(
            *(separable_transposed_block(channels) for _ in range(num_upsamplings - 1))
        )
        self.u_head = nn.Conv1d(channels, NUM_KEYPOINTS, 1)
        self.v_head = nn.Conv1d(channels, NUM_KEYPOINTS, 1)
        self.z_head = nn.Conv1d(channels, NUM_KEYPOINTS, 1)
        for module in [self.shared, self.uv_branch, self.z_branch]:
            for layer in module.modules():
                if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                    nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
        for head in (self.u_head, self.v_head, self.z_head):
            nn.init.normal_(head.weight, std=0.01)
            if head.bias is not None:
                nn.init.zeros_(head.bias)

    @property
    def spec(self) -> ModelSpec:
        """Input 224 x 224 RGB (ImageNet normalisation); output 1D heatmap logits."""
        return ModelSpec(
            input_size=(INPUT_SIZE, INPUT_SIZE),
            input_channels=3,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            input_kind="rgb",
            output="heatmaps_1d",
            decoder="heatmap_1d",
            paper=(
                "Schneider, Micheletti, Groenewald: An Efficient Encoder-Decoder Architecture "
                "for 3D Hand Pose Estimation (ETH Zurich); EfficientNet (Tan, Le, ICML 2019)"
            ),
            extra={
                "output_shape": [3, NUM_KEYPOINTS, self.bins],
                "axes": ["u", "v", "z"],
                "bins": self.bins,
                "z_range_m": self._config["z_range_m"],
                "z": "metres relative to the wrist (keypoint 0), positive away from the camera",
                "output_kind": "logits; softmax over the last axis, then soft-argmax",
            },
        )

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 3, 224, 224) -> (N, C_enc, 7, 7) encoder features (1280 for B0, 1792 for B4)."""
        out: Tensor = self.encoder(x)
        return out

    def forward_head(self, features: Tensor) -> Tensor:
        """(N, C_enc, 7, 7) -> (N, 3, 21, bins) 1D heatmap logits, axis 1 = u, v, z."""
        shared = self.shared(features)
        uv = self.uv_branch(shared)  # (N, C, bins, bins)
        depth = self.z_branch(shared)
        u = self.u_head(uv.mean(dim=2))  # average over rows: a profile along u
        v = self.v_head(uv.mean(dim=3))  # average over columns: a profile along v
        z = self.z_head(depth.mean(dim=2))
        return torch.stack([u, v, z], dim=1)

    def make_targets(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """Targets from keypoints (N, 21, 3) = (u px, v px, z m wrist-relative), visible (N, 21).

        Returns ``coordinates`` float32 (N, 3, 21) in bins, ``heatmaps`` float32
        (N, 3, 21, bins) and ``weights`` float32 (N, 3, 21) (see ``Heatmap1DCodec.encode``).
        """
        return self.codec.encode(keypoints, visible)

    def loss(self, output: Tensor, targets: dict[str, Tensor]) -> Tensor:
        """MSE of the soft-argmax coordinates, in bins / (bins - 1), over labelled ones
        (plus ``heatmap_loss_weight`` x the mean KL divergence to the target heatmaps)."""
        scale = float(self.bins - 1)
        predicted = soft_argmax_1d(output) / scale
        target = targets["coordinates"].to(output.dtype) / scale
        weights = targets["weights"].to(output.dtype)
        count = weights.sum().clamp(min=1.0)
        loss = (((predicted - target) ** 2) * weights).sum() / count
        weight = float(self._config["heatmap_loss_weight"])
        if weight > 0.0:
            wanted = targets["heatmaps"].to(output.dtype)
            log_wanted = torch.log(wanted.clamp(min=1e-12))
            kl = (wanted * (log_wanted - torch.log_softmax(output, dim=-1))).sum(dim=-1)
            loss = loss + weight * (kl * weights).sum() / count
        return loss

    def decode(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3, 21, bins) logits -> keypoints (N, 21, 3) = (u px, v px, z m), conf (N, 21)."""
        return self.codec.decode(np.asarray(output), logits=True)


def rotate_images(images: Tensor, angle_rad: float) -> Tensor:
    """Images (N, C, H, W) rotated by ``angle_rad`` about their centre (zeros outside).

    A point at pixel (u, v) of the input moves to ``rotate_points((u, v), angle, size)``.
    """
    height, width = images.shape[-2:]
    cos, sin = math.cos(angle_rad), math.sin(angle_rad)
    # affine_grid maps output to input positions in normalised coordinates (align_corners
    # False: -1 and 1 are the outer pixel edges): input = S R^-1 S^-1 output.
    sx, sy = 2.0 / width, 2.0 / height
    theta = torch.tensor(
        [[cos, sin * sx / sy, 0.0], [-sin * sy / sx, cos, 0.0]],
        dtype=images.dtype,
        device=images.device,
    )
    grid = F.affine_grid(
        theta.expand(images.shape[0], 2, 3), list(images.shape), align_corners=False
    )
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rotate_points(points: np.ndarray, angle_rad: float, size: tuple[int, int]) -> np.ndarray:
    """Pixel points (..., 2) as (u, v) rotated by ``angle_rad`` about the centre of an image
    of ``size`` = (height, width), the same motion ``rotate_images`` applies."""
    height, width = size
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    cos, sin = math.cos(angle_rad), math.sin(angle_rad)
    rotation = np.array([[cos, -sin], [sin, cos]])
    points = np.asarray(points, dtype=np.float64)
    rotated: np.ndarray = (points[..., :2] - centre) @ rotation.T + centre
    return rotated


@torch.no_grad()
def rotation_tta(
    model: Efficient1DHeatmap, images: Tensor, n: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Rotation test-time augmentation (paper Sec. 3.4): predict on ``n`` copies of each
    image rotated by ``k * 360 / n`` degrees, rotate the (u, v) predictions back, average.

    Args:
        model: the network, used as it is (call ``model.eval()`` first).
        images: (N, 3, 224, 224) normalised input.
        n: number of rotations (the first is the identity).

    Returns:
        keypoints (N, 21, 3) = (u px, v px, z m wrist-relative) and confidence (N, 21),
        both averaged over the rotations.
    """
    if n < 1:
        raise ModelError(f"n must be >= 1, got {n}")
    size = (int(images.shape[-2]), int(images.shape[-1]))
    keypoint_sum = np.zeros((images.shape[0], NUM_KEYPOINTS, 3))
    confidence_sum = np.zeros((images.shape[0], NUM_KEYPOINTS))
    for k in range(n):
        angle = 2.0 * math.pi * k / n
        rotated = images if k == 0 else rotate_images(images, angle)
        keypoints, confidence = model.decode(model(rotated).cpu().numpy())
        keypoints[..., :2] = rotate_points(keypoints[..., :2], -angle, size)
        keypoint_sum += keypoints
        confidence_sum += confidence
    return keypoint_sum / n, confidence_sum / n


__all__ = ["Efficient1DHeatmap", "rotate_images", "rotate_points", "rotation_tta", "soft_argmax_1d"]
