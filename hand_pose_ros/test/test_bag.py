"""Bags: write with BagWriter, read back with a stock rosbags reader and with RgbdBagReader."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from hand_pose_ros.io.bag_reader import BagError, RgbdBagReader, open_rgbd_bag
from hand_pose_ros.io.bag_writer import (
    BagWriter,
    BagWriterError,
    camera_info_message,
    header_message,
    image_message,
)
from hand_pose_ros.io.sync import SyncError
from hand_pose_ros.messages import MessageError
from hand_pose_ros.msg_types import message_classes

MS = 1_000_000
PERIOD = 33_333_333  # 30 Hz
T0 = 1_700_000_000 * 1_000_000_000  # a realistic epoch stamp, so sec/nanosec both matter
COLOR, DEPTH = "/cam/color/image_raw", "/cam/depth/image_raw"
INFO, HANDS = "/cam/color/camera_info", "/hands"
H, W = 6, 8
STORAGES = ["mcap", "sqlite3"]


def _color(index: int) -> np.ndarray:
    """A colour image that says which frame it is: R = index, G = row, B = column."""
    rgb = np.zeros((H, W, 3), dtype=np.uint8)
    rgb[:, :, 0] = index
    rgb[:, :, 1] = np.arange(H)[:, None]
    rgb[:, :, 2] = np.arange(W)[None, :]
    return rgb


def _depth(index: int) -> np.ndarray:
    """A 16UC1 depth image (mm) that says which frame it is."""
    depth = np.full((H, W), 1000 + index, dtype=np.uint16)
    depth[0, 0] = 0  # the "no depth" value must survive as is
    depth[1, 1] = 65535
    return depth


def _hand_array(typestore: Any, stamp_ns: int) -> Any:
    m = message_classes(typestore)
    nan = float("nan")
    keypoints = [
        m.Keypoint(
            u=float(10 + k), v=float(20 + 2 * k),
            position=m.Point(x=0.01 * k, y=-0.02 * k, z=0.5 + 0.001 * k),
            position_uncertainty=0.004, score=0.5 + k / 100.0, status=2,
        )
        for k in range(20)
    ]
    keypoints.append(m.Keypoint(u=nan, v=nan, position=m.Point(x=nan, y=nan, z=nan),
                                position_uncertainty=nan, score=0.0, status=0))
    hand = m.Hand(
        id="hand_3", handedness=2, handedness_score=0.75, score=0.9,
        u_min=5.0, v_min=6.0, u_max=50.0, v_max=60.0, keypoints=keypoints,
        palm_pose=m.Pose(position=m.Point(x=0.1, y=0.2, z=0.6),
                         orientation=m.Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)),
        gesture="open_palm", gesture_score=0.625,
    )
    return m.HandArray(header=header_message(typestore, stamp_ns, "cam_color_optical_frame"),
                       hands=[hand], model="mobile_heatmap")


def _write_bag(
    path: Path,
    *,
    storage: str = "mcap",
    color_stamps: list[int],
    depth_stamps: list[int] | None = None,
    depth_indices: list[int] | None = None,
    info_stamps: list[int] | None = None,
    fx_at: dict[int, float] | None = None,
    hands: bool = False,
) -> None:
    """Colour frame i at color_stamps[i]; depth j (showing frame depth_indices[j]) likewise.

    Every message is logged at its header stamp plus 2 ms, written in log-time order.
    """
    with BagWriter(path, storage=storage) as bag:  # type: ignore[arg-type]
        ts = bag.typestore
        bag.add_topic(COLOR, "sensor_msgs/msg/Image")
        writes: list[tuple[int, str, Any]] = []
        for i, stamp in enumerate(color_stamps):
            writes.append((stamp, COLOR, image_message(ts, _color(i), "rgb8", stamp, "cam_color")))
        if depth_stamps is not None:
            bag.add_topic(DEPTH, "sensor_msgs/msg/Image")
            indices = depth_indices or list(range(len(depth_stamps)))
            for index, stamp in zip(indices, depth_stamps, strict=True):
                msg = image_message(ts, _depth(index), "16UC1", stamp, "cam_depth")
                writes.append((stamp, DEPTH, msg))
        if info_stamps is not None:
            bag.add_topic(INFO, "sensor_msgs/msg/CameraInfo")
            fx = 500.0
            for stamp in info_stamps:
                fx = (fx_at or {}).get(stamp, fx)
                msg = camera_info_message(ts, fx=fx, fy=fx, cx=3.5, cy=2.5, width=W, height=H,
                                          frame_id="cam_color", stamp_ns=stamp)
                writes.append((stamp, INFO, msg))
        if hands:
            bag.add_topic(HANDS, "hand_pose_msgs/msg/HandArray")
            writes.append((color_stamps[0], HANDS, _hand_array(ts, color_stamps[0])))
        for stamp, topic, msg in sorted(writes, key=lambda w: (w[0], w[1])):
            bag.write(topic, stamp + 2 * MS, msg)


@pytest.mark.parametrize("storage", STORAGES)
def test_round_trip_through_a_stock_reader(tmp_path: Path, storage: str) -> None:
    path = tmp_path / "bag"
    stamps = [T0 + i * PERIOD for i in range(3)]
    _write_bag(path, storage=storage, color_stamps=stamps, depth_stamps=stamps,
               info_stamps=stamps, hands=True)

    # A plain AnyReader with no types registered: only the definitions stored in the bag.
    with AnyReader([path]) as reader:
        assert {name: info.msgtype for name, info in reader.topics.items()} == {
            COLOR: "sensor_msgs/msg/Image", DEPTH: "sensor_msgs/msg/Image",
            INFO: "sensor_msgs/msg/CameraInfo", HANDS: "hand_pose_msgs/msg/HandArray",
        }
        hands_conn = [c for c in reader.connections if c.topic == HANDS]
        assert "Keypoint[21] keypoints" in hands_conn[0].msgdef.data
        got: dict[str, list[tuple[int, Any]]] = {}
        for conn, log_time, raw in reader.messages():
            got.setdefault(conn.topic, []).append((log_time, reader.deserialize(raw, conn.msgtype)))

    assert [t for t, _ in got[COLOR]] == [s + 2 * MS for s in stamps]
    for i, (_, img) in enumerate(got[COLOR]):
        assert (img.height, img.width, img.encoding, img.step) == (H, W, "rgb8", 3 * W)
        assert img.data.tobytes() == _color(i).tobytes()
        assert img.header.stamp.sec == stamps[i] // 10**9
        assert img.header.stamp.nanosec == stamps[i] % 10**9
    for i, (_, img) in enumerate(got[DEPTH]):
        assert (img.encoding, img.is_bigendian, img.step) == ("16UC1", 0, 2 * W)
        assert img.data.tobytes() == _depth(i).astype("<u2").tobytes()
    info = got[INFO][0][1]
    assert info.k.tolist() == [500.0, 0.0, 3.5, 0.0, 500.0, 2.5, 0.0, 0.0, 1.0]
    assert info.p.tolist()[:4] == [500.0, 0.0, 3.5, 0.0]
    assert (info.distortion_model, info.d.tolist()) == ("plumb_bob", [0.0] * 5)

    (_, array), = got[HANDS]
    assert array.__msgtype__ == "hand_pose_msgs/msg/HandArray"
    assert (array.model, array.header.frame_id) == ("mobile_heatmap", "cam_color_optical_frame")
    hand = array.hands[0]
    assert (hand.id, hand.handedness, hand.gesture) == ("hand_3", 2, "open_palm")
    assert (hand.handedness_score, hand.score, hand.gesture_score) == (0.75, pytest.approx(0.9),
                                                                       0.625)
    assert (hand.u_min, hand.v_max) == (5.0, 60.0)
    assert len(hand.keypoints) == 21
    assert (hand.keypoints[7].u, hand.keypoints[7].v, hand.keypoints[7].status) == (17.0, 34.0, 2)
    assert hand.keypoints[7].position.z == pytest.approx(0.507)
    last = hand.keypoints[20]
    assert last.status == 0 and math.isnan(last.u) and math.isnan(last.position.x)
    assert (hand.palm_pose.position.z, hand.palm_pose.orientation.w) == (0.6, 1.0)


def test_frames_pair_jittered_depth_and_keep_a_frame_whose_depth_was_lost(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bag"
    rng = np.random.default_rng(11)
    n, lost = 40, 13
    color = [T0 + i * PERIOD for i in range(n)]
    kept = [i for i in range(n) if i != lost]
    depth = [T0 + i * PERIOD + int(rng.integers(-5 * MS, 5 * MS + 1)) for i in kept]
    _write_bag(path, storage="sqlite3", color_stamps=color, depth_stamps=depth,
               depth_indices=kept, info_stamps=color)

    with open_rgbd_bag(path, color_topic=COLOR, depth_topic=DEPTH, info_topic=INFO) as bag:
        frames = list(bag.frames(slop_ns=10 * MS))
        stats = bag.stats

    # Every colour image exactly once, in order, with its own pixels.
    assert [f.index for f in frames] == list(range(n))
    assert [f.stamp_ns for f in frames] == color
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(frame.rgb, _color(i))
        assert frame.frame_id == "cam_color"
        assert frame.camera_info is not None and frame.camera_info.header.stamp == \
            bag_stamp(color[i])
    # The lost depth frame costs exactly its colour frame; every other one has its own depth.
    assert frames[lost].depth is None and frames[lost].depth_encoding is None
    for i in kept:
        depth_image = frames[i].depth
        assert depth_image is not None and frames[i].depth_encoding == "16UC1"
        np.testing.assert_array_equal(depth_image, _depth(i))
        assert depth_image.dtype == np.uint16
        assert frames[i].depth_stamp_ns == depth[kept.index(i)]
    assert (stats.color_frames, stats.with_depth, stats.without_depth) == (n, n - 1, 1)
    assert stats.unmatched_color_stamps_ns == [color[lost]]
    assert (stats.depth_messages, stats.depth_unmatched) == (n - 1, 0)


def bag_stamp(stamp_ns: int) -> Any:
    """What a stored header stamp compares equal to (rosbags Time is a dataclass)."""
    from hand_pose_ros.msg_types import load_typestore

    time_cls = load_typestore().types["builtin_interfaces/msg/Time"]
    return time_cls(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)


def test_unmatched_frames_come_out_promptly_not_only_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    n = 30
    color = [T0 + i * PERIOD for i in range(n)]
    kept = [i for i in range(n) if i != 2]
    _write_bag(path, color_stamps=color, depth_stamps=[color[i] for i in kept],
               depth_indices=kept)
    with open_rgbd_bag(path, color_topic=COLOR, depth_topic=DEPTH) as bag:
        frames = bag.frames(queue_size=20)
        for _ in range(6):
            next(frames)
        # Frame 2 was settled as soon as depth moved past it, not after queue_size more
        # colour frames (or the end of the bag): little more than 6 frames have been read.
        assert bag.stats.unmatched_color_stamps_ns == [color[2]]
        assert bag.stats.color_frames <= 8
        rest = list(frames)
    assert len(rest) == n - 6


def test_colour_only_bag_and_camera_info_in_effect(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    color = [T0 + i * PERIOD for i in range(6)]
    # CameraInfo starts at frame 1 and changes at frame 4 (fx 500 -> 600).
    info = [color[1] - 1 * MS, color[2], color[3], color[4], color[5]]
    _write_bag(path, color_stamps=color, info_stamps=info, fx_at={color[4]: 600.0})
    with open_rgbd_bag(path, color_topic=COLOR, info_topic=INFO) as bag:
        frames = list(bag.frames())
        assert bag.stats.camera_infos == 5
    assert [f.index for f in frames] == list(range(6))
    assert all(f.depth is None and f.depth_stamp_ns is None for f in frames)
    assert frames[0].camera_info is None  # nothing at or before its stamp
    assert [f.camera_info.k[0] for f in frames[1:]] == [500.0, 500.0, 500.0, 600.0, 600.0]
    # Each frame gets the CameraInfo message it had in the bag, stamp included.
    assert [f.camera_info.header.stamp for f in frames[1:]] == [bag_stamp(s) for s in info]


def test_messages_in_bag_order_decoded(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    color = [T0 + i * PERIOD for i in range(2)]
    half = MS // 2
    _write_bag(path, color_stamps=color, depth_stamps=[c + MS for c in color],
               info_stamps=[c + half for c in color], hands=True)
    with open_rgbd_bag(path, color_topic=COLOR, depth_topic=DEPTH, info_topic=INFO) as bag:
        records = list(bag.messages())
    assert [(r.role, r.stamp_ns) for r in records] == [
        ("color", color[0]), ("camera_info", color[0] + half), ("depth", color[0] + MS),
        ("color", color[1]), ("camera_info", color[1] + half), ("depth", color[1] + MS),
    ]  # the HandArray topic was not selected
    assert [r.log_time_ns for r in records] == sorted(r.log_time_ns for r in records)
    assert records[3].image is not None
    np.testing.assert_array_equal(records[3].image, _color(1))
    assert records[2].encoding == "16UC1" and records[2].image is not None
    np.testing.assert_array_equal(records[2].image, _depth(0))
    assert records[1].image is None and records[1].msg.k[0] == 500.0


@pytest.mark.parametrize("storage", STORAGES)
def test_missing_topic_lists_what_the_bag_has(tmp_path: Path, storage: str) -> None:
    path = tmp_path / "bag"
    _write_bag(path, storage=storage, color_stamps=[T0], info_stamps=[T0])
    with pytest.raises(BagError) as error:
        open_rgbd_bag(path, color_topic=COLOR, depth_topic="/cam/aligned_depth", info_topic=INFO)
    text = str(error.value)
    assert "depth topic '/cam/aligned_depth' is not in bag" in text
    assert f"{INFO} (sensor_msgs/msg/CameraInfo)" in text
    assert f"{COLOR} (sensor_msgs/msg/Image)" in text


def test_wrong_topic_types(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    with BagWriter(path) as bag:
        ts = bag.typestore
        bag.add_topic("/cam/compressed", "sensor_msgs/msg/CompressedImage")
        compressed = ts.types["sensor_msgs/msg/CompressedImage"](
            header=header_message(ts, T0, "cam"), format="jpeg",
            data=np.frombuffer(b"\xff\xd8\xff", dtype=np.uint8),
        )
        bag.write("/cam/compressed", T0, compressed)
        bag.add_topic(COLOR, "sensor_msgs/msg/Image")
        bag.write(COLOR, T0, image_message(ts, _color(0), "rgb8", T0, "cam"))
    with pytest.raises(BagError, match=r"color topic '/cam/compressed' has type "
                       r"sensor_msgs/msg/CompressedImage, expected sensor_msgs/msg/Image "
                       r"\(compressed images are not supported"):
        open_rgbd_bag(path, color_topic="/cam/compressed")
    with pytest.raises(BagError, match=r"camera_info topic '/cam/compressed' has type "
                       r"sensor_msgs/msg/CompressedImage, expected sensor_msgs/msg/CameraInfo$"):
        open_rgbd_bag(path, color_topic=COLOR, info_topic="/cam/compressed")
    with pytest.raises(BagError, match="given as both color and depth"):
        RgbdBagReader(path, color_topic=COLOR, depth_topic=COLOR)
    with pytest.raises(BagError, match="unknown ROS distro 'noetic'"):
        RgbdBagReader(path, color_topic=COLOR, distro="noetic")


def test_bad_sync_options_fail_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    _write_bag(path, color_stamps=[T0], depth_stamps=[T0])
    with open_rgbd_bag(path, color_topic=COLOR, depth_topic=DEPTH) as bag, pytest.raises(
        SyncError, match="slop_ns must be > 0"
    ):
        next(bag.frames(slop_ns=0))


def test_swapped_colour_and_depth_fail_with_the_topic_named(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    _write_bag(path, color_stamps=[T0], depth_stamps=[T0])
    with open_rgbd_bag(path, color_topic=DEPTH, depth_topic=COLOR) as bag, pytest.raises(
        BagError, match=f"colour topic '{DEPTH}', image stamped {T0} ns: expected a color image"
    ):
        list(bag.frames())


def test_missing_and_non_bag_paths(tmp_path: Path) -> None:
    with pytest.raises(BagError, match=r"bag not found: .*nowhere does not exist"):
        open_rgbd_bag(tmp_path / "nowhere", color_topic=COLOR)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match=r"cannot open .*empty as a ROS 2 bag"):
        open_rgbd_bag(tmp_path / "empty", color_topic=COLOR)
    (tmp_path / "notes.txt").write_text("not a bag")
    with pytest.raises(BagError, match=r"cannot open .*notes.txt as a ROS 2 bag"):
        open_rgbd_bag(tmp_path / "notes.txt", color_topic=COLOR)
    with pytest.raises(BagError, match="is not open"):
        list(RgbdBagReader(tmp_path, color_topic=COLOR).messages())


def test_writer_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    _write_bag(path, color_stamps=[T0])
    with pytest.raises(BagWriterError, match="already exists; refusing to overwrite"):
        BagWriter(path).open()
    with AnyReader([path]) as reader:  # the existing bag is untouched
        assert reader.message_count == 1


def test_writer_errors(tmp_path: Path) -> None:
    with pytest.raises(BagWriterError, match="unknown bag storage 'rosbag1'"):
        BagWriter(tmp_path / "x", storage="rosbag1")  # type: ignore[arg-type]
    with pytest.raises(BagWriterError, match="is not open"):
        BagWriter(tmp_path / "y").add_topic(COLOR, "sensor_msgs/msg/Image")
    with BagWriter(tmp_path / "bag") as bag:
        ts = bag.typestore
        bag.add_topic(COLOR, "sensor_msgs/msg/Image")
        with pytest.raises(BagWriterError, match="already added with type sensor_msgs/msg/Image"):
            bag.add_topic(COLOR, "sensor_msgs/msg/Image")
        with pytest.raises(BagWriterError, match="unknown message type 'sensor_msgs/Image'"):
            bag.add_topic("/x", "sensor_msgs/Image")
        image = image_message(ts, _color(0), "rgb8", T0, "cam")
        with pytest.raises(BagWriterError, match=r"topic '/other' was not added \(topics added: "
                           "/cam/color/image_raw"):
            bag.write("/other", T0, image)
        bag.add_topic(INFO, "sensor_msgs/msg/CameraInfo")
        with pytest.raises(BagWriterError, match="has type sensor_msgs/msg/CameraInfo but the "
                           "message is sensor_msgs/msg/Image"):
            bag.write(INFO, T0, image)
        info = camera_info_message(ts, fx=1.0, fy=1.0, cx=0.0, cy=0.0, width=W, height=H,
                                   frame_id="cam", stamp_ns=T0)
        info.k = info.k[:8]
        with pytest.raises(BagWriterError, match="fixed-size arrays must have exactly"):
            bag.write(INFO, T0, info)
        info.k = [1.0] * 9
        with pytest.raises(BagWriterError, match="must be numpy arrays of the field's dtype"):
            bag.write(INFO, T0, info)
    with pytest.raises(MessageError, match="stamp must be >= 0 ns"):
        image_message(ts, _color(0), "rgb8", -1, "cam")


def test_writer_keeps_what_was_written_before_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    with pytest.raises(RuntimeError, match="interrupted"), BagWriter(path) as bag:
        bag.add_topic(COLOR, "sensor_msgs/msg/Image")
        bag.write(COLOR, T0, image_message(bag.typestore, _color(0), "rgb8", T0, "cam"))
        raise RuntimeError("interrupted")
    with open_rgbd_bag(path, color_topic=COLOR) as reader:
        assert [f.index for f in reader.frames()] == [0]
