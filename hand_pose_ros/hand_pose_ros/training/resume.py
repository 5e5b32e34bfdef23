"""The trainer's resume file: weights, optimiser moments, RNG and progress, no pickle.

Like checkpoints (``models/checkpoint.py``), it is one safetensors file whose JSON header
holds everything that is not a tensor, so resuming never unpickles anything:

    model.<key>                  the model's state_dict
    optimizer.<param>.<name>     Adam's per-parameter state (exp_avg, exp_avg_sq, step)
    rng.torch                    torch's CPU generator state (dropout)
    header "progress"            step, epoch, batches done in the epoch, best metric, history,
                                 the optimiser's param_groups and the run's settings
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hand_pose_ros.models.checkpoint import temporary_path

_KEY = "hand_pose_ros.resume"


class ResumeError(RuntimeError):
    """A resume file that cannot be read or does not fit the run."""


def save_resume(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, progress: dict[str, Any]
) -> None:
    """Write the resume file atomically (a crash leaves the previous one)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {
        f"model.{key}": value.detach().to("cpu", copy=True).contiguous()
        for key, value in model.state_dict().items()
    }
    state = optimizer.state_dict()
    for index, entries in state["state"].items():
        for name, value in entries.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"optimizer.{index}.{name}"] = tensor.detach().to("cpu", copy=True).contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    header = dict(progress, param_groups=state["param_groups"])
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        save_file(tensors, str(temporary), metadata={_KEY: json.dumps(header)})
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load_resume(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore model, optimiser and RNG from ``path``; returns the progress header."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = json.loads((handle.metadata() or {})[_KEY])
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (OSError, KeyError, json.JSONDecodeError, SafetensorError) as error:
        raise ResumeError(f"{path}: not a hand_pose_ros resume file ({error})") from error
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise ResumeError(f"{path}: the weights do not fit this model ({error})") from error
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            per_param.setdefault(int(index), {})[name] = value
    try:
        optimizer.load_state_dict({"state": per_param, "param_groups": header.pop("param_groups")})
    except (ValueError, KeyError) as error:
        raise ResumeError(f"{path}: the optimiser state does not fit ({error})") from error
    torch.set_rng_state(tensors["rng.torch"])
    return dict(header)
