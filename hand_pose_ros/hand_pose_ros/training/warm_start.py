"""Start a run from a trained checkpoint's weights (fine-tuning), optionally giving some
tensors back their fresh initial values.

Unlike ``--resume``, which continues one run with its optimiser state and progress, a warm
start is a new run: step 0, a fresh optimiser, its own schedule. Typical uses: fine-tuning
the shipped synthetic weights on a real dataset, or re-initialising parts of a network that
stopped learning (the dead attention masks of docs/eval/residual_attention_3d.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from torch import nn

from hand_pose_ros.models.checkpoint import (
    CheckpointError,
    load_model,
    model_config,
    model_name,
    read_metadata,
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
    record = warm_start_record(model, checkpoint, reinit=reinit)
    try:
        trained, _ = load_model(checkpoint)
    except CheckpointError as error:
        raise WarmStartError(str(error)) from error
    weights = trained.state_dict()
    fresh = model.state_dict()
    for name in _matching(fresh, reinit):
        weights[name] = fresh[name]
    model.load_state_dict(weights, strict=True)
    return record


def warm_start_record(
    model: nn.Module, checkpoint: str | Path, *, reinit: str | None = None
) -> dict[str, Any]:
    """What ``warm_start`` checks and returns, loading no weights (for a resumed
    warm-started run, whose weights come from its resume file)."""
    try:
        metadata = read_metadata(checkpoint)
    except CheckpointError as error:
        raise WarmStartError(str(error)) from error
    # Compared as JSON: the checkpoint's config went through JSON (tuples became lists).
    # Keys that change no weight (a loss) may differ, or be missing from an older checkpoint.
    built = json.loads(json.dumps(model_config(model)))
    free: frozenset[str] = getattr(model, "TRAINING_ONLY_CONFIG", frozenset())
    saved, wanted = (
        {key: value for key, value in config.items() if key not in free}
        for config in (metadata["config"], built)
    )
    if metadata["architecture"] != model_name(model) or saved != wanted:
        raise WarmStartError(
            f"{checkpoint} holds {metadata['architecture']} with config {metadata['config']}; "
            f"the run builds {model_name(model)} with config {built}"
        )
    return {
        "checkpoint": str(checkpoint),
        "training": metadata.get("training"),
        "metrics": metadata.get("metrics"),
        "reinit": reinit,
        "reinit_tensors": len(_matching(model.state_dict(), reinit)),
    }


def _matching(state: dict[str, Any], reinit: str | None) -> list[str]:
    """The names in ``state`` that ``reinit`` matches; none without a pattern."""
    if reinit is None:
        return []
    try:
        pattern = re.compile(reinit)
    except re.error as error:
        message = f"--reinit {reinit!r} is not a regular expression: {error}"
        raise WarmStartError(message) from error
    names = [name for name in state if pattern.match(name)]
    if not names:
        raise WarmStartError(
            f"--reinit {reinit!r} matches no tensor (names look like {next(iter(state))!r})"
        )
    return names
