"""Running a model: one interface over torch and onnxruntime (``ModelRunner``).

The runtime imports torch (about a second), so the package loads it only when one of its
names is used: the command line can then read light submodules (``depth_views``' view
sets, for its ``--views`` choices) without paying for torch at every start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hand_pose_ros.inference.runtime import BACKENDS, InferenceError, ModelRunner

__all__ = ["BACKENDS", "InferenceError", "ModelRunner"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hand_pose_ros.inference import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
