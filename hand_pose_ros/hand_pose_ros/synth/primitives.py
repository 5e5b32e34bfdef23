"""Scene primitives: closed triangle meshes for everything in the synthetic world but the hand.

Every function returns a ``meshes.Mesh`` in metres with counter-clockwise (outward) winding
and one ``part`` label on all its triangles. Shapes are built around their own origin
(axis shapes along +z) and then placed by ``center`` and ``rotation`` (x -> R x + center), so
a caller never needs a second ``Mesh.transformed`` copy.

Vertex sharing decides how the renderer smooths normals: curved surfaces share their
vertices (smooth shading), flat faces get their own vertices (hard edges on boxes and caps).

Tessellation is modest on purpose: the renderer builds its BVH every frame, at about
0.3 microseconds per triangle, so a sphere is a few hundred triangles, not thousands. Unit
templates are cached per tessellation and only scaled and moved per call.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np

from hand_pose_ros.synth.meshes import Mesh


class PrimitiveError(ValueError):
    """A primitive asked for with a size or tessellation it cannot have."""


# ----------------------------------------------------------------------------- placement


def rotation_from_z(axis: np.ndarray) -> np.ndarray:
    """shape (3, 3): a rotation taking +z onto ``axis`` (3,) (any length > 0).

    The roll about the axis is the smallest turn (Rodrigues about z x axis), so it is stable
    for axes near +z; for -z it turns about x.
    """
    a = np.asarray(axis, dtype=np.float64).reshape(3)
    norm = float(np.linalg.norm(a))
    if not (np.isfinite(norm) and norm > 0.0):
        raise PrimitiveError(f"axis must be finite and non-zero, got {a}")
    a = a / norm
    c = a[2]  # cos of the angle between +z and a
    if c < -1.0 + 1e-12:
        return np.diag([1.0, -1.0, -1.0])
    # R = I + [k]x + [k]x^2 / (1 + c) with k = z x a (unnormalised): no trig, exact at c = 1.
    k = np.array([-a[1], a[0], 0.0])
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + kx + kx @ kx / (1.0 + c)


def _place(
    unit_vertices: np.ndarray,
    scale: np.ndarray,
    triangles: np.ndarray,
    part: int,
    center: np.ndarray | tuple[float, float, float],
    rotation: np.ndarray | None,
) -> Mesh:
    vertices = unit_vertices * scale
    if rotation is not None:
        vertices = vertices @ np.asarray(rotation, dtype=np.float64).reshape(3, 3).T
    vertices = vertices + np.asarray(center, dtype=np.float64).reshape(3)
    return Mesh(vertices, triangles, np.full(len(triangles), part, dtype=np.int16))


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not (np.isfinite(value) and value > 0.0):
        raise PrimitiveError(f"{name} must be a finite length > 0 m, got {value}")
    return value


def _sizes(name: str, value: np.ndarray | tuple[float, float, float] | float) -> np.ndarray:
    sizes = np.broadcast_to(np.asarray(value, dtype=np.float64), (3,)).copy()
    if not (np.isfinite(sizes).all() and (sizes > 0.0).all()):
        raise PrimitiveError(f"{name} must be three finite lengths > 0 m, got {value}")
    return sizes


def _grid_triangles(rows: int, columns: int, *, wrap: bool) -> np.ndarray:
    """Two triangles per cell of a (rows + 1) x columns vertex grid, row-major.

    Columns run along +u, rows along +w. The winding is counter-clockwise seen from the side
    that ``dw x du`` points to (the outside of a sphere grid with u = longitude, w = down).
    """
    r, c = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    c_next = (c + 1) % columns if wrap else c + 1
    stride = columns if wrap else columns + 1
    a = r * stride + c
    b = r * stride + c_next
    d = (r + 1) * stride + c
    e = (r + 1) * stride + c_next
    first = np.stack([a, e, b], axis=-1).reshape(-1, 3)
    second = np.stack([a, d, e], axis=-1).reshape(-1, 3)
    return np.concatenate([first, second]).astype(np.int32)


def _frozen(*arrays: np.ndarray) -> None:
    for array in arrays:
        array.flags.writeable = False


# ----------------------------------------------------------------------------- box, quad


@cache
def _unit_box() -> tuple[np.ndarray, np.ndarray]:
    """A cube of side 1 centred on the origin: 24 vertices (4 per face, hard edges)."""
    vertices: list[np.ndarray] = []
    triangles: list[list[int]] = []
    for axis in range(3):
        for sign in (1.0, -1.0):
            normal = np.zeros(3)
            normal[axis] = sign
            # Tangents with t1 x t2 = normal: corners in (t1, t2) CCW order face outward.
            t1 = np.eye(3)[(axis + 1) % 3]
            t2 = np.eye(3)[(axis + 2) % 3] * sign
            base = len(vertices)
            for s1, s2 in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                vertices.append(0.5 * (normal + s1 * t1 + s2 * t2))
            triangles += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
    v = np.array(vertices, dtype=np.float64)
    t = np.array(triangles, dtype=np.int32)
    _frozen(v, t)
    return v, t


def box(
    size: np.ndarray | tuple[float, float, float] | float,
    *,
    part: int = 0,
    center: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0),
    rotation: np.ndarray | None = None,
) -> Mesh:
    """A box of ``size`` (3,) metres (x, y, z extents), 12 triangles, hard edges."""
    vertices, triangles = _unit_box()
    return _place(vertices, _sizes("size", size), triangles, part, center, rotation)


def quad(
    width: float,
    height: float,
    *,
    part: int = 0,
    center: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0),
    rotation: np.ndarray | None = None,
) -> Mesh:
    """A flat rectangle in its xy-plane, ``width`` along x, ``height`` along y, normal +z.

    Not closed: one sheet, two triangles. The renderer sees both sides; the winding says
    which side is the front (+z before ``rotation``). For a wall facing a camera looking
    along +z, pass a rotation taking +z to -z (e.g. ``rotation_from_z((0, 0, -1))``).
    """
    w, h = _positive("width", width), _positive("height", height)
    vertices = np.array([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]])
    triangles = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32)
    return _place(vertices, np.array([w, h, 1.0]), triangles, part, center, rotation)


# ----------------------------------------------------------------------------- round shapes


@lru_cache(maxsize=64)
def _unit_capsule(segments: int, rings: int, split: bool) -> tuple[np.ndarray, np.ndarray]:
    """A unit sphere as a latitude-longitude grid, optionally split at the equator.

    ``rings`` latitude bands per hemisphere. Returns vertices with a fourth column: +1 for the
    upper (z > 0) half, -1 for the lower, 0 on an unsplit equator, so a capsule moves the
    halves apart along z and a rounded box pushes each octant out.
    """
    # Latitude from the north pole (0) to the south pole (pi); with ``split`` the equator
    # appears twice, once for each half, and the band between becomes the cylinder.
    upper = np.linspace(0.0, np.pi / 2.0, rings + 1)
    lower = np.linspace(np.pi / 2.0, np.pi, rings + 1)
    latitudes = np.concatenate([upper, lower if split else lower[1:]])
    halves = np.concatenate(
        [np.ones(rings + 1), -np.ones(rings + 1)]
        if split
        else [np.ones(rings), np.zeros(1), -np.ones(rings)]
    )
    longitudes = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    # Interior rings only: the poles are single vertices.
    inner = latitudes[1:-1]
    sin_lat, cos_lat = np.sin(inner)[:, None], np.cos(inner)[:, None]
    ring_xyz = np.stack(
        [
            sin_lat * np.cos(longitudes),
            sin_lat * np.sin(longitudes),
            np.broadcast_to(cos_lat, (len(inner), segments)),
        ],
        axis=-1,
    ).reshape(-1, 3)
    ring_half = np.repeat(halves[1:-1], segments)
    vertices = np.concatenate(
        [
            np.array([[0.0, 0.0, 1.0, 1.0]]),
            np.column_stack([ring_xyz, ring_half]),
            np.array([[0.0, 0.0, -1.0, -1.0]]),
        ]
    )
    n_rings = len(inner)
    south = 1 + n_rings * segments
    body = _grid_triangles(n_rings - 1, segments, wrap=True) + 1
    j = np.arange(segments)
    j_next = (j + 1) % segments
    # Fans: counter-clockwise seen from above the north pole and from below the south pole.
    north_fan = np.stack([np.zeros(segments, np.int64), j + 1, j_next + 1], axis=-1)
    last = 1 + (n_rings - 1) * segments
    south_fan = np.stack([np.full(segments, south), last + j_next, last + j], axis=-1)
    triangles = np.concatenate([north_fan, body, south_fan]).astype(np.int32)
    _frozen(vertices, triangles)
    return vertices, triangles


def _check_tessellation(segments: int, rings: int) -> None:
    if int(segments) < 3 or int(rings) < 1:
        raise PrimitiveError(
            f"segments = {segments}, rings = {rings}: expected segments >= 3 and rings >= 1"
        )


def sphere(
    radius: float,
    *,
    segments: int = 20,
    rings: int = 5,
    part: int = 0,
    center: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0),
    rotation: np.ndarray | None = None,
) -> Mesh:
    """A sphere (ball): ``segments`` around, ``rings`` bands per hemisphere.

    The defaults give 360 triangles, facets within 1.3 % of the radius of the sphere.
    """
    _check_tessellation(segments, rings)
    vertices, triangles = _unit_capsule(int(segments), int(rings), False)
    r = _positive("radius", radius)
    return _place(vertices[:, :3], np.array([r, r, r]), triangles, part, center, rotation)


def ellipsoid(
    radii: np.ndarray | tuple[float, float, float],
    *,
    segments: int = 20,
    rings: int = 5,
    part: int = 0,
    center: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0),
    rotation: np.ndarray | None = None,
) -> Mesh:
    """An ellipsoid with semi-axes ``radii`` (3,) metres along x, y, z."""
    _check_tessellation(segments, rings)
    vertices, triangles = _unit_capsule(int(segments), int(rings), False)
    return _place(vertices[:, :3], _sizes("radii", radii), triangles, part, center, rotation)


def capsule(
    radius: float,
    length: float,
    *,
    segments: int = 16,
    rings: int = 4,
    part: int = 0,
    center: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0),
    rotation: np.ndarray | None = None,
) -> Mesh:
    """A capsule along z: hemispheres of ``radius`` whose centres are ``length`` apart.

    ``length`` 0 gives a sphere; the overall extent along z is ``length + 2 radius``.
    """
    _check_tessellation(segments, rings)
    r = _positive("radius", radius)
    half = float(length) / 2.0
    if not (np.isfinite(half) and half >= 0.0):
        raise PrimitiveError(f"length must be a finite length >= 0 m, got {length}")
    unit, triangles = _unit_capsule(int(segments), int(rings), True)
    vertices = unit[:, :3] * r
    vertices[:, 2] += unit[:, 3] * half
    return _place(vertices, np.ones(3), triangles, part, center, rotation)


def capsule_between(
    start: np.ndarray,
    end: np.ndarray,
    radius: float,
    *,
    segments: int = 16,
    rings: int = 4,
    part: int = 0,
) -> Mesh:
    """A capsule whose hemisphere centres are the points ``start`` and ``end`` (3,) metres."""
    p0 = np.asarray(start, dtype=np.float64).reshape(3)
    p1 = np.asarray(end, dtype=np.float64).reshape(3)
    axis = p1 - p0
    length = float(np.linalg.norm(axis))
    rotation = rotation_from_z(axis) if length > 0.0 else None
    return capsule(
        radius,
        length,
        segments=segments,
        rings=rings,
        part=part,
        center=(p0 + p1) / 2.0,
        rotation=rotation,
    )


@lru_cache(maxsize=64)
def _unit_cylinder(segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Radius 1, height 1 (z from -0.5 to 0.5): a smooth side and two flat caps."""
    angles = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    ring = np.column_stack([np.cos(angles), np.sin(angles)])
    top = np.column_stack([ring, np.full(segments, 0.5)])
    bottom = np.column_stack([ring, np.full(segments, -0.5)])
    # Side: grid rows from top to bottom (down = -z), columns along the angle: outward.
    side_v = np.concatenate([top, bottom])
    side_t = _grid_triangles(1, segments, wrap=True)
    # Caps get their own vertices (a hard edge at the rim) and a centre vertex.
    j = np.arange(segments)
    j_next = (j + 1) % segments
    top_base = 2 * segments
    top_v = np.concatenate([[[0.0, 0.0, 0.5]], top])
    top_t = np.stack([np.full(segments, top_base), top_base + 1 + j, top_base + 1 + j_next], -1)
    bottom_base = top_base + segments + 1
    bottom_v = np.concatenate([[[0.0, 0.0, -0.5]], bottom])
    bottom_t = np.stack(
        [np.full(segments, bottom_base), bottom_base + 1 + j_next, bottom_base + 1 + j], -1
    )
    vertices = np.concatenate([side_v, top_v, bottom_v])
    triangles = np.concatenate([side_t, top_t, bottom_t]).astype(np.int32)
    _frozen(vertices, triangles)
    return vertices, triangles


def cylinder(
    radius: float,
    height: float,
    *,
    segments: int = 24,
    part: int = 0,
    center: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0),
    rotation: np.ndarray | None = None,
) -> Mesh:
    """A closed cylinder along z (a bottle, a cup, a can), centred on its axis' midpoint.

    4 x ``segments`` triangles (96 by default).
    """
    if int(segments) < 3:
        raise PrimitiveError(f"segments = {segments}: expected >= 3")
    vertices, triangles = _unit_cylinder(int(segments))
    r, h = _positive("radius", radius), _positive("height", height)
    return _place(vertices, np.array([r, r, h]), triangles, part, center, rotation)


@lru_cache(maxsize=64)
def _unit_rounded_box(segments: int, rings: int) -> tuple[np.ndarray, np.ndarray]:
    """A unit sphere cut into octants with duplicated seam vertices.

    Returns vertices (V, 6): a point on the unit sphere and the signs of its octant, and
    triangles. Pushing vertex i by ``signs[i] * half_inner`` gives the Minkowski sum of a box
    and a sphere: flat faces where the seams open up, round edges and corners.
    """
    quarter = segments
    # Longitudes: four quarters, each with its own copy of both end meridians.
    longitudes = np.concatenate(
        [np.linspace(q * np.pi / 2.0, (q + 1) * np.pi / 2.0, quarter + 1) for q in range(4)]
    )
    lon_sign_x = np.concatenate([np.full(quarter + 1, s) for s in (1.0, -1.0, -1.0, 1.0)])
    lon_sign_y = np.concatenate([np.full(quarter + 1, s) for s in (1.0, 1.0, -1.0, -1.0)])
    upper = np.linspace(0.0, np.pi / 2.0, rings + 1)
    lower = np.linspace(np.pi / 2.0, np.pi, rings + 1)
    latitudes = np.concatenate([upper, lower])
    lat_sign = np.concatenate([np.ones(rings + 1), -np.ones(rings + 1)])
    n_lon = len(longitudes)
    sin_lat = np.sin(latitudes)[:, None]
    xyz = np.stack(
        [
            sin_lat * np.cos(longitudes),
            sin_lat * np.sin(longitudes),
            np.broadcast_to(np.cos(latitudes)[:, None], (len(latitudes), n_lon)),
        ],
        axis=-1,
    ).reshape(-1, 3)
    signs = np.stack(
        [
            np.broadcast_to(lon_sign_x, (len(latitudes), n_lon)),
            np.broadcast_to(lon_sign_y, (len(latitudes), n_lon)),
            np.broadcast_to(lat_sign[:, None], (len(latitudes), n_lon)),
        ],
        axis=-1,
    ).reshape(-1, 3)
    # A full grid (poles repeated per longitude) keeps the flat top and bottom faces simple:
    # the degenerate triangles at the poles become the top and bottom faces once pushed.
    triangles = _grid_triangles(len(latitudes) - 1, n_lon - 1, wrap=False)
    # Close the seam between the last and the first longitude (x = +1, y = -0 .. +0).
    r = np.arange(len(latitudes) - 1)
    a = r * n_lon + (n_lon - 1)
    b = r * n_lon
    seam = np.concatenate(
        [np.stack([a, b + n_lon, b], -1), np.stack([a, a + n_lon, b + n_lon], -1)]
    )
    # The flat top and bottom: each pole row holds one pushed corner per quarter.
    corners = np.arange(4) * (quarter + 1)
    bottom_row = (len(latitudes) - 1) * n_lon
    caps = np.array(
        [
            [corners[0], corners[1], corners[2]],
            [corners[0], corners[2], corners[3]],
            [bottom_row + corners[0], bottom_row + corners[2], bottom_row + corners[1]],
            [bottom_row + corners[0], bottom_row + corners[3], bottom_row + corners[2]],
        ]
    )
    # Cells that touch a pole are degenerate until pushed; the ones that stay degenerate
    # (both pole corners in the same quarter) are dropped by ``rounded_box``.
    triangles = np.concatenate([triangles, seam, caps]).astype(np.int32)
    vertices = np.column_stack([xyz, signs])
    _frozen(vertices, triangles)
    return vertices, triangles


def rounded_box(
    size: np.ndarray | tuple[float, float, float],
    radius: float,
    *,
    segments: int = 3,
    rings: int = 3,
    part: int = 0,
    center: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0),
    rotation: np.ndarray | None = None,
) -> Mesh:
    """A box of ``size`` (3,) metres with edges and corners rounded to ``radius``.

    ``segments`` steps per quarter turn around z, ``rings`` per quarter turn in latitude.
    ``radius`` is clipped to half the smallest side (which gives a capsule-like body).
    """
    sizes = _sizes("size", size)
    r = min(_positive("radius", radius), float(sizes.min()) / 2.0)
    if int(segments) < 1 or int(rings) < 1:
        raise PrimitiveError(f"segments = {segments}, rings = {rings}: expected >= 1 each")
    unit, triangles = _unit_rounded_box(int(segments), int(rings))
    vertices = unit[:, :3] * r + unit[:, 3:] * (sizes / 2.0 - r)
    mesh = _place(vertices, np.ones(3), triangles, part, center, rotation)
    return _without_degenerate(mesh)


def _without_degenerate(mesh: Mesh) -> Mesh:
    """Drop zero-area triangles (pole copies of a pushed sphere grid)."""
    corners = mesh.vertices[mesh.triangles]
    area2 = np.linalg.norm(
        np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1
    )
    keep = area2 > 1e-14
    if keep.all():
        return mesh
    return Mesh(mesh.vertices, mesh.triangles[keep], mesh.part[keep])


# ----------------------------------------------------------------------------- scene props


def torso(
    width: float = 0.36,
    depth: float = 0.22,
    height: float = 0.55,
    *,
    part: int = 0,
    center: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0),
    rotation: np.ndarray | None = None,
) -> Mesh:
    """An upper body: a rounded box ``width`` (x) by ``height`` (y) by ``depth`` (z) metres.

    Sized like an adult chest by default; y is up-down as in the camera's optical frame, so
    with ``rotation`` None it stands upright in front of a level camera.
    """
    radius = 0.45 * min(width, depth)
    return rounded_box(
        (width, height, depth),
        radius,
        segments=4,
        rings=3,
        part=part,
        center=center,
        rotation=rotation,
    )


def table(
    width: float = 1.2,
    depth: float = 0.7,
    *,
    height: float = 0.74,
    thickness: float = 0.03,
    leg: float = 0.05,
    part: int = 0,
    center: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0),
    rotation: np.ndarray | None = None,
) -> Mesh:
    """A table: a top ``width`` (x) by ``depth`` (z) and four square legs.

    The origin is the centre of the top's upper surface; the legs go down, which in the
    camera's optical frame (y down) is +y, ``height`` metres to the floor.
    """
    w, d = _positive("width", width), _positive("depth", depth)
    t, lg = _positive("thickness", thickness), _positive("leg", leg)
    h = _positive("height", height)
    top = box((w, t, d), center=(0.0, t / 2.0, 0.0))
    legs = []
    leg_height = h - t
    if leg_height > 0.0:
        for sx in (-1.0, 1.0):
            for sz in (-1.0, 1.0):
                legs.append(
                    box(
                        (lg, leg_height, lg),
                        center=(sx * (w / 2.0 - lg), t + leg_height / 2.0, sz * (d / 2.0 - lg)),
                    )
                )
    mesh = Mesh.concatenate([top, *legs])
    return _place(mesh.vertices, np.ones(3), mesh.triangles, part, center, rotation)


def wall(
    width: float,
    height: float,
    *,
    thickness: float = 0.05,
    part: int = 0,
    center: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0),
    rotation: np.ndarray | None = None,
) -> Mesh:
    """A wall: a thin box ``width`` (x) by ``height`` (y) by ``thickness`` (z), 12 triangles.

    ``center`` is the middle of its front face (z = -thickness / 2 before ``rotation``
    faces a camera at the origin looking along +z), so a wall at z = 2 m seen head on is
    ``wall(4, 3, center=(0, 0, 2))``.
    """
    t = _positive("thickness", thickness)
    slab = box((width, height, t), center=(0.0, 0.0, t / 2.0))
    return _place(slab.vertices, np.ones(3), slab.triangles, part, center, rotation)


def random_box(
    rng: np.random.Generator,
    *,
    min_size: float = 0.04,
    max_size: float = 0.4,
    part: int = 0,
    center: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Mesh:
    """A box with sides drawn log-uniformly from [min_size, max_size] m and a random turn.

    One box in three gets rounded edges (a parcel, a book, a phone).
    """
    lo, hi = _positive("min_size", min_size), _positive("max_size", max_size)
    if hi < lo:
        raise PrimitiveError(f"max_size {hi} < min_size {lo}")
    sizes = np.exp(rng.uniform(np.log(lo), np.log(hi), size=3))
    rotation = random_rotation(rng)
    if rng.uniform() < 1.0 / 3.0:
        radius = float(rng.uniform(0.05, 0.3)) * float(sizes.min())
        return rounded_box(
            sizes, radius, segments=2, rings=2, part=part, center=center, rotation=rotation
        )
    return box(sizes, part=part, center=center, rotation=rotation)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """shape (3, 3): a rotation drawn uniformly (from a normalised Gaussian quaternion)."""
    w, x, y, z = rng.normal(size=4) / 1.0
    n = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
