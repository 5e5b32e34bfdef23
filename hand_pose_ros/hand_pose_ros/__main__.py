"""``python -m hand_pose_ros``: the ``hand-pose`` command (e.g. for ``torchrun -m``)."""

import sys

from hand_pose_ros.cli import main

if __name__ == "__main__":
    sys.exit(main())
