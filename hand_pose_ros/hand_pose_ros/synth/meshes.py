"""Triangle meshes: the one geometry type the synthetic world renders.

A ``Mesh`` carries a per-triangle ``part`` label so that a ray hit tells not only which
object was hit but which part of it (a finger segment, the palm, the forearm): the
renderer returns it per pixel, which gives hand masks and keypoint visibility for free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Mesh:
    """A triangle mesh in metres.

    Attributes:
        vertices: shape (V, 3) float64, metres, in whatever frame the owner says
            (model frame before ``transformed``, camera optical frame when rendered).
        triangles: shape (T, 3) int32, vertex indices, counter-clockwise seen from outside
            (outward normals by the right-hand rule).
        part: shape (T,) int16, a label per triangle (meaning set by the mesh's maker; for
            hands see ``hand_mesh.PART_*``); 0 when unlabelled.
    """

    vertices: np.ndarray
    triangles: np.ndarray
    part: np.ndarray

    def __post_init__(self) -> None:
        self.vertices = np.asarray(self.vertices, dtype=np.float64).reshape(-1, 3)
        self.triangles = np.asarray(self.triangles, dtype=np.int32).reshape(-1, 3)
        self.part = np.asarray(self.part, dtype=np.int16).reshape(-1)
        if self.part.shape[0] != self.triangles.shape[0]:
            raise ValueError(
                f"part has {self.part.shape[0]} labels for {self.triangles.shape[0]} triangles"
            )
        if self.triangles.size and (
            self.triangles.min() < 0 or self.triangles.max() >= len(self.vertices)
        ):
            raise ValueError("triangle indices out of range of the vertices")

    def transformed(self, rotation: np.ndarray, translation: np.ndarray) -> Mesh:
        """A copy with vertices mapped x -> R x + t (R (3, 3), t (3,) metres)."""
        vertices = self.vertices @ np.asarray(rotation).T + np.asarray(translation)
        return Mesh(vertices, self.triangles.copy(), self.part.copy())

    @staticmethod
    def concatenate(meshes: list[Mesh]) -> Mesh:
        """One mesh holding all of ``meshes`` (labels kept)."""
        if not meshes:
            return Mesh(np.zeros((0, 3)), np.zeros((0, 3), np.int32), np.zeros(0, np.int16))
        offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
        return Mesh(
            np.concatenate([m.vertices for m in meshes]),
            np.concatenate([m.triangles + o for m, o in zip(meshes, offsets, strict=True)]),
            np.concatenate([m.part for m in meshes]),
        )
