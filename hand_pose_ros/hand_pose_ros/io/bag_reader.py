"""Read colour, depth and camera_info from a ROS 2 bag (sqlite3 or MCAP) without ROS.

``RgbdBagReader.frames()`` is what bag mode runs on: every colour image in the bag comes out
exactly once, in bag order, with the depth image paired to it by the same approximate time
rule as the live node (``sync.ApproximateTimeSynchronizer``) or ``None`` when it has none,
and the CameraInfo in effect at its stamp.

Messages are decoded with the definitions stored in the bag; a bag that stores none (older
rosbag2 versions did not) falls back to the stock types of ``distro``.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.typesys import get_typestore

from hand_pose_ros.io.images import ImageError, image_to_array, to_rgb
from hand_pose_ros.io.sync import ApproximateTimeSynchronizer
from hand_pose_ros.msg_types import DISTROS

IMAGE_TYPE = "sensor_msgs/msg/Image"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
DEFAULT_SLOP_NS = 10_000_000  # 10 ms: a third of a frame at 30 Hz
DEFAULT_QUEUE_SIZE = 10

Role = Literal["color", "depth", "camera_info"]
COLOR, DEPTH = 0, 1  # synchroniser inputs


class BagError(RuntimeError):
    """A bag cannot be opened, lacks a topic, or a topic has the wrong type."""


@dataclass(frozen=True)
class BagRecord:
    """One message of a selected topic, decoded.

    Attributes:
        role: which of the reader's topics it came from.
        topic: the topic name.
        log_time_ns: when the bag recorded it (ns); the order of ``messages()``.
        stamp_ns: its header stamp (ns).
        frame_id: its header frame_id.
        msg: the rosbags message as stored.
        image: colour as uint8 RGB (H, W, 3); depth as the raw array (H, W) of its
            encoding (uint16 for 16UC1/mono16, float32 for 32FC1); None for camera_info.
        encoding: the image's original encoding; None for camera_info.
    """

    role: Role
    topic: str
    log_time_ns: int
    stamp_ns: int
    frame_id: str
    msg: Any
    image: np.ndarray | None = None
    encoding: str | None = None


@dataclass
class RgbdFrame:
    """One colour image with what belongs to it.

    Attributes:
        index: position of the colour image among the colour topic's messages (0-based).
        stamp_ns: the colour image's header stamp (ns).
        frame_id: the colour image's header frame_id.
        rgb: uint8 RGB, shape (H, W, 3).
        depth: the paired depth image, raw (H, W) array in its own units (see
            ``depth_encoding``; convert with geometry/), or None when no depth matched.
        depth_encoding: e.g. ``'16UC1'`` (millimetres) or ``'32FC1'`` (metres); None with
            no depth.
        depth_stamp_ns: the depth image's header stamp (ns), or None.
        camera_info: the sensor_msgs/CameraInfo with the latest header stamp at or before
            ``stamp_ns``, or None if there is none.
    """

    index: int
    stamp_ns: int
    frame_id: str
    rgb: np.ndarray
    depth: np.ndarray | None = None
    depth_encoding: str | None = None
    depth_stamp_ns: int | None = None
    camera_info: Any = None  # a CameraInfo message or None


@dataclass
class FrameStats:
    """Counts from the last ``frames()`` run, updated while it runs.

    ``color_frames == with_depth + without_depth`` always holds once the run has finished.
    """

    color_frames: int = 0
    with_depth: int = 0
    without_depth: int = 0
    depth_messages: int = 0
    depth_unmatched: int = 0
    camera_infos: int = 0
    unmatched_color_stamps_ns: list[int] = field(default_factory=list)


def stamp_ns_of(msg: Any) -> int:
    """The header stamp of ``msg`` in integer nanoseconds."""
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _info_key(msg: Any) -> tuple[Any, ...]:
    """Everything of a CameraInfo except its stamp, to store a run of identical ones once."""
    roi = msg.roi
    return (
        msg.header.frame_id, msg.height, msg.width, msg.distortion_model,
        tuple(np.asarray(msg.d).tolist()), tuple(np.asarray(msg.k).tolist()),
        tuple(np.asarray(msg.r).tolist()), tuple(np.asarray(msg.p).tolist()),
        msg.binning_x, msg.binning_y,
        (roi.x_offset, roi.y_offset, roi.height, roi.width, bool(roi.do_rectify)),
    )


@dataclass
class _InfoHistory:
    """The bag's CameraInfo messages, compact: a long bag repeats one message thousands of times.

    ``stamps`` are sorted; ``run_of[i]`` indexes ``runs``, the distinct messages.
    """

    stamps: list[int] = field(default_factory=list)
    run_of: list[int] = field(default_factory=list)
    runs: list[Any] = field(default_factory=list)

    def at_or_before(self, stamp_ns: int) -> Any | None:
        """The CameraInfo with the latest header stamp <= ``stamp_ns``, as in the bag."""
        at = bisect.bisect_right(self.stamps, stamp_ns)
        if at == 0:
            return None
        msg = self.runs[self.run_of[at - 1]]
        # Same content as the stored message of its run; give it back its own stamp.
        sec, nanosec = divmod(self.stamps[at - 1], 1_000_000_000)
        stamp = type(msg.header.stamp)(sec=sec, nanosec=nanosec)
        return replace(msg, header=replace(msg.header, stamp=stamp))


@dataclass
class _Pending:
    """A colour image waiting for its depth partner to be settled."""

    index: int
    msg: Any
    settled: bool = False
    depth_msg: Any | None = None


class RgbdBagReader:
    """A ROS 2 bag opened for colour (+ depth) (+ camera_info); use as a context manager.

    Args:
        path: the bag folder, or a single ``.mcap`` / ``.db3`` file.
        color_topic: a sensor_msgs/Image topic with a colour encoding.
        depth_topic: a sensor_msgs/Image depth topic, or None for a colour-only bag.
        info_topic: the colour camera's sensor_msgs/CameraInfo topic, or None.
        distro: ``'humble'`` or ``'jazzy'``, whose stock types decode bags that store no
            message definitions (older rosbag2 versions did not store them).

    Raises:
        BagError: (on ``open``) no such path, not a bag, a topic missing (the message lists
            the bag's topics and types) or of the wrong type.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        color_topic: str,
        depth_topic: str | None = None,
        info_topic: str | None = None,
        distro: str = "humble",
    ) -> None:
        self._path = Path(path)
        self._roles: dict[str, Role] = {color_topic: "color"}
        optional: tuple[tuple[str | None, Role], ...] = (
            (depth_topic, "depth"), (info_topic, "camera_info"),
        )
        for topic, role in optional:
            if topic is None:
                continue
            if topic in self._roles:
                raise BagError(f"topic {topic!r} is given as both {self._roles[topic]} and {role}")
            self._roles[topic] = role
        self.color_topic = color_topic
        self.depth_topic = depth_topic
        self.info_topic = info_topic
        if distro not in DISTROS:
            raise BagError(f"unknown ROS distro {distro!r}; expected one of {sorted(DISTROS)}")
        self._distro = distro
        self._reader: AnyReader | None = None
        self.stats = FrameStats()

    @property
    def path(self) -> Path:
        return self._path

    def open(self) -> None:
        """Open the bag and check the topics."""
        if self._reader is not None:
            raise BagError(f"bag {self._path} is already open")
        if not self._path.exists():
            raise BagError(f"bag not found: {self._path} does not exist")
        try:
            # The stock types only: hand_pose_msgs are not needed to read camera topics.
            reader = AnyReader([self._path], default_typestore=get_typestore(DISTROS[self._distro]))
            reader.open()
        except (AnyReaderError, OSError) as error:
            raise BagError(f"cannot open {self._path} as a ROS 2 bag: {error}") from error
        try:
            self._check_topics(reader.topics)
        except BagError:
            reader.close()
            raise
        self._reader = reader

    def close(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()

    def __enter__(self) -> RgbdBagReader:
        if self._reader is None:  # open_rgbd_bag() has opened it already
            self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def topics(self) -> dict[str, str]:
        """Every topic in the bag with its message type."""
        return {name: str(info.msgtype) for name, info in self._open_reader().topics.items()}

    def _check_topics(self, topics: dict[str, Any]) -> None:
        listing = ", ".join(f"{name} ({info.msgtype})" for name, info in sorted(topics.items()))
        listing = listing or "no topics at all"
        for topic, role in self._roles.items():
            wanted = CAMERA_INFO_TYPE if role == "camera_info" else IMAGE_TYPE
            if topic not in topics:
                raise BagError(
                    f"{role} topic {topic!r} is not in bag {self._path}; the bag has: {listing}"
                )
            have = topics[topic].msgtype
            if have != wanted:
                hint = ""
                if have == "sensor_msgs/msg/CompressedImage" and wanted == IMAGE_TYPE:
                    hint = (
                        " (compressed images are not supported; decompress first, e.g. with "
                        "image_transport's republish node)"
                    )
                raise BagError(
                    f"{role} topic {topic!r} has type {have}, expected {wanted}{hint}"
                )

    def _open_reader(self) -> AnyReader:
        if self._reader is None:
            raise BagError(f"bag {self._path} is not open; use 'with open_rgbd_bag(...)'")
        return self._reader

    def _raw(self, roles: tuple[Role, ...]) -> Iterator[tuple[Role, str, int, Any]]:
        """(role, topic, log time, message) of the given roles, in bag order."""
        reader = self._open_reader()
        connections = [c for c in reader.connections if self._roles.get(c.topic) in roles]
        if not connections:
            return
        for connection, log_time, raw in reader.messages(connections=connections):
            msg = reader.deserialize(raw, connection.msgtype)
            yield self._roles[connection.topic], connection.topic, int(log_time), msg

    def messages(self) -> Iterator[BagRecord]:
        """Every message of the selected topics in bag (recording) order, decoded.

        Raises:
            BagError: an image that cannot be decoded (names topic and stamp).
        """
        for role, topic, log_time, msg in self._raw(("color", "depth", "camera_info")):
            record = BagRecord(role, topic, log_time, stamp_ns_of(msg), msg.header.frame_id, msg)
            if role == "color":
                record = replace(record, image=self._decode_color(msg), encoding=msg.encoding)
            elif role == "depth":
                depth, encoding = self._decode_depth(msg)
                record = replace(record, image=depth, encoding=encoding)
            yield record

    def frames(
        self,
        *,
        slop_ns: int = DEFAULT_SLOP_NS,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> Iterator[RgbdFrame]:
        """Every colour image once, in bag order, with its depth partner and CameraInfo.

        Colour and depth are paired by header stamp with ``ApproximateTimeSynchronizer``
        (``slop_ns``, ``queue_size``), fed in bag order as a live node would receive them.
        A colour image is yielded once its pairing is settled: when it matched; or, unmatched,
        when it can no longer match (the depth stream has moved ``slop_ns`` past it, see
        ``ApproximateTimeSynchronizer.drop_unmatchable``), when the synchroniser evicts it,
        or at the end of the bag. Unmatched images come out with ``depth=None`` and their
        stamps are listed in ``self.stats``; they are never left out, so downstream gets
        exactly one output per colour image. Images are decoded only when yielded.

        Raises:
            BagError: an image that cannot be decoded (names topic and stamp).
        """
        self.stats = stats = FrameStats()

        def settle_unmatched(index: int, _stamp: int, item: Any) -> None:
            if index == COLOR:
                item.settled = True
            else:
                stats.depth_unmatched += 1

        sync: ApproximateTimeSynchronizer[Any] = ApproximateTimeSynchronizer(
            2, queue_size=queue_size, slop_ns=slop_ns, on_drop=settle_unmatched
        )
        infos = self._camera_infos()
        stats.camera_infos = len(infos.stamps)
        pending: deque[_Pending] = deque()
        roles: tuple[Role, ...] = ("color", "depth") if self.depth_topic else ("color",)
        for role, _topic, _log_time, msg in self._raw(roles):
            if role == "color":
                entry = _Pending(index=stats.color_frames, msg=msg)
                stats.color_frames += 1
                pending.append(entry)
                if self.depth_topic is None:
                    entry.settled = True
                else:
                    matched = sync.add(COLOR, stamp_ns_of(msg), entry)
                    if matched is not None:
                        _settle(matched)
            else:
                stats.depth_messages += 1
                matched = sync.add(DEPTH, stamp_ns_of(msg), msg)
                if matched is not None:
                    _settle(matched)
            if self.depth_topic is not None:
                sync.drop_unmatchable()
            while pending and pending[0].settled:
                yield self._frame(pending.popleft(), infos)
        sync.flush()
        while pending:
            yield self._frame(pending.popleft(), infos)

    def _camera_infos(self) -> _InfoHistory:
        """Every CameraInfo stamp of the bag, with runs of identical messages stored once."""
        history = _InfoHistory()
        if self.info_topic is None:
            return history
        last_key: tuple[Any, ...] | None = None
        entries: list[tuple[int, int]] = []  # (stamp, run)
        for _role, _topic, _log_time, msg in self._raw(("camera_info",)):
            key = _info_key(msg)
            if key != last_key:
                history.runs.append(msg)
                last_key = key
            entries.append((stamp_ns_of(msg), len(history.runs) - 1))
        entries.sort()
        history.stamps = [stamp for stamp, _ in entries]
        history.run_of = [run for _, run in entries]
        return history

    def _frame(self, entry: _Pending, infos: _InfoHistory) -> RgbdFrame:
        msg = entry.msg
        stamp = stamp_ns_of(msg)
        frame = RgbdFrame(
            index=entry.index, stamp_ns=stamp, frame_id=msg.header.frame_id,
            rgb=self._decode_color(msg),
        )
        if entry.depth_msg is not None:
            frame.depth, frame.depth_encoding = self._decode_depth(entry.depth_msg)
            frame.depth_stamp_ns = stamp_ns_of(entry.depth_msg)
            self.stats.with_depth += 1
        else:
            self.stats.without_depth += 1
            if self.depth_topic is not None:
                self.stats.unmatched_color_stamps_ns.append(stamp)
        frame.camera_info = infos.at_or_before(stamp)
        return frame

    def _decode_color(self, msg: Any) -> np.ndarray:
        try:
            return to_rgb(msg)
        except ImageError as error:
            raise BagError(
                f"colour topic {self.color_topic!r}, image stamped {stamp_ns_of(msg)} ns: {error}"
            ) from error

    def _decode_depth(self, msg: Any) -> tuple[np.ndarray, str]:
        try:
            return image_to_array(msg, expected="depth")
        except ImageError as error:
            raise BagError(
                f"depth topic {self.depth_topic!r}, image stamped {stamp_ns_of(msg)} ns: {error}"
            ) from error


def _settle(matched: tuple[Any, ...]) -> None:
    """Record a matched (colour entry, depth message) pair."""
    entry, depth_msg = matched
    entry.depth_msg = depth_msg
    entry.settled = True


def open_rgbd_bag(
    path: str | Path,
    *,
    color_topic: str,
    depth_topic: str | None = None,
    info_topic: str | None = None,
    distro: str = "humble",
) -> RgbdBagReader:
    """An opened ``RgbdBagReader`` (close it, or use it in a ``with`` block)."""
    reader = RgbdBagReader(
        path, color_topic=color_topic, depth_topic=depth_topic, info_topic=info_topic,
        distro=distro,
    )
    reader.open()
    return reader
