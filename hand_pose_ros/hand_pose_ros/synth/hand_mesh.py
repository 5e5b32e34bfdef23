"""The hand's triangle mesh, built fast enough to make one per training crop.

The hand is a union of closed primitives (a ray caster only needs the outer surface, so
they may overlap):

- a rounded palm slab: a superellipsoid deformed so that its proximal end fills the wrist,
  its distal edge follows the arc of the knuckles, its back is flush with the knuckles and it
  is thicker at the heel, with a hypothenar pad and a shallow hollow on the palm side;
- one sphere-swept tapered cone (a capsule whose two end spheres may differ, with elliptical
  cross-sections) per finger segment; their rounded ends are the knuckles;
- a thenar eminence over the thumb's metacarpal, and the web between thumb and index;
- the forearm, a tapered elliptical capsule from the wrist keypoint along the forearm axis.

Every primitive is a precomputed unit template (rings of vertices between two poles) whose
vertices are placed with a few vectorised numpy operations; triangles are template indices
plus offsets, cached per primitive count. Outward normals follow from counter-clockwise
triangles; a left hand is the right hand's mesh reflected with its winding reversed.

Speed: about 0.35 ms per hand, right or left, with forearm (about 5,000 triangles), on
the 2-core development machine (AMD EPYC, best of 5 x 3000); reproduce with
``python -m timeit -s "from hand_pose_ros.synth import hand_model as h, hand_mesh as m,
articulation as a; s = h.HandShape.mean(); k = h.forward_kinematics(s,
a.HandPoseAngles.zeros())" "m.hand_mesh(k, s)"``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from hand_pose_ros.synth.hand_model import MIRROR, HandShape, HandSkeleton
from hand_pose_ros.synth.meshes import Mesh

PART_PALM = 1
PART_THUMB = 2
PART_INDEX = 3
PART_MIDDLE = 4
PART_RING = 5
PART_PINKY = 6
PART_FOREARM = 7
PART_NAMES: dict[int, str] = {
    PART_PALM: "palm",
    PART_THUMB: "thumb",
    PART_INDEX: "index",
    PART_MIDDLE: "middle",
    PART_RING: "ring",
    PART_PINKY: "pinky",
    PART_FOREARM: "forearm",
}
_FINGER_PARTS = np.array([PART_THUMB, PART_INDEX, PART_MIDDLE, PART_RING, PART_PINKY])

# Tessellation: vertices around each capsule, rings per capsule end; palm rings and columns.
CAPSULE_AROUND = 14
CAPSULE_CAP_RINGS = 4
PALM_RINGS = 13
PALM_AROUND = 28

# Finger thickness (palm to nail) over width; the thumb is flatter.
_FINGER_FLATNESS = 0.9
_THUMB_FLATNESS = 0.85
# Forearm cross-section grows this much (relative) per metre from the wrist.
_FOREARM_GROWTH_PER_M = 2.2
# Superellipsoid exponents of the palm: squarish outline, rounded rim.
_PALM_OUTLINE_EXPONENT = 0.35
_PALM_RIM_EXPONENT = 0.6

DEFAULT_FOREARM_LENGTH_M = 0.18


class HandMeshError(ValueError):
    """A hand mesh cannot be built from the given arguments."""


# --- Templates ----------------------------------------------------------------------------------


def _ring_triangles(rings: int, around: int) -> np.ndarray:
    """Triangles of a closed surface: a pole, ``rings`` rings of ``around`` vertices, a pole.

    Vertex 0 is the first pole, ring i occupies 1 + i*around .. , the last vertex the other
    pole. Winding is counter-clockwise seen from outside when the rings go from the first
    pole to the second and each ring turns anticlockwise about the pole-to-pole axis.
    """
    last = 1 + rings * around
    j = np.arange(around)
    jn = (j + 1) % around
    tris = [np.stack([np.zeros(around, int), 1 + jn, 1 + j], axis=1)]
    for i in range(rings - 1):
        a, b = 1 + i * around + j, 1 + i * around + jn
        c, d = a + around, b + around
        tris.append(np.stack([a, b, d], axis=1))
        tris.append(np.stack([a, d, c], axis=1))
    base = 1 + (rings - 1) * around
    tris.append(np.stack([np.full(around, last), base + j, base + jn], axis=1))
    return np.concatenate(tris).astype(np.int32)


def _capsule_template() -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """Per capsule end, per template vertex: latitude fraction (0 pole .. 1 where the cap
    meets the cone), cos and sin of the angle around the axis. The start end's vertices (its
    pole, then its rings) come first, then the other end's rings and pole."""
    m, n = CAPSULE_CAP_RINGS, CAPSULE_AROUND
    phi = 2.0 * np.pi * np.arange(n) / n
    rings = np.arange(1, m + 1) / m
    lat = np.concatenate([[0.0], np.repeat(rings, n)])
    cos_phi = np.concatenate([[0.0], np.tile(np.cos(phi), m)])
    sin_phi = np.concatenate([[0.0], np.tile(np.sin(phi), m)])
    start = (lat, cos_phi, sin_phi)
    # The other end's rings run from its cone edge to its pole.
    end = (lat[::-1].copy(), np.concatenate([np.tile(np.cos(phi), m), [0.0]]),
           np.concatenate([np.tile(np.sin(phi), m), [0.0]]))  # fmt: skip
    return start, end


_CAPSULE_START, _CAPSULE_END = _capsule_template()
_CAPSULE_VERTS = 2 * len(_CAPSULE_START[0])
_CAPSULE_TRIS = _ring_triangles(2 * CAPSULE_CAP_RINGS, CAPSULE_AROUND)


@lru_cache(maxsize=16)
def _capsule_triangles(count: int) -> np.ndarray:
    offsets = (np.arange(count) * _CAPSULE_VERTS)[:, None, None]
    return (_CAPSULE_TRIS[None] + offsets).reshape(-1, 3)


def _palm_template() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit superellipsoid (X, Y, Z), poles at Z = +1 (palmar) and Z = -1 (dorsal)."""
    eta = np.pi / 2 - np.pi * np.arange(1, PALM_RINGS + 1) / (PALM_RINGS + 1)
    omega = 2.0 * np.pi * np.arange(PALM_AROUND) / PALM_AROUND
    eta_g, omega_g = np.meshgrid(eta, omega, indexing="ij")

    def spow(value: np.ndarray, exponent: float) -> np.ndarray:
        return np.sign(value) * np.abs(value) ** exponent

    ce, se = spow(np.cos(eta_g), _PALM_RIM_EXPONENT), spow(np.sin(eta_g), _PALM_RIM_EXPONENT)
    x = ce * spow(np.cos(omega_g), _PALM_OUTLINE_EXPONENT)
    y = ce * spow(np.sin(omega_g), _PALM_OUTLINE_EXPONENT)
    z = se
    xs = np.concatenate([[0.0], x.ravel(), [0.0]])
    ys = np.concatenate([[0.0], y.ravel(), [0.0]])
    zs = np.concatenate([[1.0], z.ravel(), [-1.0]])
    return xs, ys, zs


_PALM_X, _PALM_Y, _PALM_Z = _palm_template()
# Rings run from the palmar pole (+z) to the dorsal one and turn anticlockwise about +z:
# seen from outside that is clockwise about the pole-to-pole axis (-z), so reverse.
_PALM_TRIS = _ring_triangles(PALM_RINGS, PALM_AROUND)[:, ::-1].copy()


# --- Primitives ---------------------------------------------------------------------------------


def capsules(
    starts: np.ndarray,
    ends: np.ndarray,
    rotations: np.ndarray,
    start_radii: np.ndarray,
    end_radii: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of sphere-swept tapered cones with elliptical sections.

    Args:
        starts, ends: shape (S, 3), the two centres; the axis must be ``rotations[:, :, 0]``
            (or anything when a start equals its end: a sphere or ellipsoid).
        rotations: shape (S, 3, 3), columns: axis, width direction, thickness direction.
        start_radii, end_radii: shape (S, 3), radii (axial, width, thickness) of the end
            caps; the lateral surface is the cone tangent to the two caps' width circles.

    Returns:
        vertices shape (S * V, 3) and triangles shape (S * T, 3), outward winding.
    """
    length = np.linalg.norm(ends - starts, axis=1)
    sin_alpha = np.clip((start_radii[:, 1] - end_radii[:, 1]) / np.maximum(length, 1e-9), -0.9, 0.9)
    # The cone touches the start cap beyond its equator (by alpha) and the end cap before it.
    alpha = np.arcsin(sin_alpha)[:, None]
    halves = []
    for (lat, cos_phi, sin_phi), centres, radii, polar, sign in (
        (_CAPSULE_START, starts, start_radii, np.pi / 2 + alpha, -1.0),
        (_CAPSULE_END, ends, end_radii, np.pi / 2 - alpha, 1.0),
    ):
        theta = lat * polar  # (S, V/2): angle from this end's pole
        radial = np.sin(theta)
        unit = np.stack([sign * np.cos(theta), radial * cos_phi, radial * sin_phi], axis=-1)
        # Scaling the rotation's columns by the radii maps the unit template to the ellipsoid.
        scaled = rotations * radii[:, None, :]
        halves.append(centres[:, None] + unit @ scaled.transpose(0, 2, 1))
    vertices = np.concatenate(halves, axis=1)
    return vertices.reshape(-1, 3), _capsule_triangles(len(starts))


def _slab_vertices(apex: np.ndarray, rim: list[np.ndarray], half: float) -> np.ndarray:
    """Vertices of a fan of closed triangular slabs (thickness 2 * half) from ``apex`` to a
    polyline; slab k's triangles are ``_SLAB_TRIS + 6 * k``."""
    vertices = []
    for k in range(len(rim) - 1):
        a, b, c = apex, rim[k], rim[k + 1]
        normal = _cross(b - a, c - a)
        normal = normal / max(float(np.linalg.norm(normal)), 1e-12) * half
        tri = np.stack([a, b, c])
        vertices.append(np.concatenate([tri + normal, tri - normal]))
    return np.concatenate(vertices)


# A closed slab over a triangle: top (0, 1, 2), bottom (3, 4, 5), three side quads.
_SLAB_TRIS = np.array(
    [
        [0, 1, 2], [3, 5, 4],
        [0, 3, 4], [0, 4, 1],
        [1, 4, 5], [1, 5, 2],
        [2, 5, 3], [2, 3, 0],
    ],
    dtype=np.int32,
)  # fmt: skip
# The web is two slabs (apex, thumb MCP, margin midpoint) and (apex, midpoint, index).
_WEB_TRIS = np.concatenate([_SLAB_TRIS, _SLAB_TRIS + 6])


def _palm_slab(shape: HandShape) -> np.ndarray:
    """Vertices of the palm (right hand, hand frame), on the palm template."""
    knuckles = shape.bases[1:]
    knuckle_radii = shape.radii[1:, 0]
    # The outline: at the wrist as wide as the wrist, at the knuckles from the index's to
    # the little finger's outer side; it widens fast (the palm is nearly rectangular).
    u = 0.5 * (_PALM_X + 1.0)
    v = 0.5 * (_PALM_Y + 1.0)
    widen = 1.0 - (1.0 - u) ** 2
    y_wrist = shape.wrist[1]
    radial = (y_wrist - 0.92 * shape.wrist_half_width) * (1 - widen) + (
        knuckles[0, 1] - 0.75 * knuckle_radii[0]
    ) * widen
    ulnar = (y_wrist + 0.92 * shape.wrist_half_width) * (1 - widen) + (
        knuckles[3, 1] + 0.75 * knuckle_radii[3]
    ) * widen
    y = radial + v * (ulnar - radial)
    # Proximal end just behind the wrist keypoint, distal end along the knuckle arc.
    # The palm's pads reach past the knuckles on the palmar side (the finger webs).
    reach = 0.3 + 0.7 * np.sqrt(np.maximum(_PALM_Z, 0.0))
    x_distal = np.interp(y, knuckles[:, 1], knuckles[:, 0]) + reach * np.interp(
        y, knuckles[:, 1], knuckle_radii
    )
    x_proximal = shape.wrist[0] - 0.25 * shape.wrist_half_thickness
    x = x_proximal + u * (x_distal - x_proximal)
    # Thickness: the back is flush with the knuckles' backs at the distal end.
    half_distal = 0.5 * shape.palm_thickness
    back = np.interp(y, knuckles[:, 1], knuckles[:, 2] - knuckle_radii)
    centre_distal = back + half_distal
    half_proximal = 0.95 * shape.wrist_half_thickness
    centre = shape.wrist[2] + u * (centre_distal - shape.wrist[2])
    half = half_proximal + u * (half_distal - half_proximal)
    z = centre + _PALM_Z * half
    palmar = np.maximum(_PALM_Z, 0.0)
    # Hypothenar pad (ulnar heel) and the hollow of the palm.
    pad = np.exp(-(((u - 0.35) / 0.3) ** 2) - ((v - 0.85) / 0.25) ** 2)
    hollow = np.exp(-(((u - 0.62) / 0.22) ** 2) - ((v - 0.45) / 0.22) ** 2)
    z = z + palmar * (0.22 * shape.palm_thickness * pad - 0.12 * shape.palm_thickness * hollow)
    return np.stack([x, y, z], axis=1)


# --- The hand -----------------------------------------------------------------------------------


def hand_mesh(
    skeleton: HandSkeleton,
    shape: HandShape,
    *,
    forearm_length: float = DEFAULT_FOREARM_LENGTH_M,
) -> Mesh:
    """The hand's closed-looking triangle mesh, in the frame of ``skeleton``.

    Args:
        skeleton: the posed hand (from ``forward_kinematics``, possibly ``transformed``).
        shape: the shape it was posed with.
        forearm_length: metres of forearm from the wrist keypoint (0 for none); images of a
            hand usually show 0.12-0.25 m of it.

    Returns:
        The mesh: vertices in metres in the skeleton's frame, outward counter-clockwise
        triangles, ``part`` labels ``PART_*``.
    """
    if not 0.0 <= forearm_length <= 1.0:
        raise HandMeshError(f"forearm_length must be in [0, 1] m, got {forearm_length}")
    hand = skeleton.in_hand_frame()
    keypoints, frames, forearm = hand.keypoints, hand.segment_rotations, hand.forearm_rotation
    if skeleton.side == "left":
        # Build the right hand this is the mirror image of, then reflect the result.
        keypoints = keypoints @ MIRROR
        frames = MIRROR @ frames @ MIRROR
        forearm = MIRROR @ forearm @ MIRROR

    radii = shape.radii
    chains = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16],
                       [17, 18, 19, 20]])  # fmt: skip
    flat = np.array([_THUMB_FLATNESS] + [_FINGER_FLATNESS] * 4)
    starts = keypoints[chains[:, :3]].reshape(-1, 3)
    ends = keypoints[chains[:, 1:]].reshape(-1, 3)
    rotations = frames.reshape(-1, 3, 3)
    r0 = radii[:, :3].reshape(-1)
    r1 = radii[:, 1:].reshape(-1)
    f = np.repeat(flat, 3)
    start_radii = np.stack([r0, r0, r0 * f], axis=1)
    end_radii = np.stack([r1, r1, r1 * f], axis=1)

    # Thenar eminence: the muscle mass wrapping the first metacarpal on its palmar and ulnar
    # side, from the heel of the hand to near the thumb's MCP joint; it follows the
    # metacarpal, and its base merges with the palm.
    cmc, thumb_mcp, index_mcp = keypoints[1], keypoints[2], keypoints[5]
    to_centre = -cmc  # the palm centre is the origin
    thenar_start = cmc + 0.2 * to_centre + 0.15 * (keypoints[0] - cmc)
    thenar_end = cmc + 0.8 * (thumb_mcp - cmc) + 0.04 * to_centre
    thenar_radius = 1.4 * radii[0, 0]
    thenar_rot = _frame_from_axis(thenar_end - thenar_start, np.array([0.0, 0.0, 1.0]))
    # The first web space: skin between the thumb's metacarpal and the index knuckle, with a
    # concave, rounded free margin from the thumb MCP to the index knuckle's radial side.
    web_a = thumb_mcp
    web_b = index_mcp + np.array([-0.2, -0.5, 0.2]) * radii[1, 0]
    web_mid = 0.4 * (web_a + web_b) + 0.2 * cmc
    web_radius = 0.4 * radii[1, 0]
    margin_rot = [
        _frame_from_axis(web_mid - web_a, np.array([0.0, 0.0, 1.0])),
        _frame_from_axis(web_b - web_mid, np.array([0.0, 0.0, 1.0])),
    ]
    web = [web_radius] * 3
    extra_starts = [thenar_start, web_a, web_mid]
    extra_ends = [thenar_end, web_mid, web_b]
    extra_rot = [thenar_rot, *margin_rot]
    extra_r0 = [[thenar_radius, thenar_radius, 0.8 * thenar_radius], web, web]
    extra_r1 = [[0.95 * radii[0, 1]] * 2 + [0.85 * radii[0, 1]], web, web]
    if forearm_length > 0.0:
        wrist = keypoints[0]
        growth = 1.0 + _FOREARM_GROWTH_PER_M * forearm_length
        w, t = shape.wrist_half_width, shape.wrist_half_thickness
        extra_starts.append(wrist)
        extra_ends.append(wrist + forearm[:, 0] * forearm_length)
        extra_rot.append(forearm)
        extra_r0.append([t, w, t])
        extra_r1.append([t * growth, w * growth, t * growth])

    capsule_vertices = capsules(
        np.concatenate([starts, np.array(extra_starts)]),
        np.concatenate([ends, np.array(extra_ends)]),
        np.concatenate([rotations, np.array(extra_rot)]),
        np.concatenate([start_radii, np.array(extra_r0)]),
        np.concatenate([end_radii, np.array(extra_r1)]),
    )[0]
    web_vertices = _slab_vertices(cmc, [web_a, web_mid, web_b], web_radius)
    vertices = np.concatenate([capsule_vertices, _palm_slab(shape), web_vertices])
    left = skeleton.side == "left"
    if left:
        vertices = vertices @ MIRROR
    # Back from the hand frame to the skeleton's frame.
    vertices = vertices @ skeleton.palm_rotation.T + skeleton.palm_origin
    triangles, part = _topology(forearm_length > 0.0, left)
    return Mesh(vertices, triangles.copy(), part.copy())


@lru_cache(maxsize=4)
def _topology(with_forearm: bool, left: bool) -> tuple[np.ndarray, np.ndarray]:
    """Triangles and part labels of the hand mesh (they do not depend on the pose).

    Vertex order: capsules (15 finger segments thumb..little, thenar, two web margins, the
    forearm if any), the palm slab, the web slabs. A left hand's winding is reversed, since
    its vertices are reflected.
    """
    capsule_parts = [*np.repeat(_FINGER_PARTS, 3), PART_PALM, PART_PALM, PART_PALM]
    if with_forearm:
        capsule_parts.append(PART_FOREARM)
    n_capsule_vertices = len(capsule_parts) * _CAPSULE_VERTS
    triangles = np.concatenate(
        [
            _capsule_triangles(len(capsule_parts)),
            _PALM_TRIS + n_capsule_vertices,
            _WEB_TRIS + n_capsule_vertices + len(_PALM_X),
        ]
    )
    part = np.concatenate(
        [
            np.repeat(np.array(capsule_parts, dtype=np.int16), len(_CAPSULE_TRIS)),
            np.full(len(_PALM_TRIS) + len(_WEB_TRIS), PART_PALM, dtype=np.int16),
        ]
    )
    if left:
        triangles = triangles[:, ::-1]
    return np.ascontiguousarray(triangles, dtype=np.int32), part


def _frame_from_axis(axis: np.ndarray, up: np.ndarray) -> np.ndarray:
    """A rotation whose first column is ``axis`` and third is as close to ``up`` as can be."""
    x = axis / max(float(np.linalg.norm(axis)), 1e-12)
    z = up - (up @ x) * x
    norm = float(np.linalg.norm(z))
    if norm < 1e-9:
        z = _cross(x, np.array([1.0, 0.0, 0.0] if abs(x[0]) < 0.9 else [0.0, 1.0, 0.0]))
        norm = float(np.linalg.norm(z))
    z = z / norm
    return np.column_stack([x, _cross(z, x), z])


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (np.cross costs more than the mesh's arithmetic)."""
    return np.array(
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    )
