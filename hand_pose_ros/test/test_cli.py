"""The hand-pose command, run in-process on bags the test writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hand_pose_ros import cli, topics
from hand_pose_ros.io.bag_writer import BagWriter, camera_info_message, image_message

T0 = 1_700_000_000_000_000_000
PERIOD = 33_333_333


@pytest.fixture
def rgbd_bag(tmp_path: Path) -> Path:
    """Five colour frames at 30 Hz; the third has no depth."""
    path = tmp_path / "rgbd"
    with BagWriter(path, storage="mcap") as bag:
        ts = bag.typestore
        bag.add_topic(topics.COLOR_TOPIC, "sensor_msgs/msg/Image")
        bag.add_topic(topics.DEPTH_TOPIC, "sensor_msgs/msg/Image")
        bag.add_topic(topics.CAMERA_INFO_TOPIC, "sensor_msgs/msg/CameraInfo")
        for i in range(5):
            stamp = T0 + i * PERIOD
            bag.write(topics.CAMERA_INFO_TOPIC, stamp, camera_info_message(
                ts, fx=615.0, fy=615.0, cx=31.5, cy=23.5, width=64, height=48,
                frame_id="cam", stamp_ns=stamp))  # fmt: skip
            rgb = np.full((48, 64, 3), i, dtype=np.uint8)
            bag.write(topics.COLOR_TOPIC, stamp, image_message(ts, rgb, "rgb8", stamp, "cam"))
            if i != 2:
                depth = np.full((48, 64), 600, dtype=np.uint16)
                msg = image_message(ts, depth, "16UC1", stamp + 2_000_000, "cam")
                bag.write(topics.DEPTH_TOPIC, stamp + 2_000_000, msg)
    return path


def test_info_reports_frames_and_pairing(rgbd_bag: Path, capsys) -> None:
    assert cli.main(["info", str(rgbd_bag)]) == 0
    out = capsys.readouterr().out
    assert "colour frames: 5 (64x48)" in out
    assert "with depth: 4, without depth: 1" in out
    assert f"{topics.DEPTH_TOPIC}  [sensor_msgs/msg/Image]" in out


def test_info_names_a_missing_topic(rgbd_bag: Path, capsys) -> None:
    assert cli.main(["info", str(rgbd_bag), "--color-topic", "/nope"]) == 1
    err = capsys.readouterr().err
    assert "/nope" in err and topics.COLOR_TOPIC in err


def test_info_rejects_a_bad_slop(rgbd_bag: Path, capsys) -> None:
    assert cli.main(["info", str(rgbd_bag), "--slop-ms", "0"]) == 1
    assert "--slop-ms must be > 0" in capsys.readouterr().err


def test_synth_config_prints_a_loadable_complete_config(tmp_path: Path, capsys) -> None:
    from hand_pose_ros.synth.config import SynthConfig

    assert cli.main(["synth", "config"]) == 0
    path = tmp_path / "synth.yaml"
    path.write_text(capsys.readouterr().out)
    assert SynthConfig.from_yaml(path) == SynthConfig()


def test_synth_crops_writes_a_dataset_and_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    from hand_pose_ros.synth.shards import load_dataset

    overrides = tmp_path / "near.yaml"
    overrides.write_text("placement:\n  distance_m: [0.3, 0.5]\ncrop:\n  views_per_scene: 2\n")
    out = tmp_path / "crops"
    args = ["synth", "crops", "--out", str(out), "--count", "4", "--kinds", "depth",
            "--config", str(overrides), "--seed", "1"]  # fmt: skip
    assert cli.main(args) == 0
    data = load_dataset(out)
    assert data["depth"].shape == (4, 128, 128)
    assert (data["cube_center"][:, 2] < 0.56).all()  # the override took effect
    assert cli.main(args) == 1
    assert "is not empty" in capsys.readouterr().err


def test_synth_names_a_missing_or_bad_config(tmp_path: Path, capsys) -> None:
    assert cli.main(["synth", "sheet", "--config", str(tmp_path / "none.yaml")]) == 1
    assert "config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("scene:\n  hands: 3\n")
    assert cli.main(["synth", "crops", "--out", str(tmp_path / "x"), "--count", "1",
                     "--config", str(bad)]) == 1  # fmt: skip
    assert "unknown field(s) ['hands']" in capsys.readouterr().err
