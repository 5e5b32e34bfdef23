"""The hand skeleton as data: keypoint names and order, bones, fingers, colours.

The order is the one of MediaPipe, COCO-WholeBody and OpenPose, and the one written in
hand_pose_msgs/msg/Hand.msg (a test checks the two agree). Dataset loaders remap their own
orders into this one.
"""

from __future__ import annotations

KEYPOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)  # fmt: skip
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
KEYPOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

WRIST = 0
FINGERS: dict[str, tuple[int, int, int, int]] = {
    # base -> tip; the thumb's base is its CMC joint, the other fingers' their MCP.
    "thumb": (1, 2, 3, 4),
    "index": (5, 6, 7, 8),
    "middle": (9, 10, 11, 12),
    "ring": (13, 14, 15, 16),
    "pinky": (17, 18, 19, 20),
}
FINGERTIPS: tuple[int, ...] = tuple(chain[-1] for chain in FINGERS.values())

# Bones as (parent, child) pairs: every finger chain hangs off the wrist.
BONES: tuple[tuple[int, int], ...] = tuple(
    pair
    for chain in FINGERS.values()
    for pair in zip((WRIST, *chain[:-1]), chain, strict=True)
)

# Palm keypoints: the wrist and the four finger MCP joints span the palm plane.
PALM: tuple[int, ...] = (0, 5, 9, 13, 17)

# RGB colours in 0..1 per finger, for markers and drawings (wrist is white).
FINGER_COLOURS: dict[str, tuple[float, float, float]] = {
    "thumb": (0.95, 0.30, 0.25),
    "index": (0.98, 0.70, 0.15),
    "middle": (0.30, 0.80, 0.35),
    "ring": (0.20, 0.60, 0.95),
    "pinky": (0.70, 0.40, 0.95),
}
WRIST_COLOUR: tuple[float, float, float] = (1.0, 1.0, 1.0)


def keypoint_colour(index: int) -> tuple[float, float, float]:
    """RGB colour (0..1) of keypoint ``index``: its finger's colour, white for the wrist."""
    for finger, chain in FINGERS.items():
        if index in chain:
            return FINGER_COLOURS[finger]
    return WRIST_COLOUR


def bone_colour(bone: tuple[int, int]) -> tuple[float, float, float]:
    """RGB colour (0..1) of a bone: the colour of its child keypoint's finger."""
    return keypoint_colour(bone[1])
