"""2D Gaussian heatmaps with a background channel (seed 003), numpy only.

Gouidis, Panteleris, Oikonomidis, Argyros: "Accurate Hand Keypoint Localization on Mobile
Devices", MVA 2019.

Encoding: keypoint k at input-crop pixel (u, v) becomes a heatmap whose value at heatmap
pixel (x, y) is ``exp(-((x - x_k)^2 + (y - y_k)^2) / (2 sigma^2))`` (peak 1, un-normalised,
the paper's Eq. 1), where (x_k, y_k) is the keypoint in heatmap pixels. The extra last
channel is the background, ``1 - max_k heatmap_k`` (Eq. 2).

Coordinates: pixel centres are at integers, so input pixel u and heatmap pixel x are related
by ``u = stride * (x + 0.5) - 0.5`` with ``stride = input_width / heatmap_width`` (the same
along v / y with the heights): a heatmap pixel's centre is the centre of the input pixels it
covers.

Decoding (paper Sec. 3.3): each keypoint channel is turned into a probability map by a
spatial softmax (of ``softmax_beta * heatmap``: a plain softmax of values in [0, 1] over
3136 pixels is almost flat, the temperature makes it peak where the network's map peaks);
the keypoint is its maximum, refined to sub-pixel precision by fitting a parabola per axis
to the log of the heatmap around the maximum (exact for a Gaussian: its log is quadratic).
The confidence is the probability mass within ``confidence_radius`` pixels of the maximum
(a well-localised peak holds almost all of it, two equal peaks half each, a flat map ~0).

Fallback (paper Sec. 3.3): "if the probability is lower than a predetermined threshold, we
select among the peaks having the highest probabilities, the one located nearest to the
keypoints that have been found with high confidence". Here: a keypoint whose confidence is
below ``fallback_threshold`` takes, among the ``fallback_peaks`` highest local maxima of its
map (3x3 neighbourhood), the one with the smallest mean distance to the keypoints of the
same hand whose confidence reaches the threshold; its confidence is then that peak's mass.
With no confident keypoint the maximum is kept.

Left hands: the network was trained on right hands only and the paper mirrors left-hand
crops before inference; ``mirror_for_left`` flips a crop (and keypoints) horizontally, and
applied again to the decoded keypoints it maps them back to the original crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_LOG_FLOOR = 1e-10


class HeatmapCodecError(ValueError):
    """Arrays of the wrong shape or codec parameters that cannot work."""


@dataclass(frozen=True)
class HeatmapCodec:
    """Encode keypoints to Gaussian heatmaps + background, decode heatmaps to keypoints.

    Attributes:
        input_size: (height, width) of the network input crop in pixels.
        heatmap_size: (height, width) of the heatmaps in pixels.
        sigma: standard deviation of the target Gaussians, in heatmap pixels.
        softmax_beta: inverse temperature of the spatial softmax used for confidence.
        confidence_radius: half-size of the window whose probability mass is the confidence.
        fallback_threshold: keypoints less confident than this use the seed-003 fallback;
            0 disables it.
        fallback_peaks: how many of a map's highest local maxima the fallback considers.
    """

    input_size: tuple[int, int] = (224, 224)
    heatmap_size: tuple[int, int] = (56, 56)
    sigma: float = 2.0
    softmax_beta: float = 30.0
    confidence_radius: int = 1
    fallback_threshold: float = 0.3
    fallback_peaks: int = 3

    def __post_init__(self) -> None:
        if min(self.input_size) <= 0 or min(self.heatmap_size) <= 0:
            raise HeatmapCodecError(
                f"sizes must be positive: {self.input_size}, {self.heatmap_size}"
            )
        if self.sigma <= 0 or self.softmax_beta <= 0 or self.confidence_radius < 0:
            raise HeatmapCodecError("sigma and softmax_beta must be > 0, confidence_radius >= 0")
        if self.fallback_peaks < 1:
            raise HeatmapCodecError("fallback_peaks must be >= 1")

    @property
    def stride(self) -> tuple[float, float]:
        """(along u, along v): input pixels per heatmap pixel."""
        return (
            self.input_size[1] / self.heatmap_size[1],
            self.input_size[0] / self.heatmap_size[0],
        )

    def to_heatmap_coords(self, keypoints: np.ndarray) -> np.ndarray:
        """Input-crop pixels (..., 2) as (u, v) -> heatmap pixels (..., 2) as (x, y)."""
        keypoints = np.asarray(keypoints, dtype=np.float64)
        stride = np.array(self.stride)
        return (keypoints[..., :2] + 0.5) / stride - 0.5

    def to_input_coords(self, coords: np.ndarray) -> np.ndarray:
        """Heatmap pixels (..., 2) as (x, y) -> input-crop pixels (..., 2) as (u, v)."""
        stride = np.array(self.stride)
        return np.asarray(coords, dtype=np.float64) * stride + (stride - 1.0) / 2.0

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """Training targets for a batch of hands.

        Args:
            keypoints: shape (N, K, 2), (u, v) in input-crop pixels (extra columns ignored).
            visible: shape (N, K), truthy where the keypoint is labelled.

        Returns:
            ``heatmaps``: float32 (N, K + 1, h, w), K Gaussians then the background channel;
            a keypoint that is not visible, or lies outside the crop, has an all-zero map
            and does not darken the background.
            ``weights``: float32 (N, K + 1), 1 for maps to learn (the background always),
            0 for keypoints without a usable label.
        """
        keypoints = np.asarray(keypoints, dtype=np.float64)
        visible = np.asarray(visible)
        if keypoints.ndim != 3 or keypoints.shape[2] < 2:
            raise HeatmapCodecError(f"keypoints must be (N, K, 2), got {keypoints.shape}")
        if visible.shape != keypoints.shape[:2]:
            raise HeatmapCodecError(f"visible must be {keypoints.shape[:2]}, got {visible.shape}")
        height, width = self.heatmap_size
        coords = self.to_heatmap_coords(keypoints)
        inside = (
            np.isfinite(coords).all(axis=-1)
            & (coords[..., 0] >= -0.5)
            & (coords[..., 0] <= width - 0.5)
            & (coords[..., 1] >= -0.5)
            & (coords[..., 1] <= height - 0.5)
        )
        usable = visible.astype(bool) & inside
        safe = np.where(usable[..., None], coords, 0.0)
        xs = np.arange(width, dtype=np.float64)
        ys = np.arange(height, dtype=np.float64)
        # Separable Gaussian: (N, K, h, 1) * (N, K, 1, w).
        gx = np.exp(-((xs - safe[..., 0:1]) ** 2) / (2.0 * self.sigma**2))
        gy = np.exp(-((ys - safe[..., 1:2]) ** 2) / (2.0 * self.sigma**2))
        maps = gy[..., :, None] * gx[..., None, :]
        maps *= usable[..., None, None]
        background = 1.0 - maps.max(axis=1, initial=0.0)
        heatmaps = np.concatenate([maps, background[:, None]], axis=1).astype(np.float32)
        weights = np.concatenate(
            [usable.astype(np.float32), np.ones((keypoints.shape[0], 1), np.float32)], axis=1
        )
        return {"heatmaps": heatmaps, "weights": weights}

    def decode(
        self, heatmaps: np.ndarray, *, has_background: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints and confidences from network heatmaps.

        Args:
            heatmaps: shape (N, K + 1, h, w) (background last) or (N, K, h, w) with
                ``has_background=False``.

        Returns:
            keypoints: float64 (N, K, 2), (u, v) in input-crop pixels.
            confidence: float64 (N, K) in [0, 1].
        """
        heatmaps = np.asarray(heatmaps, dtype=np.float64)
        if heatmaps.ndim != 4 or heatmaps.shape[2:] != tuple(self.heatmap_size):
            raise HeatmapCodecError(
                f"heatmaps must be (N, C, {self.heatmap_size[0]}, {self.heatmap_size[1]}), "
                f"got {heatmaps.shape}"
            )
        maps = heatmaps[:, :-1] if has_background else heatmaps
        batch, joints, _, width = maps.shape
        probability = spatial_softmax(maps, self.softmax_beta)
        flat = maps.reshape(batch, joints, -1).argmax(axis=-1)
        rows, cols = np.divmod(flat, width)
        coords = refine_subpixel(maps, cols, rows)
        confidence = window_mass(probability, cols, rows, self.confidence_radius)
        if self.fallback_threshold > 0:
            coords, confidence = self._fallback(maps, probability, coords, confidence)
        return self.to_input_coords(coords), np.clip(confidence, 0.0, 1.0)

    def _fallback(
        self,
        maps: np.ndarray,
        probability: np.ndarray,
        coords: np.ndarray,
        confidence: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        coords = coords.copy()
        confidence = confidence.copy()
        confident = confidence >= self.fallback_threshold
        for n, k in zip(*np.nonzero(~confident), strict=True):
            anchors = coords[n, confident[n]]
            if len(anchors) == 0:
                continue
            peak_rows, peak_cols = local_peaks(maps[n, k], self.fallback_peaks)
            candidates = _refine_single(maps[n, k], peak_cols, peak_rows)
            distance = np.linalg.norm(candidates[:, None] - anchors[None], axis=-1).mean(axis=1)
            best = int(np.argmin(distance))
            coords[n, k] = candidates[best]
            confidence[n, k] = window_mass(
                probability[n, k][None, None],
                peak_cols[best : best + 1][None],
                peak_rows[best : best + 1][None],
                self.confidence_radius,
            )[0, 0]
        return coords, confidence


def spatial_softmax(maps: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """Per-map softmax over pixels: (N, K, h, w) -> (N, K, h, w), each map summing to 1."""
    logits = beta * np.asarray(maps, dtype=np.float64)
    logits = logits - logits.max(axis=(-2, -1), keepdims=True)
    exp = np.exp(logits)
    result: np.ndarray = exp / exp.sum(axis=(-2, -1), keepdims=True)
    return result


def refine_subpixel(maps: np.ndarray, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Sub-pixel peak positions by a per-axis parabola through the log of the map.

    Args:
        maps: shape (N, K, h, w).
        cols, rows: integer shape (N, K), the peak pixel of each map.

    Returns:
        float64 (N, K, 2): (x, y) in heatmap pixels. The offset is at most half a pixel
        when the peak is a maximum; at the border, or where the map is not positive at the
        peak, the integer position is kept.
    """
    maps = np.asarray(maps, dtype=np.float64)
    height, width = maps.shape[-2:]
    n_index, k_index = np.indices(cols.shape)
    log_maps = np.log(np.maximum(maps, _LOG_FLOOR))
    centre = log_maps[n_index, k_index, rows, cols]
    positive = maps[n_index, k_index, rows, cols] > _LOG_FLOOR

    def offset(before: np.ndarray, after: np.ndarray, ok: np.ndarray) -> np.ndarray:
        curvature = before - 2.0 * centre + after
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = 0.5 * (before - after) / curvature
        usable = ok & positive & (curvature < 0) & np.isfinite(delta)
        return np.where(usable, np.clip(delta, -0.5, 0.5), 0.0)

    ok_x = (cols > 0) & (cols < width - 1)
    ok_y = (rows > 0) & (rows < height - 1)
    left = log_maps[n_index, k_index, rows, np.clip(cols - 1, 0, width - 1)]
    right = log_maps[n_index, k_index, rows, np.clip(cols + 1, 0, width - 1)]
    up = log_maps[n_index, k_index, np.clip(rows - 1, 0, height - 1), cols]
    down = log_maps[n_index, k_index, np.clip(rows + 1, 0, height - 1), cols]
    x = cols + offset(left, right, ok_x)
    y = rows + offset(up, down, ok_y)
    return np.stack([x, y], axis=-1)


def _refine_single(heatmap: np.ndarray, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``refine_subpixel`` for several peaks of one (h, w) map: (P,) -> (P, 2)."""
    count = len(cols)
    maps = np.broadcast_to(heatmap, (1, count, *heatmap.shape))
    refined: np.ndarray = refine_subpixel(maps, cols[None], rows[None])[0]
    return refined


def window_mass(
    probability: np.ndarray, cols: np.ndarray, rows: np.ndarray, radius: int
) -> np.ndarray:
    """Probability mass within ``radius`` pixels (a square window) of each peak.

    Args:
        probability: shape (N, K, h, w), maps summing to 1.
        cols, rows: integer shape (N, K).

    Returns:
        float64 (N, K) in [0, 1].
    """
    height, width = probability.shape[-2:]
    total = np.zeros(cols.shape, dtype=np.float64)
    n_index, k_index = np.indices(cols.shape)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            r = rows + dy
            c = cols + dx
            inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
            values = probability[
                n_index, k_index, np.clip(r, 0, height - 1), np.clip(c, 0, width - 1)
            ]
            total += np.where(inside, values, 0.0)
    return total


def local_peaks(heatmap: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` highest local maxima of one map (each >= its 8 neighbours).

    Args:
        heatmap: shape (h, w).

    Returns:
        rows, cols: int arrays of equal length <= ``count``, highest first. A map without a
        strict structure (e.g. constant) still yields its global maximum.
    """
    heatmap = np.asarray(heatmap, dtype=np.float64)
    height, width = heatmap.shape
    padded = np.pad(heatmap, 1, mode="constant", constant_values=-np.inf)
    neighbours = np.stack(
        [
            padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if (dy, dx) != (0, 0)
        ]
    )
    is_peak = heatmap >= neighbours.max(axis=0)
    rows, cols = np.nonzero(is_peak)
    if len(rows) == 0:
        row, col = np.unravel_index(int(heatmap.argmax()), heatmap.shape)
        return np.array([row]), np.array([col])
    order = np.argsort(-heatmap[rows, cols], kind="stable")[:count]
    return rows[order], cols[order]


def mirror_keypoints(keypoints: np.ndarray, width: int) -> np.ndarray:
    """Keypoints (..., D >= 2) with u mirrored in a crop ``width`` pixels wide (u -> w - 1 - u)."""
    mirrored = np.array(keypoints, dtype=np.float64, copy=True)
    mirrored[..., 0] = (width - 1) - mirrored[..., 0]
    return mirrored


def mirror_for_left(
    image: np.ndarray, keypoints: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """A left-hand crop flipped left-right so a right-hand-only network can read it.

    Seed 003 trains on right hands only and mirrors left-hand images before inference.
    Use: ``flipped, _ = mirror_for_left(crop)``; run the network on ``flipped``; decode;
    then ``mirror_keypoints(decoded, crop.shape[1])`` puts the keypoints back in the
    original crop. Keypoint identities do not change under mirroring (the thumb stays
    keypoints 1-4), so no re-ordering is needed.

    Args:
        image: shape (H, W) or (H, W, C), any dtype.
        keypoints: optional shape (..., D >= 2), (u, v, ...) in the crop's pixels.

    Returns:
        The mirrored image (a contiguous copy) and the mirrored keypoints (None if none).
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise HeatmapCodecError(f"image must be (H, W) or (H, W, C), got {image.shape}")
    flipped = np.ascontiguousarray(image[:, ::-1])
    if keypoints is None:
        return flipped, None
    return flipped, mirror_keypoints(keypoints, image.shape[1])


__all__ = [
    "HeatmapCodec",
    "HeatmapCodecError",
    "local_peaks",
    "mirror_for_left",
    "mirror_keypoints",
    "refine_subpixel",
    "spatial_softmax",
    "window_mass",
]
