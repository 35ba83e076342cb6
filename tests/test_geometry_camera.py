"""The one home of camera maths: field-of-view conventions, EXIF numbers, Blender's camera numbers both ways, and
the frame helpers the Blender side uses, against closed forms and round trips (no bpy here; see
test_geometry_blender_camera.py for agreement with Blender's own projection)."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from engine.geometry import Camera, GeometryError, frames
from engine.geometry.blender_camera import (
    BlenderCameraNumbers,
    blender_from_intrinsics,
    intrinsics_from_blender,
)
from engine.geometry.exif_camera import fov_from_exif
from engine.geometry.fov import (
    DEFAULT_FOV_ACROSS,
    DEFAULT_FOV_SPAN,
    FOV_ACROSS,
    FOV_SPANS,
    focal_from_fov,
    fov_from_focal,
)
from engine.geometry.vanishing import rescale_vanishing_points, vanishing_points


@pytest.mark.parametrize("across,span", list(itertools.product(FOV_ACROSS, FOV_SPANS)))
def test_fov_conventions_round_trip_and_measure_their_extent(across, span):
    width, height = 640, 360
    focal = focal_from_fov(50.0, width, height, across, span)
    assert fov_from_focal(focal, width, height, across, span) == pytest.approx(50.0, abs=1e-12)
    cam = Camera.from_fov(width, height, 50.0, across=across, span=span)
    # the two ends of the named extent, seen from the camera, are exactly the field of view apart
    w, h = (width, height) if span == "edges" else (width - 1, height - 1)
    half = {"horizontal": (w / 2, 0.0), "vertical": (0.0, h / 2), "longer": (w / 2, 0.0),
            "diagonal": (w / 2, h / 2)}[across]
    ray = np.array([half[0] / cam.fx, half[1] / cam.fy, 1.0])
    assert math.degrees(2 * math.atan(np.linalg.norm(ray[:2]))) == pytest.approx(50.0, abs=1e-12)


def test_official_and_default_cameras_are_the_formulas_they_always_were():
    for width, height, fov in ((512, 512, 55.0), (120, 80, 60.0), (300, 500, 41.5)):
        official = (max(width, height) - 1) / (2.0 * math.tan(math.radians(fov) / 2.0))
        edges = max(width, height) / (2.0 * math.tan(math.radians(fov) / 2.0))
        assert Camera.official(width, height, fov).fx == official  # bit-identical
        assert Camera.from_fov(width, height, fov).fx == edges
        assert Camera.default(width, height, fov) == Camera.official(width, height, fov)
    assert (DEFAULT_FOV_ACROSS, DEFAULT_FOV_SPAN) == ("longer", "centres")
    assert Camera.default(512, 512) == Camera.official(512, 512, 55.0)
    with pytest.raises(GeometryError, match="across"):
        Camera.from_fov(64, 64, 50.0, across="width")
    with pytest.raises(GeometryError):
        focal_from_fov(0.0, 64, 64)
    K = Camera.from_focal(100, 80, 90.0, fy=95.0, cx=10.0, cy=70.0).K
    assert Camera.from_K(K, 100, 80) == Camera(100, 80, 90.0, 95.0, 10.0, 70.0)
    with pytest.raises(GeometryError, match="intrinsics"):
        Camera.from_K([[90, 1, 10], [0, 90, 70], [0, 0, 1]], 100, 80)


def test_fov_from_exif_numbers():
    fov, source, note = fov_from_exif({"focal_length_35mm": 26.0}, 4000, 3000)
    side = math.hypot(36, 24) * 4000 / 5000
    assert fov == pytest.approx(math.degrees(2 * math.atan(side / 52.0)))
    assert source == "exif_35mm" and "26 mm" in note
    plane = {"focal_length_mm": 4.0, "focal_plane_x_resolution": 1000.0, "focal_plane_y_resolution": 1000.0,
             "focal_plane_unit_mm": 1.0, "pixel_x_dimension": 4000, "pixel_y_dimension": 3000}
    fov, source, _ = fov_from_exif(plane, 400, 300)  # a resized photo keeps the camera's sensor: 4 mm wide
    assert source == "exif_focal_plane" and fov == pytest.approx(math.degrees(2 * math.atan(4.0 / 8.0)))
    portrait = dict(plane, pixel_x_dimension=3000, pixel_y_dimension=4000, focal_plane_y_resolution=500.0)
    fov, _, _ = fov_from_exif(portrait, 300, 400)  # portrait: the longer side, 4000 px at 500 px/mm = 8 mm
    assert fov == pytest.approx(math.degrees(2 * math.atan(8.0 / 8.0)))
    fov, _, _ = fov_from_exif(plane, 300, 400)  # not the camera's aspect (cropped): the photo's own 400 px = 0.4 mm
    assert fov == pytest.approx(math.degrees(2 * math.atan(0.4 / 8.0)))
    assert fov_from_exif({}, 40, 30)[:2] == (None, "default")
    assert fov_from_exif({"has_exif": False, "focal_length_35mm": None}, 40, 30)[2].endswith("has no EXIF data")
    assert fov_from_exif({"focal_length_mm": 4.0, "focal_plane_unit_mm": None}, 40, 30)[:2] == (None, "default")
    assert fov_from_exif({"focal_length_35mm": 0, "focal_length_mm": float("nan")}, 40, 30)[1] == "default"


NUMBERS = [{"sensor_fit": fit, "shift_x": sx, "shift_y": sy, "resolution_x": rx, "resolution_y": ry,
            "resolution_percentage": pct, "pixel_aspect_x": ax, "pixel_aspect_y": ay}
           for fit in ("AUTO", "HORIZONTAL", "VERTICAL")
           for sx, sy in ((0.0, 0.0), (0.15, -0.2))
           for rx, ry, pct, ax, ay in ((640, 360, 100, 1.0, 1.0), (300, 500, 50, 1.0, 1.0), (640, 360, 100, 1.0, 1.6),
                                       (400, 400, 75, 2.0, 1.0), (360, 640, 100, 1.0, 1.3))]


@pytest.mark.parametrize("values", NUMBERS)
@pytest.mark.parametrize("kind", ["PERSP", "ORTHO"])
def test_blender_numbers_to_intrinsics_and_back(values, kind):
    numbers = BlenderCameraNumbers(lens=32.0, sensor_width=36.0, sensor_height=20.0, type=kind, ortho_scale=9.0,
                                   **values)
    camera = intrinsics_from_blender(numbers)
    assert camera.shape == (values["resolution_y"] * values["resolution_percentage"] // 100,
                            values["resolution_x"] * values["resolution_percentage"] // 100)
    assert camera.fx / camera.fy == pytest.approx(values["pixel_aspect_y"] / values["pixel_aspect_x"], rel=1e-12)
    back = blender_from_intrinsics(camera, values["sensor_fit"], 36.0, 20.0, values["resolution_percentage"],
                                   values["pixel_aspect_x"], orthographic=kind == "ORTHO")
    for name, value in numbers.to_dict().items():
        got = getattr(back, name)
        if kind == "ORTHO" and name == "lens" or kind == "PERSP" and name == "ortho_scale":
            continue  # not used by that kind of camera
        assert got == (pytest.approx(value, rel=1e-12, abs=1e-12) if isinstance(value, float) else value), name


def test_blender_numbers_without_shift_put_the_principal_point_at_the_centre():
    camera = intrinsics_from_blender(BlenderCameraNumbers(lens=50.0, sensor_width=36.0, resolution_x=1920,
                                                          resolution_y=1080))
    assert (camera.cx, camera.cy) == (959.5, 539.5)
    assert camera.fx == camera.fy == pytest.approx(50.0 / 36.0 * 1920)
    # a positive shift moves the view right and up: the principal point moves left and down in the image
    shifted = intrinsics_from_blender(BlenderCameraNumbers(shift_x=0.1, shift_y=0.1, resolution_x=1920,
                                                           resolution_y=1080))
    assert shifted.cx == pytest.approx(959.5 - 192.0) and shifted.cy == pytest.approx(539.5 + 192.0)
    with pytest.raises(GeometryError, match="pano camera has no pinhole"):
        intrinsics_from_blender(BlenderCameraNumbers(type="PANO"))
    with pytest.raises(GeometryError, match="sensor fit"):
        intrinsics_from_blender(BlenderCameraNumbers(sensor_fit="FILL"))


def test_camera_points_to_world_and_world_to_camera_rotation():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotation = q * np.sign(np.linalg.det(q))
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rotation, [1.0, -2.0, 3.0]
    points = rng.normal(size=(20, 3))  # (N, 3) engine frame
    world = frames.camera_points_to_world(points, pose)
    expected = (pose @ frames.change_of_frame("engine", "blender") @ np.c_[points, np.ones(20)].T).T[:, :3]
    np.testing.assert_allclose(world, expected, atol=1e-12)
    np.testing.assert_array_equal(frames.camera_points_to_world(points, pose.ravel().tolist()), world)
    scaled = pose.copy()
    scaled[:3, :3] *= [2.0, 0.5, 3.0]  # a camera object's scale plays no part in its rotation
    R = frames.world_to_camera_rotation(scaled)
    np.testing.assert_allclose(R @ (world - pose[:3, 3]).T, points.T, atol=1e-12)
    np.testing.assert_allclose(frames.world_to_camera_rotation(pose, "blender"), rotation.T, atol=1e-15)


def test_vanishing_points_rescale_like_the_camera():
    cam = Camera(640, 360, 500.0, 480.0, 300.0, 190.0)
    R = frames.world_to_camera_rotation(np.diag([1.0, 1.0, 1.0, 1.0]) @ _turn(0.3, 0.4))
    directions = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    half = cam.scaled(320, 180)
    np.testing.assert_allclose(rescale_vanishing_points(vanishing_points(cam.K, R, directions), (640, 360), (320, 180)),
                               vanishing_points(half.K, R, directions), atol=1e-9)
    ortho = vanishing_points(cam.K, R, directions, orthographic=True)
    assert np.all(ortho[:, 2] == 0) and np.allclose(np.linalg.norm(ortho[:, :2], axis=1), 1.0)


def _turn(a: float, b: float) -> np.ndarray:
    ca, sa, cb, sb = math.cos(a), math.sin(a), math.cos(b), math.sin(b)
    rx = np.array([[1, 0, 0, 0], [0, ca, -sa, 0], [0, sa, ca, 0], [0, 0, 0, 1.0]])
    rz = np.array([[cb, -sb, 0, 0], [sb, cb, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    return rz @ rx


def test_camera_world_rotation_inverts_world_to_camera_rotation():
    pose = _turn(0.7, -1.1)
    np.testing.assert_allclose(frames.camera_world_rotation(frames.world_to_camera_rotation(pose)), pose[:3, :3],
                               atol=1e-15)
    np.testing.assert_array_equal(frames.camera_world_rotation(np.eye(3)), np.diag([1.0, -1.0, -1.0]))


def test_every_door_defaults_to_the_same_field_of_view(tmp_path):
    """The commands' defaults and the jobs build Camera.default: 55 degrees, longer side, outermost pixel centres."""
    from PIL import Image

    from engine.cli import build_parser, discover_commands
    from engine.diffusion.inputs import request_from_files
    from engine.jobs import JobContext, scene

    parser = build_parser(discover_commands())
    for command in (["edit", "--out", "o.png"], ["geometry", "--sample", "s", "--out-dir", "o"]):
        args = parser.parse_args(command)
        assert (args.camera, args.fov) == ("official", 55.0), command
    depth = np.full((40, 60), 4.0, np.float32)
    mask = np.zeros((40, 60), np.uint8)
    mask[10:30, 20:40] = 255
    Image.new("RGB", (60, 40), (90, 90, 90)).save(tmp_path / "photo.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    np.save(tmp_path / "depth.npy", depth)
    (tmp_path / "t.json").write_text(json.dumps(np.eye(4).tolist()))
    request = request_from_files(tmp_path / "photo.png", tmp_path / "mask.png", tmp_path / "depth.npy",
                                 tmp_path / "t.json", camera=parser.parse_args(["edit", "--out", "o.png"]).camera)
    assert request.camera == Camera.default(60, 40)
    params = {"photo": str(tmp_path / "photo.png"), "depth": str(tmp_path / "depth.npy"),
              "mask": str(tmp_path / "mask.png"), "output_dir": str(tmp_path / "out")}
    result = scene.run(params, JobContext("t", tmp_path / "work", lambda message: None))
    assert result["fov_source"] == "default" and result["camera"] == Camera.default(60, 40).to_dict()


def test_camera_relative_edit_and_its_description():
    from engine.geometry.transforms import (
        camera_relative_edit,
        describe_edit,
        make_transform,
        object_matrix_for_edit,
        rotation_matrix,
    )

    camera, obj = _turn(1.2, 0.3), _turn(0.1, -0.5)
    camera[:3, 3], obj[:3, 3] = [1.0, -4.0, 1.5], [0.5, 0.2, 1.0]
    assert np.allclose(camera_relative_edit(camera, obj, camera, obj), np.eye(4), atol=1e-12)
    rig_moved = _turn(0.4, 0.9) @ np.eye(4)
    assert np.allclose(camera_relative_edit(rig_moved @ camera, rig_moved @ obj, camera, obj), np.eye(4), atol=1e-12)
    centroid = np.array([0.2, -0.1, 3.0])
    edit = make_transform(rotation_matrix([0.0, 1.0, 0.0], 30.0), [0.5, 0.0, -0.2], 1.5, center=centroid)
    now = object_matrix_for_edit(edit, camera, camera, obj)
    np.testing.assert_allclose(camera_relative_edit(camera, now, camera, obj), edit, atol=1e-12)
    described = describe_edit(edit, centroid)
    np.testing.assert_allclose(described["translation"], [0.5, 0.0, -0.2], atol=1e-12)
    np.testing.assert_allclose(described["axis"], [0.0, 1.0, 0.0], atol=1e-12)
    assert described["angle"] == pytest.approx(30.0) and np.allclose(described["scale"], 1.5)
