"""Vanishing points from a real Blender camera match the meeting point of projected 3D parallel lines.

The projection is Blender's own (``bpy_extras.object_utils.world_to_camera_view``), so lens shift, sensor fit,
resolution percentage and pixel aspect are all checked against Blender rather than against our formulas.
"""

from __future__ import annotations

import importlib
import json
import math

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
from bpy_extras.object_utils import world_to_camera_view  # noqa: E402
from mathutils import Euler, Vector  # noqa: E402


@pytest.fixture(scope="module")
def vp_module(addon):
    return importlib.import_module(f"{addon.__name__}.perspective.vanishing_points")


DEFAULT_ROTATION = (math.radians(75), math.radians(3), math.radians(35))


def make_camera(scene, fit="AUTO", shift=(0.0, 0.0), size=(640, 360), aspect=(1.0, 1.0), percent=100,
                rotation=DEFAULT_ROTATION, ortho=False):
    data = bpy.data.cameras.new("cam")
    data.lens, data.sensor_width, data.sensor_height, data.sensor_fit = 32.0, 36.0, 20.0, fit
    data.shift_x, data.shift_y = shift
    if ortho:
        data.type, data.ortho_scale = "ORTHO", 9.0
    camera = bpy.data.objects.new("cam", data)
    scene.collection.objects.link(camera)
    camera.location = (6.0, -7.0, 3.0)
    camera.rotation_euler = Euler(rotation, "XYZ")
    scene.camera = camera
    render = scene.render
    render.resolution_x, render.resolution_y = size
    render.resolution_percentage = percent
    render.pixel_aspect_x, render.pixel_aspect_y = aspect
    bpy.context.view_layer.update()
    return camera


def to_pixels(scene, camera, point, width, height):
    ndc = world_to_camera_view(scene, camera, Vector(point))
    return np.array([ndc.x * width - 0.5, (1.0 - ndc.y) * height - 0.5])  # engine pixels: centres on integers


def meeting_point(lines):
    rows = [np.cross([*a, 1.0], [*b, 1.0]) for a, b in lines]
    rows = np.array([r / np.linalg.norm(r[:2]) for r in rows])
    point = np.linalg.svd(rows)[2][-1]
    return point


def assert_vps_match_projection(scene, camera, payload):
    width, height = payload["camera"]["width"], payload["camera"]["height"]
    rng = np.random.default_rng(0)
    forward = np.array(camera.matrix_world.to_3x3() @ Vector((0, 0, -1)))
    for direction, vp in zip(payload["directions"], payload["vps"], strict=True):
        direction = np.asarray(direction)
        lines = []
        for _ in range(5):
            start = np.array(camera.location) + forward * rng.uniform(4, 9) + rng.uniform(-2, 2, 3)
            lines.append([to_pixels(scene, camera, p, width, height) for p in (start, start + 1.5 * direction)])
        met = meeting_point(lines)
        vp = np.asarray(vp)
        if vp[2] == 0:  # at infinity: the projected lines are parallel to the VP's direction
            for a, b in lines:
                assert abs(abs(np.dot((b - a) / np.linalg.norm(b - a), vp[:2])) - 1.0) < 1e-6
            continue
        met = met[:2] / met[2]
        assert np.allclose(met, vp[:2], atol=1e-4 * max(1.0, np.linalg.norm(vp[:2] - [width / 2, height / 2]))), \
            (met, vp)


@pytest.fixture
def scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


@pytest.mark.parametrize("fit", ["AUTO", "HORIZONTAL", "VERTICAL"])
@pytest.mark.parametrize("size,aspect,percent", [((640, 360), (1.0, 1.0), 100), ((300, 500), (1.0, 1.0), 50),
                                                  ((640, 360), (1.0, 1.6), 100), ((400, 400), (2.0, 1.0), 75)])
def test_world_axis_vps_match_blenders_projection(vp_module, scene, fit, size, aspect, percent):
    camera = make_camera(scene, fit=fit, shift=(0.15, -0.2), size=size, aspect=aspect, percent=percent)
    payload = vp_module.camera_vanishing_points(scene, camera)
    assert (payload["camera"]["width"], payload["camera"]["height"]) == (size[0] * percent // 100,
                                                                          size[1] * percent // 100)
    assert_vps_match_projection(scene, camera, payload)


def test_object_and_ground_plane_axes(vp_module, scene):
    camera = make_camera(scene, shift=(-0.1, 0.05))
    mesh = bpy.data.meshes.new("plane")
    plane = bpy.data.objects.new("plane", mesh)
    scene.collection.objects.link(plane)
    plane.rotation_euler = (math.radians(10), math.radians(-5), math.radians(30))
    plane.scale = (2.0, 0.5, 1.0)
    bpy.context.view_layer.update()
    payload = vp_module.camera_vanishing_points(scene, camera, "OBJECT", plane)
    assert len(payload["vps"]) == 3
    assert_vps_match_projection(scene, camera, payload)
    ground = vp_module.camera_vanishing_points(scene, camera, "GROUND", plane)
    assert len(ground["vps"]) == 2
    assert_vps_match_projection(scene, camera, ground)
    for vp in ground["vps"]:  # the plane's horizon passes through its VPs
        assert abs(np.dot(ground["horizon"], vp)) < 1e-6 * max(1.0, np.linalg.norm(vp[:2]))
    floor = vp_module.camera_vanishing_points(scene, camera, "GROUND")
    assert np.allclose(floor["vps"], vp_module.camera_vanishing_points(scene, camera)["vps"][:2])


def test_level_camera_has_vertical_vp_at_infinity_and_ortho_all_at_infinity(vp_module, scene):
    camera = make_camera(scene, rotation=(math.radians(90), 0.0, math.radians(20)), shift=(0.2, 0.3))
    payload = vp_module.camera_vanishing_points(scene, camera)
    assert payload["vps"][2][2] == 0.0
    assert_vps_match_projection(scene, camera, payload)
    ortho = make_camera(scene, ortho=True, size=(500, 300), aspect=(1.0, 1.3))
    payload = vp_module.camera_vanishing_points(scene, ortho)
    assert all(vp[2] == 0.0 for vp in payload["vps"])
    assert_vps_match_projection(scene, ortho, payload)


def test_operators_and_panel_register_and_refuse_without_object(vp_module, scene):
    make_camera(scene)
    assert bpy.ops.dhandles.show_vanishing_points(source="WORLD") == {"FINISHED"}
    assert hasattr(bpy.types, "DHANDLES_PT_perspective") and hasattr(bpy.types, "DHANDLES_OT_make_perspective_dataset")
    with pytest.raises(vp_module.VanishingPointError):
        vp_module.camera_vanishing_points(scene, scene.camera, "OBJECT", None)
    with pytest.raises(vp_module.VanishingPointError):
        vp_module.camera_intrinsics(scene, None)


def test_scaled_to_another_resolution(vp_module, scene):
    camera = make_camera(scene, shift=(0.1, 0.1), size=(640, 360))
    payload = vp_module.camera_vanishing_points(scene, camera)
    scene.render.resolution_percentage = 50
    half = vp_module.camera_vanishing_points(scene, camera)
    assert np.allclose(vp_module.scaled_to(payload, 320, 180), half["vps"], rtol=1e-9, atol=1e-9)


def test_edit_job_params_from_a_photo_view(vp_module, scene):
    """The VPs sent with an edit: the photo's intrinsics and the camera pose, as the scene camera would give them."""
    camera = make_camera(scene, shift=(0.05, -0.1), size=(640, 360))
    payload = vp_module.camera_vanishing_points(scene, camera)
    settings = scene.dhandles_perspective
    settings.enabled, settings.source, settings.guidance_weight = True, "WORLD", 0.0
    params = vp_module.perspective_job_params(settings, payload["camera"], camera.matrix_world)
    assert np.allclose(params["vps"], payload["vps"], rtol=1e-6)  # float32 matrices: two ways to the rotation
    assert (params["width"], params["height"]) == (640, 360) and "guidance" not in params
    settings.guidance_weight, settings.guidance_every = 50.0, 2
    params = vp_module.perspective_job_params(settings, payload["camera"], camera.matrix_world)
    assert params["guidance"] == {"weight": 50.0, "mode": "no_reference", "every": 2, "t_range": [0, 1000]}
    from engine.perspective.edit_job import check_params

    check_params(json.loads(json.dumps(params)))  # plain JSON the engine accepts
    settings.enabled = False
    assert vp_module.perspective_job_params(settings, payload["camera"], camera.matrix_world) is None


def test_rig_pose_stored_flat_gives_the_same_vps(vp_module, scene):
    camera = make_camera(scene, shift=(0.05, -0.1), size=(640, 360))
    payload = vp_module.camera_vanishing_points(scene, camera)
    flat = [camera.matrix_world[r][c] for r in range(4) for c in range(4)]
    assert np.allclose(vp_module.view_vanishing_points(payload["camera"], flat, np.eye(3)),
                       vp_module.view_vanishing_points(payload["camera"], camera.matrix_world, np.eye(3)))


def test_params_for_an_imported_photo_use_the_camera_pose_at_import(vp_module, scene):
    camera = make_camera(scene, size=(640, 360))
    payload = vp_module.camera_vanishing_points(scene, camera)
    collection = bpy.data.collections.new("photo")
    rig = collection.dhandles
    rig.is_rig, rig.camera, rig.width, rig.height = True, camera, 640, 360
    intrinsics = payload["camera"]
    rig.intrinsics = (intrinsics["fx"], intrinsics["fy"], intrinsics["cx"], intrinsics["cy"])
    rig.store_import_poses(camera.matrix_world, camera.matrix_world)
    camera.rotation_euler.z += 0.4  # the user turns the camera afterwards: the photo's view does not change
    bpy.context.view_layer.update()
    scene.dhandles_perspective.enabled = True
    params = vp_module.perspective_params_for_rig(bpy.context, rig)
    assert np.allclose(params["vps"], payload["vps"], rtol=1e-5)
    scene.dhandles_perspective.source = "OBJECT"
    with pytest.raises(vp_module.VanishingPointError, match="Axes Object"):
        vp_module.perspective_params_for_rig(bpy.context, rig)
