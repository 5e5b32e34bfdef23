"""Seed 001: GestureNet, a small classifier of static hand gestures from 2D keypoints.

Paper: Z. Zhang, B. Zhang, F. Li, D. Kong, "Multihead Self Attention Hand Pose Estimation",
E3S Web of Conferences 218, 01023 (2020), section 4.1 and Table 3.

Input: (N, 2, 21) float32 normalised keypoints from ``normalise_keypoints``: row 0 holds the
21 u values, row 1 the 21 v values (keypoint order WRIST=0, THUMB 1-4, INDEX 5-8, MIDDLE
9-12, RING 13-16, PINKY 17-20), relative to the wrist, in units of the hand's palm length,
mirrored to a right hand. Output: (N, C) class logits over
``hand_pose_ros.codecs.classification.GESTURE_CLASSES`` (the synthetic world's 12 gestures
plus "none" for other poses, C = 13), decoded by that codec.

Layers (Table 3): the input as a one-channel 2 x 21 image; conv 1x7 -> 16 + ReLU; conv 1x7
-> 16 + ReLU (the convolutions slide along the keypoint order, separately for u and v);
mean-pool 2x1 (averages the u and v rows) -> 16 x 21; FC 336 -> 128 + ReLU + Dropout(0.5);
FC 128 -> C logits.

Interpretations: Table 3 also lists "ReLU + Dropout(0.2)" on the last, 35-way layer (35 =
the RWTH fingerspelling classes); a ReLU and dropout on logits would zero out negative
evidence and randomly drop class scores, so the last layer is a plain linear layer here.
The paper scales keypoints by an index-finger bone (its eq. 1); a single phalanx
foreshortens to nearly nothing when the finger points at the camera, so
``normalise_keypoints`` scales by the wrist -> middle-finger MCP distance instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch.nn.functional as F
from torch import Tensor, nn

from hand_pose_ros.codecs import classification
from hand_pose_ros.hand import Handedness
from hand_pose_ros.models.base import HandPoseModel
from hand_pose_ros.models.registry import ModelError, ModelSpec, register_model
from hand_pose_ros.skeleton import KEYPOINT_INDEX, WRIST

NUM_KEYPOINTS = 21
PAPER = (
    "Zhang, Zhang, Li, Kong, Multihead Self Attention Hand Pose Estimation, "
    "E3S Web of Conferences 218, 01023 (2020), Table 3 (GestureNet)"
)
MIN_HAND_SIZE = 1e-6
MIDDLE_MCP = KEYPOINT_INDEX["middle_mcp"]

HandednessLike = str | Handedness | int


def _is_left(handedness: HandednessLike) -> bool:
    if isinstance(handedness, str):
        name = handedness.strip().lower()
        if name not in ("left", "right", "unknown"):
            raise ValueError(f"handedness must be 'left', 'right' or 'unknown', got {handedness!r}")
        return name == "left"
    return int(handedness) == Handedness.LEFT


def normalise_keypoints(
    uv: np.ndarray, handedness: HandednessLike | Sequence[HandednessLike]
) -> np.ndarray:
    """Image keypoints -> GestureNet input: translation-, scale- and side-invariant.

    1. Subtract the wrist (keypoint 0).
    2. Mirror left hands to right hands (u -> -u): a mirrored image of a left hand is a right
       hand. Right and unknown hands are left as they are.
    3. Divide by the palm length, the distance wrist -> middle-finger MCP (keypoint 9),
       floored at 1e-6.
    Non-finite results (missing keypoints) are set to 0.

    Args:
        uv: shape (N, 21, 2) or (21, 2), image pixels (u, v) (any consistent unit).
        handedness: one value for all hands or one per hand: "left" / "right" / "unknown"
            (case-insensitive) or ``hand_pose_ros.hand.Handedness``.
    Returns:
        shape (N, 2, 21) float32 (N = 1 for a single hand): row 0 u, row 1 v.
    """
    points = np.asarray(uv, dtype=np.float64)
    if points.ndim == 2:
        points = points[None]
    if points.shape[1:] != (NUM_KEYPOINTS, 2):
        raise ValueError(f"uv must have shape (N, 21, 2) or (21, 2), got {np.shape(uv)}")
    count = points.shape[0]
    if isinstance(handedness, (str, Handedness, int)):
        sides = [handedness] * count
    else:
        sides = list(handedness)
        if len(sides) != count:
            raise ValueError(f"{len(sides)} handedness values for {count} hands")
    left = np.array([_is_left(side) for side in sides], dtype=bool)

    centred = points - points[:, WRIST : WRIST + 1]
    centred[left, :, 0] *= -1.0
    palm = np.linalg.norm(centred[:, MIDDLE_MCP], axis=-1)
    scale = np.where(np.isfinite(palm), np.maximum(palm, MIN_HAND_SIZE), 1.0)
    normalised = centred / scale[:, None, None]
    normalised = np.where(np.isfinite(normalised), normalised, 0.0)
    return normalised.transpose(0, 2, 1).astype(np.float32)


@register_model("gesture_net")
class GestureNet(HandPoseModel):
    """GestureNet: (N, 2, 21) normalised keypoints -> (N, C) gesture logits.

    Args:
        classes: the gesture vocabulary, in logit order (default: the synthetic world's 12
            gestures + "none").
        channels: convolution channels (16).
        kernel_size: length of the convolutions along the keypoint axis (7).
        hidden: width of the first fully connected layer (128).
        dropout: dropout after the first fully connected layer (0.5).
    """

    def __init__(
        self,
        classes: Sequence[str] = classification.GESTURE_CLASSES,
        channels: int = 16,
        kernel_size: int = 7,
        hidden: int = 128,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        classes = [str(name) for name in classes]
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise ModelError(f"need at least two distinct classes, got {classes}")
        if kernel_size % 2 == 0:
            raise ModelError(f"kernel_size must be odd, got {kernel_size}")
        self._config = {
            "classes": classes,
            "channels": int(channels),
            "kernel_size": int(kernel_size),
            "hidden": int(hidden),
            "dropout": float(dropout),
        }
        self.classes = tuple(classes)
        padding = (0, kernel_size // 2)
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, (1, kernel_size), padding=padding),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, (1, kernel_size), padding=padding),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(
            nn.Linear(channels * NUM_KEYPOINTS, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, len(classes)),
        )

    @property
    def config(self) -> dict[str, Any]:
        """The constructor's keyword arguments (JSON-able); the class list is copied too."""
        return {**self._config, "classes": list(self._config["classes"])}

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(
            input_size=(2, NUM_KEYPOINTS),
            input_channels=0,
            mean=(),
            std=(),
            input_kind="keypoints",
            output="logits",
            decoder="classification",
            paper=PAPER,
            extra={"classes": list(self.classes), "input": "normalise_keypoints(uv, handedness)"},
        )

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 2, 21) -> (N, channels * 21): conv features, u and v rows mean-pooled."""
        features = self.features(x.unsqueeze(1))  # (N, channels, 2, 21)
        return features.mean(dim=2).flatten(1)

    def forward_head(self, features: Tensor) -> Tensor:
        """(N, channels * 21) -> (N, C) logits."""
        return self.head(features)

    def make_targets(
        self,
        labels: Sequence[str | int | np.integer] | np.ndarray,
        visible: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Targets for a batch. Unlike the keypoint models this takes class labels, not
        keypoints: ``labels`` (N,) gesture names or class indices; ``visible`` is accepted
        for signature compatibility and ignored. Returns {"labels": (N,) int64}."""
        return {"labels": classification.encode(labels, self.classes)}

    def loss(self, output: Tensor, targets: dict[str, Tensor]) -> Tensor:
        """Cross-entropy of (N, C) logits against targets["labels"] (N,)."""
        return F.cross_entropy(output, targets["labels"].to(output.device).long())

    def decode(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, C) logits -> (class indices (N,) int64, confidence (N,) in [0, 1])."""
        return classification.decode(output)
