"""A sampled scene: the camera, one or two posed hands (with forearm, maybe holding an
object), the person behind them, and the room; plus how everything looks.

A ``Scene`` is data (shapes, angles, placements, materials), not meshes: ``scene_objects``
turns it into the renderer's meshes. A sequence keeps one ``Scene`` and moves its hands.

Object ids (the renderer's per-pixel labels) follow a fixed layout, so masks and visibility
are read off the render: props 1..99, hand k's hand 100 + 2k and forearm 101 + 2k, the
object hand k holds 200 + k.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from hand_pose_ros.geometry import CameraModel
from hand_pose_ros.synth import primitives
from hand_pose_ros.synth.appearance import (
    AppearanceConfig,
    Lighting,
    Material,
    random_lighting,
    random_material,
    skin_material,
)
from hand_pose_ros.synth.articulation import HandPoseAngles
from hand_pose_ros.synth.gestures import (
    GESTURES,
    GraspObject,
    bent_finger_angles,
    random_angles,
    sample_gesture,
)
from hand_pose_ros.synth.hand_mesh import PART_FOREARM, hand_mesh
from hand_pose_ros.synth.hand_model import (
    HandShape,
    HandShapeConfig,
    HandSkeleton,
    Side,
    forward_kinematics,
    sample_hand_shape,
)
from hand_pose_ros.synth.meshes import Mesh
from hand_pose_ros.synth.placement import HandPlacement, PlacementConfig, sample_placement

PROP_IDS = range(1, 100)
GRASP_GESTURES = ("grasp_cylinder", "grasp_ball")


def hand_object_id(index: int) -> int:
    """The renderer's object id of hand ``index``'s hand (palm and fingers)."""
    return 100 + 2 * index


def forearm_object_id(index: int) -> int:
    """The renderer's object id of hand ``index``'s forearm."""
    return 101 + 2 * index


def held_object_id(index: int) -> int:
    """The renderer's object id of the object hand ``index`` holds."""
    return 200 + index


@dataclass
class CameraConfig:
    """The pinhole RGB-D camera (default: a RealSense D435 colour stream at 640x480).

    Attributes:
        width, height: image size in pixels.
        fx, fy: focal lengths in pixels; the principal point is the image centre.
        focal_jitter: relative standard deviation of the focal length per scene (0: fixed).
    """

    width: int = 640
    height: int = 480
    fx: float = 615.0
    fy: float = 615.0
    focal_jitter: float = 0.0

    def sample(self, rng: np.random.Generator) -> CameraModel:
        """The camera of one scene."""
        scale = 1.0 + self.focal_jitter * float(rng.standard_normal()) if self.focal_jitter else 1.0
        return CameraModel.from_intrinsics(
            self.fx * scale, self.fy * scale, (self.width - 1) / 2.0, (self.height - 1) / 2.0,
            self.width, self.height,
        )  # fmt: skip


@dataclass
class SceneConfig:
    """Distributions of what is in the scene.

    Attributes:
        two_hands_probability: chance of a second hand (the same person's other hand).
        left_probability: chance the (first) hand is a left hand.
        gesture_probability: chance a hand makes a named gesture (else a random articulation).
        gestures: the gesture vocabulary drawn from (uniformly).
        gesture_variation: scale of the natural variation around each gesture.
        bent_fingers_probability: chance a hand that makes no named gesture shows an open
            hand with one to three digits bent on their own (``bent_finger_angles``) instead
            of a random articulation. 0 by default, which keeps the default world (and the
            held-out sets drawn from it) as it was.
        held_object_probability: chance a grasp gesture holds its object (the handover case).
        sleeve_probability: chance the forearm wears a sleeve (else bare skin).
        forearm_length_m: range of the visible forearm's length.
        torso_probability, head_probability: chance of the person's body and head.
        torso_behind_m: range of how far the torso's front is behind the hand.
        table_probability: chance of a table below the hand.
        wall_distance_m: range of the back wall's distance from the camera.
        floor_probability, side_wall_probability: chance of a floor and of a side wall.
        boxes: (min, max) number of random boxes in the background.
    """

    two_hands_probability: float = 0.2
    left_probability: float = 0.5
    gesture_probability: float = 0.65
    gestures: tuple[str, ...] = GESTURES
    gesture_variation: float = 1.0
    bent_fingers_probability: float = 0.0
    held_object_probability: float = 0.8
    sleeve_probability: float = 0.5
    forearm_length_m: tuple[float, float] = (0.12, 0.25)
    torso_probability: float = 0.85
    head_probability: float = 0.7
    torso_behind_m: tuple[float, float] = (0.2, 0.55)
    table_probability: float = 0.35
    wall_distance_m: tuple[float, float] = (1.5, 4.0)
    floor_probability: float = 0.5
    side_wall_probability: float = 0.3
    boxes: tuple[int, int] = (0, 4)


@dataclass
class SceneHand:
    """One hand of a scene: who it is, how it is bent, where it is, what it holds."""

    side: Side
    shape: HandShape
    angles: HandPoseAngles
    gesture: str
    placement: HandPlacement
    forearm_length: float
    skin: Material
    sleeve: Material | None
    grasped: GraspObject | None = None
    track_id: str = ""

    def skeleton(self) -> HandSkeleton:
        """The posed skeleton in the camera frame."""
        local = forward_kinematics(self.shape, self.angles, self.side)
        return local.transformed(self.placement.rotation, self.placement.translation)


@dataclass
class Prop:
    """A static object of the scene."""

    object_id: int
    mesh: Mesh
    material: Material


@dataclass
class Scene:
    """Everything needed to render one frame (or, moving the hands, a sequence)."""

    camera: CameraModel
    hands: list[SceneHand]
    props: list[Prop] = field(default_factory=list)
    lighting: Lighting | None = None
    backdrop: Material | None = None


def sample_hand(
    rng: np.random.Generator,
    camera: CameraModel,
    side: Side,
    skin: Material,
    *,
    shape_config: HandShapeConfig,
    placement_config: PlacementConfig,
    scene_config: SceneConfig,
    shape: HandShape | None = None,
    track_id: str = "",
) -> SceneHand:
    """A hand with a random shape (unless given), articulation or gesture, and placement."""
    shape = shape if shape is not None else sample_hand_shape(rng, shape_config)
    gesture, grasped = "", None
    if rng.random() < scene_config.gesture_probability and scene_config.gestures:
        gesture = str(rng.choice(list(scene_config.gestures)))
        sample = sample_gesture(gesture, rng, shape=shape, variation=scene_config.gesture_variation)
        angles = sample.angles
        if sample.grasped is not None and rng.random() < scene_config.held_object_probability:
            grasped = sample.grasped.for_side(side)
    elif scene_config.bent_fingers_probability > 0.0 and (
        rng.random() < scene_config.bent_fingers_probability
    ):
        # Only drawn when enabled, so that the default world's random stream is unchanged.
        angles = bent_finger_angles(rng)
    else:
        angles = random_angles(rng)
    sleeve = None
    if rng.random() < scene_config.sleeve_probability:
        sleeve = random_material(rng, kinds=("plain", "fabric", "stripes", "noise"))
    return SceneHand(
        side=side,
        shape=shape,
        angles=angles,
        gesture=gesture,
        placement=sample_placement(rng, camera, placement_config),
        forearm_length=float(rng.uniform(*scene_config.forearm_length_m)),
        skin=skin,
        sleeve=sleeve,
        grasped=grasped,
        track_id=track_id,
    )


def sample_scene(
    rng: np.random.Generator,
    *,
    camera_config: CameraConfig,
    shape_config: HandShapeConfig,
    placement_config: PlacementConfig,
    scene_config: SceneConfig,
    appearance_config: AppearanceConfig,
) -> Scene:
    """A random scene (see ``SceneConfig`` for what is in it)."""
    camera = camera_config.sample(rng)
    skin = skin_material(rng)
    first_side: Side = "left" if rng.random() < scene_config.left_probability else "right"

    def hand(side: Side, track_id: str, shape: HandShape | None = None) -> SceneHand:
        return sample_hand(rng, camera, side, skin, shape_config=shape_config,
                           placement_config=placement_config, scene_config=scene_config,
                           shape=shape, track_id=track_id)  # fmt: skip

    hands = [hand(first_side, "hand_0")]
    if rng.random() < scene_config.two_hands_probability:
        # The same person: the same hand shape, mirrored by the side.
        hands.append(hand("right" if first_side == "left" else "left", "hand_1", hands[0].shape))
    props = _sample_props(rng, hands, skin, scene_config)
    return Scene(
        camera=camera,
        hands=hands,
        props=props,
        lighting=random_lighting(rng, appearance_config),
        backdrop=random_material(rng),
    )


def _sample_props(
    rng: np.random.Generator, hands: list[SceneHand], skin: Material, config: SceneConfig
) -> list[Prop]:
    ids = iter(PROP_IDS)
    props: list[Prop] = []

    def add(mesh: Mesh, material: Material) -> None:
        props.append(Prop(next(ids), mesh, material))

    def clothing() -> Material:
        return random_material(rng, kinds=("plain", "fabric", "stripes", "noise"))

    hand = hands[0].placement.translation
    nearest_z = min(h.placement.translation[2] for h in hands)
    farthest_z = max(h.placement.translation[2] for h in hands)
    if rng.random() < config.torso_probability:
        # The body sits where the forearm leads: elbow at the forearm's end, the shoulder
        # behind and above it, the chest beside the shoulder (a right hand's shoulder is on
        # the person's right, the camera's left, for a person facing the camera).
        first = hands[0]
        skeleton = first.skeleton()
        elbow = skeleton.forearm_origin + first.forearm_length * skeleton.forearm_direction
        shoulder = elbow + np.array([rng.uniform(-0.08, 0.08), rng.uniform(-0.25, -0.05),
                                     rng.uniform(*config.torso_behind_m)])  # fmt: skip
        width, height = rng.uniform(0.32, 0.46), rng.uniform(0.5, 0.65)
        depth = rng.uniform(0.18, 0.26)
        across = width / 2.0 if first.side == "right" else -width / 2.0
        center = shoulder + np.array([across, height / 2.0 - 0.05, depth / 2.0])
        center[2] = max(center[2], farthest_z + depth / 2.0 + 0.08)  # never through a hand
        turn = primitives.rotation_from_z(np.array([rng.uniform(-0.4, 0.4), 0.0, 1.0]))
        add(primitives.torso(width, depth, height, center=center, rotation=turn), clothing())
        if rng.random() < config.head_probability:
            head = center + np.array([rng.uniform(-0.03, 0.03), -height / 2.0 - 0.13, 0.0])
            add(primitives.ellipsoid((0.075, 0.11, 0.095), center=head), skin)

    wall_z = max(float(rng.uniform(*config.wall_distance_m)), farthest_z + 0.6)
    facing = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.15, 0.15), 1.0])
    back = primitives.rotation_from_z(facing)
    add(primitives.wall(12.0, 8.0, center=(0.0, 0.0, wall_z), rotation=back), random_material(rng))
    if rng.random() < config.floor_probability:
        floor = (0.0, float(rng.uniform(0.8, 1.6)), wall_z / 2.0)
        up = primitives.rotation_from_z(np.array([0.0, -1.0, rng.uniform(-0.1, 0.1)]))
        add(primitives.wall(12.0, 12.0, center=floor, rotation=up), random_material(rng))
    if rng.random() < config.side_wall_probability:
        side = float(rng.choice([-1.0, 1.0]))
        center = (side * rng.uniform(1.0, 2.5), 0.0, wall_z / 2.0)
        inwards = primitives.rotation_from_z(np.array([-side, 0.0, rng.uniform(-0.3, 0.3)]))
        add(primitives.wall(12.0, 8.0, center=center, rotation=inwards), random_material(rng))
    if rng.random() < config.table_probability:
        top = (hand[0] + rng.uniform(-0.3, 0.3), hand[1] + rng.uniform(0.12, 0.45),
               nearest_z + rng.uniform(0.1, 0.4))  # fmt: skip
        tilt = primitives.rotation_from_z(np.array([0.0, rng.uniform(-0.2, 0.2), 1.0]))
        mesh = primitives.table(rng.uniform(0.8, 1.8), rng.uniform(0.6, 1.0), center=top,
                                rotation=tilt)  # fmt: skip
        add(mesh, random_material(rng, kinds=("wood", "plain", "noise")))
    for _ in range(int(rng.integers(config.boxes[0], config.boxes[1] + 1))):
        z = float(rng.uniform(nearest_z + 0.2, wall_z))
        center = (rng.uniform(-0.6, 0.6) * z, rng.uniform(-0.45, 0.45) * z, z)
        add(primitives.random_box(rng, center=np.array(center)), random_material(rng))
    return props


def scene_objects(
    scene: Scene,
) -> tuple[list[tuple[int, Mesh]], dict[int, Material], list[HandSkeleton]]:
    """The renderer's ``(object_id, mesh)`` list, the materials by id, and each hand's
    posed skeleton (camera frame), for the scene as it is now."""
    objects = [(prop.object_id, prop.mesh) for prop in scene.props]
    materials = {prop.object_id: prop.material for prop in scene.props}
    skeletons = []
    for index, hand in enumerate(scene.hands):
        local = forward_kinematics(hand.shape, hand.angles, hand.side)
        mesh = hand_mesh(local, hand.shape, forearm_length=hand.forearm_length)
        rotation, translation = hand.placement.rotation, hand.placement.translation
        mesh = mesh.transformed(rotation, translation)
        forearm = mesh.part == PART_FOREARM
        objects.append((hand_object_id(index), _select(mesh, ~forearm)))
        objects.append((forearm_object_id(index), _select(mesh, forearm)))
        # Skin texture follows the hand (mottling stays put as it moves).
        materials[hand_object_id(index)] = replace(hand.skin, frame=(rotation, translation))
        materials[forearm_object_id(index)] = hand.sleeve or materials[hand_object_id(index)]
        if hand.grasped is not None:
            held = _grasp_mesh(hand.grasped).transformed(rotation, translation)
            objects.append((held_object_id(index), held))
            materials[held_object_id(index)] = _held_material(index, hand)
        skeletons.append(local.transformed(rotation, translation))
    return objects, materials, skeletons


def _select(mesh: Mesh, keep: np.ndarray) -> Mesh:
    """The triangles of ``mesh`` where ``keep`` (T,) is true (vertices shared as they are)."""
    return Mesh(mesh.vertices, mesh.triangles[keep], mesh.part[keep])


def _grasp_mesh(grasped: GraspObject) -> Mesh:
    if grasped.kind == "sphere":
        return primitives.sphere(grasped.radius, center=grasped.centre)
    return primitives.cylinder(
        grasped.radius, grasped.length, center=grasped.centre,
        rotation=primitives.rotation_from_z(grasped.axis),
    )  # fmt: skip


def _held_material(index: int, hand: SceneHand) -> Material:
    # Deterministic per scene: derived from the hand's skin seed, not a fresh draw, so
    # re-building the objects of the same scene gives the same look.
    rng = np.random.default_rng([hand.skin.seed, index, 7])
    return random_material(rng, kinds=("plain", "noise", "stripes", "gradient"))
