"""MSRA15, ICVL and NYU loaders on tiny fixtures written here in each dataset's own format.

Each fixture puts every dataset joint on its own pixel with its own depth, draws a small
depth patch there, and stores the joint the way the dataset does (mm, y up, negative z,
pixel + depth). The loaders must give the patches back in metres and the joints back in
optical-frame metres that project onto those patches, in the project's keypoint order.
The dataset joint orders below are spelled out from the datasets' own documentation, not
taken from the loaders.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from hand_pose_ros.datasets import (
    DatasetError,
    IcvlDataset,
    MsraDataset,
    NyuDataset,
    open_depth_dataset,
)
from hand_pose_ros.datasets.frames import DepthFrame
from hand_pose_ros.datasets.nyu import NYU_EVALUATION_JOINTS, NYU_EVALUATION_KEYPOINTS
from hand_pose_ros.geometry import CameraModel

# Dataset indices of a few joints, from each dataset's documented order.
MSRA = {"wrist": 0, "index_tip": 4, "pinky_tip": 16, "thumb_base": 17, "thumb_tip": 20}
ICVL = {"palm": 0, "thumb_root": 1, "thumb_tip": 3, "index_root": 4, "index_tip": 6}
NYU = {"pinky_tip": 0, "pinky_pip": 3, "index_tip": 18, "thumb_tip": 24, "thumb_mcp": 27}
PATCH = 1  # half-side of the depth patch drawn at each joint, pixels


def _layout(count: int, origin: tuple[int, int], frame: int) -> np.ndarray:
    """shape (count, 3): a distinct (u, v, depth mm) per joint, shifted per frame."""
    j = np.arange(count)
    u = origin[0] + 7 * (j % 6) + 2 * frame
    v = origin[1] + 7 * (j // 6) + frame
    return np.stack([u, v, 400.0 + 3.0 * j + 10.0 * frame], axis=1).astype(np.float64)


def _optical(uvd: np.ndarray, camera: CameraModel) -> np.ndarray:
    """Pinhole back-projection of (u, v, depth mm) -> optical-frame metres (y down)."""
    z = uvd[:, 2] / 1000.0
    x = (uvd[:, 0] - camera.cx) * z / camera.fx
    y = (uvd[:, 1] - camera.cy) * z / camera.fy
    return np.stack([x, y, z], axis=1)


def _render_mm(uvd: np.ndarray, camera: CameraModel) -> np.ndarray:
    depth = np.zeros((camera.height, camera.width), np.float64)
    for u, v, d in uvd:
        depth[int(v) - PATCH : int(v) + PATCH + 1, int(u) - PATCH : int(u) + PATCH + 1] = d
    return depth


def _check_frame(frame: DepthFrame, uvd: np.ndarray, to_project: dict[int, int]) -> None:
    """Joints where the fixture drew them, in metres, at the expected project indices."""
    camera = frame.camera
    assert frame.depth_m.dtype == np.float32
    assert frame.depth_m.shape == (camera.height, camera.width)
    assert frame.joints_xyz.shape == (21, 3)
    expected = _optical(uvd, camera)
    for dataset_index, project_index in to_project.items():
        actual = frame.joints_xyz[project_index]
        np.testing.assert_allclose(actual, expected[dataset_index], atol=1e-9)
    valid = np.isfinite(frame.joints_xyz).all(axis=1)
    uv = camera.project(frame.joints_xyz[valid])
    columns, rows = np.rint(uv).astype(int).T
    np.testing.assert_allclose(frame.depth_m[rows, columns], frame.joints_xyz[valid, 2], atol=1e-6)


# ----------------------------------------------------------------------------------- MSRA


MSRA_BOX = (120, 80, 200, 140)  # left, top, right, bottom (exclusive)
MSRA_WALL_MM = 700.0  # what the fixture's box shows behind the hand


def _write_msra_gesture(folder: Path, frames: int) -> None:
    folder.mkdir(parents=True)
    camera = MsraDataset.camera
    left, top, right, bottom = MSRA_BOX
    lines = [str(frames)]
    for i in range(frames):
        uvd = _layout(21, (140, 100), i)
        depth = _render_mm(uvd, camera)[top:bottom, left:right]
        depth[depth == 0] = MSRA_WALL_MM
        depth[2, 2] = 0.0  # a hole: pixel (122, 82)
        header = np.array([320, 240, left, top, right, bottom], "<u4").tobytes()
        (folder / f"{i:06d}_depth.bin").write_bytes(header + depth.astype("<f4").tobytes())
        xyz_mm = _optical(uvd, camera) * 1000.0 * [1.0, -1.0, -1.0]  # y up, z negative
        lines.append(" ".join(f"{value:.6f}" for value in xyz_mm.ravel()))
    (folder / "joint.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def msra_root(tmp_path: Path) -> Path:
    root = tmp_path / "cvpr15_MSRAHandGestureDB"
    _write_msra_gesture(root / "P0" / "1", 2)
    _write_msra_gesture(root / "P0" / "TIP", 1)
    _write_msra_gesture(root / "P1" / "1", 2)
    return root


def test_msra_depth_box(msra_root: Path):
    frame = MsraDataset(msra_root)[1]
    assert np.isfinite(frame.joints_xyz).all()  # MSRA labels all 21 keypoints
    wall = MSRA_WALL_MM / 1000.0
    # The box's last column and row are inside it, the next ones outside: no depth there.
    assert frame.depth_m[100, 199] == pytest.approx(wall) and np.isnan(frame.depth_m[100, 200])
    assert frame.depth_m[139, 150] == pytest.approx(wall) and np.isnan(frame.depth_m[140, 150])
    assert frame.depth_m[80, 120] == pytest.approx(wall) and np.isnan(frame.depth_m[79, 119])
    assert np.isnan(frame.depth_m[82, 122])  # 0 mm inside the box
    assert np.isfinite(frame.depth_m).sum() == 80 * 60 - 1


def test_msra_subjects_gestures_and_indexing(msra_root: Path):
    assert len(MsraDataset(msra_root, subjects=["P1"])) == 2
    assert len(MsraDataset(msra_root, subjects=[0], gestures=["TIP"])) == 1
    dataset = MsraDataset(msra_root)
    assert len(dataset) == 5
    assert dataset[-1].name == "P1/1/000001_depth.bin"
    assert [f.name for f in dataset][2] == "P0/TIP/000000_depth.bin"
    with pytest.raises(IndexError):
        dataset[5]
    restored = pickle.loads(pickle.dumps(dataset))  # DataLoader workers get a copy
    np.testing.assert_array_equal(restored[0].joints_xyz, dataset[0].joints_xyz)
    with pytest.raises(DatasetError, match="gesture 'Y'"):
        MsraDataset(msra_root, gestures=["Y"])


def test_msra_corrupt_files(msra_root: Path):
    path = msra_root / "P0" / "1" / "000000_depth.bin"
    path.write_bytes(path.read_bytes()[:-10])
    dataset = MsraDataset(msra_root)  # lazy: the truncated file is not read yet
    with pytest.raises(DatasetError, match="truncated"):
        dataset[0]
    header = np.array([640, 480, 0, 0, 1, 1], "<u4").tobytes()
    path.write_bytes(header + np.zeros(1, "<f4").tobytes())
    with pytest.raises(DatasetError, match="image size 640x480"):
        dataset[0]
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(DatasetError, match="header"):
        dataset[0]


def test_msra_joint_file_must_match_frames(msra_root: Path):
    joint_file = msra_root / "P1" / "1" / "joint.txt"
    lines = joint_file.read_text().splitlines()
    joint_file.write_text("\n".join(lines[:2]))  # declares 2 frames, holds 1
    with pytest.raises(DatasetError, match="declares 2 frames but has 1"):
        MsraDataset(msra_root)
    joint_file.write_text("\n".join(["1", lines[1]]))  # consistent, but 2 depth files
    with pytest.raises(DatasetError, match=r"2 depth files but joint\.txt has 1"):
        MsraDataset(msra_root)
    joint_file.write_text("\n".join(["1", "1 2 3"]))
    with pytest.raises(DatasetError, match="expected 63"):
        MsraDataset(msra_root)
    with pytest.raises(DatasetError, match="does not exist"):
        MsraDataset(msra_root / "missing")


# ----------------------------------------------------------------------------------- ICVL


def _write_icvl(split_folder: Path, labels_name: str, sequence: str, frames: int) -> None:
    camera = IcvlDataset.camera
    lines = []
    for i in range(frames):
        uvd = _layout(16, (150, 90), i)
        depth = _render_mm(uvd, camera).astype(np.uint16)
        depth[5, 5] = 32001  # the sensor's "no depth"
        name = f"{sequence}/image_{i:04d}.png"
        (split_folder / "Depth" / sequence).mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(split_folder / "Depth" / name), depth)
        lines.append(name + " " + " ".join(f"{value:.4f}" for value in uvd.ravel()))
    (split_folder / labels_name).write_text("\n".join(lines) + "\n")


@pytest.fixture
def icvl_root(tmp_path: Path) -> Path:
    root = tmp_path / "ICVL"
    _write_icvl(root / "Training", "labels.txt", "201403121135", 2)
    _write_icvl(root / "Testing", "test_seq_1.txt", "test_seq_1", 3)
    return root


def test_icvl_unlabelled_keypoints_and_invalid_depth(icvl_root: Path):
    dataset = IcvlDataset(icvl_root)
    frame = dataset[1]
    # The palm centre is not the wrist; the DIPs and the thumb IP are not labelled.
    assert np.isnan(frame.joints_xyz[[0, 3, 7, 11, 15, 19]]).all()
    assert np.isfinite(frame.joints_xyz[list(dataset.evaluation_joints)]).all()
    assert np.isnan(frame.depth_m[5, 5]) and np.isnan(frame.depth_m[0, 0])


def test_icvl_label_files(icvl_root: Path):
    assert len(IcvlDataset(icvl_root, labels="test_seq_1")) == 3
    assert len(IcvlDataset(icvl_root, labels="test_seq_1.txt")) == 3
    assert IcvlDataset(icvl_root / "Testing", labels="test_seq_1.txt")[2].name == (
        "test_seq_1/image_0002.png"
    )
    with pytest.raises(DatasetError, match="test_seq_2"):
        IcvlDataset(icvl_root, labels="test_seq_2")


def test_icvl_corrupt_files(icvl_root: Path):
    image = icvl_root / "Training" / "Depth" / "201403121135" / "image_0000.png"
    cv2.imwrite(str(image), np.zeros((240, 320, 3), np.uint8))
    dataset = IcvlDataset(icvl_root)
    with pytest.raises(DatasetError, match="16-bit single-channel"):
        dataset[0]
    cv2.imwrite(str(image), np.zeros((120, 160), np.uint16))
    with pytest.raises(DatasetError, match="expected 320x240"):
        dataset[0]
    image.write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="cannot be decoded"):
        dataset[0]
    labels = icvl_root / "Testing" / "test_seq_1.txt"
    labels.write_text(labels.read_text().replace(" 400.0000", "", 1))
    with pytest.raises(DatasetError, match="label 1 has 48 fields"):
        IcvlDataset(icvl_root, labels="test_seq_1")


# ------------------------------------------------------------------------------------ NYU


def _write_nyu_split(folder: Path, frames: int) -> None:
    camera = NyuDataset.camera
    folder.mkdir(parents=True)
    xyz_mm = np.zeros((3, frames, 36, 3))
    uvd_all = np.zeros((3, frames, 36, 3))
    for i in range(frames):
        uvd = _layout(36, (300, 220), i)
        uvd_all[0, i] = uvd
        xyz_mm[0, i] = _optical(uvd, camera) * 1000.0 * [1.0, -1.0, 1.0]  # y up
        depth = _render_mm(uvd, camera).astype(np.uint16)
        bgr = np.zeros((camera.height, camera.width, 3), np.uint8)
        bgr[:, :, 0] = depth & 0xFF  # B: low byte
        bgr[:, :, 1] = depth >> 8  # G: high byte
        bgr[:, :, 2] = 77  # R: carries nothing
        assert cv2.imwrite(str(folder / f"depth_1_{i + 1:07d}.png"), bgr)
    names = np.array([[f"J{i}" for i in range(36)]], dtype=object)
    labels = {"joint_xyz": xyz_mm, "joint_uvd": uvd_all, "joint_names": names}
    savemat(folder / "joint_data.mat", labels)


@pytest.fixture
def nyu_root(tmp_path: Path) -> Path:
    root = tmp_path / "nyu_hand_dataset_v2" / "dataset"
    _write_nyu_split(root / "train", 2)
    _write_nyu_split(root / "test", 3)
    return root


def test_nyu_no_wrist_and_no_depth(nyu_root: Path):
    frame = NyuDataset(nyu_root, split="test")[0]
    assert np.isnan(frame.joints_xyz[0]).all()  # no NYU point is the wrist
    assert np.isnan(frame.depth_m[0, 0])  # 0 mm, even with R set


def test_evaluation_subsets_and_cubes():
    # NYU's 14 points: 5 tips, 4 PIPs, thumb IP and MCP (project keypoints) + 3 palm points.
    assert dict(zip(NYU_EVALUATION_JOINTS, NYU_EVALUATION_KEYPOINTS, strict=True)) == {
        0: 20, 3: 18, 6: 16, 9: 14, 12: 12, 15: 10, 18: 8, 21: 6, 24: 4, 25: 3, 27: 2,
        30: None, 31: None, 32: None,
    }  # fmt: skip
    assert NyuDataset.evaluation_joints == (2, 3, 4, 6, 8, 10, 12, 14, 16, 18, 20)
    assert MsraDataset.evaluation_joints == tuple(range(21))
    assert IcvlDataset.evaluation_joints == (1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 16, 17, 18, 20)
    assert (MsraDataset.cube_m, IcvlDataset.cube_m, NyuDataset.cube_m) == (0.2, 0.25, 0.3)


def test_nyu_corrupt_files(nyu_root: Path, tmp_path: Path):
    image = nyu_root / "train" / "depth_1_0000001.png"
    cv2.imwrite(str(image), np.zeros((480, 640), np.uint16))
    with pytest.raises(DatasetError, match="8-bit RGB"):
        NyuDataset(nyu_root)[0]
    with pytest.raises(DatasetError, match="kinect 4 requested"):
        NyuDataset(nyu_root, kinect=4)
    with pytest.raises(DatasetError, match="split 'val'"):
        NyuDataset(nyu_root, split="val")
    savemat(nyu_root / "train" / "joint_data.mat", {"joint_xyz": np.zeros((1, 2, 14, 3))})
    with pytest.raises(DatasetError, match=r"shape \(1, 2, 14, 3\)"):
        NyuDataset(nyu_root)
    (nyu_root / "train" / "joint_data.mat").write_bytes(b"garbage" * 50)
    with pytest.raises(DatasetError, match="not a readable MATLAB file"):
        NyuDataset(nyu_root)
    with pytest.raises(DatasetError, match="NYU test split"):
        NyuDataset(tmp_path / "nyu_hand_dataset_v2", split="test")


# ------------------------------------------------------------------------ all three


# kind -> (frame, its name, dataset joints, fixture origin, dataset joint -> project keypoint)
CASES = {
    "msra": (1, "P0/1/000001_depth.bin", 21, (140, 100), {
        MSRA["wrist"]: 0, MSRA["thumb_base"]: 1, MSRA["thumb_tip"]: 4, MSRA["index_tip"]: 8,
        MSRA["pinky_tip"]: 20}),
    "icvl": (1, "201403121135/image_0001.png", 16, (150, 90), {
        ICVL["thumb_root"]: 1, ICVL["thumb_tip"]: 4, ICVL["index_root"]: 5,
        ICVL["index_tip"]: 8}),
    "nyu": (2, "test/depth_1_0000003.png", 36, (300, 220), {
        NYU["pinky_tip"]: 20, NYU["pinky_pip"]: 18, NYU["index_tip"]: 8, NYU["thumb_tip"]: 4,
        NYU["thumb_mcp"]: 2}),
}  # fmt: skip
OPEN = {"msra": MsraDataset, "icvl": IcvlDataset, "nyu": lambda root: NyuDataset(root, "test")}


@pytest.mark.parametrize("kind", CASES)
def test_joints_in_metres_project_onto_their_depth_patches(kind: str, request):
    index, name, count, origin, to_project = CASES[kind]
    dataset = OPEN[kind](request.getfixturevalue(f"{kind}_root"))
    frame = dataset[index]
    assert frame.name == name and frame.camera == dataset.camera
    _check_frame(frame, _layout(count, origin, index), to_project)


# ---------------------------------------------------------------------------------- specs


def test_open_depth_dataset_parses_specs(msra_root: Path, icvl_root: Path, nyu_root: Path):
    assert isinstance(open_depth_dataset(f"msra:{msra_root}"), MsraDataset)
    assert len(open_depth_dataset(f"msra:{msra_root}:P0")) == 3
    assert len(open_depth_dataset(f"icvl:{icvl_root}")) == 2
    assert len(open_depth_dataset(f"icvl:{icvl_root}/Testing/test_seq_1.txt")) == 3
    assert len(open_depth_dataset(f"nyu:{nyu_root}")) == 2
    nyu_test = open_depth_dataset(f"NYU:{nyu_root}:test")
    assert isinstance(nyu_test, NyuDataset) and len(nyu_test) == 3
    with pytest.raises(DatasetError, match="known kinds are icvl, msra, nyu"):
        open_depth_dataset(f"hands2017:{msra_root}")
    with pytest.raises(DatasetError, match="expected KIND:PATH"):
        open_depth_dataset(str(msra_root))


def test_cameras_are_the_published_intrinsics():
    published = {
        MsraDataset: (241.42, 241.42, 160, 120, 320, 240),
        IcvlDataset: (240.99, 240.96, 160, 120, 320, 240),
        NyuDataset: (588.036865, 587.075073, 320, 240, 640, 480),
    }
    for dataset, (fx, fy, cx, cy, width, height) in published.items():
        camera = dataset.camera
        assert (camera.fx, camera.fy, camera.cx, camera.cy) == (fx, fy, cx, cy)
        assert (camera.width, camera.height) == (width, height)
