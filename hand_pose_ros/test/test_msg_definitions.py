"""The .msg files are the single source of truth: the core's constants must agree with them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hand_pose_ros import msg_types
from hand_pose_ros.hand import Handedness, KeypointStatus
from hand_pose_ros.skeleton import KEYPOINT_NAMES, NUM_KEYPOINTS


def _constants(typestore, msgtype: str) -> dict[str, int]:
    consts, _fields = typestore.fielddefs[msgtype]
    return {name: value for name, _type, value in consts}


def test_keypoint_status_constants_match_enum(typestore):
    consts = _constants(typestore, "hand_pose_msgs/msg/Keypoint")
    assert consts == {status.name: status.value for status in KeypointStatus}


def test_hand_index_constants_match_skeleton_order(typestore):
    consts = _constants(typestore, "hand_pose_msgs/msg/Hand")
    indices = {name.lower(): consts[name] for name in consts if name.upper() == name}
    for index, name in enumerate(KEYPOINT_NAMES):
        assert indices[name] == index, name
    assert consts["NUM_KEYPOINTS"] == NUM_KEYPOINTS
    for side in Handedness:
        assert consts[side.name] == side.value


def test_hand_holds_exactly_21_keypoints(typestore):
    _consts, fields = typestore.fielddefs["hand_pose_msgs/msg/Hand"]
    (_nodetype, ((_sub, subtype), length)) = dict(fields)["keypoints"]
    assert subtype == "hand_pose_msgs/msg/Keypoint"
    assert length == NUM_KEYPOINTS


def test_every_field_is_documented():
    """Each field line is preceded by a comment block (the sensor_msgs way)."""
    folder = msg_types.find_msg_dir()
    for name in msg_types.MESSAGE_NAMES:
        lines = (folder / f"{name}.msg").read_text().splitlines()
        for number, line in enumerate(lines):
            stripped = line.split("#")[0].strip()
            if not stripped or "=" in stripped:
                continue  # blank, comment or constant
            previous = lines[number - 1].strip()
            assert previous.startswith("#") or lines[number - 1].split("#")[0].strip(), (
                f"{name}.msg line {number + 1} ({stripped!r}) has no comment above it"
            )


def test_msgs_dir_override(monkeypatch, tmp_path):
    source = msg_types.find_msg_dir()
    for name in msg_types.MESSAGE_NAMES:
        (tmp_path / f"{name}.msg").write_text((source / f"{name}.msg").read_text())
    monkeypatch.setenv(msg_types.MSGS_DIR_ENV, str(tmp_path))
    assert msg_types.find_msg_dir() == tmp_path


def test_missing_msgs_names_every_place_looked(monkeypatch, tmp_path):
    monkeypatch.setattr(msg_types, "msg_search_path", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(msg_types.MessageDefinitionError, match=re.escape(str(tmp_path / "b"))):
        msg_types.find_msg_dir()


def test_unknown_distro_is_rejected():
    with pytest.raises(ValueError, match="unknown ROS distro 'noetic'"):
        msg_types.load_typestore("noetic")


def test_cmakelists_generates_every_msg_file():
    root = Path(__file__).resolve().parents[2] / "hand_pose_msgs"
    cmake = (root / "CMakeLists.txt").read_text()
    on_disk = sorted(p.name for p in (root / "msg").glob("*.msg"))
    listed = sorted(re.findall(r'"msg/(\w+\.msg)"', cmake))
    assert listed == on_disk
