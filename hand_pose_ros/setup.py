"""hand_pose_ros: an ament_python ROS 2 package that is also pip-installable.

`colcon build` installs it into a ROS 2 workspace; `pip install -e hand_pose_ros` installs the
framework-free core and the `hand-pose` command on a machine without ROS.
"""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "hand_pose_ros"
HERE = Path(__file__).resolve().parent


def _files(pattern: str) -> list[str]:
    # Paths relative to this file: setuptools wants relative data_files sources.
    return sorted(str(Path(p).relative_to(HERE)) for p in glob(str(HERE / pattern)))


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", _files("launch/*.launch.py")),
        ("share/" + PACKAGE + "/config", _files("config/*.yaml")),
        ("share/" + PACKAGE + "/rviz", _files("rviz/*.rviz")),
        ("share/" + PACKAGE + "/models", _files("models/*")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="hand_pose_ros maintainers",
    maintainer_email="maintainers@hand-pose-ros.invalid",
    description=(
        "Hand keypoints for robots: 21 keypoints in pixels and metres in the camera "
        "frame, palm pose, track id, handedness and gesture."
    ),
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "hand-pose = hand_pose_ros.cli:main",
        ],
    },
)
