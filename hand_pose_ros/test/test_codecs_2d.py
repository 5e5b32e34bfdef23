"""Codecs of the 2D RGB models: regression, score maps, gesture classification."""

from __future__ import annotations

import numpy as np
import pytest

from hand_pose_ros.codecs import classification, regression, score_map
from hand_pose_ros.synth.gestures import GESTURES


def _random_keypoints(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    return rng.uniform(low, high, size=(n, 21, 2))  # sub-pixel positions


# --- regression -------------------------------------------------------------------------------


def test_regression_round_trip_is_exact_for_sub_pixel_keypoints():
    rng = np.random.default_rng(0)
    keypoints = _random_keypoints(rng, 4, 0.0, 223.0)
    visible = np.ones((4, 21), dtype=bool)
    coords, weights = regression.encode(keypoints, visible, (224, 224))
    assert coords.shape == (4, 21, 2) and coords.dtype == np.float32
    assert np.all((coords >= 0) & (coords <= 1)) and np.all(weights == 1)
    decoded, confidence = regression.decode(coords, (224, 224))
    np.testing.assert_allclose(decoded, keypoints, atol=1e-4)
    np.testing.assert_array_equal(confidence, 1.0)


def test_regression_normalises_u_by_width_and_v_by_height():
    coords, _ = regression.encode(np.array([[[100.0, 30.0]]]), np.array([[True]]), (60, 200))
    np.testing.assert_allclose(coords[0, 0], [0.5, 0.5])


def test_regression_invisible_and_missing_keypoints_get_zero_weight():
    keypoints = np.full((1, 21, 2), 50.0)
    keypoints[0, 3] = np.nan
    visible = np.ones((1, 21), dtype=bool)
    visible[0, 7] = False
    coords, weights = regression.encode(keypoints, visible, (224, 224))
    assert weights[0, 3] == 0 and weights[0, 7] == 0 and weights.sum() == 19
    assert np.all(np.isfinite(coords)) and np.all(coords[0, [3, 7]] == 0)


def test_regression_confidence_falls_off_outside_the_crop():
    coords = np.array([[[0.5, 0.5], [0.0, 1.0], [1.02, 0.5], [1.05, 0.5], [-0.2, 0.5]]])
    _, confidence = regression.decode(coords, (224, 224))
    assert confidence[0, 0] == 1.0 and confidence[0, 1] == 1.0
    assert 1.0 > confidence[0, 2] > confidence[0, 3] > confidence[0, 4] >= 0.0
    np.testing.assert_allclose(confidence[0, 3], np.exp(-0.5), rtol=1e-9)  # one fall-off width
    _, confidence = regression.decode(np.array([[[np.nan, 0.5]]]), (224, 224))
    assert confidence[0, 0] == 0.0


# --- score maps -------------------------------------------------------------------------------


def test_score_map_coordinates_align_pixel_centres():
    # Input pixel centre 3.5 (between pixels 3 and 4) of a stride-8 map is the centre of map
    # pixel 0; map pixel x covers input pixels 8x .. 8x + 7.
    points = np.array([[3.5, 11.5], [0.0, 255.0]])
    mapped = score_map.to_map_coordinates(points, (256, 256), (32, 32))
    np.testing.assert_allclose(mapped[0], [0.0, 1.0])
    np.testing.assert_allclose(score_map.to_input_coordinates(mapped, (256, 256), (32, 32)), points)


def test_score_map_encode_normalised_maps_and_invisible_zero_maps():
    rng = np.random.default_rng(1)
    keypoints = _random_keypoints(rng, 3, 0.0, 255.0)
    visible = rng.random((3, 21)) > 0.2
    keypoints[0, 5] = [300.0, 40.0]  # outside the crop
    visible[0, 5] = True
    maps, weights = score_map.encode(keypoints, visible, (256, 256), (32, 32))
    assert maps.shape == (3, 21, 32, 32) and maps.dtype == np.float32
    sums = maps.sum(axis=(2, 3))
    expected = visible.copy()
    expected[0, 5] = False
    np.testing.assert_array_equal(weights, expected.astype(np.float32))
    np.testing.assert_allclose(sums[expected], 1.0, rtol=1e-5)
    assert np.all(maps[~expected] == 0)


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.0])
def test_score_map_argmax_round_trip_is_sub_pixel_exact(sigma):
    rng = np.random.default_rng(2)
    keypoints = _random_keypoints(rng, 4, 8.0, 247.0)  # peak not on the map border
    visible = np.ones((4, 21), dtype=bool)
    maps, _ = score_map.encode(keypoints, visible, (256, 256), (32, 32), sigma=sigma)
    decoded, confidence = score_map.decode(maps, (256, 256), sigma=sigma)
    np.testing.assert_allclose(decoded, keypoints, atol=1e-3)  # input pixels
    assert np.all((confidence > 0.9) & (confidence <= 1.0))


def test_score_map_soft_argmax_round_trip_away_from_the_border():
    rng = np.random.default_rng(3)
    keypoints = _random_keypoints(rng, 2, 40.0, 215.0)  # >= 4 sigma from the border
    maps, _ = score_map.encode(keypoints, np.ones((2, 21), bool), (256, 256), (32, 32))
    decoded, _ = score_map.decode(maps, (256, 256), method="soft_argmax")
    np.testing.assert_allclose(decoded, keypoints, atol=0.05)


def test_score_map_decodes_border_peaks_within_half_a_map_pixel():
    keypoints = np.array([[[0.0, 0.0], [255.0, 255.0], [1.0, 128.0]]])
    maps, _ = score_map.encode(keypoints, np.ones((1, 3), bool), (256, 256), (32, 32))
    decoded, _ = score_map.decode(maps, (256, 256))
    assert np.all(np.abs(decoded - keypoints) <= 4.0 + 1e-9)  # half a stride-8 pixel


def test_score_map_confidence_ranks_peaked_over_flat_maps():
    maps = np.zeros((1, 3, 32, 32))
    maps[0, 1] = 1.0  # uniform: its argmax is the first pixel, a corner
    maps[0, 2] = 1.0
    maps[0, 2, 10, 20] = 1e5  # a sharp peak over a flat floor
    keypoints, confidence = score_map.decode(maps, (256, 256))
    assert confidence[0, 0] == 0.0  # an all-zero (invisible) map
    np.testing.assert_allclose(confidence[0, 1], 9 / 1024)  # the 5 x 5 window, cut by the corner
    assert confidence[0, 2] > 0.9
    np.testing.assert_allclose(keypoints[0, 2], [20 * 8 + 3.5, 10 * 8 + 3.5], atol=0.5)
    assert np.all(np.isfinite(keypoints))


def test_spatial_softmax_of_log_maps_gives_the_maps_back():
    rng = np.random.default_rng(4)
    keypoints = _random_keypoints(rng, 1, 20.0, 230.0)
    maps, _ = score_map.encode(keypoints, np.ones((1, 21), bool), (256, 256), (32, 32))
    recovered = score_map.spatial_softmax(np.log(np.maximum(maps, 1e-30)) + 3.0)
    np.testing.assert_allclose(recovered, maps, atol=1e-6)


# --- classification ---------------------------------------------------------------------------


def test_gesture_classes_are_the_synthetic_vocabulary_plus_none():
    assert classification.GESTURE_CLASSES == (*GESTURES, "none")
    assert len(classification.GESTURE_CLASSES) == 13


def test_classification_encode_names_and_indices():
    labels = classification.encode(["fist", 0, "none", np.int64(4)])
    np.testing.assert_array_equal(labels, [1, 0, 12, 4])
    assert labels.dtype == np.int64
    assert classification.names(labels) == ["fist", "open_palm", "none", "ok"]
    with pytest.raises(classification.ClassificationError):
        classification.encode(["wave"])
    with pytest.raises(classification.ClassificationError):
        classification.encode([13])


def test_classification_decode_picks_the_most_probable_class():
    logits = np.array([[0.0, 5.0, 1.0], [2.0, 2.0, 2.0]])
    indices, confidence = classification.decode(logits)
    np.testing.assert_array_equal(indices, [1, 0])
    np.testing.assert_allclose(confidence[0], np.exp(5) / (1 + np.exp(5) + np.e))
    np.testing.assert_allclose(confidence[1], 1 / 3)
    round_trip, _ = classification.decode(np.eye(13)[classification.encode(["pinch", "rock"])])
    assert classification.names(round_trip) == ["pinch", "rock"]
