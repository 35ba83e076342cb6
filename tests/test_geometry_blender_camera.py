"""Our intrinsics from Blender's camera numbers project exactly like Blender (real bpy), and the numbers we give Blender
for engine intrinsics make it project like them: points projected with ``bpy_extras.object_utils.world_to_camera_view``
and with our K agree to 1e-6 of the image size, for every sensor fit, lens shifts, resolution percentages and
non-square pixels, perspective and orthographic."""
from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from engine.geometry import Camera, frames
from engine.geometry.blender_camera import BlenderCameraNumbers, blender_from_intrinsics, intrinsics_from_blender

bpy = pytest.importorskip("bpy")
from bpy_extras.object_utils import world_to_camera_view  # noqa: E402
from mathutils import Euler, Vector  # noqa: E402

CAMERA_PROPS = ("lens", "sensor_width", "sensor_height", "sensor_fit", "shift_x", "shift_y", "type", "ortho_scale")
RENDER_PROPS = ("resolution_x", "resolution_y", "resolution_percentage", "pixel_aspect_x", "pixel_aspect_y")


@pytest.fixture
def scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


def blender_camera(scene, numbers: BlenderCameraNumbers):
    """A bpy camera and render settings with exactly these numbers, posed off-axis."""
    data = bpy.data.cameras.new("cam")
    for name in CAMERA_PROPS:
        setattr(data, name, getattr(numbers, name))
    for name in RENDER_PROPS:
        setattr(scene.render, name, getattr(numbers, name))
    camera = bpy.data.objects.new("cam", data)
    scene.collection.objects.link(camera)
    camera.location = (0.6, -0.7, 0.3)
    camera.rotation_euler = Euler((math.radians(80), math.radians(3), math.radians(25)), "XYZ")
    scene.camera = camera
    bpy.context.view_layer.update()
    return camera


def assert_projects_like_blender(scene, camera_object, camera: Camera, orthographic: bool):
    """Points in front of the camera: Blender's projection in engine pixels vs ours, within 1e-6 of the image size."""
    pose = frames.matrix4(camera_object.matrix_world)
    rotation = frames.world_to_camera_rotation(pose)  # (3, 3) world -> engine camera frame
    rng = np.random.default_rng(0)
    forward = pose[:3, :3] @ [0.0, 0.0, -1.0]
    points = pose[:3, 3] + forward * rng.uniform(2.0, 6.0, (40, 1)) + rng.uniform(-1.0, 1.0, (40, 3))  # (N, 3) world
    in_camera = (rotation @ (points - pose[:3, 3]).T).T  # (N, 3) engine frame
    if orthographic:
        ours = in_camera[:, :2] * [camera.fx, camera.fy] + [camera.cx, camera.cy]
    else:
        ours = (camera.K @ in_camera.T).T
        ours = ours[:, :2] / ours[:, 2:]
    ndc = np.array([world_to_camera_view(scene, camera_object, Vector(p))[:2] for p in points])
    blenders = np.c_[ndc[:, 0] * camera.width - 0.5, (1.0 - ndc[:, 1]) * camera.height - 0.5]  # engine pixels
    error = np.abs(ours - blenders) / [camera.width, camera.height]
    assert error.max() < 1e-6, error.max()


CASES = [(fit, shift, size, aspect, percent)
         for fit in ("AUTO", "HORIZONTAL", "VERTICAL")
         for shift in ((0.0, 0.0), (0.15, -0.2))
         for size, aspect, percent in (((640, 360), (1.0, 1.0), 100), ((300, 500), (1.0, 1.0), 50),
                                       ((640, 360), (1.0, 1.6), 100), ((400, 400), (2.0, 1.0), 75))]


@pytest.mark.parametrize("kind", ["PERSP", "ORTHO"])
@pytest.mark.parametrize("fit,shift,size,aspect,percent", CASES)
def test_intrinsics_from_blender_numbers_project_like_blender(scene, kind, fit, shift, size, aspect, percent):
    numbers = BlenderCameraNumbers(lens=32.0, sensor_width=36.0, sensor_height=20.0, sensor_fit=fit,
                                   shift_x=shift[0], shift_y=shift[1], resolution_x=size[0], resolution_y=size[1],
                                   resolution_percentage=percent, pixel_aspect_x=aspect[0], pixel_aspect_y=aspect[1],
                                   type=kind, ortho_scale=3.0)
    camera_object = blender_camera(scene, numbers)
    assert_projects_like_blender(scene, camera_object, intrinsics_from_blender(numbers), kind == "ORTHO")


@pytest.mark.parametrize("fit", ["AUTO", "HORIZONTAL", "VERTICAL"])
@pytest.mark.parametrize("camera", [Camera(640, 360, 700.0, 700.0, 300.0, 200.0),
                                    Camera(300, 500, 420.0, 420.0, 160.0, 240.0),
                                    Camera(400, 300, 500.0, 320.0, 190.0, 160.0)])  # non-square pixels
def test_blender_numbers_for_engine_intrinsics_project_like_them(scene, fit, camera):
    numbers = blender_from_intrinsics(camera, fit, 36.0, 24.0, resolution_percentage=100)
    camera_object = blender_camera(scene, numbers)
    assert_projects_like_blender(scene, camera_object, camera, orthographic=False)


def test_the_imports_matched_camera_projects_like_the_scene_jobs_camera(scene, addon):
    """The import's camera (scene/scene_build.py) for the job's intrinsics, off-centre principal point too."""
    scene_build = importlib.import_module(f"{addon.__name__}.scene.scene_build")
    for camera in (Camera.official(512, 512, 55.0), Camera.official(640, 360, 48.0),
                   Camera(300, 500, 420.0, 420.0, 149.5, 260.0)):
        data = bpy.data.cameras.new("matched")
        scene_build.set_camera_intrinsics(data, camera.to_dict())
        camera_object = bpy.data.objects.new("matched", data)
        scene.collection.objects.link(camera_object)
        camera_object.matrix_world = scene_build.default_camera_matrix()
        scene_build.match_render_settings(scene, camera.width, camera.height)
        bpy.context.view_layer.update()
        assert_projects_like_blender(scene, camera_object, camera, orthographic=False)
