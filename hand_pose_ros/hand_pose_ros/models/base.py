"""The contract every model of the zoo implements, and the glue they all share.

A zoo model is an ``nn.Module`` registered with ``@register_model(name)`` (which sets the
class's ``model_name``) that subclasses ``HandPoseModel`` and provides:

- ``spec``: its ``ModelSpec`` (input size, channels, normalisation, output, decoder), a
  property or a class attribute. Checkpoints, ONNX export, inference and tests read it
  instead of per-model code.
- ``_config``: the constructor's keyword arguments, JSON-able, set in ``__init__``;
  ``config`` returns a copy, which checkpoints store to rebuild the model.
- ``forward_features(x)``: the input batch -> the backbone's features.
- ``forward_head(features)``: those features -> the network's one output tensor (the
  output the spec names). ``forward`` is ``forward_head(forward_features(x))``, the graph
  that ONNX export traces.
- ``make_targets(keypoints, visible)``: a batch of labels (numpy) -> the dict of numpy
  arrays ``loss`` compares the output with (GestureNet takes class labels instead of
  keypoints).
- ``loss(output, targets)``: a scalar training loss, ``targets`` as ``make_targets`` made
  them, converted to tensors.
- ``decode(output)``: the output as numpy -> (keypoints, confidence) (class indices and
  confidence for GestureNet). numpy-only: ``ModelRunner`` calls it on a model built on the
  "meta" device to decode onnxruntime outputs.

The contract methods here raise ``NotImplementedError``, as ``nn.Module.forward`` does; they
are not ``abc`` abstract methods so that models stay plain ``nn.Module`` classes (no
metaclass) for ``torch.export`` and the ONNX exporters.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from torch import Tensor, nn

from hand_pose_ros.models.registry import ModelSpec


class HandPoseModel(nn.Module):
    """Base class of the zoo's models: ``config``, ``forward`` and the contract (see the
    module docstring)."""

    model_name: ClassVar[str]  # set by @register_model
    # Config keys that change how the model trains but no weight (a loss, a dropout rate):
    # a fine-tune may set them differently from the checkpoint it starts from.
    TRAINING_ONLY_CONFIG: ClassVar[frozenset[str]] = frozenset()
    _config: dict[str, Any]

    @property
    def spec(self) -> ModelSpec:
        """The model's input / output contract."""
        raise NotImplementedError(f"{type(self).__name__} does not define spec")

    @property
    def config(self) -> dict[str, Any]:
        """The constructor's keyword arguments (JSON-able)."""
        return dict(self._config)

    def forward_features(self, x: Tensor) -> Tensor:
        """The input batch -> backbone features."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward_features")

    def forward_head(self, features: Tensor) -> Tensor:
        """Backbone features -> the network's output."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward_head")

    def forward(self, x: Tensor) -> Tensor:
        """The input batch -> the network's output: ``forward_head(forward_features(x))``."""
        return self.forward_head(self.forward_features(x))

    def make_targets(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """Training targets (numpy) for a batch of labels."""
        raise NotImplementedError(f"{type(self).__name__} does not define make_targets")

    def loss(self, output: Tensor, targets: dict[str, Tensor]) -> Tensor:
        """The scalar training loss of ``output`` against ``make_targets``' targets."""
        raise NotImplementedError(f"{type(self).__name__} does not define loss")

    def decode(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's output (numpy) -> (keypoints or classes, confidence)."""
        raise NotImplementedError(f"{type(self).__name__} does not define decode")


__all__ = ["HandPoseModel"]
