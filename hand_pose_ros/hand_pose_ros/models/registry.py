"""Named model factories, and what travels with a model: its input and output contract.

Every architecture registers a factory under a stable name with ``@register_model(name)``;
``build_model(name, **config)`` makes one. The factory's class carries a ``ModelSpec``
saying what the network eats (input size, channels, normalisation) and what it returns
(output name and shape, which decoder turns it into keypoints), so checkpoints, ONNX export,
inference and tests need no per-model code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn


class ModelError(ValueError):
    """An unknown model name, or a configuration the model cannot be built with."""


@dataclass(frozen=True)
class ModelSpec:
    """The contract of a model: input, normalisation, output, decoder.

    Attributes:
        input_size: (height, width) of the input in pixels.
        input_channels: 3 for RGB, 1 for a depth crop, 0 for a non-image input.
        mean, std: per-channel normalisation applied to inputs in [0, 1] (RGB) or as they
            are (depth crops are already in [-1, 1]: mean 0, std 1).
        input_kind: "rgb" (uint8 RGB crop / 255), "depth_cube" (seed-002 normalised depth
            crop) or "keypoints" (GestureNet's normalised 2x21 keypoints).
        output: name of the output the decoder reads, for documentation and ONNX.
        decoder: name of the codec in ``hand_pose_ros.codecs`` that decodes it.
        paper: the citation of the architecture.
    """

    input_size: tuple[int, int]
    input_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_kind: str
    output: str
    decoder: str
    paper: str
    extra: dict[str, Any] = field(default_factory=dict)


ModelT = TypeVar("ModelT", bound=type[nn.Module])
_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[ModelT], ModelT]:
    """Class decorator: register a model class under ``name`` (its ``__init__`` kwargs are
    the model's config). The class must have a ``spec: ModelSpec`` attribute (or property)."""

    def decorate(cls: ModelT) -> ModelT:
        if name in _REGISTRY:
            raise ModelError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = cls
        cls.model_name = name  # type: ignore[attr-defined]
        return cls

    return decorate


def build_model(name: str, **config: Any) -> nn.Module:
    """A new model ``name`` with ``config`` (its constructor's keyword arguments)."""
    _import_architectures()
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    try:
        return _REGISTRY[name](**config)
    except TypeError as error:
        raise ModelError(f"cannot build {name!r} with {config}: {error}") from error


def list_models() -> list[str]:
    """The registered model names, sorted."""
    _import_architectures()
    return sorted(_REGISTRY)


def _import_architectures() -> None:
    # Importing the package imports every architecture module, which registers them.
    import hand_pose_ros.models  # noqa: F401
