"""One checkpoint format for every model: safetensors weights plus self-describing metadata.

A checkpoint is a single ``.safetensors`` file. The tensors are the model's ``state_dict``;
the header's ``__metadata__`` holds one JSON string under ``METADATA_KEY`` with everything
needed to rebuild and use the model without the code that trained it:

    format, format_version   "hand_pose_ros.checkpoint", 1
    architecture, config     registry name and constructor kwargs (``build_model(name, **config)``)
    spec                     input size, channels, mean/std, input kind, output, decoder, paper
    keypoint_names           the 21 names of ``hand_pose_ros.skeleton.KEYPOINT_NAMES``, in order
    training                 command, data config, seed (and whatever else the trainer adds)
    metrics                  evaluation results (non-finite numbers are stored as null)
    code_version             hand_pose_ros.__version__ and the git commit ("unknown" outside git)
    created                  ISO 8601 UTC time of saving

Loading never executes code from the file: the header is parsed as JSON here and the tensors
are read by the safetensors library (no pickle, no ``torch.load``), so a pickle renamed to
``.safetensors`` is refused as "not a safetensors file".
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import struct
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import hand_pose_ros
from hand_pose_ros.models.registry import ModelError, ModelSpec, build_model, list_models
from hand_pose_ros.skeleton import KEYPOINT_NAMES

METADATA_KEY = "hand_pose_ros"
FORMAT = "hand_pose_ros.checkpoint"
FORMAT_VERSION = 1
# The safetensors header is JSON; anything larger than this is not a header we wrote.
_MAX_HEADER_BYTES = 100 * 1024 * 1024
_REQUIRED_FIELDS = ("architecture", "config", "spec", "keypoint_names")
# Spec fields that change what the weights mean: a checkpoint trained with one value cannot be
# used by code that now declares another.
_SPEC_FIELDS_CHECKED = ("input_size", "input_channels", "mean", "std", "input_kind", "decoder")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written, read or matched to a model; the message says why."""


def checkpoint_metadata(
    model: nn.Module,
    *,
    training: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata ``save_checkpoint`` stores for ``model`` (also embedded in ONNX exports).

    Args:
        model: a registered model (has ``model_name``, ``config`` and ``spec``).
        training: how the weights were made: ``command``, ``data`` (config), ``seed`` and any
            other JSON-able entries. Missing ``command``/``data``/``seed`` are stored as null.
        metrics: evaluation results, JSON-able.
    """
    name = model_name(model)
    spec = model_spec(model)
    training_info: dict[str, Any] = {"command": None, "data": None, "seed": None}
    training_info.update(training or {})
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": name,
        "config": model_config(model),
        "spec": spec_to_dict(spec),
        "keypoint_names": list(KEYPOINT_NAMES),
        "training": training_info,
        "metrics": dict(metrics or {}),
        "code_version": {"hand_pose_ros": hand_pose_ros.__version__, "git_commit": git_commit()},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    # Round trip through JSON now, so what is returned is exactly what a reader will see.
    result: dict[str, Any] = json.loads(metadata_to_json(metadata))
    return result


def model_name(model: nn.Module) -> str:
    """The registry name of ``model`` (set by ``@register_model``)."""
    name = getattr(model, "model_name", None)
    if not isinstance(name, str):
        raise CheckpointError(
            f"{type(model).__name__} is not a registered model (no model_name); register it "
            "with @register_model so a checkpoint can rebuild it"
        )
    return name


def model_spec(model: nn.Module) -> ModelSpec:
    """The ``ModelSpec`` of a registered ``model``."""
    spec = getattr(model, "spec", None)
    if not isinstance(spec, ModelSpec):
        raise CheckpointError(f"{type(model).__name__}.spec is {type(spec).__name__}, "
                              "expected ModelSpec")  # fmt: skip
    return spec


def model_config(model: nn.Module) -> dict[str, Any]:
    """The constructor kwargs of a registered ``model`` (its ``config``)."""
    config = getattr(model, "config", None)
    if not isinstance(config, Mapping):
        raise CheckpointError(f"{type(model).__name__}.config is {type(config).__name__}, "
                              "expected a dict of constructor arguments")  # fmt: skip
    return dict(config)


def metadata_to_json(metadata: Mapping[str, Any]) -> str:
    """``metadata`` as strict JSON: numpy scalars/arrays, tuples and paths converted, NaN and
    infinities stored as null (strict JSON has no NaN; a metric that is NaN was not measured)."""
    try:
        return json.dumps(_jsonable(metadata), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint metadata is not JSON-able: {error}") from error


def spec_to_dict(spec: ModelSpec) -> dict[str, Any]:
    """``spec`` as a JSON-able dict (tuples become lists)."""
    result: dict[str, Any] = _jsonable(asdict(spec))
    return result


def spec_from_dict(data: Mapping[str, Any]) -> ModelSpec:
    """The ``ModelSpec`` stored in checkpoint or ONNX metadata."""
    try:
        return ModelSpec(
            input_size=(int(data["input_size"][0]), int(data["input_size"][1])),
            input_channels=int(data["input_channels"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            input_kind=str(data["input_kind"]),
            output=str(data["output"]),
            decoder=str(data["decoder"]),
            paper=str(data.get("paper", "")),
            extra=dict(data.get("extra") or {}),
        )
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise CheckpointError(f"invalid spec in metadata ({error!r}): {data}") from error


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    training: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``model``'s weights and metadata to ``path`` (a ``.safetensors`` file).

    The file is written next to ``path`` and renamed into place, so a crash never leaves a
    half-written checkpoint under the final name. Returns the metadata written.
    """
    from safetensors.torch import save_file

    path = Path(path)
    metadata = checkpoint_metadata(model, training=training, metrics=metrics)
    # safetensors refuses tensors that share memory (tied weights, views): store copies.
    tensors = {
        key: value.detach().to("cpu", copy=True).contiguous()
        for key, value in model.state_dict().items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        save_file(tensors, str(temporary), metadata={METADATA_KEY: metadata_to_json(metadata)})
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return metadata


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of the checkpoint at ``path``, validated; reads only the header.

    Raises:
        CheckpointError: missing file, not a safetensors file (corrupt, truncated, pickle),
            no or invalid hand_pose_ros metadata, or keypoints in another order.
    """
    header = _read_header(Path(path))
    raw = header.get("__metadata__")
    if not isinstance(raw, dict) or METADATA_KEY not in raw:
        raise CheckpointError(
            f"{path}: safetensors file without {METADATA_KEY!r} metadata (not written by "
            "hand_pose_ros.models.checkpoint.save_checkpoint)"
        )
    try:
        metadata = json.loads(raw[METADATA_KEY])
    except (TypeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: metadata is not valid JSON: {error}") from error
    validate_metadata(metadata, source=str(path))
    result: dict[str, Any] = metadata
    return result


def validate_metadata(metadata: Any, *, source: str = "metadata") -> None:
    """Check that ``metadata`` is complete and uses this project's keypoint order.

    Raises:
        CheckpointError: naming the first problem found.
    """
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{source}: metadata is a {type(metadata).__name__}, not an object")
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{source}: metadata format is {metadata.get('format')!r}, "
                              f"expected {FORMAT!r}")  # fmt: skip
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{source}: format_version {version!r} is not supported (this code reads up to "
            f"{FORMAT_VERSION}); update hand_pose_ros"
        )
    missing = [name for name in _REQUIRED_FIELDS if name not in metadata]
    if missing:
        raise CheckpointError(f"{source}: metadata lacks {', '.join(missing)}")
    if not isinstance(metadata["architecture"], str):
        raise CheckpointError(f"{source}: architecture must be a string")
    if not isinstance(metadata["config"], dict):
        raise CheckpointError(f"{source}: config must be an object")
    if not isinstance(metadata["spec"], dict):
        raise CheckpointError(f"{source}: spec must be an object")
    spec_from_dict(metadata["spec"])
    names = metadata["keypoint_names"]
    if not isinstance(names, list) or names != list(KEYPOINT_NAMES):
        raise CheckpointError(f"{source}: {_describe_order_difference(names)}")


def load_model(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model stored at ``path`` and load its weights; returns (model, metadata).

    The model comes back in eval mode on ``map_location``.

    Raises:
        CheckpointError: any reason ``read_metadata`` gives, an architecture this code does not
            register, a spec that differs from the one the code now declares, or tensors that
            do not match the architecture (missing and unexpected keys and shape mismatches
            are all listed).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    metadata = read_metadata(path)
    model = model_from_metadata(metadata, source=str(path))
    try:
        tensors = load_file(str(path), device="cpu")
    except SafetensorError as error:
        raise CheckpointError(f"{path}: cannot read tensors: {error}") from error
    problems = state_dict_mismatches(model.state_dict(), tensors)
    if problems:
        raise CheckpointError(
            f"{path}: tensors do not match {metadata['architecture']} with config "
            f"{metadata['config']}:\n  " + "\n  ".join(problems)
        )
    model.load_state_dict(tensors, strict=True)
    model.to(map_location)
    model.eval()
    return model, metadata


def model_from_metadata(metadata: Mapping[str, Any], *, source: str = "metadata") -> nn.Module:
    """A new model (random weights) built as ``metadata`` says, its spec checked against it."""
    name = metadata["architecture"]
    registered = list_models()
    if name not in registered:
        raise CheckpointError(
            f"{source}: unknown architecture {name!r}; this hand_pose_ros "
            f"({hand_pose_ros.__version__}) registers: {', '.join(registered) or 'none'}"
        )
    try:
        model = build_model(name, **metadata["config"])
    except ModelError as error:
        raise CheckpointError(f"{source}: {error}") from error
    stored = metadata["spec"]
    current = spec_to_dict(model_spec(model))
    differences = [
        f"{field}: checkpoint {stored.get(field)!r}, code {current[field]!r}"
        for field in _SPEC_FIELDS_CHECKED
        if stored.get(field) != current[field]
    ]
    if differences:
        raise CheckpointError(
            f"{source}: the {name} spec in this code differs from the one the weights were "
            "made with: " + "; ".join(differences)
        )
    return model


def state_dict_mismatches(
    expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], *, limit: int = 20
) -> list[str]:
    """Human-readable differences between a model's state dict and loaded tensors."""
    problems: list[str] = []
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = [
        f"{key}: checkpoint {tuple(found[key].shape)}, model {tuple(expected[key].shape)}"
        for key in sorted(set(expected) & set(found))
        if tuple(found[key].shape) != tuple(expected[key].shape)
    ]
    for title, items in (("missing", missing), ("unexpected", unexpected),
                         ("shape mismatch", shapes)):  # fmt: skip
        if items:
            shown = items[:limit]
            more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
            problems.append(f"{title} ({len(items)}): {', '.join(shown)}{more}")
    return problems


def temporary_path(path: Path) -> Path:
    """A unique name beside ``path`` to write to and then rename into place (the file is
    created with the usual permissions, unlike ``tempfile.mkstemp``'s private ones)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the source tree this package was imported from, or "unknown"."""
    package_dir = Path(hand_pose_ros.__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=package_dir, capture_output=True, text=True,
            timeout=5, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and len(commit) >= 7 else "unknown"


def _read_header(path: Path) -> dict[str, Any]:
    """The safetensors JSON header of ``path``, after checking the file is one, whole."""
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint is not a file: {path}")
    size = path.stat().st_size
    with path.open("rb") as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise CheckpointError(f"{path}: not a safetensors file ({size} bytes, too short)")
        (header_bytes,) = struct.unpack("<Q", prefix)
        if header_bytes > min(_MAX_HEADER_BYTES, size - 8) or header_bytes < 2:
            raise CheckpointError(f"{path}: not a safetensors file ({_guess_format(prefix)})")
        raw = stream.read(header_bytes)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: not a safetensors file (header is not JSON)") from error
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file (header is not an object)")
    data_bytes = size - 8 - header_bytes
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2):
            raise CheckpointError(f"{path}: corrupt safetensors header (entry {key!r})")
        end = max(end, int(offsets[1]))
    if end != data_bytes:
        raise CheckpointError(
            f"{path}: corrupt or truncated checkpoint: the header describes {end} bytes of "
            f"tensor data, the file holds {data_bytes}"
        )
    return header


def _guess_format(prefix: bytes) -> str:
    """What a file that is not safetensors probably is, from its first bytes."""
    if prefix.startswith(b"PK\x03\x04"):
        return "a zip archive, probably torch.save output; refused: unpickling can run code"
    if prefix[:1] == b"\x80" and 2 <= prefix[1] <= 5:
        return "a Python pickle; refused: unpickling can run code"
    return "corrupt or truncated: its header length does not fit the file"


def _describe_order_difference(names: Any) -> str:
    if not isinstance(names, list):
        return f"keypoint_names must be a list, got {type(names).__name__}"
    if len(names) != len(KEYPOINT_NAMES):
        return (f"the weights predict {len(names)} keypoints, this project uses "
                f"{len(KEYPOINT_NAMES)} ({', '.join(KEYPOINT_NAMES)})")  # fmt: skip
    first = next(i for i, (a, b) in enumerate(zip(names, KEYPOINT_NAMES, strict=True)) if a != b)
    return (
        f"keypoint order differs from the project's (hand_pose_ros.skeleton.KEYPOINT_NAMES): "
        f"index {first} is {names[first]!r} in the checkpoint, {KEYPOINT_NAMES[first]!r} here; "
        "remap the output channels before saving"
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, torch.Tensor):
        return _jsonable(value.detach().cpu().tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{type(value).__name__} value {value!r}")
