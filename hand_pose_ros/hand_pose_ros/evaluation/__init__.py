"""Evaluation of 3D hand pose: metrics of seed 002 and the report that ``hand-pose eval`` writes.

numpy only at import time; ``write_report`` loads matplotlib when it draws.
"""

from hand_pose_ros.evaluation.metrics import (
    DEFAULT_THRESHOLDS_MM,
    PoseMetrics,
    joint_errors_mm,
    mean_pose_baseline,
    pose_metrics,
)
from hand_pose_ros.evaluation.report import FILES, load_results, write_report

__all__ = [
    "DEFAULT_THRESHOLDS_MM",
    "FILES",
    "PoseMetrics",
    "joint_errors_mm",
    "load_results",
    "mean_pose_baseline",
    "pose_metrics",
    "write_report",
]
