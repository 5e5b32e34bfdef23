"""The thin rclpy layer: the only code in hand_pose_ros that imports ROS.

Nodes here convert ROS messages to numpy, call the framework-free core and publish what it
returns, using the same message builders (``hand_pose_ros.messages``) as bag mode.
Importing this package does not import rclpy; its modules do.
"""
