"""3D hand pose accuracy: mean joint error and the fraction of frames within a threshold.

These are the two measures of seed 002 (Residual Attention Regression, its Eq. 3 and 4 and
Figs. 3-5), which most depth hand pose papers report:

- mean 3D joint error: the Euclidean distance between predicted and true joint positions in
  millimetres. The overall mean pools every evaluated joint of every frame, so a frame with
  fewer labelled joints weighs less. The per-joint mean averages one joint over the frames.
- frames within a threshold: the fraction of frames whose *worst* evaluated joint error is at
  most the threshold, over thresholds from 0 to 80 mm. One bad joint fails the whole frame,
  so this is stricter than the mean.

Missing values. A NaN in the truth, or False in ``valid``, means "not labelled". That joint
is left out of every statistic. A frame with no labelled evaluated joint is left out too, and
``frames_without_joints`` counts it. A non-finite prediction where the truth is labelled is a
failure of the method, not a missing label. Its error is +inf, so the frame fails every
threshold and the mean becomes inf while the median stays finite; ``missing_predictions``
counts these.

Shapes: poses (N, K, 3) in metres, for N frames and K keypoints (21 in skeleton order for
this package's models, but any K works); errors (N, K) in millimetres.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_THRESHOLDS_MM: tuple[float, ...] = tuple(float(t) for t in range(81))

# An error that equals a threshold in decimal can land a few ulps above it in binary
# (0.51 m - 0.50 m gives 10.000000000000009 mm). A nanometre of slack keeps it "within".
_THRESHOLD_SLACK_MM = 1e-6


def _poses(array: np.ndarray, name: str) -> np.ndarray:
    poses = np.asarray(array, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (N, K, 3), got {poses.shape}")
    return poses


def _labelled(poses: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """Shape (N, K) bool: joints with finite positions and, if given, ``valid``."""
    labelled = np.isfinite(poses).all(axis=-1)
    if valid is None:
        return labelled
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != labelled.shape:
        raise ValueError(f"valid must have shape {labelled.shape}, got {valid.shape}")
    return labelled & valid


def _mean_over_frames(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over axis 0 of ``values`` where ``mask`` (broadcast to it); NaN where none counts."""
    mask = np.broadcast_to(mask, values.shape)
    counts = mask.sum(axis=0)
    sums = np.where(mask, values, 0.0).sum(axis=0)
    return np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)


def joint_errors_mm(
    predicted: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """Euclidean distance per joint between predicted and true positions.

    Args:
        predicted: shape (N, K, 3), metres.
        truth: shape (N, K, 3), metres; NaN where a joint is not labelled.
        valid: optional shape (N, K) bool; False leaves a joint out.
    Returns:
        errors: shape (N, K) float64, millimetres. NaN where the truth is not finite or
        ``valid`` is False, and +inf where the truth is labelled but the prediction is not
        finite.
    """
    predicted = _poses(predicted, "predicted")
    truth = _poses(truth, "truth")
    if predicted.shape != truth.shape:
        raise ValueError(f"predicted {predicted.shape} and truth {truth.shape} differ in shape")
    labelled = _labelled(truth, valid)
    with np.errstate(invalid="ignore"):
        errors = 1000.0 * np.linalg.norm(predicted - truth, axis=-1)
    errors[~np.isfinite(errors)] = np.inf
    errors[~labelled] = np.nan
    return errors


def _json_number(value: float) -> float | str | None:
    # Strict JSON has no NaN or inf: NaN (never evaluated) becomes null, inf becomes "inf".
    if np.isnan(value):
        return None
    return float(value) if np.isfinite(value) else str(float(value))


def _from_json_number(value: float | str | None) -> float:
    return float("nan") if value is None else float(value)


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays with == has no single truth
class PoseMetrics:
    """Accuracy of one method on one test set.

    Attributes:
        frames: frames evaluated, i.e. those with at least one labelled evaluated joint.
        frames_without_joints: frames left out because none of their evaluated joints is
            labelled.
        joints: the keypoint indices evaluated.
        mean_mm: mean error over all labelled evaluated joints of all frames, mm.
        median_mm: median of those same errors, mm.
        per_joint_mm: shape (K,), mean error of each keypoint over frames, mm. NaN for a
            keypoint that was never evaluated.
        thresholds_mm: shape (T,), thresholds on the worst joint error, mm.
        frames_within: shape (T,), fraction in [0, 1] of evaluated frames whose worst
            evaluated joint error is <= each threshold.
        missing_predictions: labelled evaluated joints whose prediction was not finite (each
            one counts as an infinite error).
    """

    frames: int
    frames_without_joints: int
    joints: tuple[int, ...]
    mean_mm: float
    median_mm: float
    per_joint_mm: np.ndarray
    thresholds_mm: np.ndarray
    frames_within: np.ndarray
    missing_predictions: int = 0

    def fraction_within(self, threshold_mm: float) -> float:
        """Fraction of frames within ``threshold_mm``; NaN if that threshold was not swept."""
        hits = np.flatnonzero(np.isclose(self.thresholds_mm, threshold_mm))
        return float(self.frames_within[hits[0]]) if hits.size else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, and strict JSON (see ``_json_number``): safe for ``json.dumps``."""
        return {
            "frames": self.frames,
            "frames_without_joints": self.frames_without_joints,
            "joints": list(self.joints),
            "mean_mm": _json_number(self.mean_mm),
            "median_mm": _json_number(self.median_mm),
            "per_joint_mm": [_json_number(v) for v in self.per_joint_mm],
            "thresholds_mm": [float(t) for t in self.thresholds_mm],
            "frames_within": [float(f) for f in self.frames_within],
            "missing_predictions": self.missing_predictions,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PoseMetrics:
        """Inverse of ``to_dict``."""
        return cls(
            frames=int(data["frames"]),
            frames_without_joints=int(data["frames_without_joints"]),
            joints=tuple(int(j) for j in data["joints"]),
            mean_mm=_from_json_number(data["mean_mm"]),
            median_mm=_from_json_number(data["median_mm"]),
            per_joint_mm=np.array([_from_json_number(v) for v in data["per_joint_mm"]]),
            thresholds_mm=np.asarray(data["thresholds_mm"], dtype=np.float64),
            frames_within=np.asarray(data["frames_within"], dtype=np.float64),
            missing_predictions=int(data.get("missing_predictions", 0)),
        )


def _joint_indices(joints: Sequence[int] | None, num_keypoints: int) -> tuple[int, ...]:
    if joints is None:
        return tuple(range(num_keypoints))
    chosen = tuple(int(j) for j in joints)
    if not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(f"joints must be distinct and not empty, got {chosen}")
    if min(chosen) < 0 or max(chosen) >= num_keypoints:
        raise ValueError(f"joints must lie in 0..{num_keypoints - 1}, got {chosen}")
    return chosen


def pose_metrics(
    predicted: np.ndarray,
    truth: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    joints: Sequence[int] | None = None,
    thresholds_mm: Sequence[float] | np.ndarray = DEFAULT_THRESHOLDS_MM,
) -> PoseMetrics:
    """Mean, median and per-joint error, and the frames-within-threshold curve.

    Args:
        predicted: shape (N, K, 3), metres.
        truth: shape (N, K, 3), metres; NaN where a joint is not labelled.
        valid: optional shape (N, K) bool; False leaves a joint out.
        joints: keypoint indices to evaluate, e.g. a dataset's evaluation joints, or all
            joints but the one used to centre the crop (seed 002 leaves that one out). None
            evaluates all K.
        thresholds_mm: shape (T,), thresholds for ``frames_within``, mm.
    Returns:
        The metrics. Raises ValueError if no frame has a labelled evaluated joint.
    """
    errors = joint_errors_mm(predicted, truth, valid)
    num_keypoints = errors.shape[1]
    chosen = _joint_indices(joints, num_keypoints)
    thresholds = np.asarray(thresholds_mm, dtype=np.float64)
    if thresholds.ndim != 1 or thresholds.size == 0:
        raise ValueError(f"thresholds_mm must be a non-empty 1-D sequence, got {thresholds}")

    evaluated = errors[:, chosen]  # (N, J)
    labelled = ~np.isnan(evaluated)
    kept = labelled.any(axis=1)
    if not kept.any():
        raise ValueError("no frame has a labelled joint among the evaluated joints")
    evaluated, labelled = evaluated[kept], labelled[kept]
    pooled = evaluated[labelled]

    per_joint = np.full(num_keypoints, np.nan)
    per_joint[list(chosen)] = _mean_over_frames(evaluated, labelled)
    worst = np.where(labelled, evaluated, -np.inf).max(axis=1)  # (F,)
    within = worst[:, None] <= thresholds[None, :] + _THRESHOLD_SLACK_MM
    return PoseMetrics(
        frames=int(kept.sum()),
        frames_without_joints=int((~kept).sum()),
        joints=chosen,
        mean_mm=float(pooled.mean()),
        median_mm=float(np.median(pooled)),
        per_joint_mm=per_joint,
        thresholds_mm=thresholds,
        frames_within=within.mean(axis=0),
        missing_predictions=int(np.isinf(pooled).sum()),
    )


def mean_pose_baseline(
    train_offsets: np.ndarray,
    test_centres: np.ndarray,
    *,
    train_valid: np.ndarray | None = None,
) -> np.ndarray:
    """The "predict the training set's mean pose" baseline.

    Every test hand is predicted as the mean training pose placed at the test crop's centre.
    The baseline uses the crop centre, which the pipeline gets from detection and depth rather
    than from the model, and nothing else from the image. A learned model that does not beat
    it has learned nothing about the hand's shape or orientation.

    Args:
        train_offsets: shape (N, K, 3), metres; training joint positions minus their crop
            centre. NaN where a joint is not labelled.
        test_centres: shape (M, 3), metres; the crop centres of the test frames, in the frame
            the predictions should be in (usually the camera's).
        train_valid: optional shape (N, K) bool; False leaves a training joint out.
    Returns:
        predicted: shape (M, K, 3) float64, metres; centre + mean offset. NaN for a joint
        that no training frame labels.
    """
    offsets = _poses(train_offsets, "train_offsets")
    centres = np.asarray(test_centres, dtype=np.float64)
    if centres.ndim != 2 or centres.shape[1] != 3:
        raise ValueError(f"test_centres must have shape (M, 3), got {centres.shape}")
    labelled = _labelled(offsets, train_valid)
    mean_offset = _mean_over_frames(offsets, labelled[..., None])  # (K, 3)
    return centres[:, None, :] + mean_offset[None, :, :]
