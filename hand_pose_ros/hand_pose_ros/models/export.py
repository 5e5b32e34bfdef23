"""ONNX export: one self-describing file per model, checked against torch with onnxruntime.

The exported graph has one input named ``input`` and one output named ``output``, a dynamic
batch axis, opset 18, and no external data (weights inside the file). The checkpoint metadata
(``hand_pose_ros.models.checkpoint``) is stored as JSON in the model's ``metadata_props`` under
the same key as in a checkpoint, so an ONNX file alone says which architecture, normalisation,
decoder and keypoint order it has, and how its weights were made.

Exporter choice: the dynamo exporter (``torch.export`` based, the default since torch 2.9,
the maintained path; the TorchScript exporter is deprecated) first, with
``external_data=False``. If it fails for a model, or the graph it writes does not reproduce
torch at another batch size, the TorchScript exporter is tried, then a fixed batch of 1 as a
last resort. ``OnnxExport`` says which one produced the file and why the ones before it were
rejected.

The dynamo exporter's onnxscript graph optimiser is off by default (``optimize=False``): its
pattern rewriter is quadratic in the number of nodes (attention_hand_net's ~9k-node graph:
minutes on two cores, several times the export itself), and onnxruntime applies its own
graph optimisations (constant folding, fusions) when it loads the file anyway. The
exporter's per-node debug metadata (stack traces with local paths) is stripped: two thirds
of attention_hand_net's file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hand_pose_ros.models.checkpoint import (
    METADATA_KEY,
    CheckpointError,
    checkpoint_metadata,
    metadata_to_json,
    model_name,
    model_spec,
    temporary_path,
    validate_metadata,
)
from hand_pose_ros.models.registry import ModelSpec
from hand_pose_ros.skeleton import NUM_KEYPOINTS

INPUT_NAME = "input"
OUTPUT_NAME = "output"
DEFAULT_OPSET = 18
# Export traces at TRACE_BATCH and checks at CHECK_BATCH: a graph with the batch baked in
# fails the check instead of failing later in deployment.
TRACE_BATCH = 2
CHECK_BATCH = 3
# How far an exported graph may drift from torch before the next exporter is tried; the tests
# hold every model to 1e-4.
EXPORT_TOLERANCE = 1e-3


class ExportError(RuntimeError):
    """No exporter produced a graph that runs in onnxruntime and matches torch."""


@dataclass(frozen=True)
class OnnxExport:
    """What ``export_onnx`` wrote.

    Attributes:
        path: the ONNX file.
        exporter: "dynamo" or "torchscript".
        dynamic_batch: whether the batch axis is dynamic (else fixed at 1).
        opset: ONNX opset of the default domain.
        max_abs_diff: max |onnxruntime - torch| on a random batch, or None when not checked.
        output_scale: max |torch output| on that batch (to judge the difference by), or None.
        rejected: "exporter: reason" for every attempt that came before the one kept.
    """

    path: Path
    exporter: str
    dynamic_batch: bool
    opset: int
    max_abs_diff: float | None
    output_scale: float | None = None
    rejected: tuple[str, ...] = field(default=())


def input_shape(spec: ModelSpec, batch: int = 1) -> tuple[int, ...]:
    """The network input shape for ``batch`` samples: (N, C, H, W) for images, (N, 2, 21)
    for keypoint input (spec.input_channels == 0)."""
    if spec.input_kind == "keypoints" or spec.input_channels == 0:
        return (batch, 2, NUM_KEYPOINTS)
    return (batch, spec.input_channels, *spec.input_size)


def example_input(spec: ModelSpec, batch: int = TRACE_BATCH, *, seed: int = 0) -> torch.Tensor:
    """A random float32 input of the kind the model expects (normalised images are roughly
    standard normal; depth cubes lie in [-1, 1])."""
    generator = torch.Generator().manual_seed(seed)
    shape = input_shape(spec, batch)
    if spec.input_kind == "depth_cube":
        return torch.rand(shape, generator=generator) * 2.0 - 1.0
    return torch.randn(shape, generator=generator)


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    verify: bool = True,
    optimize: bool = False,
) -> OnnxExport:
    """Export ``model`` (in eval mode) to one ONNX file at ``path``.

    Args:
        model: a registered model.
        path: the ``.onnx`` file to write.
        metadata: the checkpoint metadata to embed (``load_model``'s second result); default:
            ``checkpoint_metadata(model)`` (no training information).
        opset: ONNX opset, at least 17.
        dynamic_batch: make the batch axis dynamic (else fixed at 1).
        verify: run the file in onnxruntime at another batch size and compare with torch;
            when it fails, try the next exporter.
        optimize: run onnxscript's graph optimiser on the dynamo export (slow on large
            graphs; onnxruntime optimises at load time either way).

    Raises:
        ExportError: every exporter failed; the message has each reason.
    """
    if opset < 17:
        raise ExportError(f"opset {opset} is too old; use 17 or later")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = dict(metadata) if metadata is not None else checkpoint_metadata(model)
    metadata_json = metadata_to_json(metadata)
    spec = model_spec(model)
    attempts = [("dynamo", dynamic_batch), ("torchscript", dynamic_batch)]
    if dynamic_batch:
        attempts.append(("dynamo", False))
    rejected: list[str] = []
    was_training = model.training
    model.eval()
    try:
        for exporter, dynamic in attempts:
            label = f"{exporter}{'' if dynamic else ' (batch 1)'}"
            try:
                _export(model, spec, path, exporter=exporter, dynamic=dynamic, opset=opset,
                        optimize=optimize)  # fmt: skip
                _embed_metadata(path, metadata_json)
                difference = scale = None
                if verify:
                    batch = CHECK_BATCH if dynamic else 1
                    difference, scale = _compare(model, path, batch=batch, seed=1)
                    # Relative to the output's size: at random initialisation some heads
                    # output ~1e-9, where any absolute tolerance would pass a wrong graph.
                    if not difference <= EXPORT_TOLERANCE * scale:
                        raise ExportError(
                            f"max |onnxruntime - torch| = {difference:.3g}, more than "
                            f"{EXPORT_TOLERANCE:g} of the largest output {scale:.3g}"
                        )
            except Exception as error:  # any exporter failure: try the next one
                rejected.append(f"{label}: {type(error).__name__}: {_first_line(error)}")
                continue
            return OnnxExport(
                path, exporter, dynamic, opset, difference, scale, rejected=tuple(rejected)
            )
    finally:
        model.train(was_training)
    path.unlink(missing_ok=True)
    raise ExportError(f"cannot export {model_name(model)} to ONNX:\n  " + "\n  ".join(rejected))


def verify_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    batch: int = CHECK_BATCH,
    seed: int = 1,
    relative: bool = False,
) -> float:
    """Max |onnxruntime - torch| over a random batch (model in eval mode during the check);
    with ``relative``, divided by the largest |torch output| (a scale-free check)."""
    difference, scale = _compare(model, path, batch=batch, seed=seed)
    return difference / scale if relative else difference


def _compare(
    model: nn.Module, path: str | os.PathLike[str], *, batch: int, seed: int
) -> tuple[float, float]:
    """(max |onnxruntime - torch|, max |torch|) on a random batch; the scale is floored at
    the smallest normal float32, so that dividing by it is safe."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    example = example_input(model_spec(model), batch, seed=seed)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            expected = model(example.to(_device(model))).detach().cpu().numpy()
    finally:
        model.train(was_training)
    (found,) = session.run([OUTPUT_NAME], {INPUT_NAME: example.numpy()})
    if found.shape != expected.shape:
        raise ExportError(f"onnxruntime output {found.shape}, torch output {expected.shape}")
    expected64 = expected.astype(np.float64)
    difference = float(np.max(np.abs(found.astype(np.float64) - expected64)))
    scale = max(float(np.max(np.abs(expected64))), float(np.finfo(np.float32).tiny))
    return difference, scale


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The hand_pose_ros metadata embedded in an ONNX file by ``export_onnx``, validated.

    Raises:
        CheckpointError: missing file, not ONNX, no or invalid metadata.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf and onnx raise several types
        raise CheckpointError(f"{path}: not an ONNX file ({_first_line(error)})") from error
    props = {prop.key: prop.value for prop in model.metadata_props}
    return metadata_from_props(props, source=str(path))


def metadata_from_props(props: Mapping[str, str], *, source: str) -> dict[str, Any]:
    """Parse and validate the metadata JSON in ONNX ``metadata_props`` (or onnxruntime's
    ``custom_metadata_map``)."""
    import json

    if METADATA_KEY not in props:
        raise CheckpointError(
            f"{source}: ONNX file without {METADATA_KEY!r} metadata (not written by "
            "hand_pose_ros.models.export.export_onnx)"
        )
    try:
        metadata = json.loads(props[METADATA_KEY])
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{source}: ONNX metadata is not valid JSON: {error}") from error
    validate_metadata(metadata, source=source)
    result: dict[str, Any] = metadata
    return result


def _device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _export(
    model: nn.Module,
    spec: ModelSpec,
    path: Path,
    *,
    exporter: str,
    dynamic: bool,
    opset: int,
    optimize: bool,
) -> None:
    example = example_input(spec, TRACE_BATCH if dynamic else 1).to(_device(model))
    with _quiet_exporter():
        if exporter == "dynamo":
            shapes = ({0: torch.export.Dim.DYNAMIC},) if dynamic else None
            torch.onnx.export(
                model, (example,), str(path), dynamo=True, external_data=False,
                opset_version=opset, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes=shapes, optimize=optimize, verbose=False,
            )  # fmt: skip
        else:
            axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic else None
            torch.onnx.export(
                model, (example,), str(path), dynamo=False, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=axes,
            )  # fmt: skip
    stray = path.with_name(path.name + ".data")
    if stray.exists():
        raise ExportError(f"exporter wrote external data ({stray.name}); expected one file")


def _embed_metadata(path: Path, metadata_json: str) -> None:
    import onnx

    model = onnx.load(str(path))
    _strip_node_metadata(model)
    kept = [prop for prop in model.metadata_props if prop.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=METADATA_KEY, value=metadata_json)
    onnx.checker.check_model(model)
    # Write beside and rename, so a failure never leaves a file without its metadata.
    temporary = temporary_path(path)
    try:
        onnx.save(model, str(temporary), save_as_external_data=False)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _strip_node_metadata(model: Any) -> None:
    """Drop the dynamo exporter's per-node debug metadata (stack traces with this machine's
    paths, FX node text, module names): two thirds of attention_hand_net's file."""
    graphs = [model.graph]
    nodes = [node for function in model.functions for node in function.node]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            nodes.append(node)
            for attribute in node.attribute:  # subgraphs of If, Loop, Scan
                if attribute.HasField("g"):
                    graphs.append(attribute.g)
                graphs.extend(attribute.graphs)
    for node in nodes:
        del node.metadata_props[:]


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporters' progress output and the legacy exporter's deprecation notice
    (the TorchScript path is chosen deliberately, as a fallback)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            # Tracer, deprecation and future warnings about torch internals; whether the
            # graph is right is checked by running it (``verify``).
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _first_line(error: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()  # drop terminal colours
    return text.splitlines()[0][:300] if text else repr(error)
