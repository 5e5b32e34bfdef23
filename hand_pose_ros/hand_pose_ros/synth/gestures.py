"""Pose vocabulary: named gestures, random physiological articulations, interpolation.

Each gesture is a template of joint angles (degrees, ``articulation.JOINT_NAMES``) plus a
list of the fingers that define it. ``sample_gesture`` adds natural variation (a few
degrees on the defining joints, more on the fingers the gesture does not care about) and
then, for gestures whose meaning is a contact, solves the contact for the given hand shape:

- pinch, ok: thumb tip and index tip pads touching (keypoint distance = 0.9 x the sum of the
  two tip radii: skin touching, slightly compressed);
- grasp_cylinder: a cylinder of diameter 40-70 mm lying obliquely across the palm, touching
  it; every finger's and the thumb's segments lie on its surface as far as they reach;
- grasp_ball: a ball of diameter 60-90 mm cupped in front of the palm, finger pads and thumb
  on its surface;
- fist, point, victory, rock: the thumb tip rests on the back of the curled fingers' middle
  phalanges.

The solver is a damped Gauss-Newton (Levenberg-Marquardt) on the free joints, a few
iterations from the template, with a finite-difference Jacobian computed in one batched
forward-kinematics call, joint limits enforced by projection, DIP joints coupled to their
PIP, and a prior pulling every joint towards the template so that the hand stays
natural. It costs 1-2 ms per contact gesture (about 10 batched forward-kinematics calls);
gestures without contact cost microseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from hand_pose_ros.synth.articulation import (
    DIP_FLEX,
    DIP_PIP_COUPLING,
    JOINT_INDEX,
    LONG_FINGERS,
    LOWER_DEG,
    MCP_ABD,
    MCP_FLEX,
    NUM_JOINTS,
    PIP_FLEX,
    UPPER_DEG,
    HandPoseAngles,
    clip_to_limits,
)
from hand_pose_ros.synth.hand_model import MIRROR, HandShape, Side, keypoints_batch

GESTURES: tuple[str, ...] = (
    "open_palm", "fist", "point", "pinch", "ok", "thumbs_up", "victory",
    "grasp_cylinder", "grasp_ball", "relaxed", "call", "rock",
)  # fmt: skip

# Joint noise (degrees, standard deviation at variation=1) on defining and free fingers.
DEFINING_SIGMA_DEG = 3.0
FREE_SIGMA_DEG = 9.0
WRIST_SIGMA_DEG = 15.0
ABDUCTION_SIGMA_DEG = 3.0
# An open palm is shown anywhere from fingers together to fully splayed (a "stop" or
# "five" hand, as people show a camera): its finger abduction and thumb opening are the
# template's times a spread level drawn from this range (the limits clip the widest).
# The fixed template alone never reached the splay of the real SR305 hands. ``variation``
# scales the level's deviation from 1 like every other deviation.
OPEN_PALM_SPREAD_RANGE = (0.2, 1.8)
# Object sizes (diameters, metres) for the grasps.
CYLINDER_DIAMETER_RANGE_M = (0.040, 0.070)
BALL_DIAMETER_RANGE_M = (0.060, 0.090)
# How hard the prior holds joints at the template (degrees per unit residual) and the
# geometric residual's unit (metres).
_PRIOR_SCALE_DEG = 15.0
_GEOMETRY_SCALE_M = 0.003


def _finger(mcp: float, abd: float, pip: float, dip: float | None = None) -> list[float]:
    return [mcp, abd, pip, DIP_PIP_COUPLING * pip if dip is None else dip]


def _template(
    thumb: tuple[float, float, float, float, float], fingers: list[list[float]]
) -> np.ndarray:
    out = np.zeros(NUM_JOINTS)
    out[:5] = thumb
    out[5:21] = np.concatenate(fingers)
    return out


_CURLED = [
    _finger(86.0, 0.0, 105.0, 68.0),
    _finger(88.0, 0.0, 108.0, 70.0),
    _finger(88.0, 0.0, 106.0, 68.0),
    _finger(88.0, 0.0, 104.0, 66.0),
]
_EXTENDED = [
    _finger(2.0, 4.0, 4.0),
    _finger(2.0, 0.0, 4.0),
    _finger(3.0, 3.0, 5.0),
    _finger(4.0, 6.0, 6.0),
]
_THUMB_TUCKED = (25.0, 25.0, 40.0, 35.0, 25.0)

# Templates: (angles, defining fingers). Finger names: thumb, index, middle, ring, pinky.
_TEMPLATES: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {
    "open_palm": (
        _template(
            (-15.0, 10.0, 0.0, 0.0, 5.0),
            [
                _finger(0.0, 10.0, 3.0),
                _finger(0.0, 3.0, 3.0),
                _finger(0.0, 8.0, 4.0),
                _finger(0.0, 16.0, 5.0),
            ],
        ),
        ("thumb", "index", "middle", "ring", "pinky"),
    ),
    "relaxed": (
        _template(
            (12.0, 30.0, 20.0, 12.0, 12.0),
            [
                _finger(15.0, 3.0, 22.0),
                _finger(20.0, 0.0, 28.0),
                _finger(25.0, 2.0, 34.0),
                _finger(30.0, 5.0, 38.0),
            ],
        ),
        (),
    ),
    "fist": (_template(_THUMB_TUCKED, _CURLED), ("thumb", "index", "middle", "ring", "pinky")),
    "point": (
        _template(_THUMB_TUCKED, [_finger(3.0, 3.0, 4.0), *_CURLED[1:]]),
        ("thumb", "index", "middle", "ring", "pinky"),
    ),
    "pinch": (
        _template(
            (10.0, 45.0, 40.0, 30.0, 25.0),
            [
                _finger(45.0, 0.0, 45.0, 30.0),
                _finger(45.0, 0.0, 60.0),
                _finger(50.0, 0.0, 65.0),
                _finger(55.0, 3.0, 70.0),
            ],
        ),
        ("thumb", "index"),
    ),
    "ok": (
        _template(
            (10.0, 45.0, 45.0, 30.0, 25.0),
            [
                _finger(45.0, 0.0, 60.0, 40.0),
                _finger(8.0, 2.0, 8.0),
                _finger(8.0, 8.0, 10.0),
                _finger(10.0, 16.0, 12.0),
            ],
        ),
        ("thumb", "index", "middle", "ring", "pinky"),
    ),
    "thumbs_up": (
        _template((-10.0, 15.0, 0.0, 0.0, 0.0), _CURLED),
        ("thumb", "index", "middle", "ring", "pinky"),
    ),
    "victory": (
        _template(
            (25.0, 25.0, 40.0, 35.0, 25.0),
            [_finger(2.0, 12.0, 4.0), _finger(2.0, -10.0, 4.0), *_CURLED[2:]],
        ),
        ("thumb", "index", "middle", "ring", "pinky"),
    ),
    "grasp_cylinder": (
        _template(
            (20.0, 45.0, 30.0, 20.0, 20.0),
            [
                _finger(45.0, 0.0, 70.0),
                _finger(45.0, 0.0, 72.0),
                _finger(45.0, 0.0, 72.0),
                _finger(45.0, 0.0, 70.0),
            ],
        ),
        ("thumb", "index", "middle", "ring", "pinky"),
    ),
    "grasp_ball": (
        _template(
            (5.0, 50.0, 35.0, 15.0, 15.0),
            [
                _finger(30.0, 10.0, 40.0),
                _finger(30.0, 0.0, 42.0),
                _finger(30.0, 8.0, 42.0),
                _finger(30.0, 15.0, 40.0),
            ],
        ),
        ("thumb", "index", "middle", "ring", "pinky"),
    ),
    "call": (
        _template((-15.0, 10.0, 0.0, 0.0, 0.0), [*_CURLED[:3], _finger(0.0, 15.0, 4.0)]),
        ("thumb", "index", "middle", "ring", "pinky"),
    ),
    "rock": (
        _template(_THUMB_TUCKED, [_finger(3.0, 6.0, 4.0), *_CURLED[1:3], _finger(2.0, 12.0, 4.0)]),
        ("thumb", "index", "middle", "ring", "pinky"),
    ),
}

_FINGER_JOINTS: dict[str, np.ndarray] = {
    "thumb": np.arange(5),
    **{f: np.arange(5 + 4 * k, 9 + 4 * k) for k, f in enumerate(LONG_FINGERS)},
}
_WRIST = np.array([JOINT_INDEX["wrist_flex"], JOINT_INDEX["wrist_dev"]])


@dataclass(frozen=True)
class GraspObject:
    """An object held in a grasp, in the right hand's hand frame (metres).

    Attributes:
        kind: "cylinder" or "sphere".
        centre: shape (3,), the cylinder's axis midpoint or the sphere's centre.
        axis: shape (3,), unit axis of the cylinder (zeros for a sphere).
        radius: metres.
        length: the cylinder's length (0 for a sphere).
    """

    kind: Literal["cylinder", "sphere"]
    centre: np.ndarray
    axis: np.ndarray
    radius: float
    length: float = 0.0

    def for_side(self, side: Side) -> GraspObject:
        """The object for a hand of ``side`` (the left hand's is the mirror image)."""
        if side == "right":
            return self
        return replace(self, centre=self.centre @ MIRROR, axis=self.axis @ MIRROR)


@dataclass(frozen=True)
class GestureSample:
    """One sampled gesture: the articulation and, for grasps, the object it holds."""

    name: str
    angles: HandPoseAngles
    grasped: GraspObject | None = None


def sample_gesture(
    name: str,
    rng: np.random.Generator,
    *,
    shape: HandShape | None = None,
    variation: float = 1.0,
) -> GestureSample:
    """A natural instance of gesture ``name`` for the hand ``shape``.

    Args:
        name: one of ``GESTURES``.
        rng: the random generator (the only source of randomness).
        shape: the hand the contacts are solved for (default: the mean hand).
        variation: scales every random deviation from the template (0 = the template, solved).

    Returns:
        The angles (within the joint limits) and, for grasps, the held object.
    """
    if name not in _TEMPLATES:
        raise ValueError(f"unknown gesture {name!r}; expected one of {GESTURES}")
    if variation < 0.0:
        raise ValueError(f"variation must be >= 0, got {variation}")
    shape = shape or HandShape.mean()
    template, defining = _TEMPLATES[name]
    sigma = np.full(NUM_JOINTS, FREE_SIGMA_DEG)
    for finger in defining:
        sigma[_FINGER_JOINTS[finger]] = DEFINING_SIGMA_DEG
    sigma[_WRIST] = WRIST_SIGMA_DEG
    # Fingers held side by side stay so: spread varies less than flexion.
    sigma[MCP_ABD] = np.minimum(sigma[MCP_ABD], ABDUCTION_SIGMA_DEG)
    noise = rng.normal(0.0, 1.0, NUM_JOINTS) * sigma * variation
    if name == "open_palm":
        level = float(rng.uniform(*OPEN_PALM_SPREAD_RANGE))
        template = _spread(template, 1.0 + (level - 1.0) * variation)
    # Keep each DIP close to its coupling with the PIP: noise it relative to the PIP's.
    noise[DIP_FLEX] = DIP_PIP_COUPLING * noise[PIP_FLEX] + 0.3 * noise[DIP_FLEX]
    start = np.clip(template + noise, LOWER_DEG, UPPER_DEG)
    grasped: GraspObject | None = None
    if name in ("pinch", "ok"):
        degrees = _solve_pinch(shape, start)
    elif name == "grasp_cylinder":
        diameter = rng.uniform(*CYLINDER_DIAMETER_RANGE_M)
        tilt = np.deg2rad(rng.normal(15.0, 4.0 * variation))
        grasped = _cylinder_for(shape, 0.5 * diameter, tilt)
        degrees = _solve_wrap(shape, start, grasped)
    elif name == "grasp_ball":
        diameter = rng.uniform(*BALL_DIAMETER_RANGE_M)
        grasped = _ball_for(shape, 0.5 * diameter)
        degrees = _solve_wrap(shape, start, grasped)
    elif name in ("fist", "point", "victory", "rock"):
        degrees = _solve_thumb_rest(shape, start, name)
    else:
        degrees = start
    return GestureSample(name, clip_to_limits(degrees), grasped)


def _spread(template: np.ndarray, level: float) -> np.ndarray:
    """``template`` with its finger abduction and thumb CMC opening times ``level``."""
    out = template.copy()
    out[MCP_ABD] *= level
    # The thumb's CMC flexion (negative: away from the palm) and abduction open it.
    out[[JOINT_INDEX["thumb_cmc_flex"], JOINT_INDEX["thumb_cmc_abd"]]] *= level
    return out


def gesture_angles(
    name: str,
    rng: np.random.Generator,
    variation: float = 1.0,
    *,
    shape: HandShape | None = None,
) -> HandPoseAngles:
    """The angles of ``sample_gesture(name, rng, shape=shape, variation=variation)``."""
    return sample_gesture(name, rng, shape=shape, variation=variation).angles


def gesture_template(name: str) -> HandPoseAngles:
    """The unsolved template of gesture ``name`` (degrees)."""
    if name not in _TEMPLATES:
        raise ValueError(f"unknown gesture {name!r}; expected one of {GESTURES}")
    return HandPoseAngles(_TEMPLATES[name][0])


# --- Random articulations -------------------------------------------------------------------

# Spread lost per unit of MCP flexion level: fingers close up as they curl.
_SPREAD_LOSS_WITH_FLEXION = 0.7


def _flexion_deg(mcp_level: np.ndarray, pip_level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MCP and PIP flexion (degrees) of long fingers curled to these levels (0: straight, a
    little hyperextended at the MCP; 1: fully curled)."""
    return -10.0 + 98.0 * mcp_level, 105.0 * pip_level


def _thumb_angles(
    opposition: float, curl: float, rng: np.random.Generator, sigma_deg: tuple[float, ...]
) -> np.ndarray:
    """The thumb's five joints from an opposition level (its CMC brought across the palm) and
    a curl level (MCP and IP), both 0..1, each with N(0, sigma) added, drawn in joint order."""
    cmc_flex, cmc_abd, cmc_rot, mcp, ip = sigma_deg
    return np.array([
        -18.0 + 38.0 * opposition + rng.normal(0.0, cmc_flex),
        5.0 + 45.0 * opposition + rng.normal(0.0, cmc_abd),
        -5.0 + 45.0 * opposition + rng.normal(0.0, cmc_rot),
        -5.0 + 55.0 * curl + rng.normal(0.0, mcp),
        -10.0 + 85.0 * curl + rng.normal(0.0, ip),
    ])  # fmt: skip


def random_angles(rng: np.random.Generator, *, independent_prob: float = 0.04) -> HandPoseAngles:
    """A random physiological articulation (not uniform noise in the joint box).

    A hand-wide curl level is drawn, each finger's curl is drawn around it (the ring finger
    follows its neighbours, as the shared flexor tendons make it), a per-finger style moves
    flexion between MCP and PIP (hook vs. flat fingers), DIP follows PIP by about 2/3,
    spread shrinks as fingers flex, the thumb is drawn from an opposition level and a curl
    level, and the wrist from a centred distribution. With ``independent_prob`` each joint
    is instead drawn uniformly within its limits.
    """
    out = np.zeros(NUM_JOINTS)
    hand_curl = rng.beta(0.7, 0.7)
    curls = np.clip(hand_curl + rng.normal(0.0, 0.22, 4), 0.0, 1.0)
    if rng.random() < 0.3:
        curls[rng.integers(4)] = rng.random()
    curls[2] = 0.5 * curls[2] + 0.25 * (curls[1] + curls[3])
    style = rng.normal(0.0, 0.2, 4)
    mcp_level = np.clip(curls + style, 0.0, 1.0)
    pip_level = np.clip(curls - style, 0.0, 1.0)
    mcp_deg, pip_deg = _flexion_deg(mcp_level, pip_level)
    out[MCP_FLEX] = mcp_deg + rng.normal(0.0, 5.0, 4)
    out[PIP_FLEX] = pip_deg + rng.normal(0.0, 5.0, 4)
    out[DIP_FLEX] = out[PIP_FLEX] * rng.normal(DIP_PIP_COUPLING, 0.06, 4) + rng.normal(0.0, 3.0, 4)
    spread = rng.uniform(-0.3, 1.0)
    out[MCP_ABD] = spread * np.array([14.0, 3.0, 10.0, 18.0]) * (
        1.0 - _SPREAD_LOSS_WITH_FLEXION * mcp_level
    ) + rng.normal(0.0, 3.0, 4)
    opposition = rng.random()
    thumb_curl = rng.beta(1.2, 1.5)
    out[:5] = _thumb_angles(opposition, thumb_curl, rng, (7.0, 7.0, 6.0, 5.0, 6.0))
    out[_WRIST] = rng.normal([0.0, 5.0], [25.0, 10.0])
    independent = rng.random(NUM_JOINTS) < independent_prob
    out[independent] = rng.uniform(LOWER_DEG[independent], UPPER_DEG[independent])
    return clip_to_limits(out)


# How many digits a bent-finger pose bends (1, 2 or 3) and how likely each count is.
BENT_DIGIT_COUNTS = (1, 2, 3)
BENT_DIGIT_COUNT_PROBS = (0.5, 0.35, 0.15)


def bent_finger_angles(rng: np.random.Generator) -> HandPoseAngles:
    """An open hand, splayed anywhere from fingers together to the limits, with one to three
    digits (the thumb among them) bent on their own, as in counting on the fingers.

    ``random_angles`` draws the fingers' curls around one hand-wide level and spreads them
    less than an open palm, so it rarely makes this pose; people showing a depth camera
    their palm make it often (the SR305 recording 231615 in docs/eval), and a bent digit
    then points at the camera, where its joints are hardest to place. Each bent long finger
    takes a curl level of 0.3-1 (flexion split between MCP and PIP as in ``random_angles``,
    spread falling with flexion); a bent thumb crosses towards the palm (opposition) and curls.
    """
    template, _ = _TEMPLATES["open_palm"]
    out = _spread(template, float(rng.uniform(*OPEN_PALM_SPREAD_RANGE)))
    out = out + rng.normal(0.0, DEFINING_SIGMA_DEG, NUM_JOINTS)
    count = int(rng.choice(BENT_DIGIT_COUNTS, p=BENT_DIGIT_COUNT_PROBS))
    bent = rng.choice(5, size=count, replace=False)
    for digit in bent:
        if digit == 0:
            opposition, curl = rng.uniform(0.4, 1.0), rng.uniform(0.3, 1.0)
            out[:5] = _thumb_angles(opposition, curl, rng, (5.0,) * 5)
            continue
        k = digit - 1
        curl = rng.uniform(0.3, 1.0)
        style = rng.normal(0.0, 0.15)
        mcp_level, pip_level = np.clip(curl + style, 0.0, 1.0), np.clip(curl - style, 0.0, 1.0)
        mcp_deg, pip_deg = _flexion_deg(mcp_level, pip_level)
        out[MCP_FLEX[k]] = mcp_deg + rng.normal(0.0, 5.0)
        out[PIP_FLEX[k]] = pip_deg + rng.normal(0.0, 5.0)
        out[DIP_FLEX[k]] = out[PIP_FLEX[k]] * rng.normal(DIP_PIP_COUPLING, 0.06)
        out[MCP_ABD[k]] *= 1.0 - _SPREAD_LOSS_WITH_FLEXION * mcp_level
    out[_WRIST] = rng.normal([0.0, 5.0], [25.0, 10.0])
    return clip_to_limits(out)


def interpolate(angles_a: HandPoseAngles, angles_b: HandPoseAngles, t: float) -> HandPoseAngles:
    """The pose a fraction ``t`` (0..1) of the way from ``angles_a`` to ``angles_b``.

    Linear in joint angles: smooth, and within the limits (the limit box is convex).
    """
    t = float(np.clip(t, 0.0, 1.0))
    return HandPoseAngles((1.0 - t) * angles_a.degrees + t * angles_b.degrees)


# --- Contact solving ------------------------------------------------------------------------

Residual = Callable[[np.ndarray], np.ndarray]  # keypoints (B, 21, 3) -> (B, M) metres


def _solve(
    shape: HandShape,
    start: np.ndarray,
    free: np.ndarray,
    residual: Residual,
    *,
    iterations: int = 5,
    step_deg: float = 0.5,
) -> np.ndarray:
    """Levenberg-Marquardt on the joints ``free``, DIPs following their PIPs."""
    start = np.asarray(start, dtype=np.float64)
    with_pip = np.isin(PIP_FLEX, free) & ~np.isin(DIP_FLEX, free)
    ratio = np.where(
        start[PIP_FLEX] > 1.0, start[DIP_FLEX] / np.maximum(start[PIP_FLEX], 1.0), 2 / 3
    )

    def expand(values: np.ndarray) -> np.ndarray:
        full = np.repeat(start[None], len(values), axis=0)
        full[:, free] = values
        full[:, DIP_FLEX[with_pip]] = full[:, PIP_FLEX[with_pip]] * ratio[with_pip]
        return full

    def total(values: np.ndarray) -> np.ndarray:
        geometry = residual(keypoints_batch(shape, expand(values))) / _GEOMETRY_SCALE_M
        prior = (values - start[free]) / _PRIOR_SCALE_DEG
        return np.concatenate([geometry, prior], axis=1)

    lower, upper = LOWER_DEG[free], UPPER_DEG[free]
    x = start[free].copy()
    r0 = total(x[None])[0]
    damping = 1e-2
    eye = np.eye(len(free))
    for _ in range(iterations):
        jac = (total(x + step_deg * eye) - r0).T / step_deg
        grad = jac.T @ r0
        hessian = jac.T @ jac
        delta = np.linalg.solve(hessian + damping * (np.diag(np.diag(hessian)) + eye), -grad)
        candidate = np.clip(x + delta, lower, upper)
        r_candidate = total(candidate[None])[0]
        if r_candidate @ r_candidate < r0 @ r0:
            x, r0 = candidate, r_candidate
            damping *= 0.3
            if np.max(np.abs(delta)) < 0.05:
                break
        else:
            damping *= 10.0
    return expand(x[None])[0]


def _thumb_and(*joints: str) -> np.ndarray:
    return np.concatenate([np.arange(5), [JOINT_INDEX[j] for j in joints]])


def _solve_pinch(shape: HandShape, start: np.ndarray) -> np.ndarray:
    """Thumb tip and index tip pads touching."""
    contact = 0.9 * (shape.radii[0, 3] + shape.radii[1, 3])

    def residual(k: np.ndarray) -> np.ndarray:
        gap = np.linalg.norm(k[:, 4] - k[:, 8], axis=1) - contact
        return gap[:, None] * 2.0

    free = _thumb_and("index_mcp_flex", "index_pip_flex", "index_mcp_abd")
    return _solve(shape, start, free, residual)


def _solve_thumb_rest(shape: HandShape, start: np.ndarray, name: str) -> np.ndarray:
    """The thumb's pad on the back of the curled fingers' middle phalanges."""
    keypoints = keypoints_batch(shape, start[None])[0]
    # Which middle phalanges the thumb lies across (keypoint pairs) for each gesture.
    rests = {
        "fist": ((6, 7), (10, 11)),
        "point": ((10, 11), (10, 11)),
        "victory": ((14, 15), (14, 15)),
        "rock": ((10, 11), (14, 15)),
    }[name]
    targets = []
    for (a, b), (thumb_joint, thumb_radius) in zip(
        rests, ((3, shape.radii[0, 2]), (4, shape.radii[0, 3])), strict=True
    ):
        finger = (a - 1) // 4
        mid = 0.5 * (keypoints[a] + keypoints[b])
        # The back of the middle phalanx faces away from the palm (+z) in a curled finger.
        finger_radius = 0.5 * (shape.radii[finger, 1] + shape.radii[finger, 2])
        targets.append((thumb_joint, mid + np.array([0.0, 0.0, finger_radius + thumb_radius])))

    def residual(k: np.ndarray) -> np.ndarray:
        ip = k[:, targets[0][0]] - targets[0][1]
        tip = k[:, targets[1][0]] - targets[1][1]
        return np.concatenate([0.5 * ip, tip], axis=1)

    return _solve(shape, start, np.arange(5), residual)


def _palm_surface_z(shape: HandShape) -> float:
    """Height (z, hand frame) of the palm's skin at the middle knuckle: back + thickness."""
    return float(shape.bases[2, 2] - shape.radii[2, 0] + shape.palm_thickness)


def _cylinder_for(shape: HandShape, radius: float, tilt: float) -> GraspObject:
    """A cylinder lying across the palm, its ulnar end more proximal by ``tilt`` radians."""
    axis = np.array([-np.sin(tilt), np.cos(tilt), 0.0])
    centre = np.array(
        [
            shape.bases[1:, 0].mean() - 0.35 * radius,
            shape.bases[2, 1],
            _palm_surface_z(shape) + radius,
        ]
    )
    return GraspObject("cylinder", centre, axis, radius, length=0.14)


def _ball_for(shape: HandShape, radius: float) -> GraspObject:
    """A ball cupped in front of the palm, touching its distal part."""
    centre = np.array(
        [
            shape.bases[1:, 0].mean() - 0.1 * radius,
            shape.bases[1:4, 1].mean(),
            _palm_surface_z(shape) + 0.9 * radius,
        ]
    )
    return GraspObject("sphere", centre, np.zeros(3), radius)


def _segment_points(keypoints: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Midpoints and ends of every chain segment: points (B, 5, 6, 3), radii there (5, 6)."""
    chains = keypoints[:, 1:].reshape(len(keypoints), 5, 4, 3)
    starts, ends = chains[:, :, :3], chains[:, :, 1:]
    points = np.stack([0.5 * (starts + ends), ends], axis=3).reshape(-1, 5, 6, 3)
    point_radii = np.stack([0.5 * (radii[:, :3] + radii[:, 1:]), radii[:, 1:]], axis=2)
    return points, point_radii.reshape(5, 6)


# Keypoints the thumb tip keeps clear of in a grasp: index and middle DIP and tip.
_THUMB_CLEARANCE = np.array([7, 8, 11, 12])


def _solve_wrap(shape: HandShape, start: np.ndarray, grasped: GraspObject) -> np.ndarray:
    """Every finger's and the thumb's segments on the object's surface."""
    # Per chain: (mid, end) of each segment. The thumb's metacarpal sits in the palm; only
    # its phalanges wrap. Proximal phalanges touch only where they reach.
    weights = np.array([[0.0, 0.0, 0.5, 1.0, 1.0, 1.0]] + [[0.5, 1.0, 1.0, 1.0, 1.0, 1.0]] * 4)
    clearance = shape.radii[0, 3] + shape.keypoint_radii[_THUMB_CLEARANCE]

    def residual(k: np.ndarray) -> np.ndarray:
        points, point_radii = _segment_points(k, shape.radii)
        offset = points - grasped.centre
        if grasped.kind == "cylinder":
            offset = offset - (offset @ grasped.axis)[..., None] * grasped.axis
        distance = np.linalg.norm(offset, axis=-1)
        on_surface = ((distance - grasped.radius - point_radii) * weights).reshape(len(k), -1)
        # The thumb tip must not sink into the index or middle finger's distal segment.
        gaps = np.linalg.norm(k[:, 4:5] - k[:, _THUMB_CLEARANCE], axis=-1) - clearance
        return np.concatenate([on_surface, np.minimum(gaps, 0.0)], axis=1)

    free = np.concatenate([np.arange(5), MCP_FLEX, PIP_FLEX])
    if grasped.kind == "sphere":
        free = np.concatenate([free, MCP_ABD])
    return _solve(shape, start, np.sort(free), residual)
