"""Hand localisation in depth images: where the depth model's cube crop goes.

Numpy + OpenCV only; the same code places the crop in training and at inference.
"""

from hand_pose_ros.localise.center_of_mass import crop_hand, locate_hands
from hand_pose_ros.localise.config import HandLocation, LocaliseError, LocaliserConfig

__all__ = ["HandLocation", "LocaliseError", "LocaliserConfig", "crop_hand", "locate_hands"]
