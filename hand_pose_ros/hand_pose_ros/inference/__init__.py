"""Running a model: one interface over torch and onnxruntime (``ModelRunner``)."""

from hand_pose_ros.inference.runtime import BACKENDS, InferenceError, ModelRunner

__all__ = ["BACKENDS", "InferenceError", "ModelRunner"]
