"""Find hands in a depth image: the nearest hand-sized object and its centre of mass.

DeepPrior++-style localisation (ANCHORS section 4, seed 002), shared by the depth model's
training and inference so that both place the cube crop the same way.

1. Seed: the nearest hand-sized object. Depth outside ``[min_depth_m, max_depth_m]`` is
   ignored. On a subsampled copy of the image the slice ``z <= t`` grows from the nearest
   valid depth in steps of ``slice_step_m``; after each step its connected components are
   measured in metric area (pixel count x (z/fx)(z/fy), so the limits mean the same at any
   distance and resolution). The first component to reach ``min_area_m2`` is the seed, never
   a speck or a few flying pixels. One already larger than ``max_area_m2`` when it first gets
   that big appeared all at once (a wall, a torso square to the camera) and is skipped.
2. Its object: everything connected to the seed without a depth jump of more than
   ``depth_jump_m`` and less than ``cube_m`` behind the seed's nearest point. If an arm
   leads out of it (deeper, or out of the image), the seed is the hand: the nearest part,
   DeepPrior++'s assumption. If nothing does, the whole object is in sight (a hand, or a hand
   with a forearm ending in front of the body) and its hand end is the seed instead: that
   keeps a forearm nearer than the hand from taking the centre.
3. Centre of mass in the cube, a few times: the region is the pixels of the object inside
   the cube of side ``cube_m`` around the current centre (its projected window and
   ``|z - z_c| <= cube / 2``), connected to the previous region without a depth jump. The
   jump rule keeps a body a few cm behind the hand out, which the cube's depth limit alone
   would let in. Of the region, the ``hand_end_m`` farthest from the arm is kept (the arm:
   where the region leaves the cube, or its deeper end; see ``_arm_exit``, ``_arm_end``):
   plain centre of mass slides down a forearm in the cube, and the keypoints' centroid, which
   the crops are trained around, lies near the knuckles. The new centre is the kept pixels'
   centroid (u, v) at their median depth plus ``surface_offset_m``. Stop when it moves less
   than ``tolerance_m``.
4. An object whose part in the cube is outside ``[min_area_m2, max_area_m2]`` (the far end
   of a torso is hand-sized, the torso is not), or that still goes right through the cube
   (a floor, a table's edge), is not a hand: the search goes on past it. For a second hand,
   the first hand's cube, and whatever touches it in the slices (its arm, the body it
   joins), is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hand_pose_ros.crop import CubeCrop, depth_cube_crop
from hand_pose_ros.geometry import CameraModel

_KERNEL_3X3 = np.ones((3, 3), dtype=np.uint8)


class LocaliseError(ValueError):
    """A depth image or localiser setting that hands cannot be searched with."""


@dataclass(frozen=True)
class LocaliserConfig:
    """Every number of the localiser.

    Attributes:
        min_depth_m, max_depth_m: the depth range searched, metres; nearer or farther
            measurements are ignored (15 cm is inside most depth cameras' minimum range; at
            1.5 m a hand is ~30 px across at 640x480).
        cube_m: side of the cube around the hand, metres (the crop's cube: 0.25 m fits a
            spread hand, ANCHORS section 4).
        min_area_m2: least area (pixel count x (z/fx)(z/fy), m^2, as the camera sees it) of a
            hand-like region: 20 cm^2 is a few fingertips or a fist seen from the side, ~200
            times a sensor speck at 0.5 m.
        max_area_m2: most area of a hand-like region, m^2: a spread hand is ~150 cm^2 and the
            forearm left in the cube adds < 100; a wall or a torso fills the cube's whole
            625 cm^2 face.
        slice_step_m: how much deeper each slice of the seed search reaches, metres.
        depth_jump_m: a depth step between neighbouring pixels larger than this separates two
            objects, metres: above sensor noise and the steps within a hand (a finger over
            the palm), below the gap to a body just behind it.
        hand_end_m: how much of a region's end far from its arm the centre is taken over,
            metres (step 3): a hand is ~18 cm from wrist to fingertip and its keypoints
            centre ~9 cm from the fingertips; of 9-20 cm, 10-12 cm put the centre nearest
            the keypoints' centroid on synthetic frames.
        min_arm_width_m: an exit narrower than this is a finger or two poking out of the
            cube, not the arm, metres.
        arm_recession_m: with no exit, an object's end is its arm only if it lies this much
            deeper than the other end (a forearm goes back towards the body), metres.
        surface_offset_m: added to the region's median depth, metres: the camera sees the
            hand's front surface, the hand's centre (and its keypoints' centroid) lies about
            half a hand's thickness behind it.
        iterations: most centre-of-mass iterations (DeepPrior++ uses a few).
        tolerance_m: converged when the centre moves less than this, metres.
        search_width_px: the seed search runs on the image subsampled to about this width,
            pixels (the seed only has to find the object).
        refine_width_px: the cube refinement samples at most this many pixels across the
            cube's window (thousands of samples fix a centroid to a fraction of a mm; a close
            hand at full resolution would cost ten times as much for no better a centre).
        max_candidates: most seeds tried per hand (each one that turns out not to be a hand
            costs one refinement).
    """

    min_depth_m: float = 0.15
    max_depth_m: float = 1.5
    cube_m: float = 0.25
    min_area_m2: float = 0.002
    max_area_m2: float = 0.04
    slice_step_m: float = 0.01
    depth_jump_m: float = 0.03
    hand_end_m: float = 0.12
    min_arm_width_m: float = 0.03
    arm_recession_m: float = 0.02
    surface_offset_m: float = 0.01
    iterations: int = 4
    tolerance_m: float = 0.001
    search_width_px: int = 160
    refine_width_px: int = 120
    max_candidates: int = 6

    def __post_init__(self) -> None:
        positive = ("min_depth_m", "cube_m", "min_area_m2", "slice_step_m", "depth_jump_m",
                    "hand_end_m", "min_arm_width_m", "arm_recession_m", "tolerance_m")  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise LocaliseError(f"{name} = {value}: expected a finite number > 0")
        if not np.isfinite(self.surface_offset_m):
            raise LocaliseError(f"surface_offset_m = {self.surface_offset_m}: expected finite")
        for low, high in (("min_depth_m", "max_depth_m"), ("min_area_m2", "max_area_m2")):
            if not getattr(self, high) > getattr(self, low):
                raise LocaliseError(
                    f"{low} = {getattr(self, low)}, {high} = {getattr(self, high)}: "
                    f"expected {high} > {low}"
                )
        for name in ("iterations", "search_width_px", "refine_width_px", "max_candidates"):
            if int(getattr(self, name)) < 1:
                raise LocaliseError(f"{name} = {getattr(self, name)}: expected an integer >= 1")


@dataclass
class HandLocation:
    """One hand found in a depth image.

    Attributes:
        center_xyz: shape (3,), the hand's centre in metres, camera optical frame.
        center_uv: shape (2,), its pixel (u = column, v = row).
        mask: shape (H, W) bool, the hand region's pixels the centre was computed from.
        area_px: the region's pixel count.
        area_m2: its metric area (pixel count x (z/fx)(z/fy)), m^2.
        iterations: centre-of-mass iterations run.
        converged: the last iteration moved the centre less than the tolerance.
    """

    center_xyz: np.ndarray
    center_uv: np.ndarray
    mask: np.ndarray
    area_px: int
    area_m2: float
    iterations: int
    converged: bool


def locate_hands(
    depth_m: np.ndarray,
    camera: CameraModel,
    config: LocaliserConfig | None = None,
    *,
    max_hands: int = 1,
) -> list[HandLocation]:
    """The nearest hands of a depth image, nearest first.

    Args:
        depth_m: shape (H, W) float metres, NaN (or 0) where there is no measurement (what
            ``geometry.decode_depth`` returns).
        camera: the depth image's camera; (H, W) must be its size.
        config: the localiser's parameters (default ``LocaliserConfig()``).
        max_hands: most hands returned; each next one lies outside the cubes of those before.

    Returns:
        up to ``max_hands`` locations; empty when nothing hand-like is in range.

    Raises:
        LocaliseError: depth that is not 2D float, does not match the camera's size, or
            max_hands < 1.
    """
    config = config or LocaliserConfig()
    depth = _checked_depth(depth_m, camera)
    if max_hands < 1:
        raise LocaliseError(f"max_hands = {max_hands}: expected >= 1")
    search = _SeedSearch(depth, camera, config)
    hands: list[HandLocation] = []
    for _ in range(config.max_candidates * max_hands):
        seed = search.next_seed()
        if seed is None:
            break
        location = _refine(depth, camera, config, seed, hands)
        if location is None:
            # Not a hand after all (e.g. a slanted wall whose near edge looked hand-sized).
            search.block_pixels(seed)
            continue
        hands.append(location)
        if len(hands) == max_hands:
            break
        search.block_cube(location.center_xyz)
    return hands


def crop_hand(
    depth_m: np.ndarray,
    camera: CameraModel,
    location: HandLocation,
    *,
    cube_m: float = 0.25,
    output_size: int = 128,
) -> tuple[np.ndarray, CubeCrop]:
    """The depth model's input around a found hand: ``crop.depth_cube_crop`` at its centre.

    Returns:
        the normalised crop (output_size, output_size) float32 in [-1, 1] and its geometry.
    """
    return depth_cube_crop(
        depth_m, camera, location.center_xyz, cube_m=cube_m, output_size=output_size
    )


# --------------------------------------------------------------------------- seed search

# Pixels as (rows v, columns u): two int arrays of equal length, full-resolution coordinates.
_Pixels = tuple[np.ndarray, np.ndarray]


class _SeedSearch:
    """Seeds in order of depth (steps 1 and 2 of the module doc), on the image subsampled by
    ``stride``; a seed is the full-resolution pixels its hand end was sampled at."""

    def __init__(self, depth: np.ndarray, camera: CameraModel, config: LocaliserConfig) -> None:
        self._camera = camera
        self._config = config
        self._stride = stride = max(1, round(depth.shape[1] / config.search_width_px))
        self._rows = np.arange(0, depth.shape[0], stride)[:, None]
        self._cols = np.arange(0, depth.shape[1], stride)[None, :]
        small = depth[::stride, ::stride].astype(np.float32)
        self._valid = _in_range(small, config)
        self._depth = np.where(self._valid, small, np.float32(np.inf))
        self._surface = _surface(self._depth, self._valid, config.depth_jump_m)
        # Metric area of each sampled pixel: it stands for stride^2 full-resolution pixels.
        z = np.where(self._valid, small, 0.0).astype(np.float64)
        self._pixel_area = z * z * (stride * stride / (camera.fx * camera.fy))
        self._blocked = np.zeros(small.shape, dtype=bool)
        self._sorted = np.sort(self._depth[self._valid])
        self._threshold = float(self._sorted[0]) + config.slice_step_m if self._sorted.size else 0

    def next_seed(self) -> _Pixels | None:
        """The next seed from the current slice on (that slice again first: what was blocked
        since may have uncovered another component); None when none is left."""
        config = self._config
        while self._sorted.size and self._threshold <= config.max_depth_m + config.slice_step_m:
            component = self._first_in_slice()
            if component is not None:
                v, u = np.nonzero(self._hand_end(component))
                return v * self._stride, u * self._stride
            # Next slice: one step deeper, or straight to the next depth after a gap (a speck
            # far in front of the hand would otherwise cost a slice per step).
            index = int(np.searchsorted(self._sorted, self._threshold, side="right"))
            if index >= self._sorted.size:
                return None
            self._threshold = max(self._threshold, float(self._sorted[index]))
            self._threshold += config.slice_step_m
        return None

    def block_pixels(self, pixels: _Pixels) -> None:
        """Leave these full-resolution pixels (their sampled ones) out of later seeds."""
        v, u = pixels
        sampled = (v % self._stride == 0) & (u % self._stride == 0)
        self._blocked[v[sampled] // self._stride, u[sampled] // self._stride] = True

    def block_cube(self, center_xyz: np.ndarray) -> None:
        """Leave the cube of a hand found already out of later seeds."""
        half = self._config.cube_m / 2.0
        self._blocked |= _inside_cube(
            self._camera, center_xyz, half, self._depth, self._rows, self._cols
        )

    def _first_in_slice(self) -> np.ndarray | None:
        """bool (h, w): the first hand-sized component of the current slice, or None."""
        config = self._config
        in_slice = self._valid & (self._depth <= self._threshold) & ~self._blocked
        count, labels = cv2.connectedComponents(in_slice.view(np.uint8), connectivity=8)
        if count <= 1:
            return None
        areas = np.bincount(labels[in_slice], self._pixel_area[in_slice], minlength=count)
        # Touching what is blocked means being the arm or body of a hand found already.
        areas[labels[_dilated(self._blocked)]] = 0.0
        areas[0] = 0.0
        # Within one slice the largest first: components that qualify in the same step are
        # equally near to within slice_step_m.
        for label in np.argsort(-areas):
            if areas[label] < config.min_area_m2:
                return None
            component: np.ndarray = labels == label
            if areas[label] <= config.max_area_m2:
                return component
            self._blocked |= component  # appeared all at once: a surface
        return None

    def _hand_end(self, component: np.ndarray) -> np.ndarray:
        """bool (h, w): where the hand of ``component``'s object is (step 2)."""
        config = self._config
        near = float(self._depth[component].min())
        slab = self._surface & (self._depth <= near + config.cube_m) & ~self._blocked
        count, labels = cv2.connectedComponents(slab.view(np.uint8), connectivity=8)
        member = np.zeros(count, dtype=bool)
        member[labels[component & slab]] = True
        member[0] = False
        whole = member[labels]
        if not whole.any():
            return component
        # The object goes on deeper than the slab, into a found hand's cube or out of the image.
        exits = _exits(whole, (self._surface & ~slab) | self._blocked, edges=True)
        wv, wu = np.nonzero(whole)
        points = _points(self._camera, self._depth[wv, wu], wv * self._stride, wu * self._stride)
        pitch = self._stride / self._camera.fx
        if _arm_exit(points, _exit_groups(exits)[whole], pitch, config) is not None:
            # An arm leads away from the nearest part: that part is the hand (DeepPrior++).
            # Its far end would not do: with the body in the slab, that is the body's.
            return component
        # All of the object is in sight (a hand, or a hand and a forearm that ends in front
        # of a body): its hand end.
        hand = whole.copy()
        arm_xyz = _arm_end(points, config)
        if arm_xyz is not None:
            hand[whole] = _far_end(points, arm_xyz, config)
        return hand


# --------------------------------------------------------------------------- refinement


def _refine(
    depth: np.ndarray,
    camera: CameraModel,
    config: LocaliserConfig,
    seed: _Pixels,
    found: list[HandLocation],
) -> HandLocation | None:
    """Iterate the centre of mass from ``seed`` (step 3); None when it is not hand-like."""
    region = seed
    center = _center_of(depth, region, config.surface_offset_m)
    converged = False
    iterations = 0
    while iterations < config.iterations and not converged:
        iterations += 1
        cube = _cube_region(depth, camera, config, center, region, found)
        region, stride = cube.hand, cube.stride
        if region[0].size == 0:
            return None
        new_center = _center_of(depth, region, config.surface_offset_m)
        shift = _pinhole_xyz(camera, new_center) - _pinhole_xyz(camera, center)
        center = new_center
        converged = float(np.linalg.norm(shift)) < config.tolerance_m
    # Judged with its forearm: the far end of a torso or a wall is hand-sized too, and an
    # object that still goes through the cube (a floor, a table's edge) has no hand end in it.
    if not config.min_area_m2 <= cube.object_area_m2 <= config.max_area_m2 or cube.spans_cube:
        return None
    mask = np.zeros(depth.shape, dtype=bool)
    # A strided region stands for the pixels of each sample's stride x stride block that lie
    # on the sample's surface (no depth jump from it).
    sampled = depth[region]
    for dv in range(stride):
        for du in range(stride):
            rows = np.minimum(region[0] + dv, depth.shape[0] - 1)
            cols = np.minimum(region[1] + du, depth.shape[1] - 1)
            block = depth[rows, cols]
            with np.errstate(invalid="ignore"):
                near = np.abs(block - sampled) <= config.depth_jump_m
            mask[rows, cols] |= _in_range(block, config) & near
    z = depth[mask].astype(np.float64)
    return HandLocation(
        center_xyz=camera.backproject(center[None, :2], center[2:])[0],
        center_uv=center[:2].copy(),
        mask=mask,
        area_px=int(mask.sum()),
        area_m2=float(np.sum(z * z) / (camera.fx * camera.fy)),
        iterations=iterations,
        converged=converged,
    )


@dataclass
class _CubeRegion:
    """The hand in one cube (step 3): its pixels, sampled every ``stride`` pixels; the metric
    area (m^2) of its whole object inside the cube, forearm included; whether that object
    leaves the cube's window, arm-wide, on two opposite sides."""

    hand: _Pixels
    stride: int
    object_area_m2: float
    spans_cube: bool


def _cube_region(
    depth: np.ndarray,
    camera: CameraModel,
    config: LocaliserConfig,
    center: np.ndarray,
    previous: _Pixels,
    found: list[HandLocation],
) -> _CubeRegion:
    """The pixels of the cube around ``center`` (u, v, z) that belong to the object of
    ``previous``, less its forearm."""
    half = config.cube_m / 2.0
    rows, cols = _window(camera, center, half, depth.shape)
    stride = max(1, int(np.ceil((cols.stop - cols.start) / config.refine_width_px)))
    window = depth[rows, cols][::stride, ::stride].astype(np.float32)
    v = np.arange(rows.start, rows.stop, stride)[:, None]
    u = np.arange(cols.start, cols.stop, stride)[None, :]
    valid = _in_range(window, config)
    filled = np.where(valid, window, np.float32(np.inf))
    surface = _surface(filled, valid, config.depth_jump_m)
    other_hands = np.zeros_like(valid)
    for hand in found:
        other_hands |= _inside_cube(camera, hand.center_xyz, half, window, v, u)
    with np.errstate(invalid="ignore"):
        candidates = surface & ~other_hands & (np.abs(window - np.float32(center[2])) <= half)
    count, labels = cv2.connectedComponents(candidates.view(np.uint8), connectivity=8)
    pv, pu = previous
    inside = (pv >= rows.start) & (pv < rows.stop) & (pu >= cols.start) & (pu < cols.stop)
    member = np.zeros(count, dtype=bool)
    member[labels[(pv[inside] - rows.start) // stride, (pu[inside] - cols.start) // stride]] = 1
    member[0] = False
    region = member[labels]
    z = window[region].astype(np.float64)
    object_area_m2 = float(np.sum(z * z) * stride * stride / (camera.fx * camera.fy))
    # Window edges on the image's border do not count: a hand may be cut by the border.
    inner = (cols.start > 0, cols.stop < depth.shape[1], rows.start > 0, rows.stop < depth.shape[0])
    spans_cube = _spans(region, window, inner, stride / camera.fx, config.min_arm_width_m)
    if region.any():
        # The object goes on past the window's edge, the cube's depth limit or another hand.
        exits = _exits(region, (surface & ~candidates) | other_hands, edges=True)
        rv, ru = np.nonzero(region)
        points = _points(camera, window[rv, ru], v[rv, 0], u[0, ru])
        arm_xyz = _arm_exit(points, _exit_groups(exits)[region], stride / camera.fx, config)
        if arm_xyz is None:
            arm_xyz = _arm_end(points, config)
        if arm_xyz is not None:
            region[region] = _far_end(points, arm_xyz, config)
    kv, ku = np.nonzero(region)
    pixels = (kv * stride + rows.start, ku * stride + cols.start)
    return _CubeRegion(pixels, stride, object_area_m2, spans_cube)


def _spans(
    region: np.ndarray,
    window: np.ndarray,
    inner: tuple[bool, bool, bool, bool],
    pitch_per_m: float,
    width_m: float,
) -> bool:
    """Whether ``region`` (h, w) covers ``width_m`` or more of both the left and the right
    edge of the window (depths ``window``), or of both its top and bottom edge; only edges
    flagged in ``inner`` (left, right, top, bottom) count."""
    edges = (
        (window[:, 0], region[:, 0]),
        (window[:, -1], region[:, -1]),
        (window[0], region[0]),
        (window[-1], region[-1]),
    )
    widths = [
        float(np.sum(depths[on]) * pitch_per_m) if counts else 0.0
        for (depths, on), counts in zip(edges, inner, strict=True)
    ]
    return min(widths[0], widths[1]) >= width_m or min(widths[2], widths[3]) >= width_m


# --------------------------------------------------------------------------- the hand end


def _arm_exit(
    points: np.ndarray, exit_groups: np.ndarray, pitch_per_m: float, config: LocaliserConfig
) -> np.ndarray | None:
    """shape (3,): where the arm leaves what was looked at, metres; None if nothing does.

    Args:
        points: shape (N, 3), the object's pixels in 3D, metres.
        exit_groups: shape (N,) int, which exit (1, 2, ...) each pixel is on, 0 none: the
            places where the object goes on past what was looked at.
        pitch_per_m: pixel pitch per metre of depth (stride / fx): a pixel at depth z is
            ``z * pitch_per_m`` metres across.

    The arm is the widest exit at least ``min_arm_width_m`` wide (a finger poking out is
    not); of exits about as wide, the deepest (the arm goes back to the body).
    """
    z = points[:, 2].astype(np.float64)
    count = int(exit_groups.max(initial=0)) + 1
    widths = np.bincount(exit_groups, z, minlength=count) * pitch_per_m
    widths[0] = 0.0
    if widths.max() < config.min_arm_width_m:
        return None
    depths = np.bincount(exit_groups, z, minlength=count) / np.maximum(
        np.bincount(exit_groups, minlength=count), 1
    )
    arm = int(np.argmax(np.where(widths >= 0.5 * widths.max(), depths, -np.inf)))
    arm_xyz: np.ndarray = points[exit_groups == arm].mean(axis=0)
    return arm_xyz


def _arm_end(points: np.ndarray, config: LocaliserConfig) -> np.ndarray | None:
    """shape (3,): the deeper end (metres) of an object (N, 3) longer than ``hand_end_m``
    along its longest axis (a forearm goes back towards the body); None if it is shorter."""
    centred = points - points.mean(axis=0)
    sample = centred[:: max(1, len(centred) // 2000)]
    if len(sample) < 3:
        return None
    axis = np.linalg.eigh(np.cov(sample.T))[1][:, -1]
    along = centred @ axis
    low, high = np.percentile(along, [2.0, 98.0])
    if high - low <= config.hand_end_m:
        return None
    ends = sorted((points[along <= low], points[along >= high]), key=_mean_depth)
    if _mean_depth(ends[1]) - _mean_depth(ends[0]) < config.arm_recession_m:
        return None  # no end goes back: nothing tells the arm from the fingers
    deeper: np.ndarray = ends[1].mean(axis=0)
    return deeper


def _mean_depth(points: np.ndarray) -> float:
    return float(points[:, 2].mean())


def _far_end(points: np.ndarray, arm_xyz: np.ndarray, config: LocaliserConfig) -> np.ndarray:
    """bool (N,): the points (N, 3) within ``hand_end_m`` of the object's end farthest from
    its arm at ``arm_xyz``."""
    distance = np.linalg.norm(points - arm_xyz, axis=1)
    # The 99th percentile: one flying pixel must not decide where the far end is.
    keep: np.ndarray = distance >= np.percentile(distance, 99.0) - config.hand_end_m
    return keep


def _exits(region: np.ndarray, beyond: np.ndarray, *, edges: bool) -> np.ndarray:
    """bool: pixels of ``region`` next to a pixel of ``beyond`` (where the object goes on),
    and with ``edges`` those on the array's edge (it goes on out of sight)."""
    exits = region & _dilated(beyond)
    if edges:
        exits[[0, -1], :] |= region[[0, -1], :]
        exits[:, [0, -1]] |= region[:, [0, -1]]
    return exits


def _exit_groups(exits: np.ndarray) -> np.ndarray:
    """int32, same shape: connected exit pixels numbered 1, 2, ...; 0 elsewhere."""
    _, groups = cv2.connectedComponents(exits.view(np.uint8), connectivity=8)
    return groups


# --------------------------------------------------------------------------- helpers


def _surface(filled: np.ndarray, valid: np.ndarray, depth_jump_m: float) -> np.ndarray:
    """bool: valid pixels not on the far side of a depth jump.

    ``filled`` is depth with invalid pixels at +inf. A pixel with a much nearer neighbour is
    dropped: that keeps the near object's own outline and cuts whatever lies behind it loose.
    """
    with np.errstate(invalid="ignore"):  # inf - inf where both are missing: not a jump
        return valid & ~(filled - cv2.erode(filled, _KERNEL_3X3) > depth_jump_m)


def _dilated(mask: np.ndarray) -> np.ndarray:
    return cv2.dilate(mask.view(np.uint8), _KERNEL_3X3) > 0


def _points(camera: CameraModel, z: np.ndarray, v: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(N, 3) float32: pixels (rows ``v``, columns ``u``, (N,) each) at depth ``z`` (N,) in
    3D through the pinhole, metres (lens distortion over a hand is negligible for the
    distances measured with them)."""
    x = ((u - camera.cx) / camera.fx).astype(np.float32) * z
    y = ((v - camera.cy) / camera.fy).astype(np.float32) * z
    return np.stack([x, y, z.astype(np.float32)], axis=-1)


def _center_of(depth: np.ndarray, region: _Pixels, offset_m: float) -> np.ndarray:
    """shape (3,): (u, v) pixel centroid of ``region`` and its median depth + offset, m."""
    v, u = region
    return np.array([u.mean(), v.mean(), float(np.median(depth[v, u])) + offset_m])


def _pinhole_xyz(camera: CameraModel, center: np.ndarray) -> np.ndarray:
    """(u, v, z) -> xyz through the pinhole, for the distance between two nearby centres."""
    u, v, z = center
    return np.array([(u - camera.cx) * z / camera.fx, (v - camera.cy) * z / camera.fy, z])


def _inside_cube(
    camera: CameraModel,
    center_xyz: np.ndarray,
    half_m: float,
    z: np.ndarray,
    v: np.ndarray,
    u: np.ndarray,
) -> np.ndarray:
    """bool, ``z``'s shape: pixels (rows ``v``, columns ``u``, broadcast against ``z``) with
    depth ``z`` inside the cube of half side ``half_m`` at ``center_xyz``: in its projected
    window and within ``half_m`` of its depth."""
    center = np.asarray(center_xyz, dtype=np.float64)
    uc, vc = camera.project(center[None])[0]
    zc = center[2]
    in_window = (np.abs(u - uc) <= half_m * camera.fx / zc) & (
        np.abs(v - vc) <= half_m * camera.fy / zc
    )
    with np.errstate(invalid="ignore"):
        return in_window & (np.abs(z - zc) <= half_m)


def _window(
    camera: CameraModel, center: np.ndarray, half_m: float, shape: tuple[int, ...]
) -> tuple[slice, slice]:
    """Rows and columns of the square of half side ``half_m`` at depth ``center[2]`` around
    pixel ``center[:2]`` (u, v), clipped to the image."""
    half_u = half_m * camera.fx / center[2]
    half_v = half_m * camera.fy / center[2]
    u0, u1 = int(np.ceil(center[0] - half_u)), int(np.floor(center[0] + half_u)) + 1
    v0, v1 = int(np.ceil(center[1] - half_v)), int(np.floor(center[1] + half_v)) + 1
    return slice(max(v0, 0), min(v1, shape[0])), slice(max(u0, 0), min(u1, shape[1]))


def _in_range(depth: np.ndarray, config: LocaliserConfig) -> np.ndarray:
    """bool, same shape: a measurement inside the configured depth range (NaN is not)."""
    with np.errstate(invalid="ignore"):
        return (depth >= config.min_depth_m) & (depth <= config.max_depth_m)


def _checked_depth(depth_m: np.ndarray, camera: CameraModel) -> np.ndarray:
    depth = np.asarray(depth_m)
    if depth.ndim != 2:
        raise LocaliseError(f"depth image has shape {depth.shape}: expected (height, width)")
    if depth.shape != (camera.height, camera.width):
        raise LocaliseError(
            f"depth image is {depth.shape[0]}x{depth.shape[1]} (height x width) but the camera "
            f"is {camera.height}x{camera.width}"
        )
    if depth.dtype.kind != "f":
        raise LocaliseError(f"depth must be float metres, got dtype {depth.dtype}")
    return depth
