"""The two ROS 2 packages are laid out so that colcon builds them."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _package_xml(package: str) -> ET.Element:
    return ET.parse(REPO / package / "package.xml").getroot()


def test_msgs_package_is_an_interface_package():
    root = _package_xml("hand_pose_msgs")
    assert root.get("format") == "3"
    assert root.findtext("name") == "hand_pose_msgs"
    assert root.findtext("export/build_type") == "ament_cmake"
    assert root.findtext("member_of_group") == "rosidl_interface_packages"
    depends = {e.text for e in root.findall("depend")}
    assert {"std_msgs", "geometry_msgs"} <= depends


def test_ros_package_is_ament_python_and_declares_its_run_dependencies():
    root = _package_xml("hand_pose_ros")
    assert root.get("format") == "3"
    assert root.findtext("name") == "hand_pose_ros"
    assert root.findtext("export/build_type") == "ament_python"
    run = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "hand_pose_msgs", "sensor_msgs", "visualization_msgs"} <= run
    assert (REPO / "hand_pose_ros" / "resource" / "hand_pose_ros").is_file()


def test_setup_py_installs_the_ament_marker_and_console_script():
    source = (REPO / "hand_pose_ros" / "setup.py").read_text()
    tree = ast.parse(source)
    assert any(isinstance(n, ast.Constant) and n.value == "share/ament_index/resource_index/"
               "packages" for n in ast.walk(tree))  # fmt: skip
    assert "hand-pose = hand_pose_ros.cli:main" in source


def test_the_only_ros_imports_live_in_the_ros_subpackage():
    """A static check beside the runtime one: no core source file names a ROS module."""
    core = REPO / "hand_pose_ros" / "hand_pose_ros"
    ros_roots = {"rclpy", "message_filters", "tf2_ros", "cv_bridge", "hand_pose_msgs",
                 "sensor_msgs", "std_msgs", "geometry_msgs", "visualization_msgs",
                 "builtin_interfaces", "launch", "launch_ros"}  # fmt: skip
    for path in core.rglob("*.py"):
        if "ros" in path.relative_to(core).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in ros_roots, f"{path} imports {name}"
