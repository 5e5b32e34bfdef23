"""What the trainer needs to know about a kind of model and its data.

A ``Task`` turns a batch into the model's targets, prepares a fresh model from the
training set, and names the validation metric the best checkpoint is chosen by (lower is
better). ``DepthPoseTask`` serves the depth models (seed 002); the RGB models add theirs.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from hand_pose_ros.codecs.pca_prior import PCAPrior

# PCA of at most this many training poses: plenty for 63 dimensions, and quick.
_PRIOR_POSES = 50_000


class Task(Protocol):
    metric: str

    def targets(
        self, model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device
    ) -> dict[str, torch.Tensor]: ...

    def prepare(self, model: nn.Module, train_set: Any) -> None: ...

    def batch_metrics(
        self, model: nn.Module, output: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> dict[str, float]: ...


class DepthPoseTask:
    """Depth cube crop -> 21 joints in half-cube units (``training/depth_data.py`` items).

    Every labelled joint is a target, occluded or not: the depth models regress the whole
    hand. The metric is the mean 3D joint error in millimetres (half-cube units times half
    the cube), the seed paper's.
    """

    metric = "mean_error_mm"

    def targets(
        self, model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device
    ) -> dict[str, torch.Tensor]:
        made = model.make_targets(batch["joints"].numpy(), batch["labelled"].numpy())  # type: ignore[operator]
        return {
            name: torch.from_numpy(np.asarray(value)).to(device) for name, value in made.items()
        }

    def prepare(self, model: nn.Module, train_set: Any) -> None:
        """Initialise a PCA prior layer (seed 002) from the training poses, if there is one."""
        init_prior = getattr(model, "init_prior", None)
        if init_prior is None:
            return
        poses = training_poses(train_set, limit=_PRIOR_POSES)
        embedding = int(model.config["embedding"])  # type: ignore[index]
        prior = PCAPrior.fit(poses, n_components=embedding)
        init_prior(prior.basis, prior.mean)

    def batch_metrics(
        self, model: nn.Module, output: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> dict[str, float]:
        joints, _ = model.decode(output.detach().cpu().numpy())  # type: ignore[operator]
        truth = batch["joints"].numpy()
        labelled = batch["labelled"].numpy()
        half_cube_mm = batch["cube_m"].numpy()[:, None] * 500.0
        errors = np.linalg.norm(joints - truth, axis=-1) * half_cube_mm
        return {"mean_error_mm": float(errors[labelled].mean()) if labelled.any() else float("nan")}


def training_poses(train_set: Any, *, limit: int) -> np.ndarray:
    """(N, 21, 3) training poses in half-cube units, without augmentation (the prior spans
    the poses, not the augmentation), at most ``limit`` of them spread over the set.

    A joint a dataset does not label (ICVL has no wrist) is 0: a dimension without
    variance, which the PCA leaves out and the loss never weighs.
    """
    source = getattr(train_set, "source", train_set)
    picked = np.unique(np.linspace(0, len(source) - 1, min(len(source), limit)).astype(int))
    joints = getattr(source, "joints", None)
    if joints is not None:
        poses = np.asarray(joints, dtype=np.float64)[picked]
    else:  # crops cut from frames on access: read the joints one by one
        poses = np.stack([source.crop(int(i))[1] for i in picked]).astype(np.float64)
    return np.nan_to_num(poses, nan=0.0)
