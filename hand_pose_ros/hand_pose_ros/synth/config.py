"""Every distribution parameter of the synthetic world, in one object.

A differently distributed test set is a different config, not different code:
``SynthConfig.from_yaml(path)`` reads any subset of the fields (the rest keep their defaults)
and ``to_yaml`` writes all of them, so ``hand-pose synth config`` prints a complete,
editable file.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hand_pose_ros.synth.appearance import AppearanceConfig
from hand_pose_ros.synth.hand_model import HandShapeConfig
from hand_pose_ros.synth.placement import PlacementConfig
from hand_pose_ros.synth.scene import CameraConfig, SceneConfig
from hand_pose_ros.synth.sensor import SensorConfig


class ConfigError(ValueError):
    """A synthetic-world config file names a field that does not exist or has a bad value."""


@dataclass
class RenderConfig:
    """How frames and crops are rendered.

    Attributes:
        light_shadows: cast shadows of the lights in full frames (about 10 ms a light).
        stereo_shadow: the depth camera's occlusion shadow (pixels the second imager cannot
            see have no depth), in frames and crops.
        crop_stereo_shadow: how crops get it: "image" reads it off the crop's own depth
            (no rays; misses an occluder outside the window, ~0.1 ms), "rays" ray-tests it
            exactly as frames do (~1.4 ms a crop).
        threads: Embree threads per process (0: all cores).
    """

    light_shadows: bool = True
    stereo_shadow: bool = True
    crop_stereo_shadow: str = "image"
    threads: int = 0

    def __post_init__(self) -> None:
        if self.crop_stereo_shadow not in CROP_SHADOW_METHODS:
            raise ConfigError(
                f"render.crop_stereo_shadow = {self.crop_stereo_shadow!r}: expected one of "
                f"{CROP_SHADOW_METHODS}"
            )


CROP_SHADOW_METHODS = ("image", "rays")


@dataclass
class CropConfig:
    """Training crops around one hand.

    Attributes:
        depth_size: side of the depth cube crop in pixels (seed 002: 128).
        cube_m: side of the depth cube in metres.
        cube_center_jitter_m: standard deviation of the cube centre's offset from the
            hand's keypoint centroid, per axis (the real localiser's error).
        rgb_size: side of the colour crop in pixels (256 serves MSAHP; 224 models resize).
        rgb_padding: range of the window side as a multiple of the keypoints' box side.
        rgb_center_jitter: standard deviation of the window centre's offset, as a fraction
            of the window side.
        rgb_rotation_deg: range of the window's in-plane rotation.
        views_per_scene: augmented views rendered of each hand of a sampled scene.
    """

    depth_size: int = 128
    cube_m: float = 0.25
    cube_center_jitter_m: float = 0.012
    rgb_size: int = 256
    rgb_padding: tuple[float, float] = (1.2, 1.6)
    rgb_center_jitter: float = 0.06
    rgb_rotation_deg: tuple[float, float] = (-25.0, 25.0)
    views_per_scene: int = 4


@dataclass
class SynthConfig:
    """The whole synthetic world's distributions."""

    camera: CameraConfig = field(default_factory=CameraConfig)
    hand: HandShapeConfig = field(default_factory=HandShapeConfig)
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)
    sensor: SensorConfig = field(default_factory=SensorConfig)
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    crop: CropConfig = field(default_factory=CropConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (tuples as lists), for YAML and for shard metadata."""
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthConfig:
        """A config from (a subset of) ``to_dict``'s data; unknown keys are an error."""
        return _from_plain(cls, data, "config")

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_yaml(cls, path: str | Path) -> SynthConfig:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as error:  # a typo in a hand-edited file: say where
            raise ConfigError(f"{path}: not valid YAML: {error}") from error
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of config sections, got {type(data)}")
        return cls.from_dict(data)


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    return value


def _from_plain(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(fields)}")
    values = {}
    for name, raw in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _from_plain(hint, raw, f"{where}.{name}")  # type: ignore[arg-type]
        elif _is_tuple(hint):
            if not isinstance(raw, list | tuple):
                raise ConfigError(f"{where}.{name}: expected a list, got {raw!r}")
            values[name] = tuple(raw)
        else:
            values[name] = raw
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from error


def _is_tuple(hint: Any) -> bool:
    if typing.get_origin(hint) is tuple:
        return True
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_is_tuple(arg) for arg in typing.get_args(hint))
    return False
