"""Smooth motion of one or two hands through gestures, frame by frame.

A sequence is one sampled scene (the room, the person, the lights stay) whose hands move
between keyframes: every 0.8-1.6 s a hand takes a new gesture (or a random articulation)
and a new placement. Between keyframes the joint angles are interpolated and the palm pose
follows a slerp/lerp, both eased (zero velocity at the keyframes), so motion looks like a
person's, not a slideshow. Held objects are left out of sequences: an object that appears
and vanishes with the grasp would teach nothing true.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from hand_pose_ros.synth.config import SynthConfig
from hand_pose_ros.synth.gestures import interpolate
from hand_pose_ros.synth.placement import HandPlacement, interpolate_placements, smoothstep
from hand_pose_ros.synth.scene import Scene, SceneConfig, SceneHand, sample_hand, sample_scene
from hand_pose_ros.synth.truth import SynthFrame
from hand_pose_ros.synth.world import render_frame

START_STAMP_NS = 1_700_000_000_000_000_000  # a fixed epoch: the same seed, the same bag
KEYFRAME_INTERVAL_S = (0.8, 1.6)
# How far a new keyframe's placement moves from the last one (0: stays, 1: a fresh draw):
# keeps the hand from crossing the whole view in one second.
STEP_FRACTION = 0.5


@dataclass
class _Keyframe:
    time_s: float
    hand: SceneHand


def sequence_scene(rng: np.random.Generator, config: SynthConfig, hands: int) -> Scene:
    """The scene a sequence starts from, with exactly ``hands`` (1 or 2) hands."""
    if hands not in (1, 2):
        raise ValueError(f"a sequence has 1 or 2 hands, got {hands}")
    scene_config = replace(config.scene, two_hands_probability=1.0 if hands == 2 else 0.0,
                           held_object_probability=0.0)  # fmt: skip
    return sample_scene(
        rng, camera_config=config.camera, shape_config=config.hand,
        placement_config=config.placement, scene_config=scene_config,
        appearance_config=config.appearance,
    )  # fmt: skip


def generate_sequence(
    config: SynthConfig, *, seed: int, seconds: float, fps: float = 30.0, hands: int = 1
) -> Iterator[tuple[int, SynthFrame]]:
    """``(stamp_ns, frame)`` for each frame of a ``seconds`` long sequence at ``fps``."""
    if not (seconds > 0 and fps > 0):
        raise ValueError(f"seconds and fps must be > 0, got {seconds} s at {fps} fps")
    rng = np.random.default_rng(seed)
    scene = sequence_scene(rng, config, hands)
    scene_config = replace(config.scene, held_object_probability=0.0)
    tracks = [
        _keyframes(rng, scene, config, scene_config, index, seconds) for index in range(hands)
    ]
    for frame_index in range(round(seconds * fps)):
        time_s = frame_index / fps
        scene.hands = [_hand_at(track, time_s) for track in tracks]
        stamp_ns = START_STAMP_NS + round(time_s * 1e9)
        yield stamp_ns, render_frame(scene, rng, config)


def _keyframes(
    rng: np.random.Generator,
    scene: Scene,
    config: SynthConfig,
    scene_config: SceneConfig,
    index: int,
    seconds: float,
) -> list[_Keyframe]:
    first = scene.hands[index]
    keys = [_Keyframe(0.0, first)]
    while keys[-1].time_s < seconds:
        previous = keys[-1].hand
        fresh = sample_hand(
            rng, scene.camera, previous.side, previous.skin, shape=previous.shape,
            shape_config=config.hand, placement_config=config.placement,
            scene_config=scene_config, track_id=previous.track_id,
        )  # fmt: skip
        placement = interpolate_placements(previous.placement, fresh.placement, STEP_FRACTION)
        hand = replace(fresh, placement=placement, forearm_length=previous.forearm_length,
                       sleeve=previous.sleeve)  # fmt: skip
        keys.append(_Keyframe(keys[-1].time_s + float(rng.uniform(*KEYFRAME_INTERVAL_S)), hand))
    return keys


def _hand_at(keys: list[_Keyframe], time_s: float) -> SceneHand:
    """The hand between the keyframes around ``time_s``, eased."""
    after = next(i for i, key in enumerate(keys) if key.time_s > time_s)
    a, b = keys[after - 1], keys[after]
    t = smoothstep((time_s - a.time_s) / (b.time_s - a.time_s))
    placement: HandPlacement = interpolate_placements(a.hand.placement, b.hand.placement, t)
    # The gesture label changes halfway: before it the hand is closer to the old pose.
    gesture = a.hand.gesture if t < 0.5 else b.hand.gesture
    return replace(a.hand, angles=interpolate(a.hand.angles, b.hand.angles, t),
                   placement=placement, gesture=gesture)  # fmt: skip
