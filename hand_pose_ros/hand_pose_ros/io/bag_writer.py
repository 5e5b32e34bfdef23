"""Write ROS 2 bags (MCAP or sqlite3) without ROS, with rosbags.

Messages are rosbags message objects built from the typestore of
``msg_types.load_typestore``: it knows the stock ROS 2 types of the chosen distro and the
hand_pose_msgs types read from their .msg files, and every topic's definition is stored in
the bag, so ``ros2 bag play`` and any rosbags reader decode it without this package.

rosbags quirks this module hides or explains: primitive array fields (``uint8[] data``,
``float64[9] k``) must be numpy arrays of exactly the field's dtype, and fixed-size arrays
(``float64[9]``, ``Keypoint[21]``) must have exactly their length; otherwise serialisation
fails with an unrelated-looking AttributeError, ValueError or IndexError, which ``write``
turns into a BagWriterError naming the topic and the rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.serde import SerdeError

from hand_pose_ros.io.images import array_to_image_fields
from hand_pose_ros.messages import header
from hand_pose_ros.msg_types import load_typestore, message_classes

Storage = Literal["mcap", "sqlite3"]
STORAGES: dict[str, StoragePlugin] = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
BAG_VERSION: Literal[9] = 9  # rosbag2 metadata version of Jazzy; rosbags writes only 8 or 9


class BagWriterError(RuntimeError):
    """A bag cannot be created or a message cannot be written."""


class BagWriter:
    """A ROS 2 bag being written; use as a context manager.

    Example::

        with BagWriter(path, storage="mcap") as bag:
            bag.add_topic("/camera/color/image_raw", "sensor_msgs/msg/Image")
            bag.write("/camera/color/image_raw", stamp_ns, image_message(bag.typestore, ...))

    Args:
        path: the bag folder to create; it must not exist yet.
        storage: ``'mcap'`` (the default of Jazzy's rosbag2) or ``'sqlite3'`` (Humble's).
        distro: ``'humble'`` or ``'jazzy'``, whose stock message definitions are stored.
    """

    def __init__(self, path: str | Path, *, storage: Storage = "mcap", distro: str = "humble"):
        if storage not in STORAGES:
            raise BagWriterError(
                f"unknown bag storage {storage!r}; expected one of {', '.join(STORAGES)}"
            )
        self._path = Path(path)
        self._storage = storage
        self._typestore = load_typestore(distro)
        self._writer: Writer | None = None
        self._connections: dict[str, Any] = {}

    @property
    def path(self) -> Path:
        return self._path

    @property
    def typestore(self) -> Any:
        """The rosbags typestore messages must be built with (shared; treat as read-only)."""
        return self._typestore

    def open(self) -> None:
        """Create the bag folder; refuses an existing path."""
        if self._writer is not None:
            raise BagWriterError(f"bag {self._path} is already open")
        if self._path.exists():
            raise BagWriterError(
                f"{self._path} already exists; refusing to overwrite it (remove it or choose "
                "another output path)"
            )
        try:
            writer = Writer(self._path, version=BAG_VERSION, storage_plugin=STORAGES[self._storage])
            writer.open()
        except (WriterError, OSError) as error:
            raise BagWriterError(f"cannot create bag {self._path}: {error}") from error
        self._writer = writer

    def close(self) -> None:
        """Write the index and metadata.yaml; the bag is complete only after this."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def __enter__(self) -> BagWriter:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Closed on error too (rosbags would abort and leave no metadata): the messages
        # written before an exception or Ctrl-C stay readable.
        if exc_type is None:
            self.close()
            return
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception:
                with suppress(Exception):
                    writer.abort()

    def add_topic(self, name: str, msgtype: str) -> None:
        """Declare topic ``name`` with full type ``msgtype`` (e.g. ``sensor_msgs/msg/Image``)."""
        writer = self._open_writer()
        if name in self._connections:
            raise BagWriterError(
                f"topic {name!r} was already added with type {self._connections[name].msgtype}"
            )
        if msgtype not in self._typestore.types:
            raise BagWriterError(
                f"unknown message type {msgtype!r} for topic {name!r}; use the full name, "
                "e.g. 'sensor_msgs/msg/Image' or 'hand_pose_msgs/msg/HandArray'"
            )
        self._connections[name] = writer.add_connection(name, msgtype, typestore=self._typestore)

    def write(self, topic: str, stamp_ns: int, msg: Any) -> None:
        """Write ``msg`` on ``topic`` with receive time ``stamp_ns`` (integer nanoseconds)."""
        writer = self._open_writer()
        connection = self._connections.get(topic)
        if connection is None:
            known = ", ".join(sorted(self._connections)) or "none"
            raise BagWriterError(f"topic {topic!r} was not added (topics added: {known})")
        msgtype = getattr(msg, "__msgtype__", None)
        if msgtype != connection.msgtype:
            raise BagWriterError(
                f"topic {topic!r} has type {connection.msgtype} but the message is {msgtype}"
            )
        try:
            data = self._typestore.serialize_cdr(msg, connection.msgtype)
        except (SerdeError, AttributeError, ValueError, IndexError, TypeError) as error:
            raise BagWriterError(
                f"cannot serialise the {msgtype} message for topic {topic!r}: {error!r}. "
                "Primitive arrays must be numpy arrays of the field's dtype (uint8[] data -> "
                "np.uint8, float64[9] k -> np.float64) and fixed-size arrays must have exactly "
                "their declared length."
            ) from error
        writer.write(connection, int(stamp_ns), data)

    def _open_writer(self) -> Writer:
        if self._writer is None:
            raise BagWriterError(f"bag {self._path} is not open; use 'with BagWriter(...)'")
        return self._writer


def header_message(typestore: Any, stamp_ns: int, frame_id: str) -> Any:
    """std_msgs/Header with ``stamp_ns`` (integer ns since the epoch, >= 0) and ``frame_id``."""
    return header(message_classes(typestore), stamp_ns, frame_id)


def image_message(
    typestore: Any, array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str
) -> Any:
    """sensor_msgs/Image holding ``array`` (see ``images.array_to_image_fields`` for shapes)."""
    fields = array_to_image_fields(array, encoding)
    image_cls = typestore.types["sensor_msgs/msg/Image"]
    return image_cls(header=header_message(typestore, stamp_ns, frame_id), **fields)


def camera_info_message(
    typestore: Any,
    *,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    width: int,
    height: int,
    frame_id: str,
    stamp_ns: int,
    d: Sequence[float] = (0.0, 0.0, 0.0, 0.0, 0.0),
    distortion_model: str = "plumb_bob",
) -> Any:
    """sensor_msgs/CameraInfo of a pinhole camera that is its own rectified camera.

    Args:
        fx, fy: focal lengths in pixels; cx, cy: principal point in pixels (u = column,
            v = row, (0, 0) the centre of the top-left pixel).
        width, height: image size in pixels.
        d: distortion coefficients in the order of ``distortion_model``.

    K is ``[fx 0 cx; 0 fy cy; 0 0 1]``, R the identity and P ``[K | 0]``; binning 0 and an
    empty ROI mean full resolution, as camera drivers publish.
    """
    k = np.array([fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0], dtype=np.float64)
    p = np.array([fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0], dtype=np.float64)
    roi = typestore.types["sensor_msgs/msg/RegionOfInterest"](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return typestore.types["sensor_msgs/msg/CameraInfo"](
        header=header_message(typestore, stamp_ns, frame_id),
        height=int(height),
        width=int(width),
        distortion_model=distortion_model,
        d=np.asarray(d, dtype=np.float64),
        k=k,
        r=np.eye(3, dtype=np.float64).reshape(-1),
        p=p,
        binning_x=0,
        binning_y=0,
        roi=roi,
    )
