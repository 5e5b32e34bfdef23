"""Codecs of seeds 002-004: Gaussian heatmaps + background, 1D heatmaps, PCA pose prior."""

from __future__ import annotations

import numpy as np
import pytest

from hand_pose_ros.codecs import pca_prior
from hand_pose_ros.codecs.heatmap import (
    HeatmapCodec,
    HeatmapCodecError,
    local_peaks,
    mirror_for_left,
    mirror_keypoints,
)
from hand_pose_ros.codecs.heatmap_1d import Heatmap1DCodec
from hand_pose_ros.codecs.pca_prior import PCAPrior, PCAPriorError


def _random_keypoints(rng: np.random.Generator, n: int = 3, margin: float = 12.0) -> np.ndarray:
    return rng.uniform(margin, 223.0 - margin, size=(n, 21, 2))


# --- heatmap (seed 003) ---------------------------------------------------------------


def test_heatmap_round_trip_is_subpixel_exact():
    rng = np.random.default_rng(0)
    codec = HeatmapCodec()
    keypoints = _random_keypoints(rng)
    targets = codec.encode(keypoints, np.ones((3, 21)))
    decoded, confidence = codec.decode(targets["heatmaps"])
    # Integer arg-max alone would be off by up to 2 px (stride 4); the log-parabola is exact.
    assert np.abs(decoded - keypoints).max() < 1e-3
    assert confidence.min() > 0.95 and confidence.max() <= 1.0


def test_heatmap_pixel_centre_convention():
    codec = HeatmapCodec()
    # Heatmap pixel 0 covers input pixels 0..3, whose centre is u = 1.5.
    np.testing.assert_allclose(codec.to_input_coords(np.array([[0.0, 0.0]])), [[1.5, 1.5]])
    np.testing.assert_allclose(codec.to_heatmap_coords(np.array([[1.5, 221.5]])), [[0.0, 55.0]])


def test_heatmap_targets_background_and_weights():
    codec = HeatmapCodec()
    keypoints = np.full((1, 21, 2), 100.0)
    keypoints[0, 3] = (400.0, 50.0)  # outside the crop
    visible = np.ones((1, 21))
    visible[0, 5] = 0
    targets = codec.encode(keypoints, visible)
    heatmaps, weights = targets["heatmaps"], targets["weights"]
    assert heatmaps.shape == (1, 22, 56, 56) and heatmaps.dtype == np.float32
    assert weights.shape == (1, 22)
    assert weights[0, 5] == 0 and weights[0, 3] == 0 and weights[0, 0] == 1 and weights[0, 21] == 1
    assert heatmaps[0, 5].max() == 0 and heatmaps[0, 3].max() == 0
    np.testing.assert_allclose(heatmaps[0, 21], 1.0 - heatmaps[0, :21].max(axis=0), atol=1e-6)
    assert heatmaps[0, 0].max() > 0.9


def test_heatmap_confidence_drops_for_a_flat_map():
    codec = HeatmapCodec()
    flat = np.full((1, 22, 56, 56), 0.01)
    _, confidence = codec.decode(flat)
    assert confidence.max() < 0.01


def _two_peak_maps(codec: HeatmapCodec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hand keypoints clustered near (100, 100) px; keypoint 8's map is weak with two peaks:
    a slightly higher one far from the hand and a lower one amid the hand."""
    rng = np.random.default_rng(3)
    keypoints = 100.0 + rng.uniform(-25.0, 25.0, size=(1, 21, 2))
    near = np.array([110.0, 96.0])
    far = np.array([205.0, 20.0])
    keypoints[0, 8] = near
    heatmaps = codec.encode(keypoints, np.ones((1, 21)))["heatmaps"]
    weak = codec.encode(np.stack([near, far])[None], np.ones((1, 2)))["heatmaps"][0]
    heatmaps[0, 8] = 0.095 * weak[0] + 0.1 * weak[1]
    return heatmaps, keypoints, near, far


def test_heatmap_fallback_picks_the_peak_nearest_the_confident_keypoints():
    codec = HeatmapCodec()
    heatmaps, keypoints, near, far = _two_peak_maps(codec)

    plain, plain_confidence = HeatmapCodec(fallback_threshold=0.0).decode(heatmaps)
    assert np.linalg.norm(plain[0, 8] - far) < 1.0  # the arg-max is the far peak
    assert plain_confidence[0, 8] < codec.fallback_threshold

    decoded, confidence = codec.decode(heatmaps)
    assert np.linalg.norm(decoded[0, 8] - near) < 1.0
    assert confidence[0, 8] < codec.fallback_threshold  # still flagged as unsure
    others = np.arange(21) != 8
    np.testing.assert_allclose(decoded[0, others], plain[0, others])
    np.testing.assert_allclose(decoded[0, others], keypoints[0, others], atol=1e-3)


def test_heatmap_fallback_keeps_argmax_without_confident_keypoints():
    codec = HeatmapCodec()
    heatmaps, _, _, far = _two_peak_maps(codec)
    heatmaps[0, :21] *= 0.05  # nothing is confident any more
    decoded, _ = codec.decode(heatmaps)
    assert np.linalg.norm(decoded[0, 8] - far) < 1.0


def test_local_peaks_highest_first():
    heatmap = np.zeros((10, 10))
    heatmap[2, 3] = 0.5
    heatmap[7, 7] = 0.9
    heatmap[5, 1] = 0.2
    rows, cols = local_peaks(heatmap, 2)
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [(7, 7), (2, 3)]


def test_heatmap_decode_rejects_wrong_size():
    with pytest.raises(HeatmapCodecError):
        HeatmapCodec().decode(np.zeros((1, 22, 64, 64)))


def test_mirror_for_left_flips_image_and_keypoints():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, size=(224, 224, 3), dtype=np.uint8)
    keypoints = np.array([[10.0, 20.0], [200.0, 100.0]])
    flipped, mirrored = mirror_for_left(image, keypoints)
    assert mirrored is not None
    np.testing.assert_allclose(mirrored, [[213.0, 20.0], [23.0, 100.0]])
    for (u, v), (mu, _) in zip(keypoints.astype(int), mirrored.astype(int), strict=True):
        np.testing.assert_array_equal(flipped[v, mu], image[v, u])
    np.testing.assert_allclose(mirror_keypoints(mirrored, 224), keypoints)
    again, _ = mirror_for_left(flipped)
    np.testing.assert_array_equal(again, image)


# --- 1D heatmaps (seed 004) -----------------------------------------------------------


def _keypoints_3d(rng: np.random.Generator, n: int = 2) -> np.ndarray:
    uv = rng.uniform(20.0, 204.0, size=(n, 21, 2))
    z = rng.uniform(-0.12, 0.12, size=(n, 21, 1))
    return np.concatenate([uv, z], axis=-1)


def test_heatmap_1d_round_trip():
    rng = np.random.default_rng(0)
    codec = Heatmap1DCodec()
    keypoints = _keypoints_3d(rng)
    targets = codec.encode(keypoints, np.ones((2, 21)))
    assert targets["heatmaps"].shape == (2, 3, 21, 112)
    np.testing.assert_allclose(targets["heatmaps"].sum(-1), 1.0, atol=1e-5)
    decoded, confidence = codec.decode(np.log(targets["heatmaps"] + 1e-30))
    assert np.abs(decoded[..., :2] - keypoints[..., :2]).max() < 0.01  # pixels
    assert np.abs(decoded[..., 2] - keypoints[..., 2]).max() < 1e-4  # metres
    assert confidence.min() > 0.95
    from_maps, _ = codec.decode(targets["heatmaps"], logits=False)
    np.testing.assert_allclose(from_maps, decoded, atol=1e-6)


def test_heatmap_1d_bins_mapping():
    codec = Heatmap1DCodec(z_range_m=0.15)
    points = np.array([[-0.5, 223.5, 0.15], [111.5, 111.5, 0.0], [0.0, 2.0, -0.15]])
    bins = codec.to_bins(points)
    np.testing.assert_allclose(bins[0], [-0.5, 111.5, 111.5])  # outer edges
    np.testing.assert_allclose(bins[1], [55.5, 55.5, 55.5])  # centre
    np.testing.assert_allclose(codec.from_bins(bins), points, atol=1e-12)


def test_heatmap_1d_flat_logits_are_the_centre_with_low_confidence():
    codec = Heatmap1DCodec()
    decoded, confidence = codec.decode(np.zeros((1, 3, 21, 112)))
    np.testing.assert_allclose(decoded[0, 0], [111.5, 111.5, 0.0], atol=1e-9)
    assert confidence.max() < 0.1


def test_heatmap_1d_unlabelled_and_out_of_range():
    codec = Heatmap1DCodec()
    keypoints = _keypoints_3d(np.random.default_rng(2), n=1)
    keypoints[0, 4, 2] = 0.5  # beyond the depth range
    keypoints[0, 7] = np.nan
    visible = np.ones((1, 21))
    visible[0, 9] = 0
    targets = codec.encode(keypoints, visible)
    assert targets["coordinates"][0, 2, 4] == pytest.approx(111.0)  # clipped to the last bin
    assert targets["weights"][0, :, 7].sum() == 0 and targets["weights"][0, :, 9].sum() == 0
    assert np.isfinite(targets["heatmaps"]).all()


# --- PCA prior (seed 002) ---------------------------------------------------------------


def _poses_in_a_span(rng: np.random.Generator, n: int = 200, rank: int = 8) -> np.ndarray:
    mean = rng.normal(size=63)
    directions = np.linalg.qr(rng.normal(size=(63, rank)))[0].T
    coefficients = rng.normal(size=(n, rank)) * np.linspace(3.0, 0.5, rank)
    return (mean + coefficients @ directions).reshape(n, 21, 3)


def test_pca_of_many_poses_needs_no_poses_squared_memory():
    # The training set's PCA sees 50k poses; an N x N intermediate would be 20 GB.
    import tracemalloc

    poses = _poses_in_a_span(np.random.default_rng(1), n=8000)
    tracemalloc.start()
    try:
        PCAPrior.fit(poses, n_components=30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64e6  # the poses themselves are 4 MB; an 8000 x 8000 matrix is 512 MB


def test_pca_reconstructs_poses_in_its_span():
    rng = np.random.default_rng(0)
    poses = _poses_in_a_span(rng)
    prior = PCAPrior.fit(poses, n_components=30)
    assert prior.basis.shape == (30, 63) and prior.mean.shape == (63,)
    np.testing.assert_allclose(prior.basis @ prior.basis.T, np.eye(30), atol=1e-10)
    assert np.all(np.diff(prior.explained_variance) <= 1e-12)
    assert np.allclose(prior.explained_variance[8:], 0.0, atol=1e-20)
    coefficients = prior.project(poses)
    assert coefficients.shape == (200, 30)
    np.testing.assert_allclose(prior.reconstruct(coefficients), poses.reshape(200, 63), atol=1e-9)
    # Eight components suffice for a rank-8 training set.
    small = PCAPrior.fit(poses, n_components=8)
    np.testing.assert_allclose(
        small.reconstruct(small.project(poses)), poses.reshape(200, 63), atol=1e-9
    )


def test_pca_drops_what_is_outside_its_span():
    rng = np.random.default_rng(1)
    prior = PCAPrior.fit(_poses_in_a_span(rng), n_components=8)
    off = prior.mean + np.linalg.svd(prior.basis)[2][-1]  # orthogonal to the basis
    np.testing.assert_allclose(
        prior.reconstruct(prior.project(off[None]))[0], prior.mean, atol=1e-9
    )


def test_pca_save_load_round_trip(tmp_path):
    prior = PCAPrior.fit(_poses_in_a_span(np.random.default_rng(2)), n_components=12)
    path = tmp_path / "prior.npz"
    prior.save(path)
    loaded = PCAPrior.load(path)
    for key, value in prior.to_arrays().items():
        np.testing.assert_array_equal(loaded.to_arrays()[key], value)
    (tmp_path / "bad.npz").write_bytes(b"not a prior")
    with pytest.raises(PCAPriorError):
        PCAPrior.load(tmp_path / "bad.npz")


def test_pca_rejects_bad_component_count():
    with pytest.raises(PCAPriorError):
        PCAPrior.fit(np.zeros((4, 63)), n_components=64)


def test_pca_prior_codec_round_trip():
    rng = np.random.default_rng(4)
    joints = rng.uniform(-1.0, 1.0, size=(2, 21, 3))
    visible = np.ones((2, 21))
    visible[1, 3] = 0
    flat, weights = pca_prior.encode(joints, visible)
    assert flat.shape == weights.shape == (2, 63) and flat.dtype == np.float32
    assert weights[1, 9:12].sum() == 0 and weights[0].all()
    decoded, confidence = pca_prior.decode(flat)
    np.testing.assert_allclose(decoded[0], joints[0], atol=1e-6)
    np.testing.assert_array_equal(confidence, np.ones((2, 21)))
