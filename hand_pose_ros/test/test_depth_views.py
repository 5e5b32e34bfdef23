"""Test-time views of depth cube crops: every view maps its answer back to the crop's own
frame, so a model that reads the joints exactly off any view gives them back exactly."""

from __future__ import annotations

import numpy as np
import pytest

from hand_pose_ros.inference.depth_views import (
    VIEW_SETS,
    CropView,
    ViewError,
    predict_views,
    show,
    unshow,
    view_set,
)

S = 64


def _marked_crops(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Crops whose 21 joints are 3x3 squares at their pixels, each at its own depth (no two
    alike), so a joint can be found again by its depth after any turn or mirror."""
    joints = np.zeros((count, 21, 3))
    crops = np.ones((count, S, S), np.float32)
    for n in range(count):
        cells = rng.choice(64, 21, replace=False)  # an 8 x 8 grid of 5 px: squares apart
        u, v = 5 * (cells % 8) + 14, 5 * (cells // 8) + 14  # and well inside any turn
        joints[n, :, 0] = (u - (S - 1) / 2) / (S / 2)
        joints[n, :, 1] = (v - (S - 1) / 2) / (S / 2)
        joints[n, :, 2] = np.linspace(-0.8, 0.8, 21) + rng.uniform(-0.01, 0.01)
        for k in range(21):
            crops[n, v[k] - 1 : v[k] + 2, u[k] - 1 : u[k] + 2] = joints[n, k, 2]
    return crops, joints


class _ReadingModel:
    """A 'model' that finds each joint's square by its depth: exact up to pixel rounding."""

    def __init__(self, depths: np.ndarray) -> None:
        self.depths = depths  # (N, 21); views are batched view-major
        self.calls = 0

    def predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        joints = np.zeros((len(batch), 21, 3))
        for i, crop in enumerate(batch):
            for k, z in enumerate(self.depths[i % len(self.depths)]):
                v, u = np.nonzero(np.abs(crop - z) < 1e-6)
                assert u.size, f"joint {k} lost in view item {i}"
                joints[i, k] = ((u.mean() - (S - 1) / 2) / (S / 2),
                                (v.mean() - (S - 1) / 2) / (S / 2), z)  # fmt: skip
        return joints.reshape(len(batch), 63), np.ones((len(batch), 21))


@pytest.mark.parametrize("name", list(VIEW_SETS))
def test_every_view_set_gives_the_joints_back_in_the_crops_frame(name: str) -> None:
    crops, joints = _marked_crops(3, np.random.default_rng(0))
    model = _ReadingModel(joints[:, :, 2])
    found, confidence = predict_views(model, crops, view_set(name))
    assert model.calls == 1  # all views of all crops in one batch
    assert found.shape == (3, 21, 3) and confidence.shape == (3, 21)
    # A turned 3x3 square read back by its pixels: within 1.5 px (a pixel: 2 / S half-cubes).
    assert np.abs(found - joints).max() < 3.0 / S


def test_a_view_really_moves_the_crop_and_unshow_undoes_it() -> None:
    crops, joints = _marked_crops(1, np.random.default_rng(1))
    model = _ReadingModel(joints[:, :, 2])
    for view in (CropView(20.0), CropView(mirror=True), CropView(-10.0, mirror=True)):
        shown = show(crops, view)
        seen = model.predict(shown)[0].reshape(1, 21, 3)
        assert np.abs(seen - joints).max() > 0.05, view  # the view is not the crop
        assert np.abs(unshow(seen, view) - joints).max() < 3.0 / S, view
    # Mirrored: x negated, y kept. Turned +90 degrees: x -> y, y -> -x (x right, y down).
    mirrored = model.predict(show(crops, CropView(mirror=True)))[0].reshape(21, 3)
    assert np.allclose(mirrored[:, 0], -joints[0, :, 0], atol=1e-9)
    turned = model.predict(show(crops, CropView(90.0)))[0].reshape(21, 3)
    assert np.abs(turned[:, 1] - joints[0, :, 0]).max() < 3.0 / S
    assert np.abs(turned[:, 0] + joints[0, :, 1]).max() < 3.0 / S


def test_views_refuse_what_they_cannot_do() -> None:
    with pytest.raises(ViewError, match="known: single"):
        view_set("twelve")
    with pytest.raises(ViewError, match="at least one"):
        predict_views(_ReadingModel(np.zeros((1, 21))), np.ones((1, S, S)), ())
    joints, confidence = predict_views(_ReadingModel(np.zeros((1, 21))), np.ones((0, S, S)),
                                       VIEW_SETS["six"])  # fmt: skip
    assert joints.shape == (0, 21, 3) and confidence.shape == (0, 21)
