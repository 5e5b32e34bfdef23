"""The hand_pose_msgs definitions, read at run time from the .msg files, for rosbags.

The .msg files in hand_pose_msgs/msg are the single source of truth: the ROS build
generates rclpy classes from them, and this module registers the same text with a
rosbags typestore, so bag mode and the tests use exactly the definitions the live node
publishes. Nothing here imports ROS.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from rosbags.interfaces import Nodetype
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

PACKAGE = "hand_pose_msgs"
MESSAGE_NAMES: tuple[str, ...] = ("Keypoint", "Hand", "HandArray")  # dependency order
DISTROS: dict[str, Stores] = {"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY}
MSGS_DIR_ENV = "HAND_POSE_MSGS_DIR"


class MessageDefinitionError(RuntimeError):
    """The hand_pose_msgs .msg files cannot be found or parsed."""


def msg_search_path() -> list[Path]:
    """Folders that may hold the hand_pose_msgs .msg files, in the order they are tried.

    1. ``$HAND_POSE_MSGS_DIR`` (an explicit override);
    2. the source checkout (``<repo>/hand_pose_msgs/msg``, for a pip editable install);
    3. ``<prefix>/share/hand_pose_msgs/msg`` for every prefix of ``$AMENT_PREFIX_PATH``
       (where a colcon build installs them).
    """
    candidates: list[Path] = []
    if os.environ.get(MSGS_DIR_ENV):
        candidates.append(Path(os.environ[MSGS_DIR_ENV]))
    candidates.append(Path(__file__).resolve().parents[2] / PACKAGE / "msg")
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "share" / PACKAGE / "msg")
    return candidates


def find_msg_dir() -> Path:
    """The first folder of ``msg_search_path()`` that holds every hand_pose_msgs .msg file."""
    tried = msg_search_path()
    for folder in tried:
        if all((folder / f"{name}.msg").is_file() for name in MESSAGE_NAMES):
            return folder
    raise MessageDefinitionError(
        f"cannot find the {PACKAGE} .msg files ({', '.join(MESSAGE_NAMES)}); looked in: "
        + ", ".join(str(p) for p in tried)
        + f". Set {MSGS_DIR_ENV} to the folder that holds them."
    )


def read_definitions(msg_dir: Path | None = None) -> dict[str, str]:
    """Message text by full type name (``hand_pose_msgs/msg/Hand``)."""
    folder = msg_dir if msg_dir is not None else find_msg_dir()
    return {
        f"{PACKAGE}/msg/{name}": (folder / f"{name}.msg").read_text(encoding="utf-8")
        for name in MESSAGE_NAMES
    }


@cache
def load_typestore(distro: str = "humble") -> Any:
    """A rosbags typestore for ``distro`` ('humble' or 'jazzy') with hand_pose_msgs registered.

    Cached: the typestore is shared, so treat it as read-only.
    """
    if distro not in DISTROS:
        raise ValueError(f"unknown ROS distro {distro!r}; expected one of {sorted(DISTROS)}")
    typestore = get_typestore(DISTROS[distro])
    types: dict[str, Any] = {}
    try:
        for name, text in read_definitions().items():
            types.update(get_types_from_msg(text, name))
    except MessageDefinitionError:
        raise
    except Exception as error:  # rosbags raises several parser errors; name the cause
        raise MessageDefinitionError(f"cannot parse the {PACKAGE} .msg files: {error}") from error
    typestore.register(types)
    return typestore


def message_classes(typestore: Any) -> SimpleNamespace:
    """The message constructors ``messages.py`` builds with, from a rosbags typestore.

    Each attribute (``Hand``, ``Marker``, ...) is called like an rclpy message class: fields
    not given take the ROS default (0, "", empty array), where a bare rosbags class would
    demand every field. Constants are reachable as attributes (``m.Keypoint.INVALID``). The
    same attribute names are offered for rclpy by ``hand_pose_ros.ros.message_classes``, so
    one message-building module serves both.
    """
    names = {
        "Time": "builtin_interfaces/msg/Time",
        "Duration": "builtin_interfaces/msg/Duration",
        "Header": "std_msgs/msg/Header",
        "ColorRGBA": "std_msgs/msg/ColorRGBA",
        "Point": "geometry_msgs/msg/Point",
        "Quaternion": "geometry_msgs/msg/Quaternion",
        "Pose": "geometry_msgs/msg/Pose",
        "Vector3": "geometry_msgs/msg/Vector3",
        "Marker": "visualization_msgs/msg/Marker",
        "MarkerArray": "visualization_msgs/msg/MarkerArray",
        "Image": "sensor_msgs/msg/Image",
        "CameraInfo": "sensor_msgs/msg/CameraInfo",
        "RegionOfInterest": "sensor_msgs/msg/RegionOfInterest",
        "Keypoint": f"{PACKAGE}/msg/Keypoint",
        "Hand": f"{PACKAGE}/msg/Hand",
        "HandArray": f"{PACKAGE}/msg/HandArray",
    }
    return SimpleNamespace(
        **{attr: MessageFactory(typestore, full) for attr, full in names.items()}
    )


class MessageFactory:
    """Builds a rosbags message of one type, filling fields not given with ROS defaults.

    Why: rosbags constructors have no defaults, and which fields exist differs between
    distros (Humble's Marker has texture, uv_coordinates, mesh_file ...). Filling defaults
    from the typestore's own field definitions keeps the builders distro-agnostic.
    """

    def __init__(self, typestore: Any, msgtype: str) -> None:
        self._typestore = typestore
        self._msgtype = msgtype
        self._cls = typestore.types[msgtype]

    def __call__(self, **fields: Any) -> Any:
        _consts, defs = self._typestore.fielddefs[self._msgtype]
        known = {name for name, _ in defs}
        unknown = set(fields) - known
        if unknown:
            raise TypeError(f"{self._msgtype} has no field(s) {sorted(unknown)}")
        values = {
            name: fields[name] if name in fields else _default(self._typestore, desc)
            for name, desc in defs
        }
        return self._cls(**values)

    def __getattr__(self, name: str) -> Any:
        # Constants (Keypoint.INVALID, Marker.SPHERE_LIST ...) live on the class.
        return getattr(self._cls, name)


_NUMPY_TYPES = {
    "bool": "bool", "byte": "uint8", "char": "uint8",
    "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
    "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "float32": "float32", "float64": "float64",
}  # fmt: skip


def _default(typestore: Any, desc: tuple[Any, Any]) -> Any:
    """The ROS default value of one field, from its rosbags field descriptor."""
    nodetype, spec = desc
    if nodetype == Nodetype.NAME:
        return MessageFactory(typestore, spec)()
    if nodetype == Nodetype.BASE:
        typename = spec[0]
        if typename == "string":
            return ""
        if typename == "bool":
            return False
        return 0.0 if typename.startswith("float") else 0
    (subtype, subspec), length = spec
    count = length if nodetype == Nodetype.ARRAY else 0
    if subtype == Nodetype.BASE and subspec[0] in _NUMPY_TYPES:
        # rosbags serialises numeric arrays from numpy arrays of the exact dtype.
        return np.zeros(count, dtype=_NUMPY_TYPES[subspec[0]])
    return [_default(typestore, (subtype, subspec)) for _ in range(count)]
