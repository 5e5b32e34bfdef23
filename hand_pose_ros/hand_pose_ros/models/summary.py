"""A table of the model zoo: size and cost of every registered model beside its paper's figures.

Parameters are counted on the built model (trainable and frozen alike, buffers excluded).
FLOPs per image are measured with ``torch.utils.flop_counter.FlopCounterMode`` on one random
input in eval mode: it counts matrix products and convolutions (a multiply-accumulate is 2
FLOPs) and ignores element-wise work (activations, normalisation, pooling). Papers often count
multiply-accumulates and call them FLOPs, so a factor of 2 between the columns is not a
discrepancy by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hand_pose_ros.models.checkpoint import model_config, model_name, model_spec
from hand_pose_ros.models.export import example_input, input_shape
from hand_pose_ros.models.registry import build_model, list_models

NOT_GIVEN = "—"


@dataclass(frozen=True)
class PaperFigures:
    """What a paper reports for its model (as printed; None where it gives nothing)."""

    params: str | None = None
    flops: str | None = None
    source: str = ""


# Figures the seed papers print (the text files in the project's seed list). Keyed by model
# name, then by a config value that selects the variant ("" = any variant).
PAPER_FIGURES: dict[str, dict[str, PaperFigures]] = {
    "attention_hand_net": {
        "": PaperFigures(params="1.9M", flops="7.1M", source="Santavas et al. (seed 000)"),
    },
    "efficient_1d_heatmap": {
        "b4": PaperFigures(params="19.5M", source="Schneider et al. (seed 004), B4"),
        "b0": PaperFigures(params="5.4M", source="Schneider et al. (seed 004), B0"),
    },
}


# Configurations besides the default that get a row of their own: the variants whose size the
# paper reports.
EXTRA_ROWS: dict[str, tuple[dict[str, Any], ...]] = {
    "efficient_1d_heatmap": ({"variant": "b4"},),
}


@dataclass(frozen=True)
class ModelSummary:
    """One row of the table.

    Attributes:
        name: registry name.
        config: the constructor kwargs the row was measured with.
        params: number of parameters.
        flops: FLOPs for one input (see the module docstring for what is counted).
        input_shape: network input for one sample, e.g. (3, 224, 224).
        output_shape: network output for one sample.
        input_kind, decoder: from the model's spec.
        paper: the model's paper figures (empty when the paper gives none).
    """

    name: str
    config: dict[str, Any]
    params: int
    flops: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_kind: str
    decoder: str
    paper: PaperFigures


def summarize(name: str, **config: Any) -> ModelSummary:
    """Measure model ``name`` built with ``config``."""
    model = build_model(name, **config)
    return summarize_model(model)


def summarize_model(model: nn.Module) -> ModelSummary:
    """Measure a registered ``model`` as built (its weights do not matter)."""
    spec = model_spec(model)
    name = model_name(model)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            output = model(example_input(spec, 1))
    finally:
        model.train(was_training)
    config = model_config(model)
    return ModelSummary(
        name=name,
        config=config,
        params=sum(parameter.numel() for parameter in model.parameters()),
        flops=int(counter.get_total_flops()),
        input_shape=input_shape(spec, 1)[1:],
        output_shape=tuple(output.shape[1:]),
        input_kind=spec.input_kind,
        decoder=spec.decoder,
        paper=paper_figures(name, config),
    )


def summaries(names: Iterable[str] | None = None) -> list[ModelSummary]:
    """One row per model in its default config, plus ``EXTRA_ROWS``, for ``names`` or every
    registered model."""
    rows = []
    for name in list_models() if names is None else names:
        rows.append(summarize(name))
        rows.extend(summarize(name, **config) for config in EXTRA_ROWS.get(name, ()))
    return rows


def paper_figures(name: str, config: Mapping[str, Any]) -> PaperFigures:
    """The paper's figures for model ``name`` in the variant ``config`` selects."""
    variants = PAPER_FIGURES.get(name, {})
    values = {str(value).lower() for value in config.values() if isinstance(value, str)}
    for key, figures in variants.items():
        if key and key in values:
            return figures
    return variants.get("", PaperFigures())


def markdown_table(rows: Iterable[ModelSummary] | None = None) -> str:
    """The zoo table in Markdown (default: ``summaries()``)."""
    rows = summaries() if rows is None else list(rows)
    lines = [
        "| model | input | output | params | paper params | FLOPs / image | paper FLOPs "
        "| decoder |",
        "|---|---|---|--:|--:|--:|--:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {_label(row)} | {_shape(row.input_shape)} {row.input_kind} "
            f"| {_shape(row.output_shape)} | {format_count(row.params)} "
            f"| {row.paper.params or NOT_GIVEN} | {format_count(row.flops)} "
            f"| {row.paper.flops or NOT_GIVEN} | {row.decoder} |"
        )
    return "\n".join(lines) + "\n"


def format_count(value: float) -> str:
    """1234567 -> "1.23M"; 3.4e9 -> "3.40G"."""
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.{3 if abs(value) < 10 * threshold else 4}g}{suffix}"
    return f"{value:g}"


def _label(row: ModelSummary) -> str:
    variants = [key for key in PAPER_FIGURES.get(row.name, {}) if key]
    chosen = [str(value) for value in row.config.values()
              if isinstance(value, str) and value.lower() in variants]  # fmt: skip
    return f"{row.name} ({', '.join(chosen)})" if chosen else row.name


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(size) for size in shape)
