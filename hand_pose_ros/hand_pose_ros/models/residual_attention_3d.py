"""Residual attention regression of 3D hand joints from a depth cube crop (seed 002).

Paper: "Residual Attention Regression for 3D Hand Pose Estimation", ICIRA 2019 (paper 410).
The attention modules are those of Wang et al., "Residual Attention Network for Image
Classification", CVPR 2017; the prior layer that of Oberweger et al. (DeepPrior, DeepPrior++).

Input: (N, 1, 128, 128) float32, the depth cube crop of ``hand_pose_ros.crop`` — depth
normalised to ``(d - z_centre) / (cube_z / 2)`` and clipped to [-1, 1], missing and
behind-the-cube pixels 1. No further normalisation (mean 0, std 1).

Output: (N, 63) = 21 x (x, y, z) joint offsets from the cube centre in half-cube units
(``(joint - centre) / (cube / 2)``, ``CubeCrop.from_cube_units`` maps them to metres).

Network (the paper's Fig. 2: three attention modules with a residual unit between two
modules, fully connected layers, a prior layer): 7x7 stride-2 convolution and 3x3 max
pooling (128 -> 32 px), a residual unit, attention module 1 (mask branch 3 levels deep,
32 -> 4 px), a stride-2 residual unit, attention module 2 (2 levels, 16 -> 4), a stride-2
residual unit, attention module 3 (1 level, 8 -> 4), a stride-2 residual unit (4 x 4),
then FC(1024)-ReLU-FC(1024)-ReLU-FC(E) and the linear prior layer FC(63). The paper does not
give channel widths or the FC sizes; widths (64, 128, 256, 256) and 1024-unit FC layers
(the size DeepPrior++ uses) are our choice, kept small enough to train on a CPU.

Prior layer: the last layer maps the E-dimensional embedding to the 63 joint coordinates.
``init_prior(basis, mean)`` sets it to ``mean + embedding @ basis`` from a PCA of the
training poses (``hand_pose_ros.codecs.pca_prior.PCAPrior``); the basis and mean are also
kept as buffers, so a checkpoint records the prior the layer started from. The layer stays
trainable (``model.prior.requires_grad_(False)`` keeps the prior fixed instead).

Loss: mean squared error over the joint coordinates by default (the paper regresses the
coordinates directly; it trains with Adam, lr 1e-4, weight decay 3e-4, batch 128). With
``loss="joint_distance"`` it is instead the mean Euclidean distance of each labelled joint
from its target: the evaluation's own metric. Squared error weighs the few badly wrong
frames most, the distance weighs every millimetre alike, which is what the mean error counts.
The loss changes no weight, so a fine-tune may switch it (``TRAINING_ONLY_CONFIG``).

Confidence: a single regression gives no per-joint uncertainty, so ``decode`` returns 1 for
every joint; the pipeline should judge depth joints by their consistency with the depth map.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from hand_pose_ros.codecs import pca_prior
from hand_pose_ros.models.base import HandPoseModel
from hand_pose_ros.models.layers import init_conv_and_norm
from hand_pose_ros.models.registry import ModelError, ModelSpec, register_model
from hand_pose_ros.models.residual_attention_blocks import AttentionModule, ResidualUnit
from hand_pose_ros.skeleton import NUM_KEYPOINTS

INPUT_SIZE = 128
LOSSES = ("mse", "joint_distance")


@register_model("residual_attention_3d")
class ResidualAttention3D(HandPoseModel):
    """Seed 002: depth cube crop (N, 1, 128, 128) -> joints (N, 63) in half-cube units.

    Args:
        widths: channels of the four resolutions (32, 16, 8, 4 px).
        stem_channels: channels of the 7x7 stem convolution.
        p, t, r: the attention-module hyper-parameters (units before/after, trunk units,
            units between mask pooling layers); the Residual Attention Network's 1, 2, 1.
        fc_units: width of the two hidden fully connected layers.
        embedding: E, the size of the pose embedding the prior layer expands (PCA size).
        dropout: dropout rate after each hidden FC layer (the paper mentions none).
        loss: "mse" (the paper) or "joint_distance" (module docstring).
    """

    TRAINING_ONLY_CONFIG = frozenset({"dropout", "loss"})

    prior_basis: Tensor
    prior_mean: Tensor

    def __init__(
        self,
        widths: Sequence[int] = (64, 128, 256, 256),
        stem_channels: int = 32,
        p: int = 1,
        t: int = 2,
        r: int = 1,
        fc_units: int = 1024,
        embedding: int = 30,
        dropout: float = 0.0,
        loss: str = "mse",
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != 4 or min(widths) < 4:
            raise ModelError(f"widths must be 4 channel counts >= 4, got {widths}")
        if not 1 <= embedding <= 3 * NUM_KEYPOINTS:
            raise ModelError(f"embedding must be in 1..{3 * NUM_KEYPOINTS}, got {embedding}")
        if loss not in LOSSES:
            raise ModelError(f"loss must be one of {LOSSES}, got {loss!r}")
        self._config = {
            "widths": list(widths),
            "stem_channels": stem_channels,
            "p": p,
            "t": t,
            "r": r,
            "fc_units": fc_units,
            "embedding": embedding,
            "dropout": dropout,
            "loss": loss,
        }
        c1, c2, c3, c4 = widths
        self.stem = nn.Sequential(
            nn.Conv2d(1, stem_channels, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        self.features = nn.Sequential(
            ResidualUnit(stem_channels, c1),
            AttentionModule(c1, levels=3, p=p, t=t, r=r),
            ResidualUnit(c1, c2, stride=2),
            AttentionModule(c2, levels=2, p=p, t=t, r=r),
            ResidualUnit(c2, c3, stride=2),
            AttentionModule(c3, levels=1, p=p, t=t, r=r),
            ResidualUnit(c3, c4, stride=2),
            nn.BatchNorm2d(c4),
            nn.ReLU(inplace=True),
        )
        side = INPUT_SIZE // 32
        self.regressor = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c4 * side * side, fc_units),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_units, fc_units),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_units, embedding),
        )
        self.prior = nn.Linear(embedding, 3 * NUM_KEYPOINTS)
        self.register_buffer("prior_basis", torch.zeros(embedding, 3 * NUM_KEYPOINTS))
        self.register_buffer("prior_mean", torch.zeros(3 * NUM_KEYPOINTS))
        self._init_weights()

    spec = ModelSpec(
        input_size=(INPUT_SIZE, INPUT_SIZE),
        input_channels=1,
        mean=(0.0,),
        std=(1.0,),
        input_kind="depth_cube",
        output="joints_cube",
        decoder="pca_prior",
        paper=(
            "Residual Attention Regression for 3D Hand Pose Estimation (ICIRA 2019); "
            "Wang et al., Residual Attention Network, CVPR 2017"
        ),
        extra={
            "output_shape": [3 * NUM_KEYPOINTS],
            "units": "half-cube offsets from the cube centre: (joint - centre) / (cube / 2)",
            "layout": "joint-major: x0, y0, z0, x1, ...",
            "confidence": "constant 1 (a plain regression has no per-joint uncertainty)",
        },
    )

    def _init_weights(self) -> None:
        for module in self.modules():
            init_conv_and_norm(module)
            if isinstance(module, nn.Linear):
                nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        # Each residual unit starts as the identity (its last convolution zero, "zero-init
        # residual"): otherwise ~20 stacked units double the variance each at initialisation.
        for module in self.modules():
            if isinstance(module, ResidualUnit):
                nn.init.zeros_(module.conv3.weight)
        # Until a PCA is given, the prior layer starts as a small random linear map.
        nn.init.normal_(self.prior.weight, std=0.01)
        nn.init.zeros_(self.prior.bias)

    def init_prior(self, basis: np.ndarray | Tensor, mean: np.ndarray | Tensor) -> None:
        """Set the prior layer to ``mean + embedding @ basis`` (a PCA of training poses).

        Args:
            basis: shape (E, 63), principal directions as rows (``PCAPrior.basis``).
            mean: shape (63,), the mean pose in half-cube units (``PCAPrior.mean``).
        """
        embedding = self._config["embedding"]
        basis_t = torch.as_tensor(np.asarray(basis), dtype=torch.float32)
        mean_t = torch.as_tensor(np.asarray(mean), dtype=torch.float32).reshape(-1)
        expected = (embedding, 3 * NUM_KEYPOINTS)
        if tuple(basis_t.shape) != expected or mean_t.numel() != expected[1]:
            raise ModelError(
                f"prior basis must be {expected} and mean ({expected[1]},), got "
                f"{tuple(basis_t.shape)} and {tuple(mean_t.shape)}"
            )
        with torch.no_grad():
            self.prior.weight.copy_(basis_t.T)
            self.prior.bias.copy_(mean_t)
            self.prior_basis.copy_(basis_t)
            self.prior_mean.copy_(mean_t)

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 1, 128, 128) depth crop -> (N, widths[3], 4, 4) attention features."""
        out: Tensor = self.features(self.stem(x))
        return out

    def embed(self, features: Tensor) -> Tensor:
        """(N, C, 4, 4) features -> (N, E) pose embedding (the prior layer's input)."""
        out: Tensor = self.regressor(features)
        return out

    def forward_head(self, features: Tensor) -> Tensor:
        """(N, C, 4, 4) features -> (N, 63) joints in half-cube units."""
        out: Tensor = self.prior(self.embed(features))
        return out

    def make_targets(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """Targets from joints (N, 21, 3) in half-cube units and visibility (N, 21).

        Returns ``joints`` float32 (N, 63) (unlabelled entries zeroed) and ``weights``
        float32 (N, 63), 1 for labelled joints (``hand_pose_ros.codecs.pca_prior.encode``).
        """
        keypoints = np.asarray(keypoints, dtype=np.float64)
        if keypoints.shape[1:] != (NUM_KEYPOINTS, 3):
            raise ModelError(f"keypoints must be (N, {NUM_KEYPOINTS}, 3), got {keypoints.shape}")
        joints, weights = pca_prior.encode(keypoints, visible)
        return {"joints": joints, "weights": weights}

    def loss(self, output: Tensor, targets: dict[str, Tensor]) -> Tensor:
        """Mean squared error over the labelled coordinates (half-cube units squared), or
        the mean distance of the labelled joints (half-cube units), by ``config["loss"]``."""
        weights = targets["weights"].to(output.dtype)
        squared = (output - targets["joints"].to(output.dtype)) ** 2
        if self._config["loss"] == "mse":
            return (squared * weights).sum() / weights.sum().clamp(min=1.0)
        # A joint is labelled as a whole (its three weights agree). The epsilon keeps the
        # gradient finite at zero distance (a floor of 1e-3 half-cube units, 0.125 mm in a
        # 250 mm cube). Both losses run in the output's dtype: the trainer passes float32.
        joint_weight = weights.reshape(-1, NUM_KEYPOINTS, 3)[..., 0]
        per_joint = (squared * weights).reshape(-1, NUM_KEYPOINTS, 3).sum(-1)
        distance = torch.sqrt(per_joint + 1e-6)
        return (distance * joint_weight).sum() / joint_weight.sum().clamp(min=1.0)

    def decode(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 63) -> joints (N, 21, 3) in half-cube units and confidence (N, 21) = 1."""
        return pca_prior.decode(output)


__all__ = ["ResidualAttention3D"]
