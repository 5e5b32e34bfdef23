"""Bad input gets a clear error; good input flows bag -> core -> messages -> bag intact."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from hand_pose_ros import messages, topics
from hand_pose_ros.geometry import lift_keypoints
from hand_pose_ros.hand import HandFrame, HandResult, KeypointStatus
from hand_pose_ros.io.bag_reader import open_rgbd_bag
from hand_pose_ros.io.bag_writer import BagWriter, camera_info_message, image_message
from hand_pose_ros.msg_types import load_typestore, message_classes
from hand_pose_ros.rgbd import InputError, prepare_input

H, W = 48, 64
T0 = 1_700_000_000_000_000_000


def _info(width: int = W, height: int = H, fx: float = 60.0):
    return SimpleNamespace(
        k=[fx, 0.0, (width - 1) / 2, 0.0, fx, (height - 1) / 2, 0.0, 0.0, 1.0],
        d=[0.0] * 5, distortion_model="plumb_bob", width=width, height=height,
        binning_x=0, binning_y=0,
        roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0, do_rectify=False),
    )  # fmt: skip


def _rgb(height: int = H, width: int = W) -> np.ndarray:
    return np.zeros((height, width, 3), dtype=np.uint8)


def _prepare(**overrides):
    kwargs = dict(stamp_ns=T0, frame_id="cam", rgb=_rgb(), depth=np.full((H, W), 600, np.uint16),
                  depth_encoding="16UC1", camera_info=_info())  # fmt: skip
    kwargs.update(overrides)
    return prepare_input(**kwargs)


def test_good_input_decodes_depth_to_metres():
    frame = _prepare()
    assert frame.depth_m is not None and frame.camera is not None
    assert frame.depth_m.dtype == np.float32
    np.testing.assert_allclose(frame.depth_m, 0.6)
    assert frame.depth_valid_fraction == 1.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"depth": np.zeros((24, 32), np.uint16)},
         "depth image is 24x32 but the colour image is 48x64"),
        ({"depth_encoding": "rgb8"}, "depth image: .*rgb8"),
        ({"depth_encoding": None}, "without its encoding"),
        ({"camera_info": None}, "depth image given without camera_info"),
        ({"camera_info": _info(fx=0.0)},
         r"camera_info: K\[0\] \(fx\) is 0: the camera is not calibrated"),
        ({"camera_info": _info(width=640, height=480)},
         "colour image is 48x64 but camera_info says 480x640"),
        ({"rgb": _rgb(0, 0)}, "colour image is empty"),
        ({"rgb": np.zeros((H, W), np.uint8)}, r"uint8 RGB of shape \(H, W, 3\)"),
        ({"rgb": np.zeros((H, W, 3), np.float32)}, "got float32"),
        ({"stamp_ns": -5}, "stamp must be >= 0"),
    ],
)  # fmt: skip
def test_bad_input_is_named(overrides, message):
    with pytest.raises(InputError, match=message):
        _prepare(**overrides)


def test_nan_filled_depth_is_valid_input_with_no_measurement():
    frame = _prepare(depth=np.full((H, W), np.nan, np.float32), depth_encoding="32FC1")
    assert frame.depth_valid_fraction == 0.0
    assert frame.camera is not None and frame.depth_m is not None
    lifted = lift_keypoints(frame.camera, frame.depth_m, np.full((21, 2), 20.0))
    assert (lifted.status == KeypointStatus.IMAGE_ONLY).all()
    assert np.isnan(lifted.xyz).all()


def test_colour_only_input_needs_no_camera():
    frame = prepare_input(stamp_ns=T0, frame_id="cam", rgb=_rgb())
    assert frame.depth_m is None and frame.camera is None


def _write_input_bag(path: Path, n_frames: int, drop_depth: int) -> None:
    with BagWriter(path, storage="sqlite3") as bag:
        ts = bag.typestore
        bag.add_topic(topics.COLOR_TOPIC, "sensor_msgs/msg/Image")
        bag.add_topic(topics.DEPTH_TOPIC, "sensor_msgs/msg/Image")
        bag.add_topic(topics.CAMERA_INFO_TOPIC, "sensor_msgs/msg/CameraInfo")
        for i in range(n_frames):
            stamp = T0 + i * 33_333_333
            info = camera_info_message(ts, fx=60.0, fy=60.0, cx=31.5, cy=23.5, width=W,
                                       height=H, frame_id="cam", stamp_ns=stamp)  # fmt: skip
            bag.write(topics.CAMERA_INFO_TOPIC, stamp, info)
            bag.write(topics.COLOR_TOPIC, stamp, image_message(ts, _rgb(), "rgb8", stamp, "cam"))
            if i != drop_depth:
                depth = np.full((H, W), 600 + 10 * i, np.uint16)
                depth_stamp = stamp + 3_000_000  # depth arrives 3 ms after colour
                bag.write(topics.DEPTH_TOPIC, depth_stamp,
                          image_message(ts, depth, "16UC1", depth_stamp, "cam"))  # fmt: skip


def test_every_input_frame_gives_exactly_one_output_with_its_stamp(tmp_path: Path):
    """The bag-mode backbone: read, check, lift to 3D, build messages, write, read back."""
    source, output = tmp_path / "in", tmp_path / "out"
    _write_input_bag(source, n_frames=6, drop_depth=3)
    m = message_classes(load_typestore())
    uv = np.column_stack([np.linspace(10, 50, 21), np.linspace(8, 40, 21)])
    stamps = []
    with open_rgbd_bag(source, color_topic=topics.COLOR_TOPIC, depth_topic=topics.DEPTH_TOPIC,
                       info_topic=topics.CAMERA_INFO_TOPIC) as reader, \
            BagWriter(output, storage="mcap") as out:  # fmt: skip
        out.add_topic(topics.HANDS_TOPIC, "hand_pose_msgs/msg/HandArray")
        out.add_topic(topics.MARKERS_TOPIC, "visualization_msgs/msg/MarkerArray")
        for raw in reader.frames():
            frame = prepare_input(stamp_ns=raw.stamp_ns, frame_id=raw.frame_id, rgb=raw.rgb,
                                  depth=raw.depth, depth_encoding=raw.depth_encoding,
                                  camera_info=raw.camera_info)  # fmt: skip
            assert frame.camera is not None
            if frame.depth_m is not None:
                xyz, spread, status = lift_keypoints(frame.camera, frame.depth_m, uv)
            else:
                xyz, spread = np.full((21, 3), np.nan), np.full(21, np.nan)
                status = np.full(21, KeypointStatus.IMAGE_ONLY)
            hand = HandResult(uv=uv, xyz=xyz, xyz_uncertainty=spread, scores=np.ones(21),
                              status=status, score=1.0)  # fmt: skip
            result = HandFrame(frame.stamp_ns, frame.frame_id, [hand], model="test")
            out.write(topics.HANDS_TOPIC, frame.stamp_ns, messages.hand_array_message(m, result))
            out.write(topics.MARKERS_TOPIC, frame.stamp_ns, messages.hand_markers(m, result))
            stamps.append(frame.stamp_ns)

    assert stamps == [T0 + i * 33_333_333 for i in range(6)]
    with AnyReader([output]) as reader:  # stock reader: the bag's own stored definitions
        hand_topic = [c for c in reader.connections if c.topic == topics.HANDS_TOPIC]
        hands = [reader.deserialize(raw, conn.msgtype)
                 for conn, _t, raw in reader.messages(hand_topic)]  # fmt: skip
        markers = [c for c in reader.connections if c.topic == topics.MARKERS_TOPIC]
        assert sum(1 for _ in reader.messages(markers)) == 6
    assert [messages.stamp_to_ns(h.header.stamp) for h in hands] == stamps
    for i, msg in enumerate(hands):
        keypoints = msg.hands[0].keypoints
        if i == 3:  # no depth: 2D only, position NaN, flagged so
            assert all(k.status == KeypointStatus.IMAGE_ONLY for k in keypoints)
            assert np.isnan(keypoints[0].position.z)
        else:
            assert all(k.status == KeypointStatus.DEPTH_MEASURED for k in keypoints)
            assert keypoints[0].position.z == pytest.approx(0.6 + 0.01 * i, abs=1e-6)
