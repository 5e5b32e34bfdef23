"""The ray caster: depth, object ids, part labels and normals of a scene of meshes.

Rendering is ray casting with open3d's ``RaycastingScene`` (Embree) on the CPU, one ray per
output pixel through the pixel's centre. Meshes are given in the camera optical frame
(x right, y down, z forward, metres); the camera centre is the origin.

Two kinds of image come out of the same code:

* the full image of a ``CameraModel`` (``Renderer.render``), and
* a window of it at any resolution (``Renderer.render_window``), described by the 2x3
  ``crop_to_image`` matrix of ``hand_pose_ros.crop``: crop pixel (i = column, j = row) ->
  image pixel (u, v). Only the window's rays are cast, so a 128x128 crop costs 16k rays
  however large the window is in the image, and the perspective is the camera's.

Each ray's direction is ``(x/z, y/z, 1)``, so the hit distance Embree reports *is* the depth
z, with no division. Rays are made in float64 from the pixel coordinates and rounded to
float32 once, so a scale-1 window at integer offsets casts bit-identical rays to the full
image.

Cost (2 cores, a 15k-triangle scene; ``python -m hand_pose_ros.synth.render`` prints the
numbers for this machine): Embree builds its BVH on the first cast after the scene changes,
about 0.3 us per triangle on one core, and the concatenation and smooth normals cost about
as much again: ~7 ms per scene. Casting 640x480 rays costs ~18 ms in Embree plus ~3 ms of
numpy for labels and normals, so a full frame is ~29 ms with its build. A 128x128 crop
casts in ~1 ms, so for crops the build dominates: ``render_window`` builds a scene of only
the triangles that can project into the window (view-frustum culling in numpy, ~0.3 ms),
and ``render_windows`` shares one such scene between several windows (a depth crop and a
colour crop of the same hand). Depth-only crops need no smooth normals
(``smooth_normals=False`` saves ~1 ms per 10k triangles).

Shadow rays (``occluded_from``, ``occluded_points``) cost ~0.1 us each on one core; the
stereo shadow of a full frame ray tests only the ~10 % of pixels its pre-filter flags
(~8 ms). Large per-frame temporaries come from ``scratch`` (reused arrays): a fresh
image-sized array costs more in page faults than the arithmetic done on it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import open3d as o3d
from numpy.typing import DTypeLike

from hand_pose_ros.geometry import CameraModel
from hand_pose_ros.synth.meshes import Mesh

NO_OBJECT = -1
"""``object_id`` of a pixel whose ray hits nothing."""

_INVALID_ID = int(o3d.t.geometry.RaycastingScene.INVALID_ID)
# Shadow rays start this far (metres) from the surface towards the second viewpoint, so
# that a surface does not shadow itself through float32 rounding of the hit point.
_SHADOW_RAY_OFFSET_M = 2e-4
_RAY_CACHE_SIZE = 4
# Stereo shadow pre-filter: occluders nearer the camera than this are not looked for
# outside the window (they would cover the lens).
_NEAREST_OCCLUDER_M = 0.05
# ... and the outside occluders' bound is made tight (clipping triangles) only when the
# scene's nearest vertex would flag more pixels than this (full frames, not crops).
_TIGHT_BOUND_PIXELS = 20_000
STEREO_VIEWPOINT_M: tuple[float, float, float] = (0.065, 0.0, 0.0)
"""The second imager of a D435 aligned to colour: its right imager, 65 mm to the right."""


class RenderError(ValueError):
    """A scene, camera or window that cannot be rendered."""


class _ScratchArrays(threading.local):
    def __init__(self) -> None:
        self.arrays: OrderedDict[tuple[str, tuple[int, ...], str], np.ndarray] = OrderedDict()


_scratch_arrays = _ScratchArrays()
_SCRATCH_LIMIT = 128


def scratch(name: str, shape: tuple[int, ...], dtype: DTypeLike = np.float32) -> np.ndarray:
    """A reusable, uninitialised array for a temporary of one computation (per thread).

    The same ``(name, shape, dtype)`` gives the same array again, so such an array must not
    leave the function that asked for it, nor be asked for again while it is in use. Why:
    a fresh image-sized temporary is mapped in page by page each time (glibc gives freed
    heap memory back to the system), which costs more than the arithmetic on it (about
    0.5 ms per MB on a small VM).
    The last ``_SCRATCH_LIMIT`` arrays asked for are kept: ~70 MB for full frames and the
    crops of ``world.render_crops``.
    """
    key = (name, tuple(int(n) for n in shape), np.dtype(dtype).str)
    arrays = _scratch_arrays.arrays
    array = arrays.get(key)
    if array is None:
        array = arrays[key] = np.empty(key[1], dtype=dtype)
        while len(arrays) > _SCRATCH_LIMIT:
            arrays.popitem(last=False)
    else:
        arrays.move_to_end(key)
    return array


@dataclass
class RenderResult:
    """What the rays of one image (or crop window) hit.

    Attributes:
        depth: shape (H, W) float32, metres: z of the hit point in the camera optical frame
            (not the distance along the ray); NaN where nothing is hit.
        object_id: shape (H, W) int32, the id the hit mesh was added with; ``NO_OBJECT`` (-1)
            where nothing is hit.
        part: shape (H, W) int16, the hit triangle's ``Mesh.part`` label; 0 where nothing is
            hit (check ``object_id`` for that).
        normal: shape (H, W, 3) float32, unit surface normals in the camera optical frame,
            turned to face the camera (normal . ray < 0); smooth (interpolated between the
            vertex normals of shared vertices) where the renderer smooths. NaN where nothing
            is hit.
        rays: shape (H, W, 3) float32, each pixel's ray ``(x/z, y/z, 1)``; ``rays * depth``
            is the hit point.
        triangle: shape (H, W) int32, the hit triangle's index in the renderer's meshes, in
            the order they were added (triangles of the first mesh first); -1 where nothing
            is hit.
        barycentric: shape (H, W, 2) float32, the hit's (b1, b2) in its triangle: the point is
            ``(1 - b1 - b2) p0 + b1 p1 + b2 p2``; 0 where nothing is hit.
        crop_to_image: shape (2, 3): output pixel (i, j) -> image pixel (u, v); the identity
            map for a full image.
    """

    depth: np.ndarray
    object_id: np.ndarray
    part: np.ndarray
    normal: np.ndarray
    rays: np.ndarray
    triangle: np.ndarray
    barycentric: np.ndarray
    crop_to_image: np.ndarray

    @property
    def hit(self) -> np.ndarray:
        """shape (H, W) bool: the ray hit something."""
        return np.asarray(self.object_id != NO_OBJECT)

    @property
    def points(self) -> np.ndarray:
        """shape (H, W, 3) float32, metres: the hit points in the optical frame; NaN if none."""
        return np.asarray(self.rays * self.depth[..., None], dtype=np.float32)


@dataclass
class PointVisibility:
    """The first hit on the ray from the camera centre towards each of N points.

    Attributes:
        range_m: shape (N,) float64, the distance from the camera centre to each point.
        hit_distance_m: shape (N,) float64, the distance along the same ray to the first
            surface; inf where the ray hits nothing; NaN for a point that is not finite.
        object_id: shape (N,) int32, the object first hit; ``NO_OBJECT`` if none.
        part: shape (N,) int16, that triangle's part label; 0 if none.
    """

    range_m: np.ndarray
    hit_distance_m: np.ndarray
    object_id: np.ndarray
    part: np.ndarray

    def visible(self, tolerance_m: float = 0.002) -> np.ndarray:
        """shape (N,) bool: nothing lies more than ``tolerance_m`` in front of the point.

        A point on a surface is its own first hit (visible); a point behind another surface,
        or inside a closed mesh (a joint inside a finger), is not: give such points a
        tolerance of the surrounding radius, or compare ``object_id``/``part`` instead.
        """
        with np.errstate(invalid="ignore"):
            return np.asarray(self.hit_distance_m >= self.range_m - tolerance_m)


# ----------------------------------------------------------------------------- rays


def _identity_window() -> np.ndarray:
    return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _pixel_rays(camera: CameraModel, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(..., 3) float32 rays (x/z, y/z, 1) through image pixels u, v (float64, any shape)."""
    shape = np.broadcast_shapes(np.shape(u), np.shape(v))
    rays = np.empty((*shape, 3), dtype=np.float32)
    if camera.has_distortion:
        uv = np.column_stack([np.broadcast_to(u, shape).ravel(), np.broadcast_to(v, shape).ravel()])
        rays[...] = camera.rays(uv).reshape(*shape, 3)
        return rays
    rays[..., 0] = (u - camera.cx) / camera.fx
    rays[..., 1] = (v - camera.cy) / camera.fy
    rays[..., 2] = 1.0
    return rays


@dataclass(frozen=True)
class _Rays:
    """One image's rays in the layouts the caster and the normal code want."""

    directions: np.ndarray  # (H, W, 3) float32 (x/z, y/z, 1), read-only
    packed: np.ndarray  # (H, W, 6) float32, origin 0 then direction
    x: np.ndarray  # (H, W) float32 contiguous, x/z
    y: np.ndarray  # (H, W) float32 contiguous, y/z


def _rays(directions: np.ndarray) -> _Rays:
    packed = np.zeros((*directions.shape[:-1], 6), dtype=np.float32)
    packed[..., 3:] = directions
    x = np.ascontiguousarray(directions[..., 0])
    y = np.ascontiguousarray(directions[..., 1])
    for array in (directions, packed, x, y):
        array.flags.writeable = False
    return _Rays(directions, packed, x, y)


_full_ray_cache: OrderedDict[CameraModel, _Rays] = OrderedDict()


def _camera_ray_set(camera: CameraModel) -> _Rays:
    rays = _full_ray_cache.get(camera)
    if rays is None:
        u = np.arange(camera.width, dtype=np.float64)[None, :]
        v = np.arange(camera.height, dtype=np.float64)[:, None]
        rays = _rays(_pixel_rays(camera, u, v))
        _full_ray_cache[camera] = rays
        while len(_full_ray_cache) > _RAY_CACHE_SIZE:
            _full_ray_cache.popitem(last=False)
    else:
        _full_ray_cache.move_to_end(camera)
    return rays


def camera_rays(camera: CameraModel) -> np.ndarray:
    """shape (height, width, 3) float32: the ray ``(x/z, y/z, 1)`` of every image pixel.

    Cached per camera (a read-only array): a 640x480 grid costs a few ms to make.
    """
    return _camera_ray_set(camera).directions


def window_rays(
    camera: CameraModel, crop_to_image: np.ndarray, size: int | tuple[int, int]
) -> np.ndarray:
    """shape (h, w, 3) float32: the rays of a crop window's pixels.

    Args:
        camera: the camera whose image the window lies in.
        crop_to_image: shape (2, 3): ``[u, v] = M @ [i, j, 1]``, crop pixel (i = column,
            j = row) -> image pixel, pixel centres at integer coordinates in both.
        size: the crop's (width, height) in pixels, or one int for a square.
    """
    width, height = _window_size(size)
    matrix = _matrix(crop_to_image)
    i = np.arange(width, dtype=np.float64)[None, :]
    j = np.arange(height, dtype=np.float64)[:, None]
    u = matrix[0, 0] * i + matrix[0, 1] * j + matrix[0, 2]
    v = matrix[1, 0] * i + matrix[1, 1] * j + matrix[1, 2]
    return _pixel_rays(camera, u, v)


def _window_size(size: int | tuple[int, int]) -> tuple[int, int]:
    pair = np.asarray(size).reshape(-1)
    if pair.size == 1:
        pair = np.repeat(pair, 2)
    if pair.size != 2 or (pair <= 0).any() or not np.all(pair == np.round(pair)):
        raise RenderError(f"window size must be a positive int or (width, height), got {size}")
    return int(pair[0]), int(pair[1])


def _matrix(crop_to_image: np.ndarray) -> np.ndarray:
    matrix = np.asarray(crop_to_image, dtype=np.float64)
    if matrix.shape != (2, 3) or not np.isfinite(matrix).all():
        raise RenderError(f"crop_to_image must be a finite 2x3 matrix, got {matrix!r}")
    return matrix


# ----------------------------------------------------------------------------- scene


@dataclass
class _Geometry:
    """All meshes of a renderer concatenated, with per-triangle lookup tables.

    Every table has one extra entry at index T, the value for "nothing hit", so a whole
    image is looked up with one ``np.take`` and no masks. Normal tables are planar (one
    (T + 1,) array per component): numpy is several times faster on long flat arrays than
    on (..., 3) ones.
    """

    vertices: o3d.core.Tensor  # (V, 3) float32
    vertex_xyz: np.ndarray  # (V, 3) float64
    triangles: np.ndarray  # (T, 3) uint32
    object_id: np.ndarray  # (T + 1,) int32, NO_OBJECT last
    part: np.ndarray  # (T + 1,) int16, 0 last
    triangle: np.ndarray  # (T + 1,) int32, arange then -1
    # Smooth normals as n0 + b1 (n1 - n0) + b2 (n2 - n0): (T + 1, 9) float32 rows
    # (n0, n1 - n0, n2 - n0), or None; ``curved`` (T + 1,) bool marks the triangles where
    # that differs from the flat normal.
    corner_normal: np.ndarray | None
    curved: np.ndarray

    @property
    def count(self) -> int:
        return len(self.triangles)


def _with_sentinel(values: np.ndarray, last: float | int) -> np.ndarray:
    return np.concatenate([values, np.array([last], dtype=values.dtype)])


def _build_geometry(objects: list[tuple[int, Mesh]], smooth: bool) -> _Geometry:
    mesh = Mesh.concatenate([m for _, m in objects])
    count = len(mesh.triangles)
    object_id = np.zeros(0, np.int32)
    if objects:
        object_id = np.concatenate(
            [np.full(len(m.triangles), oid, dtype=np.int32) for oid, m in objects]
        )
    corner_normal = None
    curved = np.zeros(count + 1, dtype=bool)
    if smooth and count:
        corner_normal, curved[:count] = _corner_normals(mesh)
    return _Geometry(
        vertices=o3d.core.Tensor.from_numpy(mesh.vertices.astype(np.float32)),
        vertex_xyz=mesh.vertices,
        triangles=mesh.triangles.astype(np.uint32),
        object_id=_with_sentinel(object_id, NO_OBJECT),
        part=_with_sentinel(mesh.part, 0),
        triangle=_with_sentinel(np.arange(count, dtype=np.int32), -1),
        corner_normal=corner_normal,
        curved=curved,
    )


def _corner_normals(mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """Smooth-normal tables (see ``_Geometry``) and the ``curved`` flag per triangle.

    Vertex normals are the area-weighted sums of the normals of the triangles sharing the
    vertex. Planar arrays and bincount throughout: 3x faster than (N, 3) arrays and add.at.
    """
    count, n_vertices = len(mesh.triangles), len(mesh.vertices)
    corner = mesh.triangles.T  # (3, T): corner c of every triangle
    px, py, pz = (np.ascontiguousarray(mesh.vertices[:, k]) for k in range(3))
    ax, ay, az = px[corner[0]], py[corner[0]], pz[corner[0]]
    e1x, e1y, e1z = px[corner[1]] - ax, py[corner[1]] - ay, pz[corner[1]] - az
    e2x, e2y, e2z = px[corner[2]] - ax, py[corner[2]] - ay, pz[corner[2]] - az
    cross = (e1y * e2z - e1z * e2y, e1z * e2x - e1x * e2z, e1x * e2y - e1y * e2x)
    area2 = np.sqrt(cross[0] ** 2 + cross[1] ** 2 + cross[2] ** 2)
    inverse_area2 = np.divide(1.0, area2, out=np.zeros_like(area2), where=area2 > 0)
    flat_corner = corner.ravel()
    vertex = [np.bincount(flat_corner, weights=np.tile(c, 3), minlength=n_vertices) for c in cross]
    length = np.sqrt(vertex[0] ** 2 + vertex[1] ** 2 + vertex[2] ** 2)
    inverse = np.divide(1.0, length, out=np.zeros_like(length), where=length > 0)
    vertex = [v * inverse for v in vertex]
    spread = np.zeros(count)
    table = np.empty((count + 1, 9), dtype=np.float32)
    table[count] = np.nan
    corners_k = [[v[corner[c]] for v in vertex] for c in range(3)]  # [corner][axis] (T,)
    for c in range(3):
        for k in range(3):
            spread = np.maximum(spread, np.abs(corners_k[c][k] - cross[k] * inverse_area2))
    for c in range(3):
        for k in range(3):
            value = corners_k[c][k] if c == 0 else corners_k[c][k] - corners_k[0][k]
            table[:count, 3 * c + k] = value
    # 1e-4 rad of disagreement is invisible in shading: such triangles are drawn flat.
    return table, spread > 1e-4


class Renderer:
    """A scene of meshes, each with an object id, rendered by ray casting.

    The meshes are concatenated into one Embree geometry (one BVH build, per-triangle id
    lookups) when the first image is cast; adding a mesh afterwards rebuilds it. A renderer
    is one frame's scene: make a new one (or ``clear`` it) per frame.

    Args:
        objects: ``(object_id, mesh)`` pairs; meshes in the camera optical frame (metres).
            Object ids are yours (>= 0 keeps -1 free for "nothing").
        smooth_normals: interpolate normals between shared vertices (curved surfaces look
            round); False gives each triangle its own flat normal.
        nthreads: threads for casting (0: all cores).
    """

    def __init__(
        self,
        objects: Iterable[tuple[int, Mesh]] = (),
        *,
        smooth_normals: bool = True,
        nthreads: int = 0,
    ) -> None:
        self._objects: list[tuple[int, Mesh]] = []
        self._smooth = bool(smooth_normals)
        self._nthreads = int(nthreads)
        self._geometry: _Geometry | None = None
        self._scene: o3d.t.geometry.RaycastingScene | None = None
        self._window_scene: _WindowScene | None = None
        self._nearest: float | None = None
        for object_id, mesh in objects:
            self.add(object_id, mesh)

    # ------------------------------------------------------------------ scene content

    def add(self, object_id: int, mesh: Mesh) -> None:
        """Add ``mesh`` (camera optical frame, metres) under ``object_id``."""
        if int(object_id) == NO_OBJECT:
            raise RenderError(f"object id {NO_OBJECT} is reserved for 'nothing hit'")
        self._objects.append((int(object_id), mesh))
        self._geometry = None
        self._scene = None
        self._window_scene = None
        self._nearest = None

    def clear(self) -> None:
        """Remove every mesh."""
        self._objects.clear()
        self._geometry = None
        self._scene = None
        self._window_scene = None
        self._nearest = None

    @property
    def triangle_count(self) -> int:
        """How many triangles the scene holds."""
        return sum(len(m.triangles) for _, m in self._objects)

    def _geom(self) -> _Geometry:
        if self._geometry is None:
            self._geometry = _build_geometry(self._objects, self._smooth)
        return self._geometry

    def _make_scene(self, triangles: np.ndarray) -> o3d.t.geometry.RaycastingScene:
        scene = o3d.t.geometry.RaycastingScene(nthreads=self._nthreads)
        if len(triangles):
            scene.add_triangles(self._geom().vertices, o3d.core.Tensor.from_numpy(triangles))
        return scene

    def _scene_for_shadows(
        self, result: RenderResult, viewpoint: np.ndarray
    ) -> o3d.t.geometry.RaycastingScene:
        """The last window scene if it holds every occluder of ``result``'s shadow rays
        towards ``viewpoint``, else the full scene."""
        cached = self._window_scene
        if (
            cached is not None
            and cached.viewpoint is not None
            and np.allclose(cached.viewpoint, viewpoint, rtol=0, atol=1e-12)
        ):
            hit = np.isfinite(result.depth)
            depth = result.depth[hit]
            # A surface beyond z_far may have occluders the depth cull left out.
            if (
                hit.any()
                and float(depth.min()) >= cached.z_near
                and float(depth.max()) <= cached.z_far
                and cached.covers(result.rays[..., 0][hit], result.rays[..., 1][hit])
            ):
                return cached.scene
        return self._full_scene()

    def _full_scene(self) -> o3d.t.geometry.RaycastingScene:
        if self._scene is None:
            self._scene = self._make_scene(self._geom().triangles)
        return self._scene

    # ------------------------------------------------------------------ images

    def render(self, camera: CameraModel) -> RenderResult:
        """The full ``camera.height`` x ``camera.width`` image (lens distortion honoured)."""
        return self._cast(self._full_scene(), None, _camera_ray_set(camera), _identity_window())

    def render_window(
        self,
        camera: CameraModel,
        crop_to_image: np.ndarray,
        size: int | tuple[int, int],
        *,
        cull: bool = True,
        shadow_viewpoint: tuple[float, float, float] | None = STEREO_VIEWPOINT_M,
    ) -> RenderResult:
        """A crop window rendered directly at ``size`` (width, height) pixels.

        Args:
            camera: the camera whose image the window lies in.
            crop_to_image: shape (2, 3), crop pixel (column, row) -> image pixel (u, v), as
                made by ``hand_pose_ros.crop.crop_to_image_matrix``.
            size: the crop's (width, height), or one int for a square.
            cull: build a scene of only the triangles that can project into the window
                (faster for small windows; the result is the same).
            shadow_viewpoint: the culled scene also keeps what could hide the window's
                surfaces from this point (metres, optical frame), so that
                ``occluded_from`` with the same viewpoint reuses it; None: the window only.
        """
        return self.render_windows(
            camera, [(crop_to_image, size)], cull=cull, shadow_viewpoint=shadow_viewpoint
        )[0]

    def render_windows(
        self,
        camera: CameraModel,
        windows: Sequence[tuple[np.ndarray, int | tuple[int, int]]],
        *,
        cull: bool = True,
        shadow_viewpoint: tuple[float, float, float] | None = STEREO_VIEWPOINT_M,
        max_depth_m: float | None = None,
    ) -> list[RenderResult]:
        """Several windows (``(crop_to_image, size)`` pairs) from one culled scene (see
        ``render_window``).

        Args:
            max_depth_m: with ``cull``, also leave out triangles wholly beyond this depth
                (metres): they render as misses. For depth crops that clip everything
                beyond their cube anyway: far walls cost a third of the casting time.
        """
        ray_sets = [_rays(window_rays(camera, matrix, size)) for matrix, size in windows]
        scene, kept = self._full_scene_or_culled(ray_sets, cull, shadow_viewpoint, max_depth_m)
        return [
            self._cast(scene, kept, rays, _matrix(matrix))
            for rays, (matrix, _) in zip(ray_sets, windows, strict=True)
        ]

    def _full_scene_or_culled(
        self,
        ray_sets: list[_Rays],
        cull: bool,
        shadow_viewpoint: tuple[float, float, float] | None,
        max_depth_m: float | None = None,
    ) -> tuple[o3d.t.geometry.RaycastingScene, np.ndarray | None]:
        geometry = self._geom()
        if not cull or not len(geometry.triangles):
            return self._full_scene(), None
        window = _ray_bounds(ray_sets)
        z_far = np.inf if max_depth_m is None else float(max_depth_m)
        kept = _frustum_triangles(geometry, window, z_far=z_far)
        bounds, z_near = window, 0.0
        if shadow_viewpoint is not None and len(kept):
            viewpoint = np.asarray(shadow_viewpoint, dtype=np.float64).reshape(3)
            if abs(viewpoint[2]) > 1e-9:
                return self._full_scene(), None
            # An occluder at depth z >= z_near of a shadow ray towards a viewpoint on the
            # camera plane projects at most viewpoint / z_near beyond the window (nearer
            # triangles are all kept), so that widened window holds every occluder.
            z = geometry.vertex_xyz[geometry.triangles[kept].reshape(-1), 2]
            z_near = max(float(z[z > 0].min()) if (z > 0).any() else 0.0, 0.05)
            bounds = _widened(window, viewpoint, z_near)
            kept = _frustum_triangles(geometry, bounds, z_near, z_far)
        # Always the culled copy, even of nearly everything: the triangles it leaves out
        # are mostly large walls and the torso, which cost Embree far more than their
        # number (a hand-sized window of 90 % of the triangles casts ~25 % faster).
        scene = self._make_scene(np.ascontiguousarray(geometry.triangles[kept]))
        self._window_scene = _WindowScene(
            scene,
            kept,
            window,
            z_near,
            z_far,
            None if shadow_viewpoint is None else tuple(float(c) for c in shadow_viewpoint),
        )
        return scene, kept

    def _cast(
        self,
        scene: o3d.t.geometry.RaycastingScene,
        kept: np.ndarray | None,
        rays: _Rays,
        crop_to_image: np.ndarray,
    ) -> RenderResult:
        geometry = self._geom()
        out = scene.cast_rays(o3d.core.Tensor.from_numpy(rays.packed), nthreads=self._nthreads)
        # Misses carry INVALID_ID; clip them to the sentinel entry of the lookup tables.
        primitive = out["primitive_ids"].numpy()
        index = scratch("render.index", primitive.shape, np.intp)
        if kept is None:
            np.minimum(primitive, np.uint32(geometry.count), out=index, casting="unsafe")
        else:
            kept_ext = _with_sentinel(kept.astype(np.intp), geometry.count)
            np.minimum(primitive, np.uint32(len(kept)), out=index, casting="unsafe")
            np.take(kept_ext, index, out=index, mode="wrap")
        depth = out["t_hit"].numpy()
        missed = np.equal(index, geometry.count, out=scratch("render.missed", index.shape, bool))
        np.copyto(depth, np.float32(np.nan), where=missed)
        barycentric = out["primitive_uvs"].numpy()
        return RenderResult(
            depth=depth,
            # mode="wrap" skips the bounds check (every index is valid): ~2x faster.
            object_id=np.take(geometry.object_id, index, mode="wrap"),
            part=np.take(geometry.part, index, mode="wrap"),
            normal=_facing_normals(
                geometry, index, missed, barycentric, out["primitive_normals"], rays
            ),
            rays=rays.directions,
            triangle=np.take(geometry.triangle, index, mode="wrap"),
            barycentric=barycentric,
            crop_to_image=crop_to_image,
        )

    # ------------------------------------------------------------------ ray tests

    def cast_points_visibility(self, points: np.ndarray) -> PointVisibility:
        """The first surface on the ray from the camera centre towards each point.

        Args:
            points: shape (N, 3), metres in the camera optical frame (keypoints).

        Returns:
            per point: its range, the distance to the first hit along the same ray, and the
            hit's object id and part (see ``PointVisibility.visible``).
        """
        xyz = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        finite = np.isfinite(xyz).all(axis=1)
        range_m = np.linalg.norm(xyz, axis=1)
        usable = finite & (range_m > 0)
        hit_distance = np.full(len(xyz), np.nan)
        object_id = np.full(len(xyz), NO_OBJECT, dtype=np.int32)
        part = np.zeros(len(xyz), dtype=np.int16)
        if usable.any():
            direction = xyz[usable] / range_m[usable, None]  # unit: t is metres
            scene, kept = self._scene_for_points(xyz[usable])
            out = scene.cast_rays(
                o3d.core.Tensor.from_numpy(_rays(direction.astype(np.float32)).packed),
                nthreads=self._nthreads,
            )
            primitive = out["primitive_ids"].numpy()
            hit = primitive != _INVALID_ID
            t = out["t_hit"].numpy().astype(np.float64)
            distance = np.where(hit, t, np.inf)
            ids = np.full(len(direction), NO_OBJECT, dtype=np.int32)
            labels = np.zeros(len(direction), dtype=np.int16)
            geometry = self._geom()
            triangle = primitive[hit] if kept is None else kept[primitive[hit]]
            ids[hit] = geometry.object_id[triangle]
            labels[hit] = geometry.part[triangle]
            hit_distance[usable] = distance
            object_id[usable] = ids
            part[usable] = labels
        return PointVisibility(range_m, hit_distance, object_id, part)

    def _scene_for_points(
        self, points: np.ndarray
    ) -> tuple[o3d.t.geometry.RaycastingScene, np.ndarray | None]:
        """The last window scene (and its triangle indices) if every camera ray towards
        ``points`` lies inside its window, else the full scene (and None).

        Exact: a surface on such a ray projects into the window, so culling kept it.
        Saves building the full scene's BVH when crops only need keypoint visibility.
        """
        cached = self._window_scene
        if cached is None or not ((points[:, 2] > 0) & (points[:, 2] <= cached.z_far)).all():
            return self._full_scene(), None
        if cached.covers(points[:, 0] / points[:, 2], points[:, 1] / points[:, 2]):
            return cached.scene, cached.kept
        return self._full_scene(), None

    def occluded_from(
        self,
        result: RenderResult,
        viewpoint: np.ndarray | tuple[float, float, float],
        camera: CameraModel | None = None,
        *,
        normal_offset_m: float = 0.0,
    ) -> np.ndarray:
        """shape (H, W) bool: hit points that a second camera at ``viewpoint`` cannot see.

        This is the occlusion "shadow" of a stereo depth camera: a surface point seen by the
        colour camera but hidden from the other imager has no disparity and no depth.
        One shadow ray per pixel, from the surface towards the viewpoint (a closed surface
        turned away from the viewpoint hides itself). With ``camera`` given, a viewpoint on
        the x axis and a window without rotation, only the pixels the depth image itself
        says may be hidden are ray tested (about a tenth of a typical frame).

        Args:
            result: a render of this renderer's scene.
            viewpoint: shape (3,), metres, the other imager's centre in the optical frame
                (a D435 aligned to colour: the right imager about (0.065, 0, 0)).
            camera: the camera ``result`` was rendered with (enables the pre-filter).
            normal_offset_m: start each ray this far off the surface along its normal:
                a few millimetres keep the facets of a coarse curved mesh from shadowing
                their own lit side (the "shadow terminator" problem of light shadows).
        """
        target = np.asarray(viewpoint, dtype=np.float64).reshape(3)
        depth = result.depth
        candidates = np.isfinite(depth)
        occluded = np.zeros(depth.shape, dtype=bool)
        if not candidates.any():
            return occluded
        if camera is not None and _prefilter_applies(result.crop_to_image, target, camera):
            z_near = self._nearest_depth()
            # The band of pixels an occluder outside the window at z_near could hide, in
            # output pixels; where it is wide, a tighter bound is worth its ~1 ms.
            band = camera.fx * abs(target[0]) / z_near / abs(result.crop_to_image[0, 0])
            if min(band, depth.shape[1]) * depth.shape[0] > _TIGHT_BOUND_PIXELS:
                z_near = self._outside_occluder_depth(result.rays, target)
            candidates &= _shadow_candidates(depth, result.crop_to_image, target, camera, z_near)
        flat = np.flatnonzero(candidates)
        if not len(flat):
            return occluded
        points = np.take(result.rays.reshape(-1, 3), flat, axis=0)
        points *= np.take(depth.reshape(-1), flat)[:, None]
        normals = None
        if normal_offset_m:
            normals = np.take(result.normal.reshape(-1, 3), flat, axis=0)
        blocked = self._blocked(
            self._scene_for_shadows(result, target), points, target, normals, normal_offset_m
        )
        occluded.reshape(-1)[flat] = blocked
        return occluded

    def occluded_points(
        self,
        points: np.ndarray,
        viewpoint: np.ndarray | tuple[float, float, float],
        *,
        normals: np.ndarray | None = None,
        normal_offset_m: float = 0.0,
    ) -> np.ndarray:
        """shape (N,) bool: surface points that something hides from ``viewpoint``.

        The shadow rays of ``occluded_from``, for any points (e.g. a subsample of a render's
        hit points, for light shadows).

        Args:
            points: shape (N, 3), metres, points on the scene's surfaces (optical frame).
            viewpoint: shape (3,), metres, the light or second camera.
            normals: shape (N, 3), the surface normals at the points (with
                ``normal_offset_m``).
            normal_offset_m: start each ray this far off the surface along its normal.
        """
        xyz = np.asarray(points, dtype=np.float32).reshape(-1, 3)
        if not len(xyz):
            return np.zeros(0, dtype=bool)
        if normal_offset_m and normals is None:
            raise RenderError("normal_offset_m needs the points' normals")
        offsets = None
        if normal_offset_m:
            offsets = np.asarray(normals, dtype=np.float32).reshape(-1, 3)
        target = np.asarray(viewpoint, dtype=np.float64).reshape(3)
        return self._blocked(self._full_scene(), xyz, target, offsets, normal_offset_m)

    def _blocked(
        self,
        scene: o3d.t.geometry.RaycastingScene,
        points: np.ndarray,
        target: np.ndarray,
        normals: np.ndarray | None,
        normal_offset_m: float,
    ) -> np.ndarray:
        """(N,) bool: the segment from each point (N, 3) towards ``target`` is blocked."""
        packed = _shadow_rays(points, target, normals, normal_offset_m)
        blocked = scene.test_occlusions(
            o3d.core.Tensor.from_numpy(packed), tnear=0.0, tfar=1.0, nthreads=self._nthreads
        )
        return np.asarray(blocked.numpy(), dtype=bool)

    def _nearest_depth(self) -> float:
        """The depth of the scene's nearest vertex in front of the camera, at least
        ``_NEAREST_OCCLUDER_M``: a bound for any occluder."""
        if self._nearest is None:
            z = self._geom().vertex_xyz[:, 2]
            in_front = z[z > 0]
            self._nearest = max(
                float(in_front.min()) if len(in_front) else 0.0, _NEAREST_OCCLUDER_M
            )
        return self._nearest

    def _outside_occluder_depth(self, rays: np.ndarray, viewpoint: np.ndarray) -> float:
        """The nearest depth (at least ``_NEAREST_OCCLUDER_M``) of any surface outside a
        window that could hide one of its pixels from ``viewpoint`` (on the x axis); inf
        if there is none.

        Such an occluder lies beyond the window's edge on the viewpoint's side, yet the
        viewpoint sees it inside the window's columns and rows (where it sees the pixel it
        hides). Each triangle is clipped to that wedge; the nearest clipped corner counts.
        """
        geometry = self._geom()
        if not geometry.count:
            return float("inf")
        # A pinhole window without rotation: x/z depends on the column only, y/z on the row.
        x_edges = float(rays[0, 0, 0]), float(rays[0, -1, 0])
        y_lo, y_hi = sorted((float(rays[0, 0, 1]), float(rays[-1, 0, 1])))
        baseline = float(viewpoint[0])
        # Half-spaces a . p + d >= 0 (p in metres, optical frame).
        if baseline > 0:
            edge = max(x_edges)
            beyond = (1.0, 0.0, -edge, 0.0)  # x / z >= edge
            seen = (-1.0, 0.0, edge, baseline)  # (x - B) / z <= edge
        else:
            edge = min(x_edges)
            beyond = (-1.0, 0.0, edge, 0.0)
            seen = (1.0, 0.0, -edge, -baseline)
        planes = np.array(
            [
                (0.0, 0.0, 1.0, -_NEAREST_OCCLUDER_M),
                beyond,
                seen,
                (0.0, 1.0, -y_lo, 0.0),  # y / z >= y_lo
                (0.0, -1.0, y_hi, 0.0),  # y / z <= y_hi
            ]
        )
        nearest = _nearest_clipped_depth(geometry.vertex_xyz, geometry.triangles, planes)
        return max(nearest, _NEAREST_OCCLUDER_M)


def _shadow_rays(
    points: np.ndarray,
    target: np.ndarray,
    normals: np.ndarray | None = None,
    normal_offset_m: float = 0.0,
) -> np.ndarray:
    """(N, 6) float32 rays from surface points (N, 3) towards ``target``, which is at t = 1.

    Each starts ``_SHADOW_RAY_OFFSET_M`` towards the target (and ``normal_offset_m`` along
    its normal), so that a surface does not shadow itself through float32 rounding.
    Planar arithmetic: numpy is several times faster on flat arrays than on (N, 3) ones.
    """
    count = len(points)
    packed = np.empty((count, 6), dtype=np.float32)
    goal = [np.float32(c) for c in target]
    x, y, z = (np.ascontiguousarray(points[:, k]) for k in range(3))
    dx, dy, dz = goal[0] - x, goal[1] - y, goal[2] - z
    step = np.float32(_SHADOW_RAY_OFFSET_M) / np.sqrt(dx * dx + dy * dy + dz * dz)
    origin: list[np.ndarray] = [x + dx * step, y + dy * step, z + dz * step]
    direction: list[np.ndarray] = [dx, dy, dz]
    if normals is not None and normal_offset_m:
        for k in range(3):
            origin[k] += np.float32(normal_offset_m) * normals[:, k]
            direction[k] = goal[k] - origin[k]
    for k in range(3):
        packed[:, k] = origin[k]
        packed[:, 3 + k] = direction[k]
    return packed


def _prefilter_applies(
    crop_to_image: np.ndarray, viewpoint: np.ndarray, camera: CameraModel
) -> bool:
    """Whether ``_shadow_candidates`` can pre-filter shadow rays: a viewpoint on the x axis,
    a pinhole camera and a window without rotation or shear."""
    linear = crop_to_image[:, :2]
    return not (
        viewpoint[0] == 0.0
        or viewpoint[1] != 0.0
        or viewpoint[2] != 0.0
        or camera.has_distortion
        or linear[0, 1] != 0.0
        or linear[1, 0] != 0.0
        or linear[0, 0] == 0.0
    )


def _nearest_clipped_depth(
    vertices: np.ndarray, triangles: np.ndarray, planes: np.ndarray
) -> float:
    """The smallest z over the parts of the triangles inside every half-space
    ``a . p + d >= 0`` (``planes`` (P, 4) rows ``(ax, ay, az, d)``); inf if none.

    Triangles wholly outside one half-space are dropped first (most of them); the others
    are clipped one plane after another (Sutherland-Hodgman, vectorised over triangles).
    """
    inside = vertices @ planes[:, :3].T + planes[:, 3] >= 0.0  # (V, P)
    outside_bits = np.zeros(len(vertices), dtype=np.uint8)
    for k in range(len(planes)):
        outside_bits |= (~inside[:, k]).astype(np.uint8) << k
    common = outside_bits[triangles[:, 0]] & outside_bits[triangles[:, 1]]
    common &= outside_bits[triangles[:, 2]]
    kept = triangles[common == 0]
    if not len(kept):
        return float("inf")
    size = 3 + len(planes)  # each plane adds at most one corner to a convex polygon
    polygon = np.zeros((len(kept), size, 3))
    polygon[:, :3] = vertices[kept]
    count = np.full(len(kept), 3)
    slots = np.arange(size)
    for plane in planes:
        valid = slots[None, :] < count[:, None]
        following = (slots[None, :] + 1) % np.maximum(count, 1)[:, None]
        distance = polygon @ plane[:3] + plane[3]
        next_corner = np.take_along_axis(polygon, following[..., None], axis=1)
        next_distance = np.take_along_axis(distance, following, axis=1)
        keep_corner = valid & (distance >= 0.0)
        crossing = valid & ((distance >= 0.0) != (next_distance >= 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(crossing, distance / (distance - next_distance), 0.0)
        crossed = polygon + t[..., None] * (next_corner - polygon)
        # Each edge emits its start corner if inside, then its crossing if any, in order.
        emitted = np.stack([polygon, crossed], axis=2).reshape(len(kept), 2 * size, 3)
        flags = np.stack([keep_corner, crossing], axis=2).reshape(len(kept), 2 * size)
        position = np.cumsum(flags, axis=1) - 1
        rows, columns = np.nonzero(flags)
        clipped = np.zeros_like(polygon)
        clipped[rows, position[rows, columns]] = emitted[rows, columns]
        polygon, count = clipped, flags.sum(axis=1)
    valid = slots[None, :] < count[:, None]
    if not valid.any():
        return float("inf")
    return float(polygon[..., 2][valid].min())


def _ray_bounds(ray_sets: list[_Rays]) -> tuple[float, float, float, float]:
    """(x_lo, x_hi, y_lo, y_hi): the extent of the rays' (x/z, y/z)."""
    return (
        min(float(r.x.min()) for r in ray_sets),
        max(float(r.x.max()) for r in ray_sets),
        min(float(r.y.min()) for r in ray_sets),
        max(float(r.y.max()) for r in ray_sets),
    )


def _widened(
    bounds: tuple[float, float, float, float], viewpoint: np.ndarray, z_near: float
) -> tuple[float, float, float, float]:
    """``bounds`` stretched towards a viewpoint on the camera plane by viewpoint / z_near."""
    x_lo, x_hi, y_lo, y_hi = bounds
    dx, dy = float(viewpoint[0]) / z_near, float(viewpoint[1]) / z_near
    return (x_lo + min(dx, 0.0), x_hi + max(dx, 0.0), y_lo + min(dy, 0.0), y_hi + max(dy, 0.0))


@dataclass
class _WindowScene:
    """The last culled window scene, kept for shadow rays and keypoint visibility (see
    ``render_windows``)."""

    scene: o3d.t.geometry.RaycastingScene
    kept: np.ndarray  # the scene's triangles, as indices into the renderer's geometry
    window: tuple[float, float, float, float]
    z_near: float
    z_far: float  # triangles wholly beyond it are left out
    viewpoint: tuple[float, ...] | None

    def covers(self, x: np.ndarray, y: np.ndarray) -> bool:
        """Whether every camera ray (x/z, y/z) lies inside the window."""
        x_lo, x_hi, y_lo, y_hi = self.window
        return bool(x.min() >= x_lo and x.max() <= x_hi and y.min() >= y_lo and y.max() <= y_hi)


def _other_imager_columns(
    depth: np.ndarray, crop_to_image: np.ndarray, viewpoint: np.ndarray, camera: CameraModel
) -> tuple[np.ndarray, bool, float]:
    """Where each pixel appears in the other imager, for a viewpoint at (B, 0, 0).

    A point at column u and depth z appears there at s = u - f B / z (in output pixels:
    image pixels over the window's scale), and at its own column where nothing is hit.
    Columns are counted towards the viewpoint's side (``flipped``: the image is read
    right to left), so that an occluder always lies at a larger column than what it hides.

    Returns:
        s (H, W) float32, flipped, and the disparity scale f B / window scale (px metres).
    """
    linear = crop_to_image[:, :2]
    baseline = float(viewpoint[0])
    flipped = (baseline > 0) != (linear[0, 0] > 0)
    disparity_scale = camera.fx * abs(baseline) / abs(linear[0, 0])
    z = depth[:, ::-1] if flipped else depth
    columns = np.arange(depth.shape[1], dtype=np.float32)
    s = np.divide(np.float32(disparity_scale), z, dtype=np.float32)
    np.fmax(s, np.float32(0.0), out=s)  # fmax drops NaN: a miss keeps its column
    np.subtract(columns, s, out=s)
    return s, flipped, disparity_scale


def _hidden_in_image(s: np.ndarray, margin_px: float) -> np.ndarray:
    """(H, W) bool: pixels whose other-imager column ``s`` is reached (within
    ``margin_px``) by some pixel two or more columns beyond them (a reverse running
    minimum along each row)."""
    beyond = np.full_like(s, np.inf)
    beyond[:, :-2] = np.minimum.accumulate(s[:, :1:-1], axis=1)[:, ::-1]
    return np.asarray(beyond <= s + np.float32(margin_px))


def image_stereo_shadow(
    depth: np.ndarray,
    crop_to_image: np.ndarray,
    viewpoint: np.ndarray | tuple[float, float, float],
    camera: CameraModel,
) -> np.ndarray | None:
    """(H, W) bool: the stereo shadow as the depth image itself shows it, no rays cast.

    The pixels hidden from ``viewpoint`` by a surface the image shows (see
    ``_other_imager_columns``). About 0.1 ms for a 128x128 crop against ~1.4 ms for the
    exact ``Renderer.occluded_from``; what it misses is an occluder outside the window
    (near the window's edge on the viewpoint's side). None where it does not apply (a
    viewpoint off the x axis, lens distortion, a rotated window).
    """
    target = np.asarray(viewpoint, dtype=np.float64).reshape(3)
    if not _prefilter_applies(crop_to_image, target, camera):
        return None
    if not np.isfinite(depth).any():
        return np.zeros(depth.shape, dtype=bool)
    s, flipped, _ = _other_imager_columns(depth, crop_to_image, target, camera)
    hidden = _hidden_in_image(s, 0.5) & np.isfinite(depth[:, ::-1] if flipped else depth)
    return np.asarray(hidden[:, ::-1] if flipped else hidden)


def _shadow_candidates(
    depth: np.ndarray,
    crop_to_image: np.ndarray,
    viewpoint: np.ndarray,
    camera: CameraModel,
    scene_z_near: float,
) -> np.ndarray:
    """(H, W) bool: pixels that may be hidden from ``viewpoint``; all True if unsure.

    A pixel is hidden by the surface seen at column q beyond it when s(q) <= s(u) (see
    ``_other_imager_columns``). Rays then confirm the candidates (and catch occluders the
    image does not show); pixels that an occluder outside the window could hide (one no
    nearer than ``scene_z_near``) stay candidates.
    """
    everything = np.ones(depth.shape, dtype=bool)
    if not _prefilter_applies(crop_to_image, viewpoint, camera):
        return everything
    if not np.isfinite(depth).any():
        return everything
    s, flipped, disparity_scale = _other_imager_columns(depth, crop_to_image, viewpoint, camera)
    width = depth.shape[1]
    # The margins (in pixels) cover silhouettes that fall between pixel centres without
    # flagging a plain wall (s grows by 1 a column). The next column's margin of 0.9 also
    # flags surfaces nearly edge-on to the viewpoint, whose facets hide the pixel between
    # pixel centres (a frame has a few such pixels).
    candidates = _hidden_in_image(s, 1.5)
    candidates[:, :-1] |= s[:, 1:] <= s[:, :-1] + np.float32(0.9)
    candidates |= s + np.float32(1.5) >= np.float32((width - 1) - disparity_scale / scene_z_near)
    if flipped:
        candidates = candidates[:, ::-1]
    return np.asarray(candidates)


def _frustum_triangles(
    geometry: _Geometry,
    bounds: tuple[float, float, float, float],
    z_near: float = 0.0,
    z_far: float = np.inf,
) -> np.ndarray:
    """Indices of the triangles whose projection can meet a ray within ``bounds``, and
    that reach no farther than ``z_far``.

    Each triangle wholly in front of the camera projects to the triangle of its projected
    corners, so the bounding box of those corners against ``bounds`` (x/z, y/z extents) is
    a safe test; triangles reaching behind the camera plane, or nearer than ``z_near``, are
    always kept (unless wholly beyond ``z_far``).
    """
    x_lo, x_hi, y_lo, y_hi = bounds
    margin = 1e-6 * max(1.0, abs(x_lo), abs(x_hi), abs(y_lo), abs(y_hi))
    xyz = geometry.vertex_xyz
    z = xyz[:, 2]
    in_front = z > max(z_near, 1e-9)
    safe_z = np.where(in_front, z, 1.0)
    # Per vertex: which side of each window edge it projects to (4 bits); a triangle is
    # outside when all three corners are beyond the same edge.
    x = xyz[:, 0] / safe_z
    y = xyz[:, 1] / safe_z
    outside = (
        (x < x_lo - margin).astype(np.uint8)
        | ((x > x_hi + margin).astype(np.uint8) << 1)
        | ((y < y_lo - margin).astype(np.uint8) << 2)
        | ((y > y_hi + margin).astype(np.uint8) << 3)
    )
    outside[~in_front] = 0  # behind the camera plane or too near: keep
    if np.isfinite(z_far):
        outside |= (z > z_far).astype(np.uint8) << 4
    t = geometry.triangles
    common = outside[t[:, 0]] & outside[t[:, 1]] & outside[t[:, 2]]
    return np.flatnonzero(common == 0)


def _facing_normals(
    geometry: _Geometry,
    index: np.ndarray,
    missed: np.ndarray,
    barycentric: np.ndarray,
    embree_normals: o3d.core.Tensor,
    rays: _Rays,
) -> np.ndarray:
    """(..., 3) unit normals of the hits on triangles ``index``, turned towards the camera.

    NaN where ``missed`` (``index`` is the "nothing hit" sentinel). Turns Embree's normals
    in place (no new image), and smooths only the pixels on triangles whose corners
    disagree (curved surfaces), on planar arrays.
    """
    normal = embree_normals.numpy()  # unit geometric normals; 0 where nothing is hit
    shape = index.shape
    # Rays are (x/z, y/z, 1): the normal faces the camera when n . ray < 0.
    facing = np.multiply(normal[..., 0], rays.x, out=scratch("normals.facing", shape))
    term = np.multiply(normal[..., 1], rays.y, out=scratch("normals.term", shape))
    facing += term
    facing += normal[..., 2]
    away = np.greater(facing, 0, out=scratch("normals.away", shape, bool))
    # +1 or -1 (arithmetic on the mask: np.where and masked writes are several times slower)
    sign = np.multiply(away, np.float32(-2), out=scratch("normals.sign", shape))
    sign += np.float32(1)
    for k in range(3):
        normal[..., k] *= sign
    if missed.any():
        normal[missed] = np.nan
    if geometry.corner_normal is None:
        return normal
    curved = np.flatnonzero(np.take(geometry.curved, index, mode="wrap"))
    if not len(curved):
        return normal
    corner_index = np.take(index, curved, mode="wrap")
    corners = np.take(geometry.corner_normal, corner_index, axis=0, mode="wrap")  # (n, 9)
    weights = np.take(barycentric.reshape(-1, 2), curved, axis=0)
    b1 = np.ascontiguousarray(weights[:, 0])
    b2 = np.ascontiguousarray(weights[:, 1])
    sign = np.take(sign, curved)
    smooth = []
    for k in range(3):
        component = corners[:, 3 + k] * b1
        component += corners[:, k]
        component += corners[:, 6 + k] * b2
        component *= sign
        smooth.append(component)
    sx, sy, sz = smooth
    length = np.sqrt(sx * sx + sy * sy + sz * sz)
    # Interpolated normals can lean past the silhouette on a coarse mesh; there (and on
    # degenerate data) the flat normal is the honest answer.
    facing_smooth = sx * np.take(rays.x, curved)
    facing_smooth += sy * np.take(rays.y, curved)
    facing_smooth += sz
    good = (facing_smooth < 0) & (length > 1e-6)
    keep = curved[good]
    inverse = np.float32(1) / length[good]
    flat_normal = normal.reshape(-1, 3)
    flat_normal[keep, 0] = sx[good] * inverse
    flat_normal[keep, 1] = sy[good] * inverse
    flat_normal[keep, 2] = sz[good] * inverse
    return normal


# ----------------------------------------------------------------------------- benchmark


def _benchmark_scene(rng: np.random.Generator) -> list[tuple[int, Mesh]]:
    """About 15k triangles: a room and two hand-like clusters of finely cut capsules."""
    from hand_pose_ros.synth import primitives

    objects: list[tuple[int, Mesh]] = [
        (0, primitives.wall(4.0, 3.0, center=(0.0, 0.0, 2.0))),
        (1, primitives.table(center=(0.0, 0.3, 1.0))),
        (2, primitives.torso(center=(0.0, 0.35, 1.3))),
        (3, primitives.cylinder(0.035, 0.2, center=(0.3, 0.2, 0.9))),
        (4, primitives.sphere(0.05, center=(-0.3, 0.2, 0.9))),
    ]
    for k in range(3):
        objects.append((5 + k, primitives.random_box(rng, center=(-0.5 + 0.5 * k, 0.2, 1.1))))
    for hand, centre in enumerate(([-0.08, -0.02, 0.5], [0.1, 0.02, 0.6])):
        parts = []
        for finger in range(16):
            start = np.asarray(centre) + rng.normal(0.0, 0.03, 3)
            end = start + rng.normal(0.0, 0.02, 3)
            parts.append(
                primitives.capsule_between(start, end, 0.008, segments=28, rings=4, part=finger)
            )
        objects.append((10 + hand, Mesh.concatenate(parts)))
    return objects


def _benchmark() -> None:
    """Print the renderer's, the sensor's and the shading's speed on this machine."""
    import timeit

    from hand_pose_ros.crop import crop_to_image_matrix
    from hand_pose_ros.synth import appearance, sensor

    camera = CameraModel.from_intrinsics(615.0, 615.0, 319.5, 239.5, 640, 480)
    rng = np.random.default_rng(0)
    objects = _benchmark_scene(rng)
    renderer = Renderer(objects)
    triangles = renderer.triangle_count
    hand_uv = camera.project(np.array([[-0.08, -0.02, 0.5]]))[0]
    depth_window = crop_to_image_matrix(hand_uv, 200.0, 128)
    colour_window = crop_to_image_matrix(hand_uv, 200.0, 224)

    def best_ms(function: object, number: int) -> float:
        times = timeit.repeat(function, number=number, repeat=5)  # type: ignore[arg-type]
        return min(times) / number * 1e3

    def build_only() -> None:
        fresh = Renderer(objects)
        fresh._full_scene().cast_rays(
            o3d.core.Tensor.from_numpy(np.array([[0, 0, 0, 0, 0, 1]], np.float32))
        )

    rows = [
        ("scene build (concatenate, normals, BVH)", best_ms(build_only, 10)),
        ("full 640x480 frame incl. build", best_ms(lambda: Renderer(objects).render(camera), 5)),
        ("full 640x480 cast, scene built", best_ms(lambda: renderer.render(camera), 5)),
        (
            "128x128 depth crop incl. culled build",
            best_ms(lambda: Renderer(objects).render_window(camera, depth_window, 128), 20),
        ),
        (
            "128x128 depth crop, flat normals",
            best_ms(
                lambda: Renderer(objects, smooth_normals=False).render_window(
                    camera, depth_window, 128
                ),
                20,
            ),
        ),
        (
            "128 depth + 224 colour crop, one build",
            best_ms(
                lambda: Renderer(objects).render_windows(
                    camera, [(depth_window, 128), (colour_window, 224)]
                ),
                20,
            ),
        ),
    ]
    full = renderer.render(camera)
    crop = renderer.render_window(camera, depth_window, 128)
    colour = renderer.render_window(camera, colour_window, 224)
    config = sensor.SensorConfig()
    viewpoint = config.stereo_viewpoint_m
    materials = {k: appearance.random_material(rng) for k in range(10)}
    materials.update({10: appearance.skin_material(rng), 11: appearance.skin_material(rng)})
    lighting = appearance.random_lighting(rng)
    rows += [
        (
            "stereo shadow, full frame",
            best_ms(lambda: renderer.occluded_from(full, viewpoint, camera), 5),
        ),
        (
            "stereo shadow, 128 crop",
            best_ms(lambda: renderer.occluded_from(crop, viewpoint, camera), 20),
        ),
        (
            "sensor, full frame",
            best_ms(
                lambda: sensor.apply_depth_sensor(
                    full.depth, full.normal, np.random.default_rng(1), config, camera
                ),
                5,
            ),
        ),
        (
            "sensor, 128 crop",
            best_ms(
                lambda: sensor.apply_depth_sensor(
                    crop.depth,
                    crop.normal,
                    np.random.default_rng(1),
                    config,
                    camera,
                    crop_to_image=depth_window,
                ),
                20,
            ),
        ),
        (
            "shade, full frame",
            best_ms(lambda: appearance.shade(full, materials, np.random.default_rng(1)), 5),
        ),
        (
            "shade, 224 crop",
            best_ms(lambda: appearance.shade(colour, materials, np.random.default_rng(1)), 20),
        ),
        (
            f"light shadows, full frame, {len(lighting.lights)} lights",
            best_ms(lambda: appearance.light_shadows(renderer, full, lighting), 3),
        ),
    ]

    def depth_crop_pipeline() -> None:
        fresh = Renderer(objects, smooth_normals=False)
        window = fresh.render_window(camera, depth_window, 128)
        occluded = fresh.occluded_from(window, viewpoint, camera)
        sensor.apply_depth_sensor(
            window.depth,
            window.normal,
            np.random.default_rng(1),
            config,
            camera,
            crop_to_image=depth_window,
            occluded=occluded,
        )

    def frame_pipeline() -> None:
        fresh = Renderer(objects)
        frame = fresh.render(camera)
        occluded = fresh.occluded_from(frame, viewpoint, camera)
        frame_rng = np.random.default_rng(1)
        sensor.apply_depth_sensor(
            frame.depth, frame.normal, frame_rng, config, camera, occluded=occluded
        )
        appearance.shade(frame, materials, frame_rng)

    rows += [
        ("depth crop: render, stereo shadow, sensor", best_ms(depth_crop_pipeline, 20)),
        ("RGB-D frame: render, stereo shadow, sensor, shade", best_ms(frame_pipeline, 3)),
    ]
    print(f"scene: {triangles} triangles; best of 5 repeats")
    for name, ms in rows:
        print(f"  {name:50s} {ms:7.2f} ms  ({1000.0 / ms:7.1f} /s)")


if __name__ == "__main__":
    _benchmark()
