"""The synthetic hand's anthropometry and forward kinematics.

Frames. Everything here is in the HAND frame, the palm frame of hand_pose_msgs/Hand: origin
at the palm centre (the mean of the wrist and the four finger MCP keypoints), x from the
wrist towards the middle finger's MCP joint, z out of the palm (the palmar side), y
completing a right-handed frame. ``palm_frame`` computes the same frame from any 21
keypoints, so a skeleton placed anywhere gives its palm pose back.

A right hand has its thumb on the -y side of that frame. A left hand is the true mirror
image of the right one (y -> -y in the hand frame), not a relabelled right hand: its thumb
is on the +y side while the frame stays right-handed. ``chirality`` tells them apart from
keypoints alone, in any rigid placement.

Keypoints are joint centres, inside the finger. The tip keypoints are the centre of the
fingertip's rounded end, one tip radius inside the skin along the distal phalanx (the end
of the distal segment's centre line): every keypoint is then a point of the skeleton at a
known distance (``HandSkeleton.radii``) from the skin, which is what a depth model can
regress consistently from any view. Datasets that mark tips on the skin (MediaPipe,
FreiHAND) are a radius further out: ``HandSkeleton.skin_tips`` gives those points.

Proportions. Segment lengths are fractions of hand length (wrist crease to the tip of the
middle finger) from the anthropometric table of Buchholz, Armstrong and Goldstein (1992):
per finger the metacarpal, proximal, middle and distal segment as a fraction of hand
length (e.g. middle finger 0.277 / 0.170 / 0.108 for the phalanges, thumb 0.251 / 0.196 /
0.158 for metacarpal / proximal / distal). The long fingers' metacarpals lie inside the
rigid palm, so only their heads (the MCP joints) are placed, at 0.40-0.445 hand lengths
from the wrist, consistent with the table's metacarpal fractions (0.30-0.37) plus the
carpus. Adult hand lengths are about 165-205 mm (5th
female to 95th male percentile), hand breadth at the metacarpals about 0.45 of the length,
palm thickness at the knuckles 25-30 mm, wrist breadth 55-65 mm; finger widths about 16-20
mm at the base and 12-15 mm at the tip, the thumb wider. Knuckles lie on an arc (middle
most distal, little finger about 0.05 hand lengths proximal) and on the transverse
metacarpal arch (middle most dorsal). The thumb's first metacarpal rests about 40° radial
of the palm's long axis, based on the trapezium at about 0.13 hand lengths from the wrist.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from hand_pose_ros.skeleton import NUM_KEYPOINTS, PALM
from hand_pose_ros.synth.articulation import HandPoseAngles

Side = Literal["right", "left"]
SIDES: tuple[Side, Side] = ("right", "left")

# The reflection that turns a right hand into a left one, in the hand frame.
MIRROR = np.diag([1.0, -1.0, 1.0])

# --- Anthropometric tables (right hand, flat, fingers together) -----------------------------

# Segment lengths as fractions of hand length, after Buchholz et al. (1992): thumb
# (metacarpal, proximal, distal), long fingers (proximal, middle, distal). The distal
# segment is measured to the fingertip skin; the model keeps the tip keypoint one tip radius
# inside.
SEGMENT_RATIOS = np.array(
    [
        [0.251, 0.196, 0.158],
        [0.265, 0.143, 0.097],
        [0.277, 0.170, 0.108],
        [0.259, 0.165, 0.107],
        [0.206, 0.117, 0.093],
    ]
)

# Base joint centres (thumb CMC, then index..little MCP) relative to the wrist keypoint in
# a wrist frame with x distal, y towards the little finger, z palmar. x and z are fractions
# of hand length; y of the index-to-little knuckle span for the MCPs (middle finger at 0),
# of the palm breadth for the thumb CMC.
_BASE_X = np.array([0.130, 0.430, 0.445, 0.425, 0.397])
_BASE_Y = np.array([-0.270, -0.350, 0.000, 0.320, 0.650])
_BASE_Z = np.array([0.050, -0.030, -0.040, -0.036, -0.022])

# Radii (m) at each chain keypoint (base joint, two middle joints, tip) for a 190 mm hand.
_RADII_190 = np.array(
    [
        [0.0125, 0.0110, 0.0100, 0.0085],
        [0.0100, 0.0090, 0.0078, 0.0068],
        [0.0102, 0.0092, 0.0080, 0.0070],
        [0.0096, 0.0086, 0.0075, 0.0066],
        [0.0086, 0.0077, 0.0068, 0.0060],
    ]
)
# Finger girth grows slower than hand length across people.
_RADIUS_LENGTH_EXPONENT = 0.7

# Direction of each long finger at zero abduction, degrees towards the little finger (they
# converge slightly when held together), and the roll of its flexion plane, degrees, which
# makes flexed fingers converge towards the base of the thumb (the scaphoid).
_FINGER_SPLAY_DEG = np.array([3.0, 0.0, -3.0, -7.0])
_FINGER_ROLL_DEG = np.array([0.0, 3.0, 7.0, 12.0])
# The first metacarpal's rest direction: degrees radial of the palm's long axis.
THUMB_REST_AZIMUTH_DEG = 40.0


@dataclass(frozen=True)
class HandShapeConfig:
    """Every distribution parameter of ``sample_hand_shape``.

    Attributes:
        hand_length_range_m: uniform range of hand length (wrist crease to the tip of the
            middle finger, flat hand), metres.
        palm_width_ratio_range: uniform range of palm breadth across the knuckles divided by
            hand length.
        palm_thickness_range_m: uniform range of palm thickness at the knuckles, metres.
        segment_length_jitter: relative standard deviation of each segment length (clipped
            at two standard deviations).
        finger_length_jitter: relative standard deviation of each finger's overall length
            (varies the finger-length ratios, e.g. index to ring).
        radius_scale_range: uniform range of a whole-hand finger-girth factor.
        radius_jitter: relative standard deviation of each finger's girth.
        knuckle_position_jitter_m: standard deviation of each base joint position, metres.
        thumb_azimuth_jitter_deg: standard deviation of the thumb's rest direction, degrees.
        wrist_width_ratio_range: uniform range of wrist breadth divided by hand length.
        wrist_thickness_ratio_range: uniform range of wrist thickness divided by its breadth.
    """

    hand_length_range_m: tuple[float, float] = (0.160, 0.210)
    palm_width_ratio_range: tuple[float, float] = (0.42, 0.48)
    palm_thickness_range_m: tuple[float, float] = (0.025, 0.030)
    segment_length_jitter: float = 0.03
    finger_length_jitter: float = 0.025
    radius_scale_range: tuple[float, float] = (0.92, 1.08)
    radius_jitter: float = 0.03
    knuckle_position_jitter_m: float = 0.0015
    thumb_azimuth_jitter_deg: float = 4.0
    wrist_width_ratio_range: tuple[float, float] = (0.29, 0.33)
    wrist_thickness_ratio_range: tuple[float, float] = (0.62, 0.72)

    def __post_init__(self) -> None:
        ranges = {
            "hand_length_range_m": self.hand_length_range_m,
            "palm_width_ratio_range": self.palm_width_ratio_range,
            "palm_thickness_range_m": self.palm_thickness_range_m,
            "radius_scale_range": self.radius_scale_range,
            "wrist_width_ratio_range": self.wrist_width_ratio_range,
            "wrist_thickness_ratio_range": self.wrist_thickness_ratio_range,
        }
        for name, (low, high) in ranges.items():
            if not 0.0 < low <= high:
                raise ValueError(f"{name} must satisfy 0 < low <= high, got ({low}, {high})")
        relative = {
            "segment_length_jitter": self.segment_length_jitter,
            "finger_length_jitter": self.finger_length_jitter,
            "radius_jitter": self.radius_jitter,
        }
        for name, value in relative.items():
            if not 0.0 <= value <= 0.2:
                raise ValueError(f"{name} must be a relative deviation in [0, 0.2], got {value}")
        if not 0.0 <= self.knuckle_position_jitter_m <= 0.01:
            raise ValueError(
                f"knuckle_position_jitter_m must be in [0, 0.01] m, got "
                f"{self.knuckle_position_jitter_m}"
            )
        if not 0.0 <= self.thumb_azimuth_jitter_deg <= 20.0:
            raise ValueError(
                f"thumb_azimuth_jitter_deg must be in [0, 20], got {self.thumb_azimuth_jitter_deg}"
            )


@dataclass(frozen=True)
class HandShape:
    """One person's right hand, in the hand frame (metres). A left hand uses the same shape,
    mirrored by ``forward_kinematics``.

    Attributes:
        hand_length: wrist keypoint to the skin at the middle fingertip, flat hand.
        palm_width: palm breadth across the knuckles (skin).
        palm_thickness: palm thickness at the knuckles (skin to skin).
        wrist: shape (3,), the wrist keypoint.
        bases: shape (5, 3), base joint of each chain: thumb CMC, index..little MCP.
        base_rotations: shape (5, 3, 3), each chain's frame at zero angles. Columns: along
            the first bone, the flexion axis, and the pad normal (the side the finger flexes
            towards). The thumb's pad faces the fingers at rest.
        lengths: shape (5, 3), segment lengths: thumb metacarpal / proximal / distal, long
            finger proximal / middle / distal; the distal one ends at the tip keypoint.
        radii: shape (5, 4), finger radius at each keypoint of the chain (base, two middle
            joints, tip).
        wrist_half_width, wrist_half_thickness: semi-axes of the wrist's cross-section.
    """

    hand_length: float
    palm_width: float
    palm_thickness: float
    wrist: np.ndarray
    bases: np.ndarray
    base_rotations: np.ndarray
    lengths: np.ndarray
    radii: np.ndarray
    wrist_half_width: float
    wrist_half_thickness: float

    @staticmethod
    def mean(config: HandShapeConfig | None = None) -> HandShape:
        """The deterministic average hand of ``config`` (range midpoints, no jitter)."""
        config = config or HandShapeConfig()
        mid = _midpoint
        return _build_shape(
            hand_length=mid(config.hand_length_range_m),
            width_ratio=mid(config.palm_width_ratio_range),
            palm_thickness=mid(config.palm_thickness_range_m),
            segment_factors=np.ones((5, 3)),
            radius_factors=np.full(5, mid(config.radius_scale_range)),
            base_offsets=np.zeros((5, 3)),
            thumb_azimuth_deg=THUMB_REST_AZIMUTH_DEG,
            wrist_width_ratio=mid(config.wrist_width_ratio_range),
            wrist_thickness_ratio=mid(config.wrist_thickness_ratio_range),
        )

    @property
    def keypoint_radii(self) -> np.ndarray:
        """shape (21,), distance from each keypoint to the skin: the wrist's half-thickness
        for the wrist, the finger radius at that joint for the others (metres)."""
        out = np.empty(NUM_KEYPOINTS)
        out[0] = self.wrist_half_thickness
        out[1:] = self.radii.reshape(-1)
        return out


def _midpoint(bounds: tuple[float, float]) -> float:
    return 0.5 * (bounds[0] + bounds[1])


def _clipped_normal(rng: np.random.Generator, sigma: float, size: tuple[int, ...]) -> np.ndarray:
    return np.clip(rng.normal(0.0, sigma, size), -2.0 * sigma, 2.0 * sigma)


def sample_hand_shape(rng: np.random.Generator, config: HandShapeConfig | None = None) -> HandShape:
    """A random adult hand: hand length uniform in the configured range, proportions after
    Buchholz et al. with every segment, finger, girth and knuckle position jittered."""
    config = config or HandShapeConfig()
    segment = 1.0 + _clipped_normal(rng, config.segment_length_jitter, (5, 3))
    finger = 1.0 + _clipped_normal(rng, config.finger_length_jitter, (5, 1))
    girth = rng.uniform(*config.radius_scale_range) * (
        1.0 + _clipped_normal(rng, config.radius_jitter, (5,))
    )
    return _build_shape(
        hand_length=rng.uniform(*config.hand_length_range_m),
        width_ratio=rng.uniform(*config.palm_width_ratio_range),
        palm_thickness=rng.uniform(*config.palm_thickness_range_m),
        segment_factors=segment * finger,
        radius_factors=girth,
        base_offsets=_clipped_normal(rng, config.knuckle_position_jitter_m, (5, 3)),
        thumb_azimuth_deg=THUMB_REST_AZIMUTH_DEG
        + float(_clipped_normal(rng, config.thumb_azimuth_jitter_deg, (1,))[0]),
        wrist_width_ratio=rng.uniform(*config.wrist_width_ratio_range),
        wrist_thickness_ratio=rng.uniform(*config.wrist_thickness_ratio_range),
    )


def _build_shape(
    *,
    hand_length: float,
    width_ratio: float,
    palm_thickness: float,
    segment_factors: np.ndarray,
    radius_factors: np.ndarray,
    base_offsets: np.ndarray,
    thumb_azimuth_deg: float,
    wrist_width_ratio: float,
    wrist_thickness_ratio: float,
) -> HandShape:
    length = hand_length
    width = width_ratio * length
    radii = _RADII_190 * (length / 0.190) ** _RADIUS_LENGTH_EXPONENT * radius_factors[:, None]
    span = width - 1.3 * (radii[1, 0] + radii[4, 0])
    # Base joints in the wrist frame (x distal, y ulnar, z palmar), wrist at the origin.
    local = np.stack(
        [
            _BASE_X * length,
            np.concatenate([[_BASE_Y[0] * width], _BASE_Y[1:] * span]),
            _BASE_Z * length,
        ],
        axis=1,
    )
    local = local + base_offsets
    local[2, 1] = 0.0  # the middle knuckle stays on the wrist's axis
    wrist_local = np.zeros(3)
    palm_points = np.vstack([wrist_local, local[1:]])
    rotation, origin = _palm_frame_right(palm_points)
    bases = (local - origin) @ rotation
    wrist = (wrist_local - origin) @ rotation

    base_rotations = np.empty((5, 3, 3))
    # Thumb: column 0 along the metacarpal, in the palm plane, radial of the long axis; the
    # pad (column 2) faces the fingers, the flexion axis (column 1) is then -z.
    azimuth = np.deg2rad(thumb_azimuth_deg)
    along = np.array([np.cos(azimuth), -np.sin(azimuth), 0.0])
    pad = np.array([np.sin(azimuth), np.cos(azimuth), 0.0])
    base_rotations[0] = np.column_stack([along, np.cross(pad, along), pad])
    for k in range(4):
        base_rotations[k + 1] = _rot_z(np.deg2rad(_FINGER_SPLAY_DEG[k])) @ _rot_x(
            np.deg2rad(_FINGER_ROLL_DEG[k])
        )

    lengths = SEGMENT_RATIOS * length * segment_factors
    # Jitter varies the finger-length ratios but keeps the orders every hand has: the middle
    # finger longest, the little finger clearly shorter than the ring finger.
    totals = lengths.sum(axis=1)
    limits = np.array([np.inf, 0.985 * totals[2], np.inf, 0.985 * totals[2], 0.9 * totals[3]])
    lengths *= np.minimum(1.0, limits / totals)[:, None]
    lengths[:, 2] -= radii[:, 3]  # the tip keypoint is a tip radius inside the skin
    shape = HandShape(
        hand_length=length,
        palm_width=width,
        palm_thickness=palm_thickness,
        wrist=wrist,
        bases=bases,
        base_rotations=base_rotations,
        lengths=lengths,
        radii=radii,
        wrist_half_width=0.5 * wrist_width_ratio * length,
        wrist_half_thickness=0.5 * wrist_width_ratio * wrist_thickness_ratio * length,
    )
    # The jitter changed the middle finger: rescale the whole hand so its length is exact.
    scale = length / measured_hand_length(shape)
    return replace(
        shape,
        palm_width=width * scale,
        wrist=wrist * scale,
        bases=bases * scale,
        lengths=lengths * scale,
        radii=radii * scale,
        wrist_half_width=shape.wrist_half_width * scale,
        wrist_half_thickness=shape.wrist_half_thickness * scale,
    )


def measured_hand_length(shape: HandShape) -> float:
    """Hand length measured on the model: wrist keypoint to the middle fingertip's skin with
    the hand flat (all joints at 0°), metres."""
    direction = shape.base_rotations[2][:, 0]
    skin_tip = shape.bases[2] + direction * (shape.lengths[2].sum() + shape.radii[2, 3])
    return float(np.linalg.norm(skin_tip - shape.wrist))


# --- Rotations --------------------------------------------------------------------------------


def _rot_x(angle: np.ndarray | float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(c), np.zeros_like(c)
    return np.stack([o, z, z, z, c, -s, z, s, c], axis=-1).reshape(*np.shape(c), 3, 3)


def _rot_z(angle: np.ndarray | float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(c), np.zeros_like(c)
    return np.stack([c, -s, z, s, c, z, z, z, o], axis=-1).reshape(*np.shape(c), 3, 3)


# --- Palm frame and chirality -----------------------------------------------------------------


def _palm_frame_right(palm_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Palm frame from (wrist, index, middle, ring, little MCP) of a right hand."""
    wrist, index, middle, _, pinky = palm_points
    x_axis = middle - wrist
    x_axis = x_axis / np.linalg.norm(x_axis)
    normal = np.cross(index - wrist, pinky - wrist)
    z_axis = normal - (normal @ x_axis) * x_axis
    z_axis = z_axis / np.linalg.norm(z_axis)
    return np.column_stack([x_axis, np.cross(z_axis, x_axis), z_axis]), palm_points.mean(axis=0)


def palm_frame(keypoints: np.ndarray, side: Side) -> tuple[np.ndarray, np.ndarray]:
    """The palm frame of a hand from its keypoints, in the keypoints' frame.

    Args:
        keypoints: shape (21, 3), metres, any frame.
        side: "right" or "left" (a left hand's palm normal is the other cross product).

    Returns:
        rotation: shape (3, 3), columns x (wrist to middle MCP), y, z (out of the palm).
        origin: shape (3,), the palm centre (mean of the wrist and the four MCP keypoints).
    """
    points = np.asarray(keypoints, dtype=np.float64)[list(PALM)]
    if side == "right":
        return _palm_frame_right(points)
    if side != "left":
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    # Mirror into a right hand, take its frame, mirror back (keeping the frame proper).
    rotation, origin = _palm_frame_right(points @ MIRROR)
    return MIRROR @ rotation @ MIRROR, origin @ MIRROR


def chirality(keypoints: np.ndarray) -> int:
    """+1 for a right hand, -1 for a left hand, from 21 keypoints in any rigid placement.

    Two cues whose sign a reflection flips and a rotation keeps (both are triple products):

    - the thumb stands in front of the palm (its CMC joint sits palmar of the metacarpals
      and it only abducts palmarly), and the knuckle normal ``(index MCP - wrist) x (little
      MCP - wrist)`` points out of the palm of a right hand, into the palm of a left one;
    - PIP and DIP joints only flex (never hyperextend), so each finger's ``parent bone x child
      bone`` points along its flexion axis, which for a right hand points from the little
      finger towards the index, for a left hand the other way. Unlike the palm normal, this
      holds however far the finger curls (a fist's distal phalanges point back at the palm).

    The finger cue dominates when fingers are bent, the thumb cue when they are straight.
    Returns 0 only for degenerate keypoints (e.g. all in one plane and straight).

    Args:
        keypoints: shape (21, 3), metres, any frame.
    """
    k = np.asarray(keypoints, dtype=np.float64)
    if not np.isfinite(k).all():
        return 0
    wrist = k[0]
    normal = np.cross(k[5] - wrist, k[17] - wrist)
    scale = float(np.linalg.norm(k[9] - wrist))
    norm = float(np.linalg.norm(normal))
    if norm == 0.0 or scale == 0.0:
        return 0
    knuckles = k[[5, 9, 13, 17]].mean(axis=0)
    thumb = float(np.sum((k[1:5] - knuckles) @ (normal / norm))) / scale
    across = k[17] - k[5]
    across = across / max(float(np.linalg.norm(across)), 1e-12)
    chains = k[1:].reshape(5, 4, 3)[1:]  # long fingers: MCP, PIP, DIP, tip
    bones = np.diff(chains, axis=1)
    bones = bones / np.maximum(np.linalg.norm(bones, axis=-1, keepdims=True), 1e-12)
    flexion = np.cross(bones[:, :-1], bones[:, 1:])  # at PIP and DIP
    fingers = float(np.sum(flexion @ across))
    return int(np.sign(5.0 * thumb - fingers))


# --- Forward kinematics -----------------------------------------------------------------------


@dataclass(frozen=True)
class HandSkeleton:
    """A posed hand: keypoints and frames, in the hand frame unless ``transformed``.

    Attributes:
        keypoints: shape (21, 3), metres, joint centres (see the module docstring for tips).
        radii: shape (21,), metres, distance from each keypoint to the skin.
        side: "right" or "left".
        segment_rotations: shape (5, 3, 3, 3), per chain (thumb..little) and segment, a
            rotation whose columns are: along the bone (towards the tip), the flexion axis,
            the pad normal (the side the segment flexes towards).
        forearm_rotation: shape (3, 3), columns: from the wrist towards the elbow, the
            forearm's wide axis, its thick axis (towards the back of the hand at a neutral
            wrist).
        angles: the articulation that made it.
        palm_rotation: shape (3, 3), the hand frame's axes in the frame of ``keypoints``.
        palm_origin: shape (3,), the palm centre in the frame of ``keypoints``.
    """

    keypoints: np.ndarray
    radii: np.ndarray
    side: Side
    segment_rotations: np.ndarray
    forearm_rotation: np.ndarray
    angles: HandPoseAngles
    palm_rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    palm_origin: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @property
    def forearm_origin(self) -> np.ndarray:
        """shape (3,), where the forearm axis leaves the hand: the wrist keypoint."""
        return self.keypoints[0].copy()

    @property
    def forearm_direction(self) -> np.ndarray:
        """shape (3,), unit vector from the wrist towards the elbow."""
        return self.forearm_rotation[:, 0].copy()

    @property
    def skin_tips(self) -> np.ndarray:
        """shape (5, 3), the fingertips on the skin (MediaPipe-style tips): each tip keypoint
        moved one tip radius further along its distal segment."""
        tips = self.keypoints[[4, 8, 12, 16, 20]]
        return tips + self.segment_rotations[:, 2, :, 0] * self.radii[[4, 8, 12, 16, 20], None]

    def transformed(self, rotation: np.ndarray, translation: np.ndarray) -> HandSkeleton:
        """The same skeleton mapped by x -> R x + t (e.g. hand frame -> camera frame)."""
        r = np.asarray(rotation, dtype=np.float64)
        t = np.asarray(translation, dtype=np.float64)
        return replace(
            self,
            keypoints=self.keypoints @ r.T + t,
            segment_rotations=r @ self.segment_rotations,
            forearm_rotation=r @ self.forearm_rotation,
            palm_rotation=r @ self.palm_rotation,
            palm_origin=r @ self.palm_origin + t,
        )

    def in_hand_frame(self) -> HandSkeleton:
        """The skeleton expressed back in its own hand frame."""
        r = self.palm_rotation.T
        moved = self.transformed(r, -r @ self.palm_origin)
        return replace(moved, palm_rotation=np.eye(3), palm_origin=np.zeros(3))


def keypoints_batch(shape: HandShape, degrees: np.ndarray) -> np.ndarray:
    """Right-hand keypoints for many articulations at once (used by solvers).

    Args:
        shape: the hand.
        degrees: shape (B, NUM_JOINTS), joint angles in degrees.

    Returns:
        shape (B, 21, 3), metres in the hand frame.
    """
    return _right_kinematics(shape, np.atleast_2d(degrees))[0]


def _skew(axis: np.ndarray) -> np.ndarray:
    x, y, z = axis
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


# Every chain is base @ A @ B @ C (base joint, up to three rotations) @ D (middle joint) @ E
# (distal joint). Per chain and slot: the rotation axis in the local frame, and which angle
# drives it (-1: none). In a chain's frame (along, flexion axis, pad normal) flexion is a
# rotation about -column1; long-finger abduction is about the pad normal, signed so that
# positive moves the index and middle finger radially, ring and little ulnarly.
_SLOT_AXES = np.array(
    [
        [[0, -1, 0], [0, 0, -1], [-1, 0, 0], [0, -1, 0], [0, -1, 0]],  # thumb
        [[0, 0, -1], [0, -1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0]],  # index
        [[0, 0, -1], [0, -1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0]],  # middle
        [[0, 0, 1], [0, -1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0]],  # ring
        [[0, 0, 1], [0, -1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0]],  # little
    ],
    dtype=np.float64,
)
_SLOT_JOINTS = np.array(
    [
        [0, 1, 2, 3, 4],
        [6, 5, -1, 7, 8],
        [10, 9, -1, 11, 12],
        [14, 13, -1, 15, 16],
        [18, 17, -1, 19, 20],
    ]
)
_SLOT_K = np.stack([np.stack([_skew(a) for a in chain]) for chain in _SLOT_AXES])
_SLOT_K2 = _SLOT_K @ _SLOT_K


def _right_kinematics(shape: HandShape, degrees: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rad = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    batch = rad.shape[0]
    # Thumb base: CMC flexion turns the metacarpal about the palm normal towards the little
    # finger (towards the pad), palmar abduction lifts it out of the palm plane (about the
    # pad direction), pronation spins it about its own axis so that the pad turns towards
    # the palm (opposition). Long-finger base: abduction, then MCP flexion.
    slot = np.where(_SLOT_JOINTS >= 0, rad[:, np.maximum(_SLOT_JOINTS, 0)], 0.0)
    sin = np.sin(slot)[..., None, None]
    one_minus_cos = (1.0 - np.cos(slot))[..., None, None]
    rot = np.eye(3) + sin * _SLOT_K + one_minus_cos * _SLOT_K2  # (B, 5, 5, 3, 3)
    frames = np.empty((batch, 5, 3, 3, 3))
    frames[:, :, 0] = shape.base_rotations @ rot[:, :, 0] @ rot[:, :, 1] @ rot[:, :, 2]
    frames[:, :, 1] = frames[:, :, 0] @ rot[:, :, 3]
    frames[:, :, 2] = frames[:, :, 1] @ rot[:, :, 4]
    # Each segment runs along its frame's first column.
    steps = frames[..., :, 0] * shape.lengths[..., None]  # (B, 5, 3, 3)
    joints = shape.bases[:, None] + np.cumsum(steps, axis=2)  # (B, 5, 3, 3)
    # Keypoint order is the wrist, then per chain its base joint and three further points.
    chains = np.concatenate([np.broadcast_to(shape.bases[:, None], (batch, 5, 1, 3)), joints], 2)
    keypoints = np.concatenate(
        [np.broadcast_to(shape.wrist, (batch, 1, 3)), chains.reshape(batch, 20, 3)], axis=1
    )
    return keypoints, frames


def _forearm_rotation(degrees: np.ndarray) -> np.ndarray:
    """Forearm frame in the hand frame from (wrist_flex, wrist_dev) degrees (right hand).

    Palmar flexion turns the hand towards its palm relative to the forearm, so seen from the
    hand the forearm turns towards +z; ulnar deviation turns the hand towards the little
    finger (+y), so seen from the hand the forearm leans towards +y.
    """
    flex, dev = np.deg2rad(degrees[-2]), np.deg2rad(degrees[-1])
    cf, sf, cd, sd = np.cos(flex), np.sin(flex), np.cos(dev), np.sin(dev)
    turn_y = np.array([[cf, 0.0, sf], [0.0, 1.0, 0.0], [-sf, 0.0, cf]])
    turn_z = np.array([[cd, sd, 0.0], [-sd, cd, 0.0], [0.0, 0.0, 1.0]])  # about z by -dev
    neutral = np.diag([-1.0, 1.0, -1.0])  # towards the elbow, wide axis, thick axis
    return turn_y @ turn_z @ neutral


def forward_kinematics(
    shape: HandShape, angles: HandPoseAngles, side: Side = "right"
) -> HandSkeleton:
    """Pose a hand.

    Args:
        shape: the hand's anthropometry (a right hand; a left hand is its mirror image).
        angles: the articulation, degrees (see ``articulation``).
        side: "right" or "left".

    Returns:
        The skeleton in the hand frame: keypoints (21, 3) metres, per-keypoint skin
        distance, segment frames and the forearm frame.
    """
    if side not in SIDES:
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    keypoints, frames = _right_kinematics(shape, angles.degrees[None])
    keypoints, frames = keypoints[0], frames[0]
    forearm = _forearm_rotation(angles.degrees)
    if side == "left":
        keypoints = keypoints @ MIRROR
        # Mirrored directions, and a sign flip of the flexion axis keeps the frames proper.
        frames = MIRROR @ frames @ MIRROR
        forearm = MIRROR @ forearm @ MIRROR
    return HandSkeleton(
        keypoints=keypoints,
        radii=shape.keypoint_radii,
        side=side,
        segment_rotations=frames,
        forearm_rotation=forearm,
        angles=angles,
    )
