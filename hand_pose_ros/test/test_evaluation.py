"""Evaluation metrics of seed 002 and the report: hand-computed cases, JSON and files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from hand_pose_ros.evaluation import (
    PoseMetrics,
    joint_errors_mm,
    load_results,
    mean_pose_baseline,
    pose_metrics,
    write_report,
)

# A 3-4-5 direction: an offset of e mm along it moves x by 0.6 e and y by 0.8 e.
DIRECTION = np.array([0.6, 0.8, 0.0])


def _three_frames() -> tuple[np.ndarray, np.ndarray]:
    """Truth and prediction, 3 frames x 21 joints, with errors of 5 mm for every joint of frame
    0, 10 mm for frame 1 except index_tip (8) at 30 mm, and 20 mm for frame 2."""
    rng = np.random.default_rng(3)
    truth = np.array([0.0, 0.0, 0.5]) + rng.normal(scale=0.04, size=(3, 21, 3))
    errors_mm = np.array([[5.0] * 21, [10.0] * 21, [20.0] * 21])
    errors_mm[1, 8] = 30.0
    predicted = truth + errors_mm[..., None] / 1000.0 * DIRECTION
    return predicted, truth


def test_joint_errors_are_euclidean_mm_with_nan_for_unlabelled():
    predicted, truth = _three_frames()
    truth[2, 4] = np.nan
    valid = np.ones((3, 21), dtype=bool)
    valid[0, 0] = False
    predicted[1, 3] = np.nan
    errors = joint_errors_mm(predicted, truth, valid)
    assert errors.shape == (3, 21)
    np.testing.assert_allclose(errors[0, 1:], 5.0)
    np.testing.assert_allclose(errors[1, 8], 30.0)
    assert np.isnan(errors[2, 4]) and np.isnan(errors[0, 0])
    # A missing prediction of a labelled joint is a failure, not an unlabelled joint.
    assert errors[1, 3] == np.inf
    with pytest.raises(ValueError, match="valid"):
        joint_errors_mm(predicted, truth, valid[:, :20])


def test_pose_metrics_hand_computed():
    predicted, truth = _three_frames()
    m = pose_metrics(predicted, truth)
    assert (m.frames, m.frames_without_joints, m.missing_predictions) == (3, 0, 0)
    assert m.joints == tuple(range(21))
    assert m.mean_mm == pytest.approx((21 * 5 + 20 * 10 + 30 + 21 * 20) / 63)
    # 63 pooled errors sorted: 21 x 5, 20 x 10, 21 x 20, 1 x 30; the 32nd is 10.
    assert m.median_mm == pytest.approx(10.0)
    expected = np.full(21, 35.0 / 3)
    expected[8] = 55.0 / 3
    np.testing.assert_allclose(m.per_joint_mm, expected)


def test_curve_steps_at_the_worst_joint_error():
    predicted, truth = _three_frames()
    m = pose_metrics(predicted, truth)
    np.testing.assert_array_equal(m.thresholds_mm, np.arange(81.0))
    # Worst joint per frame: 5, 30 (index_tip alone fails frame 1) and 20 mm. An error equal
    # to the threshold counts as within it.
    curve = dict(zip(m.thresholds_mm, m.frames_within, strict=True))
    assert curve[4.0] == 0.0 and curve[5.0] == pytest.approx(1 / 3)
    assert curve[19.0] == pytest.approx(1 / 3) and curve[20.0] == pytest.approx(2 / 3)
    assert curve[29.0] == pytest.approx(2 / 3) and curve[30.0] == 1.0 and curve[80.0] == 1.0
    assert np.all(np.diff(m.frames_within) >= 0)
    assert m.fraction_within(20.0) == pytest.approx(2 / 3) and np.isnan(m.fraction_within(2.5))


def test_joint_subset():
    predicted, truth = _three_frames()
    m = pose_metrics(predicted, truth, joints=[0, 8], thresholds_mm=[10.0, 20.0, 30.0])
    assert m.joints == (0, 8)
    assert m.mean_mm == pytest.approx((5 + 5 + 10 + 30 + 20 + 20) / 6)
    assert np.isnan(m.per_joint_mm[[1, 2, 7, 9, 20]]).all()
    np.testing.assert_allclose(m.per_joint_mm[[0, 8]], [35.0 / 3, 55.0 / 3])
    np.testing.assert_allclose(m.frames_within, [1 / 3, 2 / 3, 1.0])
    # Without index_tip frame 1's worst joint is 10 mm.
    rest = pose_metrics(predicted, truth, joints=[j for j in range(21) if j != 8])
    assert rest.fraction_within(10.0) == pytest.approx(2 / 3)
    for bad in ([], [0, 0], [21], [-1]):
        with pytest.raises(ValueError, match="joints"):
            pose_metrics(predicted, truth, joints=bad)


def test_nan_truth_is_left_out_but_nan_prediction_fails():
    predicted, truth = _three_frames()
    truth[1, 8] = np.nan
    m = pose_metrics(predicted, truth)
    assert m.per_joint_mm[8] == pytest.approx((5 + 20) / 2)
    assert m.mean_mm == pytest.approx((21 * 5 + 20 * 10 + 21 * 20) / 62)
    assert m.fraction_within(10.0) == pytest.approx(2 / 3)
    assert m.missing_predictions == 0
    # The same joint unpredicted instead: frame 1 now fails every threshold.
    predicted, truth = _three_frames()
    predicted[1, 8] = np.nan
    m = pose_metrics(predicted, truth)
    assert m.missing_predictions == 1 and m.per_joint_mm[8] == np.inf
    assert m.mean_mm == np.inf and m.median_mm == pytest.approx(10.0)
    assert m.fraction_within(80.0) == pytest.approx(2 / 3)


def test_frames_without_valid_joints_are_counted_and_excluded():
    predicted, truth = _three_frames()
    valid = np.ones((3, 21), dtype=bool)
    valid[2] = False
    m = pose_metrics(predicted, truth, valid=valid)
    assert (m.frames, m.frames_without_joints) == (2, 1)
    assert m.fraction_within(5.0) == pytest.approx(1 / 2)
    assert m.fraction_within(30.0) == 1.0
    # Frame 0 is labelled only outside the evaluated joints: it is left out as well.
    truth[0, 1:] = np.nan
    m = pose_metrics(predicted, truth, valid=valid, joints=[1, 2])
    assert (m.frames, m.frames_without_joints) == (1, 2)
    valid[:] = False
    with pytest.raises(ValueError, match="no frame"):
        pose_metrics(predicted, truth, valid=valid)


def test_mean_pose_baseline():
    train = np.zeros((3, 21, 3))
    train[:, 8] = [[0.01, 0.0, 0.0], [0.03, 0.0, 0.0], [np.nan, np.nan, np.nan]]
    train[2, 5] = 0.09  # left out by train_valid
    train_valid = np.ones((3, 21), dtype=bool)
    train_valid[2, 5] = False
    train[:, 20] = np.nan  # never labelled
    centres = np.array([[0.1, 0.0, 0.5], [0.0, -0.1, 0.8]])
    predicted = mean_pose_baseline(train, centres, train_valid=train_valid)
    assert predicted.shape == (2, 21, 3)
    np.testing.assert_allclose(predicted[:, 8], centres + np.array([0.02, 0.0, 0.0]))
    np.testing.assert_allclose(predicted[:, 5], centres)
    assert np.isnan(predicted[:, 20]).all()
    # A test set that is the training mean exactly scores zero error.
    truth = predicted.copy()
    truth[:, 20] = np.nan
    assert pose_metrics(predicted, truth).mean_mm == pytest.approx(0.0)
    with pytest.raises(ValueError, match="test_centres"):
        mean_pose_baseline(train, centres[:, :2])


def _assert_same(a: PoseMetrics, b: PoseMetrics) -> None:
    assert (a.frames, a.frames_without_joints, a.joints, a.missing_predictions) == (
        b.frames, b.frames_without_joints, b.joints, b.missing_predictions,
    )  # fmt: skip
    np.testing.assert_equal([a.mean_mm, a.median_mm], [b.mean_mm, b.median_mm])
    for field in ("per_joint_mm", "thresholds_mm", "frames_within"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_json_round_trip_keeps_nan_and_inf():
    predicted, truth = _three_frames()
    predicted[0, 8] = np.nan
    valid = np.ones((3, 21), dtype=bool)
    valid[2] = False
    m = pose_metrics(predicted, truth, valid=valid, joints=[0, 4, 8])
    text = json.dumps(m.to_dict(), allow_nan=False)  # strict JSON: no NaN or Infinity tokens
    back = PoseMetrics.from_dict(json.loads(text))
    _assert_same(back, m)
    assert back.mean_mm == np.inf and np.isnan(back.per_joint_mm[1])


def test_write_report(tmp_path):
    predicted, truth = _three_frames()
    results = {
        "baseline": pose_metrics(truth + 0.05, truth, joints=range(1, 21)),
        "model": pose_metrics(predicted, truth),
    }
    paths = write_report(
        tmp_path / "out", results, title="Three frames", notes=["made-up data"], primary="model"
    )
    assert sorted(paths) == ["frames_within", "metrics", "per_joint", "report"]
    for key, name in [
        ("metrics", "metrics.json"), ("report", "report.md"),
        ("per_joint", "per_joint_error.png"), ("frames_within", "frames_within_threshold.png"),
    ]:  # fmt: skip
        assert paths[key] == tmp_path / "out" / name and paths[key].is_file()
    for key in ("per_joint", "frames_within"):
        image = cv2.imread(str(paths[key]))
        assert image is not None and image.shape[0] >= 400 and image.shape[1] >= 600
        assert image.std() > 10  # something is drawn, not a blank canvas

    loaded = load_results(tmp_path / "out")
    assert list(loaded) == ["model", "baseline"]  # the primary comes first
    for name, metrics in results.items():
        _assert_same(loaded[name], metrics)

    report = paths["report"].read_text(encoding="utf-8")
    assert "# Three frames" in report and "- made-up data" in report
    # model: 63 joints, mean 11.98 mm, median 10.00 mm, within 10/20/30 mm: 33.3/66.7/100 %.
    assert "| **model** | 3 | 11.98 | 10.00 | 33.3 | 66.7 | 100.0 | 100.0 | 100.0 | 100.0 |" in (
        report
    )
    # baseline: every joint off by sqrt(3) x 50 mm = 86.60 mm, the wrist not evaluated.
    assert "| baseline | 3 | 86.60 | 86.60 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |" in report
    assert "| wrist | 11.67 | – |" in report and "| index_tip | 18.33 | 86.60 |" in report
    assert "| **all joints** | 11.98 | 86.60 |" in report

    with pytest.raises(ValueError, match="primary"):
        write_report(tmp_path / "other", results, title="x", primary="missing")


def test_long_report_titles_are_wrapped_to_fit_the_plot():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from hand_pose_ros.evaluation.report import _wrapped_title

    title = "residual_attention_3d on the held-out synthetic set (seed 3): frames within threshold"

    def title_box(text: str) -> tuple[float, float, float]:
        figure = Figure(figsize=(6.4, 4.8), layout="constrained")  # the threshold plot's size
        FigureCanvasAgg(figure)
        drawn = figure.subplots().set_title(text)
        figure.canvas.draw()
        box = drawn.get_window_extent()
        return box.x0, box.x1, figure.bbox.width

    x0, x1, width = title_box(title)
    assert x0 < 0 or x1 > width  # as one line it runs off the figure: the case being fixed
    wrapped = _wrapped_title(title, Figure(figsize=(6.4, 4.8)))
    assert wrapped.replace("\n", " ") == title and "\n" in wrapped
    x0, x1, width = title_box(wrapped)
    assert 0 <= x0 and x1 <= width
