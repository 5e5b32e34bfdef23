"""Write synthetic frames as a ROS 2 bag that looks like a RealSense recording.

Topics (the RealSense driver's, see ``hand_pose_ros.topics``): colour as rgb8, depth aligned
to colour as 16UC1 millimetres, the colour camera_info, and the ground truth as
hand_pose_msgs/HandArray on /hands_gt, all stamped with the frame's capture time.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from hand_pose_ros import messages, topics
from hand_pose_ros.geometry import encode_depth_mm
from hand_pose_ros.io.bag_writer import BagWriter, camera_info_message, image_message
from hand_pose_ros.msg_types import message_classes
from hand_pose_ros.synth.truth import SynthFrame, truth_hand_frame

FRAME_ID = "camera_color_optical_frame"


def write_sequence_bag(
    path: str | Path,
    frames: Iterable[tuple[int, SynthFrame]],
    *,
    storage: Literal["mcap", "sqlite3"] = "mcap",
    frame_id: str = FRAME_ID,
) -> int:
    """Write ``(stamp_ns, frame)`` pairs to a new bag at ``path``; returns the frame count."""
    count = 0
    with BagWriter(path, storage=storage) as bag:
        typestore = bag.typestore
        m = message_classes(typestore)
        bag.add_topic(topics.COLOR_TOPIC, "sensor_msgs/msg/Image")
        bag.add_topic(topics.DEPTH_TOPIC, "sensor_msgs/msg/Image")
        bag.add_topic(topics.CAMERA_INFO_TOPIC, "sensor_msgs/msg/CameraInfo")
        bag.add_topic(topics.GROUND_TRUTH_TOPIC, "hand_pose_msgs/msg/HandArray")
        for stamp_ns, frame in frames:
            camera = frame.camera
            if camera is None:
                raise ValueError("a synthetic frame without its camera cannot be written")
            info = camera_info_message(
                typestore, fx=camera.fx, fy=camera.fy, cx=camera.cx, cy=camera.cy,
                width=camera.width, height=camera.height, frame_id=frame_id, stamp_ns=stamp_ns,
            )  # fmt: skip
            bag.write(topics.CAMERA_INFO_TOPIC, stamp_ns, info)
            bag.write(topics.COLOR_TOPIC, stamp_ns,
                      image_message(typestore, frame.rgb, "rgb8", stamp_ns, frame_id))  # fmt: skip
            depth = encode_depth_mm(frame.depth_m)
            bag.write(topics.DEPTH_TOPIC, stamp_ns,
                      image_message(typestore, depth, "16UC1", stamp_ns, frame_id))  # fmt: skip
            truth = truth_hand_frame(frame, stamp_ns, frame_id)
            bag.write(topics.GROUND_TRUTH_TOPIC, stamp_ns, messages.hand_array_message(m, truth))
            count += 1
    return count
