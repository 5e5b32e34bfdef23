"""Everything outside hand_pose_ros/ros/ must import on a machine without ROS."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import hand_pose_ros

ROS_MODULES = (
    "rclpy", "rcl_interfaces", "rosidl_runtime_py", "rosidl_parser", "message_filters",
    "tf2_ros", "tf2_py", "cv_bridge", "sensor_msgs_py", "launch", "launch_ros",
    "hand_pose_msgs", "sensor_msgs", "std_msgs", "geometry_msgs", "visualization_msgs",
    "builtin_interfaces",
)  # fmt: skip


def _core_modules() -> list[str]:
    root = Path(hand_pose_ros.__file__).parent
    names = ["hand_pose_ros"]
    for info in pkgutil.walk_packages([str(root)], prefix="hand_pose_ros."):
        if info.name == "hand_pose_ros.ros" or info.name.startswith("hand_pose_ros.ros."):
            continue
        names.append(info.name)
    return names


def test_core_modules_load_no_ros_module():
    modules = _core_modules()
    assert "hand_pose_ros.messages" in modules and "hand_pose_ros.msg_types" in modules
    # A fresh interpreter: this test process may have imported anything.
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    offending = [
        name for name in loaded if name.split(".")[0] in ROS_MODULES
    ]
    assert offending == [], f"core modules pulled in ROS modules: {offending}"


def test_the_command_line_starts_without_torch():
    """Building every sub-command's options (their defaults included) loads no model code:
    ``hand-pose --version`` and ``--help`` answer in a fraction of a second."""
    script = (
        "import sys\n"
        "from hand_pose_ros import cli\n"
        "try:\n"
        "    cli.main(['--version'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
