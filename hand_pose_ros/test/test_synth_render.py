"""The synthetic world's renderer, primitives, depth sensor model and colour shading."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from hand_pose_ros.crop import crop_to_image_matrix
from hand_pose_ros.geometry import CameraModel
from hand_pose_ros.synth import appearance, primitives, render, sensor
from hand_pose_ros.synth.meshes import Mesh
from hand_pose_ros.synth.render import (
    NO_OBJECT,
    STEREO_VIEWPOINT_M,
    Renderer,
    camera_rays,
    scratch,
)
from hand_pose_ros.synth.sensor import SensorConfig, apply_depth_sensor, to_16uc1

# A D435-like colour camera; the principal point on a pixel centre puts pixel (320, 240)'s
# ray on the optical axis.
CAMERA = CameraModel.from_intrinsics(615.0, 615.0, 320.0, 240.0, 640, 480)
SMALL = CameraModel.from_intrinsics(150.0, 150.0, 79.5, 59.5, 160, 120)
TOWARDS_CAMERA = primitives.rotation_from_z((0.0, 0.0, -1.0))
NO_FLAWS = SensorConfig(
    noise_floor_m=0.0,
    noise_quadratic_per_m=0.0,
    disparity_step_px=0.0,
    edge_band_px=(0.0, 0.0),
    grazing_angle_deg=90.0,
    hole_rate=0.0,
)


def wall_at(z: float, *, object_id: int = 0, part: int = 0) -> tuple[int, Mesh]:
    """A wall facing the camera, far larger than the view, its front face at depth z."""
    return object_id, primitives.wall(40.0, 40.0, center=(0.0, 0.0, z), part=part)


# ----------------------------------------------------------------------------- primitives


@pytest.mark.parametrize(
    ("mesh", "volume"),
    [
        (primitives.box((0.1, 0.2, 0.3)), 0.006),
        (primitives.sphere(0.1, segments=48, rings=12), 4.0 / 3.0 * np.pi * 0.1**3),
        (
            primitives.capsule(0.05, 0.2, segments=48, rings=12),
            np.pi * 0.05**2 * 0.2 + 4.0 / 3.0 * np.pi * 0.05**3,
        ),
        (primitives.cylinder(0.04, 0.2, segments=64), np.pi * 0.04**2 * 0.2),
        (
            primitives.rounded_box((0.3, 0.2, 0.1), 0.03, segments=12, rings=12),
            0.3 * 0.2 * 0.1 - (8 - 4 * np.pi / 3) * 0.03**3 - (4 - np.pi) * 0.03**2 * 0.36,
        ),
        (
            primitives.ellipsoid((0.1, 0.2, 0.05), segments=48, rings=12),
            4.0 / 3.0 * np.pi * 0.1 * 0.2 * 0.05,
        ),
    ],
    ids=["box", "sphere", "capsule", "cylinder", "rounded_box", "ellipsoid"],
)
def test_primitives_are_closed_outward_and_the_right_size(mesh: Mesh, volume: float) -> None:
    corners = mesh.vertices[mesh.triangles]
    # Signed volume (divergence theorem): positive only for outward winding.
    signed = np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum()
    assert signed / 6.0 == pytest.approx(volume, rel=0.02)
    # Closed: every edge (welded by position) is used once in each direction.
    _, weld = np.unique(np.round(mesh.vertices, 9), axis=0, return_inverse=True)
    welded = weld.reshape(-1)[mesh.triangles]
    edges = np.concatenate([welded[:, [0, 1]], welded[:, [1, 2]], welded[:, [2, 0]]])
    edges = edges[edges[:, 0] != edges[:, 1]]
    forward = {tuple(e) for e in edges.tolist()}
    assert all((b, a) in forward for a, b in forward)


def test_primitives_carry_their_part_label_and_placement() -> None:
    rotation = primitives.rotation_from_z((1.0, 1.0, 0.0))
    mesh = primitives.cylinder(0.03, 0.2, part=7, center=(0.1, 0.2, 0.9), rotation=rotation)
    assert (mesh.part == 7).all()
    assert mesh.vertices.mean(axis=0) == pytest.approx((0.1, 0.2, 0.9), abs=1e-3)
    extent = (mesh.vertices - (0.1, 0.2, 0.9)) @ (np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0))
    assert extent.max() == pytest.approx(0.1)
    capsule = primitives.capsule_between(np.zeros(3), np.array([0.0, 0.0, 0.1]), 0.01)
    assert capsule.vertices[:, 2].min() == pytest.approx(-0.01)
    assert capsule.vertices[:, 2].max() == pytest.approx(0.11)


# ----------------------------------------------------------------------------- renderer


def test_plane_depth_is_exact_in_the_full_image_and_in_an_off_centre_crop() -> None:
    renderer = Renderer([wall_at(1.25, object_id=3, part=5)])
    full = renderer.render(CAMERA)
    assert full.depth.shape == (480, 640)
    assert full.depth.dtype == np.float32
    np.testing.assert_allclose(full.depth, 1.25, rtol=2e-7)
    assert (full.object_id == 3).all()
    assert (full.part == 5).all()
    np.testing.assert_allclose(full.normal.reshape(-1, 3), [[0.0, 0.0, -1.0]] * 640 * 480)
    # A rotated, scaled window far off centre, rendered at crop resolution.
    matrix = crop_to_image_matrix(np.array([560.0, 70.0]), 173.0, 128, rotation_rad=0.7)
    crop = renderer.render_window(CAMERA, matrix, 128)
    assert crop.depth.shape == (128, 128)
    np.testing.assert_allclose(crop.depth, 1.25, rtol=2e-7)
    # The hit points are where the window's pixels look: u = fx x / z + cx.
    points = crop.points.reshape(-1, 3).astype(np.float64)
    uv = CAMERA.project(points)
    i, j = np.meshgrid(np.arange(128.0), np.arange(128.0))
    expected = np.stack([i.ravel(), j.ravel(), np.ones(128 * 128)], axis=1) @ matrix.T
    np.testing.assert_allclose(uv, expected, atol=2e-3)


def test_sphere_depth_at_its_centre_pixel_is_centre_depth_minus_radius() -> None:
    centre_z, radius = 0.8, 0.07
    sphere = primitives.sphere(radius, center=(0.0, 0.0, centre_z), rotation=TOWARDS_CAMERA)
    result = Renderer([(1, sphere), wall_at(2.0)]).render(CAMERA)
    assert result.depth[240, 320] == pytest.approx(centre_z - radius, abs=1e-6)
    assert result.object_id[240, 320] == 1
    # Off axis: the pole turned to face the camera lies on the ray through the centre.
    direction = np.array([80.0 / 615.0, -30.0 / 615.0, 1.0])  # pixel (400, 210)
    unit = direction / np.linalg.norm(direction)
    centre = unit * 0.9
    pole_up = primitives.rotation_from_z(-unit)
    sphere = primitives.sphere(radius, center=centre, rotation=pole_up)
    result = Renderer([(1, sphere)]).render(CAMERA)
    assert CAMERA.project(centre[None])[0] == pytest.approx((400.0, 210.0))
    assert result.depth[210, 400] == pytest.approx(centre[2] - radius * unit[2], abs=1e-6)


def _busy_scene() -> list[tuple[int, Mesh]]:
    rng = np.random.default_rng(3)
    objects = [wall_at(1.6, object_id=0), (1, primitives.table(center=(0.0, 0.25, 1.0)))]
    for k in range(6):
        centre = (rng.uniform(-0.25, 0.25), rng.uniform(-0.15, 0.1), rng.uniform(0.45, 0.9))
        objects.append((10 + k, primitives.random_box(rng, max_size=0.12, center=centre)))
    finger = Mesh.concatenate(
        [
            primitives.capsule_between(
                np.array([0.0, 0.0, 0.5]), np.array([0.03, -0.04, 0.5]), 0.01, part=1
            ),
            primitives.capsule_between(
                np.array([0.03, -0.04, 0.5]), np.array([0.05, -0.07, 0.49]), 0.009, part=2
            ),
        ]
    )
    objects.append((20, finger))
    objects.append((21, primitives.sphere(0.05, center=(-0.15, 0.05, 0.6))))
    return objects


def test_a_crop_at_scale_one_equals_the_same_window_of_the_full_render() -> None:
    renderer = Renderer(_busy_scene())
    full = renderer.render(CAMERA)
    u0, v0 = 250, 180
    matrix = np.array([[1.0, 0.0, u0], [0.0, 1.0, v0]])
    for cull in (True, False):
        crop = renderer.render_window(CAMERA, matrix, (128, 96), cull=cull)
        window = np.s_[v0 : v0 + 96, u0 : u0 + 128]
        np.testing.assert_array_equal(crop.depth, full.depth[window])
        np.testing.assert_array_equal(crop.object_id, full.object_id[window])
        np.testing.assert_array_equal(crop.part, full.part[window])
        np.testing.assert_allclose(crop.normal, full.normal[window], atol=1e-5)


def test_crops_at_other_scales_sample_the_same_image() -> None:
    renderer = Renderer(_busy_scene())
    full = renderer.render(CAMERA)
    # Twice the window: crop pixel (i, j) looks through image pixel (2i + 100, 2j + 60).
    coarse = renderer.render_window(CAMERA, np.array([[2.0, 0, 100], [0, 2.0, 60]]), 128)
    np.testing.assert_array_equal(coarse.depth, full.depth[60:316:2, 100:356:2])
    np.testing.assert_array_equal(coarse.object_id, full.object_id[60:316:2, 100:356:2])
    # Half the window (supersampled): every other crop pixel is an image pixel, and the
    # pixels in between see the same objects as one of their neighbours almost everywhere.
    fine = renderer.render_window(CAMERA, np.array([[0.5, 0, 280], [0, 0.5, 200]]), 128)
    np.testing.assert_array_equal(fine.depth[::2, ::2], full.depth[200:264, 280:344])
    between = fine.object_id[1:-1:2, 1:-1:2]
    neighbours = full.object_id[200:263, 280:343], full.object_id[201:264, 281:344]
    agree = (between == neighbours[0]) | (between == neighbours[1])
    assert agree.mean() > 0.97


def test_object_ids_and_part_labels_come_from_the_hit_triangle() -> None:
    hand_like = Mesh.concatenate(
        [
            primitives.box((0.1, 0.1, 0.02), part=4, center=(-0.1, 0.0, 0.6)),
            primitives.sphere(0.04, part=9, center=(0.1, 0.0, 0.6)),
        ]
    )
    result = Renderer([(7, hand_like), wall_at(1.0, object_id=2, part=1)]).render(CAMERA)
    left = CAMERA.project(np.array([[-0.1, 0.0, 0.59]]))[0].round().astype(int)
    right = CAMERA.project(np.array([[0.1, 0.0, 0.56]]))[0].round().astype(int)
    assert (result.object_id[left[1], left[0]], result.part[left[1], left[0]]) == (7, 4)
    assert (result.object_id[right[1], right[0]], result.part[right[1], right[0]]) == (7, 9)
    assert (result.object_id[5, 5], result.part[5, 5]) == (2, 1)
    # Nothing behind the camera's view: -1 and NaN.
    empty = Renderer([(1, primitives.sphere(0.05, center=(0.0, 0.0, 0.5)))]).render(SMALL)
    assert empty.object_id[0, 0] == NO_OBJECT
    assert np.isnan(empty.depth[0, 0])
    assert empty.triangle[0, 0] == -1
    assert np.isfinite(empty.depth[60, 80])


def test_normals_are_unit_and_face_the_camera() -> None:
    objects = [*_busy_scene(), (30, primitives.quad(0.2, 0.2, center=(0.2, -0.2, 0.7)))]
    for smooth in (True, False):
        result = Renderer(objects, smooth_normals=smooth).render(CAMERA)
        hit = result.hit
        normals = result.normal[hit]
        np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
        assert (np.einsum("ij,ij->i", normals, result.rays[hit]) < 0).all()
        assert np.isnan(result.normal[~hit]).all()


def test_a_tilted_plane_gets_its_normal_and_smooth_spheres_point_away_from_the_centre() -> None:
    tilt = primitives.rotation_from_z((0.0, np.sin(0.5), -np.cos(0.5)))
    plane = primitives.quad(3.0, 3.0, center=(0.0, 0.0, 1.5), rotation=tilt)
    result = Renderer([(0, plane)]).render(SMALL)
    expected = tilt @ np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(
        result.normal[result.hit], np.tile(expected, (result.hit.sum(), 1)), atol=1e-6
    )
    centre = np.array([0.0, 0.0, 0.5])
    result = Renderer([(0, primitives.sphere(0.1, center=centre))]).render(SMALL)
    radial = result.points[result.hit] - centre
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    # Interpolated vertex normals are within a facet's angle (18 degrees) of the sphere's.
    assert (np.einsum("ij,ij->i", result.normal[result.hit], radial) > np.cos(0.16)).all()


def test_point_visibility_by_ray_test() -> None:
    renderer = Renderer(
        [
            wall_at(1.0, object_id=4, part=2),
            (6, primitives.sphere(0.05, part=3, center=(0.2, 0.0, 0.6))),
        ]
    )
    points = np.array(
        [
            [0.0, 0.1, 1.5],  # behind the wall
            [0.05, -0.1, 1.0],  # on the wall
            [0.2, 0.0, 0.55],  # the sphere's front pole (a vertex)
            [0.2, 0.0, 0.6],  # the sphere's centre: inside it
            [np.nan, 0.0, 1.0],
        ]
    )
    visibility = renderer.cast_points_visibility(points)
    visible = visibility.visible(tolerance_m=0.002)
    assert visible.tolist() == [False, True, True, False, False]
    assert visibility.object_id.tolist() == [4, 4, 6, 6, NO_OBJECT]
    assert visibility.part.tolist() == [2, 2, 3, 3, 0]
    assert visibility.hit_distance_m[1] == pytest.approx(np.linalg.norm(points[1]), abs=1e-5)
    assert visibility.hit_distance_m[2] == pytest.approx(np.linalg.norm(points[2]), abs=1e-5)
    assert visibility.hit_distance_m[0] == pytest.approx(np.linalg.norm(points[0]) / 1.5, abs=1e-5)


def test_stereo_occlusion_shadow_lies_left_of_a_near_object() -> None:
    # A box 0.5 m away in front of a wall at 1.5 m; the right imager 65 mm to the right.
    box = primitives.box((0.1, 0.1, 0.05), center=(0.0, 0.0, 0.5))
    renderer = Renderer([wall_at(1.5, object_id=0), (1, box)])
    result = renderer.render(CAMERA)
    exact = renderer.occluded_from(result, (0.065, 0.0, 0.0))
    fast = renderer.occluded_from(result, (0.065, 0.0, 0.0), CAMERA)
    np.testing.assert_array_equal(exact, fast)
    row = exact[240]
    # The box spans u = 320 +- 615 * 0.05 / 0.475; its shadow on the wall is the stretch
    # the right imager cannot see: f B (1/0.475 - 1/1.5) = 57 px wide, to the box's left.
    left_edge = 320.0 - 615.0 * 0.05 / 0.475
    width = 615.0 * 0.065 * (1 / 0.475 - 1 / 1.5)
    shadow = np.flatnonzero(row)
    assert shadow.min() == pytest.approx(left_edge - width, abs=2)
    assert shadow.max() == pytest.approx(left_edge, abs=2)
    assert not exact[result.object_id == 1].any()


def test_a_crop_gets_the_stereo_shadow_of_an_object_outside_it() -> None:
    # The box sits right of the window; its shadow on the wall falls into the window.
    box = primitives.box((0.1, 0.1, 0.05), center=(0.1, 0.0, 0.5))
    objects = [wall_at(1.5), (1, box)]
    left_of_box = CAMERA.project(np.array([[0.0, 0.0, 1.5]]))[0]
    matrix = crop_to_image_matrix(left_of_box, 60.0, 64)
    culled = Renderer(objects)
    crop = culled.render_window(CAMERA, matrix, 64)
    assert not (crop.object_id == 1).any()
    shadow = culled.occluded_from(crop, STEREO_VIEWPOINT_M, CAMERA)
    assert shadow.any()
    # The same as with the whole scene.
    whole = Renderer(objects)
    plain = whole.render_window(CAMERA, matrix, 64, shadow_viewpoint=None)
    np.testing.assert_array_equal(shadow, whole.occluded_from(plain, STEREO_VIEWPOINT_M))


def test_the_image_stereo_shadow_matches_the_ray_test_when_the_occluder_is_in_view() -> None:
    # A box in front of a wall, both inside the window: the shadow read off the depth
    # image is the ray-tested one up to a pixel at the silhouettes.
    box = primitives.box((0.06, 0.06, 0.05), center=(0.0, 0.0, 0.45))
    renderer = Renderer([wall_at(0.6), (1, box)])
    matrix = crop_to_image_matrix(np.array([320.0, 240.0]), 300.0, 128)
    crop = renderer.render_window(CAMERA, matrix, 128)
    exact = renderer.occluded_from(crop, STEREO_VIEWPOINT_M, CAMERA)
    image = render.image_stereo_shadow(crop.depth, crop.crop_to_image, STEREO_VIEWPOINT_M, CAMERA)
    assert image is not None and exact.sum() > 100
    overlap = (image & exact).sum() / (image | exact).sum()
    assert overlap > 0.9
    # Nothing on the box itself, and the band lies left of the box (right imager at +x).
    assert not image[crop.object_id == 1].any()
    box_columns = np.flatnonzero((crop.object_id == 1).any(axis=0))
    assert np.flatnonzero(image.any(axis=0)).max() < box_columns.min()
    # A rotated window cannot be read row by row: None, and the caller casts rays.
    rotated = crop_to_image_matrix(np.array([320.0, 240.0]), 300.0, 128, 0.3)
    turned = renderer.render_window(CAMERA, rotated, 128)
    assert render.image_stereo_shadow(turned.depth, rotated, STEREO_VIEWPOINT_M, CAMERA) is None


def test_windows_culled_by_depth_render_the_same_up_to_that_depth() -> None:
    # A box at 0.5 m before walls at 0.9 m: leaving out what lies beyond 0.7 m turns the
    # wall into misses and changes nothing else.
    box = primitives.box((0.06, 0.06, 0.05), center=(0.0, 0.0, 0.5))
    objects = [wall_at(0.9), (1, box)]
    matrix = crop_to_image_matrix(np.array([320.0, 240.0]), 200.0, 64)
    full = Renderer(objects).render_window(CAMERA, matrix, 64, shadow_viewpoint=None)
    near = Renderer(objects).render_windows(
        CAMERA, [(matrix, 64)], shadow_viewpoint=None, max_depth_m=0.7
    )[0]
    on_box = full.object_id == 1
    assert on_box.any() and (~on_box).any()
    np.testing.assert_array_equal(near.depth[on_box], full.depth[on_box])
    np.testing.assert_array_equal(near.object_id[on_box], full.object_id[on_box])
    assert np.isnan(near.depth[~on_box]).all()
    assert (near.object_id[~on_box] == NO_OBJECT).all()


def test_shadows_beyond_a_depth_culled_window_scene_use_the_whole_scene() -> None:
    # The window scene keeps what lies before 0.8 m (a small box at 0.6 m, just beside the
    # window towards the viewpoint); a render of the same window with everything (a box at
    # 1.0 m shadowing the wall at 1.5 m) must not be shadow-tested in it: its occluders
    # beyond 0.8 m were culled.
    near = primitives.box((0.02, 0.02, 0.02), center=(0.12, 0.0, 0.6))
    far = primitives.box((0.06, 0.06, 0.05), center=(0.03, 0.0, 1.0))
    objects = [wall_at(1.5), (1, near), (2, far)]
    matrix = crop_to_image_matrix(np.array([320.0, 240.0]), 200.0, 64)
    renderer = Renderer(objects)
    renderer.render_windows(CAMERA, [(matrix, 64)], shadow_viewpoint=STEREO_VIEWPOINT_M,
                            max_depth_m=0.8)  # fmt: skip
    plain = renderer.render_window(CAMERA, matrix, 64, cull=False)
    assert (plain.object_id == 2).any()
    shadow = renderer.occluded_from(plain, STEREO_VIEWPOINT_M, CAMERA)
    whole = Renderer(objects)
    expected = whole.occluded_from(whole.render_window(CAMERA, matrix, 64, cull=False),
                                   STEREO_VIEWPOINT_M)  # fmt: skip
    assert expected[plain.object_id == 0].any()  # the far box shadows the wall
    np.testing.assert_array_equal(shadow, expected)


def test_keypoint_visibility_in_the_window_scene_equals_the_full_scene() -> None:
    # Points behind the box, beside it, and one outside the window (full-scene fallback).
    box = primitives.box((0.06, 0.06, 0.05), center=(0.0, 0.0, 0.5))
    objects = [wall_at(0.9), (1, box)]
    points = np.array([[0.0, 0.0, 0.6], [0.05, 0.0, 0.6], [0.0, 0.01, 0.52], [0.5, 0.0, 0.6]])
    whole = Renderer(objects).cast_points_visibility(points)
    windowed = Renderer(objects)
    matrix = crop_to_image_matrix(np.array([320.0, 240.0]), 200.0, 64)
    windowed.render_windows(CAMERA, [(matrix, 64)], shadow_viewpoint=None, max_depth_m=0.8)
    seen = windowed.cast_points_visibility(points)
    np.testing.assert_array_equal(seen.object_id, whole.object_id)
    np.testing.assert_allclose(seen.hit_distance_m, whole.hit_distance_m, rtol=1e-6)
    assert list(seen.object_id[:3]) == [1, 0, 1]


def test_the_stereo_prefilter_keeps_shadows_of_occluders_beyond_the_image_edge() -> None:
    # A box just beyond the right edge of the image, 0.25-0.35 m away, hides a stretch of
    # the wall from the right imager; a box far beyond the left edge, nearer still, hides
    # nothing (occluders lie towards the viewpoint). The pre-filter bounds how near an
    # occluder outside the image can be by clipping the scene to where it could hide a
    # pixel, so the near left box does not widen the band of pixels it ray tests.
    right = primitives.box((0.1, 0.3, 0.1), center=(0.24, 0.0, 0.3))
    left = primitives.box((0.1, 0.1, 0.1), center=(-0.4, 0.0, 0.15))
    renderer = Renderer([wall_at(1.5), (1, right), (2, left)])
    result = renderer.render(CAMERA)
    assert not np.isin(result.object_id, [1, 2]).any()
    exact = renderer.occluded_from(result, STEREO_VIEWPOINT_M)
    fast = renderer.occluded_from(result, STEREO_VIEWPOINT_M, CAMERA)
    np.testing.assert_array_equal(fast, exact)
    # The shadow: columns u with u - f B / 1.5 equal to the box's u - f B / z, z 0.25..0.35.
    columns = np.flatnonzero(exact.any(axis=0))
    assert columns.min() == pytest.approx(567, abs=3)
    assert columns.max() == 639
    viewpoint = np.asarray(STEREO_VIEWPOINT_M)
    assert renderer._nearest_depth() == pytest.approx(0.1)
    assert renderer._outside_occluder_depth(result.rays, viewpoint) == pytest.approx(0.25)


def test_occluded_points_casts_the_shadow_rays_of_occluded_from() -> None:
    box = primitives.box((0.1, 0.1, 0.1), center=(0.0, 0.0, 0.6))
    renderer = Renderer([wall_at(0.9, object_id=1), (0, box)])
    result = renderer.render(SMALL)
    light = np.array([0.5, -0.2, -1.0]) * 50.0
    mask = renderer.occluded_from(result, light, normal_offset_m=0.002)
    hit = result.hit
    points = renderer.occluded_points(
        result.points[hit], light, normals=result.normal[hit], normal_offset_m=0.002
    )
    np.testing.assert_array_equal(points, mask[hit])
    assert 100 < mask.sum() < hit.sum()
    with pytest.raises(render.RenderError):
        renderer.occluded_points(result.points[hit], light, normal_offset_m=0.002)


def test_scratch_arrays_are_reused_per_name_shape_dtype_and_thread() -> None:
    first = scratch("test.a", (4, 5))
    assert first.dtype == np.float32
    assert scratch("test.a", (4, 5)) is first
    assert scratch("test.a", (4, 6)) is not first
    assert scratch("test.b", (4, 5)) is not first
    assert scratch("test.a", (4, 5), np.int32) is not first
    other: list[np.ndarray] = []
    worker = threading.Thread(target=lambda: other.append(scratch("test.a", (4, 5))))
    worker.start()
    worker.join()
    assert other[0] is not first


def test_culling_keeps_results_and_shares_one_scene_between_windows() -> None:
    renderer = Renderer(_busy_scene())
    centre = CAMERA.project(np.array([[0.03, -0.04, 0.5]]))[0]
    depth_window = crop_to_image_matrix(centre, 90.0, 64)
    colour_window = crop_to_image_matrix(centre, 90.0, 112)
    culled = renderer.render_windows(CAMERA, [(depth_window, 64), (colour_window, 112)])
    for (matrix, size), result in zip(
        [(depth_window, 64), (colour_window, 112)], culled, strict=True
    ):
        plain = renderer.render_window(CAMERA, matrix, size, cull=False)
        np.testing.assert_array_equal(result.depth, plain.depth)
        np.testing.assert_array_equal(result.object_id, plain.object_id)
        np.testing.assert_array_equal(result.triangle, plain.triangle)
    assert (culled[0].object_id == 20).any()


def test_a_distorted_camera_renders_through_its_lens() -> None:
    lens = CameraModel.from_intrinsics(
        150.0, 150.0, 79.5, 59.5, 160, 120, "plumb_bob", (0.13, -0.27, 0.0005, -0.0003, 0.11)
    )
    result = Renderer([wall_at(0.9)]).render(lens)
    np.testing.assert_allclose(result.depth, 0.9, rtol=2e-7)
    # Each hit point projects (with distortion) back onto its own pixel.
    u, v = np.meshgrid(np.arange(160.0), np.arange(120.0))
    uv = lens.project(result.points.reshape(-1, 3).astype(np.float64))
    np.testing.assert_allclose(uv, np.stack([u.ravel(), v.ravel()], axis=1), atol=1e-3)


def test_camera_rays_have_unit_z() -> None:
    rays = camera_rays(SMALL)
    assert rays.shape == (120, 160, 3)
    assert (rays[..., 2] == 1).all()
    assert rays[0, 0, 0] == pytest.approx(-79.5 / 150.0)


# ----------------------------------------------------------------------------- sensor


def _flat_render(z: float, camera: CameraModel = CAMERA):
    return Renderer([wall_at(z)]).render(camera)


def test_sensor_noise_grows_with_depth_squared() -> None:
    config = SensorConfig(edge_band_px=(0.0, 0.0), hole_rate=0.0)
    errors = {}
    for z in (0.5, 1.5):
        result = _flat_render(z)
        measured = apply_depth_sensor(
            result.depth, result.normal, np.random.default_rng(1), config, CAMERA
        )
        error = measured[np.isfinite(measured)] - z
        errors[z] = float(error.std())
        # Quantisation (1 mm) adds 1/12 mm^2 of variance; disparity steps a little more.
        sigma = float(config.noise_sigma_m(z))
        assert errors[z] == pytest.approx(np.hypot(sigma, 0.001 / np.sqrt(12)), rel=0.15)
        assert abs(float(error.mean())) < 0.2 * sigma + 0.0005
    assert errors[1.5] / errors[0.5] == pytest.approx(5.35 / 0.95, rel=0.2)


def test_sensor_output_is_quantised_ranged_and_deterministic() -> None:
    result = Renderer(_busy_scene()).render(CAMERA)
    config = SensorConfig()
    one = apply_depth_sensor(result.depth, result.normal, np.random.default_rng(5), config, CAMERA)
    two = apply_depth_sensor(result.depth, result.normal, np.random.default_rng(5), config, CAMERA)
    other = apply_depth_sensor(
        result.depth, result.normal, np.random.default_rng(6), config, CAMERA
    )
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, other, equal_nan=True)
    valid = np.isfinite(one)
    millimetres = one[valid].astype(np.float64) * 1000.0
    np.testing.assert_allclose(millimetres, np.round(millimetres), atol=1e-3)
    assert 0.5 < valid.mean() < 1.0
    encoded = to_16uc1(one)
    assert encoded.dtype == np.uint16
    assert ((encoded == 0) == ~valid).all()
    # Range: a wall beyond max range vanishes, one inside stays.
    far = _flat_render(5.0, SMALL)
    assert np.isnan(
        apply_depth_sensor(far.depth, far.normal, np.random.default_rng(0), config, SMALL)
    ).all()
    near = _flat_render(0.12, SMALL)
    assert np.isnan(
        apply_depth_sensor(near.depth, near.normal, np.random.default_rng(0), config, SMALL)
    ).all()
    mid = _flat_render(3.5, SMALL)
    assert np.isfinite(
        apply_depth_sensor(mid.depth, mid.normal, np.random.default_rng(0), NO_FLAWS, SMALL)
    ).all()


def test_sensor_loses_the_pixels_around_a_depth_step() -> None:
    box = primitives.box((0.2, 0.2, 0.1), center=(0.0, 0.0, 0.55))
    result = Renderer([wall_at(1.0), (1, box)]).render(CAMERA)
    config = SensorConfig(
        noise_floor_m=0.0,
        noise_quadratic_per_m=0.0,
        hole_rate=0.0,
        grazing_angle_deg=90.0,
        edge_band_px=(1.6, 1.6),
    )
    measured = apply_depth_sensor(
        result.depth, result.normal, np.random.default_rng(0), config, CAMERA
    )
    row = measured[240]
    box_columns = np.flatnonzero(result.object_id[240] == 1)
    first, last = box_columns.min(), box_columns.max()
    # A band of width 1.6 px: the jump pixels and one more on each side go.
    for column in (first - 2, first - 1, first, first + 1, last - 1, last, last + 1, last + 2):
        assert np.isnan(row[column]), column
    for column in (first - 3, first + 2, last - 2, last + 3):
        assert np.isfinite(row[column]), column
    # Without the flaw nothing is lost.
    clean = apply_depth_sensor(
        result.depth, result.normal, np.random.default_rng(0), NO_FLAWS, CAMERA
    )
    assert np.isfinite(clean).all()
    # The default band wanders between 0 and 2 pixels per side along the edge.
    default = apply_depth_sensor(
        result.depth, result.normal, np.random.default_rng(0), SensorConfig(hole_rate=0.0), CAMERA
    )
    lost = np.isnan(default[:, first - 3 : first + 3]).sum(axis=1)[200:280]
    assert lost.min() < lost.max() <= 4


@pytest.mark.parametrize(("tilt_deg", "lost"), [(30.0, False), (70.0, False), (86.0, True)])
def test_sensor_loses_grazing_surfaces(tilt_deg: float, lost: bool) -> None:
    angle = np.radians(tilt_deg)
    # Tilted about the x axis, centred on the optical axis: the angle between the normal
    # and the central ray is the tilt.
    rotation = primitives.rotation_from_z((0.0, np.sin(angle), -np.cos(angle)))
    plane = primitives.quad(6.0, 6.0, center=(0.0, 0.0, 1.0), rotation=rotation)
    result = Renderer([(0, plane)]).render(SMALL)
    config = SensorConfig(hole_rate=0.0, grazing_jitter_deg=0.0, edge_band_px=(0.0, 0.0))
    measured = apply_depth_sensor(
        result.depth, result.normal, np.random.default_rng(0), config, SMALL
    )
    centre = measured[50:70, 70:90]
    assert np.isnan(centre).all() == lost
    if not lost:
        assert np.isfinite(centre).all()


def test_sensor_drops_stereo_shadow_and_scales_to_crops() -> None:
    box = primitives.box((0.1, 0.1, 0.05), center=(0.0, 0.0, 0.5))
    renderer = Renderer([wall_at(1.5), (1, box)])
    matrix = crop_to_image_matrix(np.array([300.0, 240.0]), 256.0, 128)
    crop = renderer.render_window(CAMERA, matrix, 128)
    occluded = renderer.occluded_from(crop, SensorConfig().stereo_viewpoint_m, CAMERA)
    assert occluded.any()
    measured = apply_depth_sensor(
        crop.depth,
        crop.normal,
        np.random.default_rng(2),
        NO_FLAWS,
        CAMERA,
        crop_to_image=matrix,
        occluded=occluded,
    )
    assert np.isnan(measured[occluded]).all()
    assert np.isfinite(measured[~occluded]).all()


@pytest.mark.parametrize("widest", [0.4, 1.6, 2.5, 5.3, 9.0])
def test_edge_bands_are_the_pixels_within_their_euclidean_distance(widest: float) -> None:
    # The sensor finds the band by dilations (narrow bands) or a distance transform (wide
    # ones): both must give exactly the pixels with distance + 0.5 < band.
    rng = np.random.default_rng(int(widest * 10))
    edges = np.zeros((90, 120), dtype=bool)
    edges[rng.integers(0, 90, 40), rng.integers(0, 120, 40)] = True
    edges[40, 10:100] = True
    band = rng.uniform(0.0, widest, edges.shape).astype(np.float32)
    distance = cv2.distanceTransform((~edges).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    expected = distance + np.float32(0.5) < band
    np.testing.assert_array_equal(sensor._within_band(edges, band), expected)


# ----------------------------------------------------------------------------- appearance

NEUTRAL = appearance.Lighting(
    lights=(appearance.Light((1.0, 1.0, 1.0), 1.0, direction=(0.0, -0.3, -1.0)),),
    ambient=(0.3, 0.3, 0.3),
)
CLEAN_CAMERA = appearance.AppearanceConfig(
    exposure_jitter=0.0,
    white_balance_jitter=0.0,
    vignetting=(0.0, 0.0),
    defocus_probability=0.0,
    motion_blur_probability=0.0,
    noise_codes=(0.0, 0.0),
    jpeg_probability=0.0,
)


def _scene_with_hand():
    hand = Mesh.concatenate(
        [
            primitives.rounded_box((0.08, 0.09, 0.025), 0.01, part=0, center=(0.0, 0.0, 0.5)),
            primitives.capsule_between(
                np.array([0.0, -0.045, 0.5]), np.array([0.0, -0.09, 0.5]), 0.009, part=1
            ),
        ]
    )
    objects = [
        (0, hand),
        wall_at(1.2, object_id=1),
        (2, primitives.box((0.1, 0.1, 0.1), center=(0.2, 0.1, 0.8))),
    ]
    return Renderer(objects).render(SMALL)


def test_shade_is_uint8_rgb_and_deterministic_per_seed() -> None:
    result = _scene_with_hand()
    rng = np.random.default_rng(0)
    materials = {
        0: appearance.skin_material(rng),
        1: appearance.random_material(rng),
        2: appearance.random_material(rng, kinds=("checker",)),
    }
    one = appearance.shade(result, materials, np.random.default_rng(11))
    two = appearance.shade(result, materials, np.random.default_rng(11))
    other = appearance.shade(result, materials, np.random.default_rng(12))
    assert one.shape == (120, 160, 3)
    assert one.dtype == np.uint8
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, other)
    # A crop with the backdrop (nothing hit) in view shades too.
    sky = Renderer([(0, primitives.sphere(0.05, center=(0.0, 0.0, 0.5)))]).render(SMALL)
    image = appearance.shade(sky, {0: materials[0]}, np.random.default_rng(3))
    assert image.shape == (120, 160, 3)
    assert image[~sky.hit].std() > 0


@pytest.mark.parametrize("tone", [0.0, 0.3, 0.6, 1.0])
def test_skin_looks_like_skin_under_neutral_light(tone: float) -> None:
    result = _scene_with_hand()
    materials = {
        0: appearance.skin_material(np.random.default_rng(4), tone=tone),
        1: appearance.Material(color=(0.5, 0.5, 0.5)),
    }
    image = appearance.shade(
        result, materials, np.random.default_rng(0), CLEAN_CAMERA, lighting=NEUTRAL
    ).astype(np.int32)
    skin = image[result.object_id == 0]
    red, green, blue = np.median(skin, axis=0)
    assert red > green > blue
    # Lighter tones are lighter; the hand is not one flat colour.
    assert skin.std(axis=0).max() > 1.0
    assert np.median(image[result.object_id == 1], axis=0).std() < 3.0  # neutral grey wall


def test_skin_tones_span_light_to_dark() -> None:
    light = appearance.skin_color(0.0)
    dark = appearance.skin_color(1.0)
    assert light.sum() > 6 * dark.sum()
    for tone in np.linspace(0.0, 1.0, 9):
        r, g, b = appearance.skin_color(tone)
        assert r > g > b


def test_shadows_darken_what_a_light_cannot_reach() -> None:
    # A light straight from the camera's side: the box's shadow falls on the wall behind it.
    box = primitives.box((0.1, 0.1, 0.1), center=(0.0, 0.0, 0.6))
    renderer = Renderer([wall_at(0.9, object_id=1), (0, box)])
    result = renderer.render(SMALL)
    lighting = appearance.Lighting(
        lights=(appearance.Light((1.0, 1.0, 1.0), 1.0, direction=(0.5, 0.0, -1.0)),),
        ambient=(0.1, 0.1, 0.1),
    )
    shadows = appearance.light_shadows(renderer, result, lighting)
    materials = {1: appearance.Material(color=(0.6, 0.6, 0.6))}
    image = appearance.shade(
        result,
        materials,
        np.random.default_rng(0),
        CLEAN_CAMERA,
        lighting=lighting,
        shadows=shadows,
    )
    lit = appearance.shade(
        result, materials, np.random.default_rng(0), CLEAN_CAMERA, lighting=lighting
    )
    in_shadow = (shadows[0] > 0.99) & (result.object_id == 1)
    assert in_shadow.sum() > 100
    assert image[in_shadow].mean() < 0.7 * lit[in_shadow].mean()


def test_light_shadows_equal_casting_every_sample() -> None:
    # Coarse-to-fine casting guesses a sample only where its coarser neighbours agree and
    # see its object; on shadows wider than the coarse grid that is every sample's ray.
    renderer = Renderer(_busy_scene())
    result = renderer.render(CAMERA)
    lighting = appearance.Lighting(
        lights=(
            appearance.Light((1.0, 1.0, 1.0), 1.0, direction=(0.3, -0.6, -0.75)),
            appearance.Light((1.0, 1.0, 1.0), 1.0, position=(0.4, -0.8, 0.2)),
        ),
        ambient=(0.2, 0.2, 0.2),
    )
    masks = appearance.light_shadows(renderer, result, lighting)
    depth = result.depth[::2, ::2]
    hit = np.isfinite(depth)
    points = (result.rays[::2, ::2] * depth[..., None])[hit]
    normals = result.normal[::2, ::2][hit]
    upsample = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    for light, mask in zip(lighting.lights, masks, strict=True):
        target = np.asarray(light.position if light.position is not None else light.direction)
        if light.position is None:
            target = 50.0 * target
        every = np.zeros(depth.shape, dtype=np.float32)
        every[hit] = renderer.occluded_points(
            points, target, normals=normals, normal_offset_m=0.002
        )
        expected = cv2.warpAffine(
            every, upsample, (640, 480), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        np.testing.assert_array_equal(mask, expected)
        assert (mask > 0.5).sum() > 5000


def test_shading_does_not_depend_on_the_block_size_or_other_images(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pixels are shaded in blocks of one object's pixels, with reused scratch arrays: the
    # image must not depend on either.
    result = _scene_with_hand()
    rng = np.random.default_rng(0)
    materials = {
        0: appearance.skin_material(rng),
        1: appearance.random_material(rng, kinds=("wood",)),
        2: appearance.random_material(rng, kinds=("checker",)),
    }
    lighting = appearance.random_lighting(np.random.default_rng(1))
    reference = appearance.shade(result, materials, np.random.default_rng(5), lighting=lighting)
    other = Renderer([wall_at(1.0, object_id=1)]).render(CAMERA)
    appearance.shade(other, materials, np.random.default_rng(6), lighting=lighting)
    again = appearance.shade(result, materials, np.random.default_rng(5), lighting=lighting)
    np.testing.assert_array_equal(again, reference)
    monkeypatch.setattr(appearance, "_SHADE_BLOCK", 257)
    small_blocks = appearance.shade(result, materials, np.random.default_rng(5), lighting=lighting)
    np.testing.assert_array_equal(small_blocks, reference)


def test_srgb_encoding_is_the_lookup_of_the_truncated_value() -> None:
    rng = np.random.default_rng(3)
    image = rng.uniform(-0.2, 1.2, (40, 50, 3)).astype(np.float32)
    image[0, :4] = [[0.0, 1.0, 0.5], [1e-4, 0.02, 0.9], [2.0, -1.0, 0.3], [0.0031, 0.04, 0.7]]
    gain = np.array([1.0, 0.8, 1.2], dtype=np.float32)
    table = appearance._srgb_lut()
    index = np.clip(image * (gain * np.float32(4095)), 0, 4095).astype(np.uint16)
    expected = table[index].astype(np.float32)
    codes = appearance._encode_srgb(image.copy(), gain)
    # Rounding of value * gain * 4095 may land a value a hair either side of an entry.
    assert np.abs(codes - expected).max() <= 1.0
    assert (codes == expected).mean() > 0.999
    exact = np.clip(image * gain, 0, 1)
    reference = np.rint(appearance.linear_to_srgb(exact) * 255.0)
    assert np.abs(codes - reference).max() <= 1.0


@pytest.mark.parametrize("size", [(1, 1), (17, 1), (1, 9), (6, 5)])
def test_tiny_images_render_shade_and_measure(size: tuple[int, int]) -> None:
    width, height = size
    camera = CameraModel.from_intrinsics(20.0, 20.0, (width - 1) / 2, (height - 1) / 2, *size)
    sphere = primitives.sphere(0.05, center=(0.0, 0.0, 0.5))
    renderer = Renderer([wall_at(1.0), (1, sphere)])
    result = renderer.render(camera)
    shadows = appearance.light_shadows(renderer, result, NEUTRAL)
    image = appearance.shade(
        result, {}, np.random.default_rng(0), lighting=NEUTRAL, shadows=shadows
    )
    occluded = renderer.occluded_from(result, STEREO_VIEWPOINT_M, camera)
    depth = apply_depth_sensor(
        result.depth, result.normal, np.random.default_rng(1), NO_FLAWS, camera, occluded=occluded
    )
    assert image.shape == (height, width, 3)
    assert shadows[0].shape == (height, width)
    np.testing.assert_allclose(depth[~occluded], np.round(result.depth[~occluded], 3))
