"""A linear (PCA) pose prior: the low-dimensional pose space of seed 002, numpy only.

Oberweger, Wohlhart, Lepetit: "Hands Deep in Deep Learning for Hand Pose Estimation" (the
prior layer) and "DeepPrior++" (ICCVW 2017); used by seed 002, "Residual Attention
Regression for 3D Hand Pose Estimation" (ICIRA 2019): "We apply Principal Component Analysis
(PCA) to learn a low-dimensional representation of the training data ... Then, we compute the
hand pose parameters by projecting them into the 3·J-dimensional joint space with the last
prior layer."

A pose is a flat vector of D = 3 J numbers (J keypoints x (x, y, z), e.g. D = 63 in
half-cube units). ``fit`` finds the mean pose and the E leading principal directions;
``project`` maps poses to E coefficients, ``reconstruct`` maps coefficients back:
``pose = mean + coefficients @ basis``. The depth model's last linear layer is initialised
with ``weight = basis.T`` and ``bias = mean`` so that it is exactly ``reconstruct``.

The prior is stored as plain arrays (``to_arrays`` / ``save`` write ``mean``, ``basis`` and
``explained_variance`` to an ``.npz`` without pickle).

The module-level ``encode`` / ``decode`` are the codec of a network ending in such a prior
layer (the ``decoder`` its spec names): targets are the flat joint vector, decoding reshapes
it, and the confidence is 1 for every joint (one regression carries no per-joint
uncertainty; downstream code should judge joints by their agreement with the depth map).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class PCAPriorError(ValueError):
    """Poses of the wrong shape, or a prior file that is not one."""


@dataclass(frozen=True)
class PCAPrior:
    """Mean pose and principal directions.

    Attributes:
        mean: float64 (D,), the mean training pose.
        basis: float64 (E, D), orthonormal rows, strongest direction first.
        explained_variance: float64 (E,), the training variance along each row (0 for
            directions beyond the rank of the training set).
    """

    mean: np.ndarray
    basis: np.ndarray
    explained_variance: np.ndarray

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float64)
        basis = np.asarray(self.basis, dtype=np.float64)
        variance = np.asarray(self.explained_variance, dtype=np.float64)
        if mean.ndim != 1 or basis.ndim != 2 or basis.shape[1] != mean.shape[0]:
            raise PCAPriorError(f"need mean (D,) and basis (E, D), got {mean.shape}, {basis.shape}")
        if variance.shape != (basis.shape[0],):
            raise PCAPriorError(
                f"explained_variance must be ({basis.shape[0]},), got {variance.shape}"
            )
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "basis", basis)
        object.__setattr__(self, "explained_variance", variance)

    @property
    def n_components(self) -> int:
        """E, the embedding size."""
        return int(self.basis.shape[0])

    @property
    def dim(self) -> int:
        """D, the flat pose size."""
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, poses: np.ndarray, n_components: int = 30) -> PCAPrior:
        """The PCA of training ``poses``.

        Args:
            poses: shape (N, D) or (N, J, 3); non-finite rows are ignored.
            n_components: E <= D. With fewer informative poses than E the basis is completed
                with orthonormal directions of zero variance, so E is always honoured.
        """
        flat = _flatten(poses)
        flat = flat[np.isfinite(flat).all(axis=1)]
        if len(flat) == 0:
            raise PCAPriorError("no finite poses to fit")
        if not 1 <= n_components <= flat.shape[1]:
            raise PCAPriorError(f"n_components must be in 1..{flat.shape[1]}, got {n_components}")
        mean = flat.mean(axis=0)
        centred = flat - mean
        # Vt must be a complete orthonormal basis (D x D). With N >= D poses the thin SVD
        # gives it; with fewer, the full one does, and is small. (A full SVD of many poses
        # would build an N x N matrix: 20 GB for 50k poses.)
        full = len(flat) < flat.shape[1]
        _, singular, vt = np.linalg.svd(centred, full_matrices=full)
        variance = np.zeros(vt.shape[0])
        variance[: len(singular)] = singular**2 / max(len(flat) - 1, 1)
        return cls(mean, vt[:n_components].copy(), variance[:n_components].copy())

    def project(self, poses: np.ndarray) -> np.ndarray:
        """Poses (N, D) or (N, J, 3) -> coefficients (N, E)."""
        flat = _flatten(poses)
        if flat.shape[1] != self.dim:
            raise PCAPriorError(f"poses have {flat.shape[1]} values, the prior {self.dim}")
        result: np.ndarray = (flat - self.mean) @ self.basis.T
        return result

    def reconstruct(self, coefficients: np.ndarray) -> np.ndarray:
        """Coefficients (N, E) -> poses (N, D)."""
        coefficients = np.asarray(coefficients, dtype=np.float64)
        if coefficients.ndim != 2 or coefficients.shape[1] != self.n_components:
            raise PCAPriorError(
                f"coefficients must be (N, {self.n_components}), got {coefficients.shape}"
            )
        result: np.ndarray = self.mean + coefficients @ self.basis
        return result

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The prior as named arrays: ``mean`` (D,), ``basis`` (E, D), ``explained_variance``."""
        return {
            "mean": self.mean.copy(),
            "basis": self.basis.copy(),
            "explained_variance": self.explained_variance.copy(),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PCAPrior:
        """The inverse of ``to_arrays``."""
        try:
            return cls(arrays["mean"], arrays["basis"], arrays["explained_variance"])
        except KeyError as error:
            raise PCAPriorError(f"prior arrays lack {error}") from error

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the arrays to ``path`` (``.npz``, no pickle)."""
        np.savez(Path(path), **self.to_arrays())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PCAPrior:
        """Read a prior written by ``save``."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                return cls.from_arrays({key: data[key] for key in data.files})
        except (OSError, ValueError) as error:
            if isinstance(error, PCAPriorError):
                raise
            raise PCAPriorError(f"{path}: not a PCA prior file ({error})") from error


def encode(keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joints -> flat regression targets of a prior-layer network.

    Args:
        keypoints: shape (N, J, 3), e.g. half-cube offsets from the crop centre.
        visible: shape (N, J), truthy where the joint is labelled.

    Returns:
        joints: float32 (N, 3 J), joint-major (x0, y0, z0, x1, ...); 0 where unusable.
        weights: float32 (N, 3 J), 1 for labelled finite joints, else 0.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[2] != 3:
        raise PCAPriorError(f"keypoints must be (N, J, 3), got {keypoints.shape}")
    usable = np.asarray(visible).astype(bool) & np.isfinite(keypoints).all(axis=-1)
    if usable.shape != keypoints.shape[:2]:
        raise PCAPriorError(f"visible must be {keypoints.shape[:2]}, got {usable.shape}")
    joints = np.where(usable[..., None], keypoints, 0.0).reshape(len(keypoints), -1)
    weights = np.repeat(usable, 3, axis=1)
    return joints.astype(np.float32), weights.astype(np.float32)


def decode(output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat network output (N, 3 J) -> joints (N, J, 3) and confidence (N, J), all 1."""
    output = np.asarray(output, dtype=np.float64)
    if output.ndim != 2 or output.shape[1] % 3:
        raise PCAPriorError(f"output must be (N, 3 J), got {output.shape}")
    joints = output.reshape(len(output), -1, 3)
    return joints, np.ones(joints.shape[:2], dtype=np.float64)


def _flatten(poses: np.ndarray) -> np.ndarray:
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim == 3:
        return poses.reshape(len(poses), -1)
    if poses.ndim != 2:
        raise PCAPriorError(f"poses must be (N, D) or (N, J, 3), got {poses.shape}")
    return poses


__all__ = ["PCAPrior", "PCAPriorError", "decode", "encode"]
