"""One interface over the two runtimes: torch (eager) and onnxruntime (CPU).

    runner = ModelRunner.from_checkpoint("hand.safetensors", backend="onnxruntime")
    inputs = runner.preprocess(crops)            # (N, H, W, 3) uint8 -> (N, 3, H, W) float32
    output = runner.run(inputs)                  # the network's one output, np.ndarray
    keypoints, confidence = runner.decode(output)

``preprocess`` applies the normalisation of the model's spec; ``run`` is the only call that
differs between the backends; ``decode`` is the model's own ``decode`` in both.

How onnxruntime decodes without torch weights: the ONNX file carries the checkpoint metadata
(architecture and config). The runner builds that architecture on torch's "meta" device (no
memory for weights, nothing to initialise) and calls its ``decode``, which is numpy-only by
the model contract (it wraps the model's codec with the model's geometry: input size, heatmap
size, stride...). Calling the codecs directly would duplicate each model's codec arguments
here; building the class keeps one source of truth. Should a constructor not run on the meta
device, the model is built normally (random weights, still never the trained ones).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hand_pose_ros.models.checkpoint import (
    CheckpointError,
    checkpoint_metadata,
    load_model,
    model_from_metadata,
    spec_from_dict,
)
from hand_pose_ros.models.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    export_onnx,
    input_shape,
    metadata_from_props,
)
from hand_pose_ros.models.registry import ModelSpec

BACKENDS = ("torch", "onnxruntime")


class InferenceError(RuntimeError):
    """A runner that cannot be made, or an input it cannot take; the message says why.

    A checkpoint or ONNX file that cannot be read raises the checkpoint layer's
    ``CheckpointError`` instead.
    """


class ModelRunner:
    """Preprocess, run and decode one model on torch or onnxruntime.

    Args:
        source: a model (``nn.Module`` from the registry; it is put in eval mode), an
            ``.onnx`` file written by ``export_onnx``, or a checkpoint (``.safetensors``).
        backend: "torch" or "onnxruntime"; default: "onnxruntime" for an ``.onnx`` file,
            "torch" otherwise. A model or checkpoint on onnxruntime is exported in memory first.
        intra_op_num_threads: onnxruntime threads per operator (default: its own choice, the
            number of physical cores). The torch backend uses torch's global setting.
        metadata: the checkpoint metadata of ``source`` when it is a model (embedded in the
            in-memory ONNX export); default: ``checkpoint_metadata(model)``.
    """

    def __init__(
        self,
        source: nn.Module | str | os.PathLike[str],
        *,
        backend: str | None = None,
        intra_op_num_threads: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if backend is not None and backend not in BACKENDS:
            raise InferenceError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
        if intra_op_num_threads is not None and intra_op_num_threads < 0:
            raise InferenceError(f"intra_op_num_threads must be >= 0, got {intra_op_num_threads}")
        self._model: nn.Module | None = None
        self._session: Any = None
        self._decoder: nn.Module | None = None
        if isinstance(source, nn.Module):
            model = source
            self.metadata = dict(metadata) if metadata is not None else checkpoint_metadata(model)
        else:
            path = Path(source)
            if path.suffix.lower() == ".onnx":
                if backend == "torch":
                    raise InferenceError(
                        f"{path}: an ONNX file runs on onnxruntime; give the checkpoint "
                        "(.safetensors) for the torch backend"
                    )
                if not path.is_file():
                    raise CheckpointError(f"ONNX file not found: {path}")
                backend = "onnxruntime"
                self._session = _session(str(path), intra_op_num_threads)
                props = self._session.get_modelmeta().custom_metadata_map
                self.metadata = metadata_from_props(props, source=str(path))
            else:
                model, loaded = load_model(path)
                self.metadata = loaded
        self.backend = backend or "torch"
        if self._session is None:
            model.eval()
            self._decoder = model
            if self.backend == "torch":
                self._model = model
            else:
                self._session = _session(_onnx_bytes(model, self.metadata), intra_op_num_threads)
        self.spec: ModelSpec = spec_from_dict(self.metadata["spec"])
        self.architecture: str = self.metadata["architecture"]
        self._input_shape = input_shape(self.spec, 1)[1:]
        self._fixed_batch: int | None = None
        if self._session is not None:
            batch = self._session.get_inputs()[0].shape[0]
            self._fixed_batch = batch if isinstance(batch, int) else None

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        *,
        backend: str = "torch",
        intra_op_num_threads: int | None = None,
    ) -> ModelRunner:
        """A runner for the checkpoint (``.safetensors``) or ONNX export (``.onnx``) at path."""
        return cls(path, backend=backend, intra_op_num_threads=intra_op_num_threads)

    def preprocess(self, batch: np.ndarray) -> np.ndarray:
        """The network input for a batch, normalised as the spec says.

        Args:
            batch: by the spec's input_kind:
                "rgb": crops (N, H, W, 3) RGB, integers in 0..255 (uint8) or floating point
                    in [0, 1];
                "depth_cube": normalised depth crops (N, H, W) in [-1, 1]; NaN (no depth)
                    becomes +1, as the crop marks empty and behind-cube pixels;
                "keypoints": keypoints already normalised by the model's own function
                    (gesture_net: ``normalise_keypoints(uv, handedness)``, (N, 2, 21)); the
                    runner cannot do it, as it needs the handedness.
                A single sample without the N axis is accepted too.

        Returns:
            np.ndarray: float32, shape (N, C, H, W), or (N, 2, 21) for keypoints.
        """
        array = np.asarray(batch)
        kind = self.spec.input_kind
        if kind == "rgb":
            if array.ndim == 3:
                array = array[None]
            self._check_shape(array, (*self.spec.input_size, self.spec.input_channels),
                              "(N, H, W, C) RGB crops")  # fmt: skip
            scale = 255.0 if np.issubdtype(array.dtype, np.integer) else 1.0
            images = array.astype(np.float32) / np.float32(scale)
            mean = np.asarray(self.spec.mean, dtype=np.float32)
            std = np.asarray(self.spec.std, dtype=np.float32)
            images = (images - mean) / std
            return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)
        if kind == "depth_cube":
            if array.ndim == 2:
                array = array[None]
            if array.ndim == 4 and array.shape[1] == 1:
                array = array[:, 0]
            self._check_shape(array, self.spec.input_size, "(N, H, W) depth cubes")
            cubes = np.nan_to_num(array.astype(np.float32), nan=1.0, posinf=1.0, neginf=-1.0)
            cubes = np.clip(cubes, -1.0, 1.0)
            cubes = (cubes - np.float32(self.spec.mean[0])) / np.float32(self.spec.std[0])
            return np.ascontiguousarray(cubes[:, None], dtype=np.float32)
        if kind == "keypoints":
            if array.ndim == 2:
                array = array[None]
            self._check_shape(array, self._input_shape, "normalised keypoints")
            return np.ascontiguousarray(array, dtype=np.float32)
        raise InferenceError(f"{self.architecture}: unknown input_kind {kind!r}")

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """The network output for a preprocessed batch ``inputs`` (float32, ``preprocess``'s
        shape); the batch must not be empty."""
        inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        self._check_shape(inputs, self._input_shape, "preprocessed inputs")
        if inputs.shape[0] == 0:
            raise InferenceError("empty batch: run needs at least one sample")
        if self._model is not None:
            device = next(self._model.parameters(), torch.empty(0)).device
            with torch.inference_mode():
                output = self._model(torch.from_numpy(inputs).to(device))
            return output.detach().cpu().numpy()
        if self._fixed_batch is None or self._fixed_batch == inputs.shape[0]:
            return self._session_run(inputs)
        # A graph exported with a fixed batch: run in chunks of it, padding the last one.
        size = self._fixed_batch
        outputs = []
        for start in range(0, inputs.shape[0], size):
            chunk = inputs[start : start + size]
            padding = size - chunk.shape[0]
            if padding:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], padding, axis=0)])
            outputs.append(self._session_run(chunk)[: size - padding])
        return np.concatenate(outputs)

    def decode(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(keypoints, confidence) from ``run``'s output, by the model's own decoder."""
        if self._decoder is None:
            self._decoder = _decoder_model(self.metadata)
        decode: Any = self._decoder.decode
        result: tuple[np.ndarray, np.ndarray] = decode(np.asarray(output))
        return result

    def predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``decode(run(preprocess(batch)))``."""
        return self.decode(self.run(self.preprocess(batch)))

    def __repr__(self) -> str:
        return f"ModelRunner({self.architecture!r}, backend={self.backend!r})"

    def _session_run(self, inputs: np.ndarray) -> np.ndarray:
        (output,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: inputs})
        result: np.ndarray = output
        return result

    def _check_shape(self, array: np.ndarray, sample_shape: tuple[int, ...], what: str) -> None:
        if array.ndim != len(sample_shape) + 1 or tuple(array.shape[1:]) != tuple(sample_shape):
            raise InferenceError(
                f"{self.architecture}: expected {what} of shape (N, "
                f"{', '.join(map(str, sample_shape))}), got {array.shape}"
            )


def _decoder_model(metadata: Mapping[str, Any]) -> nn.Module:
    """The architecture of ``metadata`` without trained weights, for its ``decode``."""
    try:
        with torch.device("meta"):
            return model_from_metadata(metadata)
    except Exception:  # a constructor that needs real tensors: build it on the CPU
        return model_from_metadata(metadata)


def _session(model: str | bytes, intra_op_num_threads: int | None) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if intra_op_num_threads is not None:
        options.intra_op_num_threads = intra_op_num_threads
    try:
        return onnxruntime.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own exception types
        where = model if isinstance(model, str) else "exported model"
        raise InferenceError(f"{where}: onnxruntime cannot load it: {error}") from error


def _onnx_bytes(model: nn.Module, metadata: Mapping[str, Any]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="hand_pose_onnx_") as folder:
        path = Path(folder) / "model.onnx"
        export_onnx(model, path, metadata=metadata)
        return path.read_bytes()
