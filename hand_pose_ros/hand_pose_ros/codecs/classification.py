"""Classification codec for GestureNet (seed 001): gesture names <-> class indices <-> logits.

The vocabulary is the synthetic world's gestures (``hand_pose_ros.synth.gestures.GESTURES``,
12 names, in that order) plus a last class, ``"none"``, for hands in none of them (the
world's ``random_angles`` poses and transitions between gestures): a recogniser that
must always pick a named gesture would label every idle hand as one.

Shapes: labels (N,) int64 class indices; logits (N, C); C = len(classes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hand_pose_ros.synth.gestures import GESTURES

NONE_CLASS = "none"
GESTURE_CLASSES: tuple[str, ...] = (*GESTURES, NONE_CLASS)


class ClassificationError(ValueError):
    """A label that is not one of the classes."""


def encode(
    labels: Sequence[str | int | np.integer] | np.ndarray,
    classes: Sequence[str] = GESTURE_CLASSES,
) -> np.ndarray:
    """Gesture names or class indices -> class indices.

    Args:
        labels: shape (N,), names from ``classes`` or integer indices into it.
        classes: the vocabulary.
    Returns:
        shape (N,) int64.
    Raises:
        ClassificationError: for an unknown name or an index out of range.
    """
    lookup = {name: index for index, name in enumerate(classes)}
    out = np.empty(len(labels), dtype=np.int64)
    for i, label in enumerate(labels):
        if isinstance(label, str):
            if label not in lookup:
                raise ClassificationError(f"unknown class {label!r}; classes: {list(classes)}")
            out[i] = lookup[label]
        else:
            index = int(label)
            if not 0 <= index < len(classes):
                raise ClassificationError(f"class index {index} not in [0, {len(classes)})")
            out[i] = index
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis: (N, C) logits -> (N, C) probabilities."""
    logits = np.asarray(logits, dtype=np.float64)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def decode(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits -> (class indices (N,) int64, confidence (N,) in [0, 1], the softmax
    probability of the chosen class)."""
    probabilities = softmax(logits)
    indices = probabilities.argmax(axis=-1)
    confidence = np.take_along_axis(probabilities, indices[..., None], axis=-1)[..., 0]
    return indices.astype(np.int64), confidence


def names(indices: np.ndarray, classes: Sequence[str] = GESTURE_CLASSES) -> list[str]:
    """Class indices (N,) -> gesture names."""
    return [classes[int(i)] for i in np.asarray(indices).reshape(-1)]
