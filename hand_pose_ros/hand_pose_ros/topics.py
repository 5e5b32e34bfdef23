"""Default topic names: those of the RealSense ROS 2 driver with aligned depth.

The live node and bag mode share them so that a bag recorded from the camera is read with no
options, and so that the synthetic world writes the same names.
"""

COLOR_TOPIC = "/camera/color/image_raw"
DEPTH_TOPIC = "/camera/aligned_depth_to_color/image_raw"
CAMERA_INFO_TOPIC = "/camera/color/camera_info"
HANDS_TOPIC = "/hands"
MARKERS_TOPIC = "/hands/markers"
GROUND_TRUTH_TOPIC = "/hands_gt"
