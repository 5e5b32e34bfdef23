"""Start a run from a trained checkpoint's weights (fine-tuning), optionally giving some
tensors back their fresh initial values.

Unlike ``--resume``, which continues one run with its optimiser state and progress, a warm
start is a new run: step 0, a fresh optimiser, its own schedule. Typical uses: fine-tuning
the shipped synthetic weights on a real dataset, or re-initialising parts of a network that
stopped learning (the dead attention masks of docs/eval/residual_attention_3d.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from torch import nn

from hand_pose_ros.models.checkpoint import (
    CheckpointError,
    load_model,
    model_config,
    model_name,
)


class WarmStartError(RuntimeError):
    """A checkpoint or pattern that does not fit the model; the message says why."""


def warm_start(
    model: nn.Module, checkpoint: str | Path, *, reinit: str | None = None
) -> dict[str, Any]:
    """Load ``checkpoint``'s weights into ``model`` (freshly built, with its initial weights),
    except the tensors whose state-dict name matches the regular expression ``reinit``
    (``re.match``, from the start of the name), which keep their initial values.

    Returns:
        What a new checkpoint should record of where it started: the path, the source's
        training description and metrics, and the re-initialised tensor names' pattern and
        count.

    Raises:
        WarmStartError: an unreadable checkpoint, another architecture or config, or a
            pattern that matches no tensor.
    """
    trained, metadata = _load(checkpoint)
    if model_name(trained) != model_name(model) or model_config(trained) != model_config(model):
        raise WarmStartError(
            f"{checkpoint} holds {model_name(trained)} with config {model_config(trained)}; "
            f"the run builds {model_name(model)} with config {model_config(model)}"
        )
    weights = trained.state_dict()
    fresh = model.state_dict()
    kept_fresh: list[str] = []
    if reinit is not None:
        try:
            pattern = re.compile(reinit)
        except re.error as error:
            message = f"--reinit {reinit!r} is not a regular expression: {error}"
            raise WarmStartError(message) from error
        kept_fresh = [name for name in fresh if pattern.match(name)]
        if not kept_fresh:
            raise WarmStartError(
                f"--reinit {reinit!r} matches no tensor of {model_name(model)} "
                f"(names look like {next(iter(fresh))!r})"
            )
        for name in kept_fresh:
            weights[name] = fresh[name]
    model.load_state_dict(weights, strict=True)
    return _record(checkpoint, metadata, reinit, len(kept_fresh))


def warm_start_record(checkpoint: str | Path, *, reinit: str | None = None) -> dict[str, Any]:
    """What ``warm_start`` returns, without loading anything into a model (for a resumed
    warm-started run, whose weights come from its resume file)."""
    trained, metadata = _load(checkpoint)
    count = 0
    if reinit is not None:
        count = sum(1 for name in trained.state_dict() if re.match(reinit, name))
    return _record(checkpoint, metadata, reinit, count)


def _load(checkpoint: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    try:
        return load_model(checkpoint)
    except CheckpointError as error:
        raise WarmStartError(str(error)) from error


def _record(
    checkpoint: str | Path, metadata: dict[str, Any], reinit: str | None, count: int
) -> dict[str, Any]:
    return {
        "checkpoint": str(checkpoint),
        "training": metadata.get("training"),
        "metrics": metadata.get("metrics"),
        "reinit": reinit,
        "reinit_tensors": count,
    }
