"""Hand articulation as data: joint names, physiological limits, and the angle vector.

A hand pose is a flat vector of ``NUM_JOINTS`` joint angles in **degrees** (degrees because
every limit and gesture in this package is written and read by people in degrees; the
kinematics converts once). The order is ``JOINT_NAMES``:

- thumb: CMC flexion (in the palm plane, towards the little finger), CMC palmar abduction
  (out of the palm plane, away from the back of the hand), CMC axial rotation (pronation,
  turning the thumb pad towards the fingers: opposition), MCP flexion, IP flexion;
- index, middle, ring, little ("pinky"): MCP flexion (negative = hyperextension), MCP
  abduction (positive = away from the middle finger; for the middle finger positive = towards
  the index), PIP flexion, DIP flexion;
- wrist: flexion (positive = palmar flexion) and deviation (positive = ulnar), which only
  move the forearm relative to the palm.

Sign conventions are anatomical, so the same vector means the same pose for a right and a
left hand (the left hand is the mirror image).

Limits are active ranges of motion of healthy adults, rounded: finger MCP -20..90, PIP
0..110, DIP 0..80, MCP abduction about ±15-25 (the little finger spreads most), thumb IP
-15..85, thumb MCP -10..60, wrist flexion -70..80 (extension is negative), deviation radial
20 / ulnar 30. The thumb CMC ranges are relative to this package's rest frame of the first
metacarpal (40° radial of the palm's long axis, in the palm plane); see ``hand_model``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FINGER_NAMES: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")
LONG_FINGERS: tuple[str, ...] = FINGER_NAMES[1:]

JOINT_NAMES: tuple[str, ...] = (
    "thumb_cmc_flex", "thumb_cmc_abd", "thumb_cmc_rot", "thumb_mcp_flex", "thumb_ip_flex",
    "index_mcp_flex", "index_mcp_abd", "index_pip_flex", "index_dip_flex",
    "middle_mcp_flex", "middle_mcp_abd", "middle_pip_flex", "middle_dip_flex",
    "ring_mcp_flex", "ring_mcp_abd", "ring_pip_flex", "ring_dip_flex",
    "pinky_mcp_flex", "pinky_mcp_abd", "pinky_pip_flex", "pinky_dip_flex",
    "wrist_flex", "wrist_dev",
)  # fmt: skip
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

# (lower, upper) in degrees.
JOINT_LIMITS_DEG: dict[str, tuple[float, float]] = {
    "thumb_cmc_flex": (-25.0, 35.0),
    "thumb_cmc_abd": (0.0, 60.0),
    "thumb_cmc_rot": (-10.0, 50.0),
    "thumb_mcp_flex": (-10.0, 60.0),
    "thumb_ip_flex": (-15.0, 85.0),
    "index_mcp_flex": (-20.0, 90.0),
    "index_mcp_abd": (-15.0, 20.0),
    "index_pip_flex": (0.0, 110.0),
    "index_dip_flex": (0.0, 80.0),
    "middle_mcp_flex": (-20.0, 90.0),
    "middle_mcp_abd": (-15.0, 15.0),
    "middle_pip_flex": (0.0, 110.0),
    "middle_dip_flex": (0.0, 80.0),
    "ring_mcp_flex": (-20.0, 90.0),
    "ring_mcp_abd": (-15.0, 20.0),
    "ring_pip_flex": (0.0, 110.0),
    "ring_dip_flex": (0.0, 80.0),
    "pinky_mcp_flex": (-20.0, 90.0),
    "pinky_mcp_abd": (-15.0, 25.0),
    "pinky_pip_flex": (0.0, 110.0),
    "pinky_dip_flex": (0.0, 80.0),
    "wrist_flex": (-70.0, 80.0),
    "wrist_dev": (-20.0, 30.0),
}
LOWER_DEG: np.ndarray = np.array([JOINT_LIMITS_DEG[n][0] for n in JOINT_NAMES])
UPPER_DEG: np.ndarray = np.array([JOINT_LIMITS_DEG[n][1] for n in JOINT_NAMES])

# The DIP joint follows the PIP joint through the shared flexor and oblique retinacular
# ligament: with the finger moving freely, DIP flexion is about two thirds of PIP flexion.
DIP_PIP_COUPLING = 2.0 / 3.0

# Index arrays into the angle vector, per long finger (index, middle, ring, pinky).
MCP_FLEX: np.ndarray = np.array([JOINT_INDEX[f"{f}_mcp_flex"] for f in LONG_FINGERS])
MCP_ABD: np.ndarray = np.array([JOINT_INDEX[f"{f}_mcp_abd"] for f in LONG_FINGERS])
PIP_FLEX: np.ndarray = np.array([JOINT_INDEX[f"{f}_pip_flex"] for f in LONG_FINGERS])
DIP_FLEX: np.ndarray = np.array([JOINT_INDEX[f"{f}_dip_flex"] for f in LONG_FINGERS])
THUMB: np.ndarray = np.arange(5)
WRIST: np.ndarray = np.array([JOINT_INDEX["wrist_flex"], JOINT_INDEX["wrist_dev"]])


def finger_joint_indices(finger: str) -> np.ndarray:
    """Indices into the angle vector of one finger's joints (5 for the thumb, else 4)."""
    if finger not in FINGER_NAMES:
        raise ValueError(f"unknown finger {finger!r}; expected one of {FINGER_NAMES}")
    return np.array([i for i, name in enumerate(JOINT_NAMES) if name.startswith(finger + "_")])


@dataclass(frozen=True)
class HandPoseAngles:
    """One articulation of the hand.

    Attributes:
        degrees: shape (NUM_JOINTS,) float64, joint angles in degrees in ``JOINT_NAMES``
            order.
    """

    degrees: np.ndarray

    def __post_init__(self) -> None:
        values = np.array(self.degrees, dtype=np.float64).reshape(-1)
        if values.shape != (NUM_JOINTS,):
            raise ValueError(f"expected {NUM_JOINTS} joint angles, got {values.shape[0]}")
        values.setflags(write=False)
        object.__setattr__(self, "degrees", values)

    @staticmethod
    def zeros() -> HandPoseAngles:
        """The flat hand: every joint at 0° (fingers straight and together, thumb in the
        palm plane along its rest direction, wrist neutral)."""
        return HandPoseAngles(np.zeros(NUM_JOINTS))

    @staticmethod
    def from_dict(values: dict[str, float]) -> HandPoseAngles:
        """Angles from ``{joint name: degrees}``; joints not named are 0."""
        unknown = set(values) - set(JOINT_NAMES)
        if unknown:
            raise ValueError(f"unknown joint names: {sorted(unknown)}")
        return HandPoseAngles(np.array([values.get(n, 0.0) for n in JOINT_NAMES]))

    def as_dict(self) -> dict[str, float]:
        """``{joint name: degrees}``."""
        return {n: float(v) for n, v in zip(JOINT_NAMES, self.degrees, strict=True)}

    def __getitem__(self, name: str) -> float:
        return float(self.degrees[JOINT_INDEX[name]])

    def finger(self, finger: str) -> np.ndarray:
        """One finger's angles in degrees: thumb (cmc_flex, cmc_abd, cmc_rot, mcp_flex,
        ip_flex), long fingers (mcp_flex, mcp_abd, pip_flex, dip_flex)."""
        return self.degrees[finger_joint_indices(finger)].copy()

    @property
    def radians(self) -> np.ndarray:
        """shape (NUM_JOINTS,), the angles in radians."""
        return np.deg2rad(self.degrees)

    def replace(self, **values: float) -> HandPoseAngles:
        """A copy with the named joints set (degrees): ``angles.replace(index_pip_flex=30)``."""
        out = self.degrees.copy()
        for name, value in values.items():
            if name not in JOINT_INDEX:
                raise ValueError(f"unknown joint name {name!r}")
            out[JOINT_INDEX[name]] = value
        return HandPoseAngles(out)

    def within_limits(self, tolerance_deg: float = 1e-9) -> bool:
        """Whether every joint lies within ``JOINT_LIMITS_DEG``."""
        return bool(
            np.all(self.degrees >= LOWER_DEG - tolerance_deg)
            and np.all(self.degrees <= UPPER_DEG + tolerance_deg)
        )


def clip_to_limits(angles: HandPoseAngles | np.ndarray) -> HandPoseAngles:
    """The angles with every joint clipped into its physiological range."""
    degrees = angles.degrees if isinstance(angles, HandPoseAngles) else np.asarray(angles)
    return HandPoseAngles(np.clip(degrees, LOWER_DEG, UPPER_DEG))
