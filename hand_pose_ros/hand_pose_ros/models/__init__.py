"""The model zoo: one module per seed architecture, all registered by name.

``build_model(name, **config)`` makes one; ``list_models()`` names them. Importing this
package imports every architecture module (registration happens at import).
"""

from hand_pose_ros.models import (  # noqa: F401  (imported to register the architectures)
    attention_hand_net,
    efficient_1d_heatmap,
    gesture_net,
    mobile_heatmap,
    msahp,
    residual_attention_3d,
)
from hand_pose_ros.models.registry import (
    ModelError,
    ModelSpec,
    build_model,
    list_models,
    register_model,
)

__all__ = ["ModelError", "ModelSpec", "build_model", "list_models", "register_model"]
