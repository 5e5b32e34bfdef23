"""One-dimensional heatmaps per axis with soft-argmax (seed 004), numpy only.

Schneider, Micheletti, Groenewald: "An Efficient Encoder-Decoder Architecture for 3D Hand
Pose Estimation" (ETH Zurich); the 1D ("lixel") heatmaps follow Moon and Lee,
"I2L-MeshNet", ECCV 2020.

Every keypoint has three 1D heatmaps of ``bins`` bins (112 for a 224x224 input): one over
the crop's columns (u), one over its rows (v) and one over root-relative depth (z). The
network outputs logits (N, 3, K, bins); a softmax along the bins gives a distribution
whose mean (the soft-argmax) is the coordinate in bins.

Coordinates:
    u, v: input-crop pixels (pixel centres at integers), ``u = stride * (b + 0.5) - 0.5``
        with ``stride = input_width / bins`` (two pixels per bin for 224 -> 112), the same
        for v with the height.
    z: metres relative to the root keypoint (the wrist, keypoint 0, by default; the model
        takes z already root-relative), positive away from the camera. The range
        [-z_range_m, +z_range_m] spans the bins edge to edge: ``z = z_range_m * (2 (b + 0.5)
        / bins - 1)``; 0.15 m (a hand is ~0.2 m long) gives 2.7 mm per bin.

Targets: a Gaussian of ``sigma`` bins around each coordinate, normalised to sum 1 (for a
heatmap loss and for plots; seed 004 itself trains on the soft-argmax coordinates with a
mean squared error). Coordinates outside the range are clipped to the first / last bin.

Confidence: from the sharpness of the three distributions. Per axis
``min(1, confidence_sigma / std)`` where std is the distribution's standard deviation in
bins: a map at least as sharp as the training Gaussians scores 1, a flat map
``confidence_sigma / (bins / sqrt(12))`` (about 0.06 for 112 bins). The keypoint's
confidence is the geometric mean over u, v and z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AXES = ("u", "v", "z")


class Heatmap1DCodecError(ValueError):
    """Arrays of the wrong shape or codec parameters that cannot work."""


@dataclass(frozen=True)
class Heatmap1DCodec:
    """Encode (u, v, z) keypoints to 1D heatmaps; decode 1D logits by soft-argmax.

    Attributes:
        input_size: (height, width) of the network input crop in pixels.
        bins: number of bins of every 1D heatmap.
        z_range_m: half-range of root-relative depth in metres mapped onto the bins.
        sigma: standard deviation of the target Gaussians in bins.
        confidence_sigma: the spread (bins) that still counts as fully confident;
            defaults to ``sigma`` when None.
    """

    input_size: tuple[int, int] = (224, 224)
    bins: int = 112
    z_range_m: float = 0.15
    sigma: float = 2.0
    confidence_sigma: float | None = None

    def __post_init__(self) -> None:
        if self.bins < 2 or min(self.input_size) <= 0:
            raise Heatmap1DCodecError(
                f"need bins >= 2 and a positive input size, got {self.bins}, {self.input_size}"
            )
        if self.z_range_m <= 0 or self.sigma <= 0:
            raise Heatmap1DCodecError("z_range_m and sigma must be > 0")

    def to_bins(self, keypoints: np.ndarray) -> np.ndarray:
        """(..., 3) as (u px, v px, z m root-relative) -> (..., 3) continuous bin positions."""
        keypoints = np.asarray(keypoints, dtype=np.float64)
        height, width = self.input_size
        u = (keypoints[..., 0] + 0.5) * self.bins / width - 0.5
        v = (keypoints[..., 1] + 0.5) * self.bins / height - 0.5
        z = (keypoints[..., 2] / self.z_range_m + 1.0) * self.bins / 2.0 - 0.5
        return np.stack([u, v, z], axis=-1)

    def from_bins(self, coords: np.ndarray) -> np.ndarray:
        """(..., 3) bin positions -> (..., 3) as (u px, v px, z m root-relative)."""
        coords = np.asarray(coords, dtype=np.float64)
        height, width = self.input_size
        u = (coords[..., 0] + 0.5) * width / self.bins - 0.5
        v = (coords[..., 1] + 0.5) * height / self.bins - 0.5
        z = ((coords[..., 2] + 0.5) * 2.0 / self.bins - 1.0) * self.z_range_m
        return np.stack([u, v, z], axis=-1)

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """Training targets for a batch of hands.

        Args:
            keypoints: shape (N, K, 3), (u px, v px, z metres relative to the root).
            visible: shape (N, K), truthy where the keypoint is labelled.

        Returns:
            ``coordinates``: float32 (N, 3, K), target positions in bins (clipped to
            [0, bins - 1]), axis 1 = u, v, z.
            ``heatmaps``: float32 (N, 3, K, bins), Gaussians summing to 1 (zero where not
            labelled).
            ``weights``: float32 (N, 3, K), 1 where labelled (and finite), else 0.
        """
        keypoints = np.asarray(keypoints, dtype=np.float64)
        visible = np.asarray(visible)
        if keypoints.ndim != 3 or keypoints.shape[2] != 3:
            raise Heatmap1DCodecError(f"keypoints must be (N, K, 3), got {keypoints.shape}")
        if visible.shape != keypoints.shape[:2]:
            raise Heatmap1DCodecError(f"visible must be {keypoints.shape[:2]}, got {visible.shape}")
        usable = visible.astype(bool) & np.isfinite(keypoints).all(axis=-1)
        coords = np.where(usable[..., None], self.to_bins(keypoints), 0.0)
        coords = np.clip(coords, 0.0, self.bins - 1.0).transpose(0, 2, 1)  # (N, 3, K)
        positions = np.arange(self.bins, dtype=np.float64)
        maps = np.exp(-((positions - coords[..., None]) ** 2) / (2.0 * self.sigma**2))
        maps /= maps.sum(axis=-1, keepdims=True)
        weights = np.broadcast_to(usable[:, None, :], coords.shape).astype(np.float32)
        maps *= weights[..., None]
        return {
            "coordinates": coords.astype(np.float32),
            "heatmaps": maps.astype(np.float32),
            "weights": weights,
        }

    def decode(self, output: np.ndarray, *, logits: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints and confidences from 1D heatmaps.

        Args:
            output: shape (N, 3, K, bins): logits (``logits=True``, what the network
                returns) or non-negative heatmaps (normalised here).

        Returns:
            keypoints: float64 (N, K, 3), (u px, v px, z metres relative to the root).
            confidence: float64 (N, K) in [0, 1].
        """
        probability = self.probabilities(output, logits=logits)
        positions = np.arange(self.bins, dtype=np.float64)
        mean = (probability * positions).sum(axis=-1)  # (N, 3, K)
        variance = (probability * (positions - mean[..., None]) ** 2).sum(axis=-1)
        keypoints = self.from_bins(mean.transpose(0, 2, 1))
        return keypoints, self.sharpness_confidence(variance).prod(axis=1) ** (1.0 / 3.0)

    def probabilities(self, output: np.ndarray, *, logits: bool = True) -> np.ndarray:
        """(N, 3, K, bins) logits or heatmaps -> distributions along the bins (sum 1)."""
        output = np.asarray(output, dtype=np.float64)
        if output.ndim != 4 or output.shape[1] != 3 or output.shape[3] != self.bins:
            raise Heatmap1DCodecError(f"output must be (N, 3, K, {self.bins}), got {output.shape}")
        if logits:
            shifted = np.exp(output - output.max(axis=-1, keepdims=True))
            result: np.ndarray = shifted / shifted.sum(axis=-1, keepdims=True)
            return result
        clipped = np.maximum(output, 0.0)
        total = clipped.sum(axis=-1, keepdims=True)
        uniform = np.full_like(clipped, 1.0 / self.bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, clipped / total, uniform)

    def sharpness_confidence(self, variance: np.ndarray) -> np.ndarray:
        """Per-axis confidence in [0, 1] from distribution variances (bins^2), same shape."""
        reference = self.sigma if self.confidence_sigma is None else self.confidence_sigma
        std = np.sqrt(np.maximum(np.asarray(variance, dtype=np.float64), 1e-12))
        result: np.ndarray = np.clip(reference / std, 0.0, 1.0)
        return result


__all__ = ["AXES", "Heatmap1DCodec", "Heatmap1DCodecError"]
