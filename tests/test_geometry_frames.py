"""Camera intrinsics, frame conversions and the official edit parametrisation, against exact closed forms and a
re-statement of the official formulas."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.geometry import Camera, GeometryError, frames, make_transform, official_edit_to_matrix, rotation_matrix
from engine.geometry.transforms import apply, object_centroid


def test_official_camera_puts_outer_pixel_centres_at_plus_minus_one():
    cam = Camera.official(512, 512, fov_deg=55.0)
    f_unit = 1.0 / math.tan(math.radians(27.5))
    assert cam.fx == pytest.approx(255.5 * f_unit)
    assert (cam.cx, cam.cy) == (255.5, 255.5)
    # pixel 0 and 511 sit at image-plane -1 and +1 in the official units
    assert (0 - cam.cx) / cam.fx * f_unit == pytest.approx(-1.0)
    assert (511 - cam.cx) / cam.fx * f_unit == pytest.approx(1.0)


def test_blender_camera_fov_spans_pixel_edges_of_the_larger_side_non_square():
    cam = Camera.from_fov(640, 360, fov_deg=50.0)
    h, v = cam.fov_deg()
    assert h == pytest.approx(50.0)
    assert v == pytest.approx(math.degrees(2 * math.atan(math.tan(math.radians(25)) * 360 / 640)))
    assert (cam.cx, cam.cy) == (319.5, 179.5)
    tall = Camera.from_fov(300, 500, fov_deg=40.0)
    assert tall.fov_deg()[1] == pytest.approx(40.0)
    K = Camera.from_focal(100, 80, 90.0, cx=10.0, cy=70.0).K
    np.testing.assert_array_equal(K, [[90, 0, 10], [0, 90, 70], [0, 0, 1]])


def test_camera_rejects_bad_parameters():
    with pytest.raises(GeometryError):
        Camera.from_fov(64, 64, fov_deg=180.0)
    with pytest.raises(GeometryError):
        Camera.from_focal(64, 0, 50.0)


def test_frame_conversions_are_exact_and_round_trip():
    np.testing.assert_array_equal(frames.BLENDER_TO_ENGINE, np.diag([1, -1, -1, 1]))
    np.testing.assert_array_equal(frames.OFFICIAL_TO_ENGINE, np.diag([-1, -1, 1, 1]))
    # blender camera looks down -Z with +Y up; engine looks down +Z with +Y down
    np.testing.assert_array_equal(frames.convert_points([0.0, 1.0, -2.0], "blender", "engine"), [0, -1, 2])
    # official +X is the image's left
    np.testing.assert_array_equal(frames.convert_points([1.0, 1.0, 2.0], "official", "engine"), [-1, -1, 2])
    rng = np.random.default_rng(0)
    M = make_transform(rotation_matrix(rng.normal(size=3), 37.0), rng.normal(size=3), [1.5, 0.5, 2.0],
                       rng.normal(size=3))
    pts = rng.normal(size=(20, 3))
    for a in frames.FRAMES:
        for b in frames.FRAMES:
            Mb = frames.convert(M, a, b)
            np.testing.assert_allclose(frames.convert(Mb, b, a), M, atol=1e-12)
            # transforming then converting equals converting then transforming
            np.testing.assert_allclose(frames.convert_points(apply(M, pts), a, b),
                                       apply(Mb, frames.convert_points(pts, a, b)), atol=1e-12)
            assert np.linalg.det(frames.change_of_frame(a, b)[:3, :3]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        frames.convert(M, "opengl", "engine")


def test_make_transform_scales_about_the_centre():
    c = np.array([1.0, 2.0, 3.0])
    M = make_transform(scale=[2.0, 3.0, 0.5], center=c, translation=[0.0, 0.0, 1.0])
    np.testing.assert_allclose(apply(M, c), c + [0, 0, 1])
    np.testing.assert_allclose(apply(M, c + [1.0, 1.0, 1.0]), c + [2.0, 3.0, 1.5])
    with pytest.raises(GeometryError):
        make_transform(scale=0.0)


def _official_lift(depth, fov=55.0):
    """The official depth_to_world_coords, restated: image plane [-1, 1] across pixel centres, then x, y negated."""
    H, W = depth.shape
    f = 1.0 / np.tan(np.radians(fov) / 2)
    nw, nh = (W - 1) / (max(W, H) - 1), (H - 1) / (max(W, H) - 1)
    x, y = np.meshgrid(np.linspace(-nw, nw, W), np.linspace(-nh, nh, H))
    return np.stack([-x / f * depth, -y / f * depth, depth], -1)


def _official_transform(points, mask, axis, angle, t):
    """The official transform_point_cloud, restated: Rodrigues about the masked centroid, then translate."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    th = np.radians(angle)
    c = points[mask].mean(0)
    p = points.reshape(-1, 3) - c
    r = p * np.cos(th) + np.cross(a, p) * np.sin(th) + a * (p @ a)[:, None] * (1 - np.cos(th))
    return (r + c + np.asarray(t)).reshape(points.shape)


@pytest.mark.parametrize("shape", [(48, 48), (40, 64)])
def test_official_lift_and_edit_match_the_official_formulas(shape):
    from engine.geometry import lift

    rng = np.random.default_rng(1)
    H, W = shape
    depth = (2.0 + rng.random((H, W))).astype(np.float64)
    mask = np.zeros((H, W), bool)
    mask[10:30, 5:25] = True
    cam = Camera.official(W, H)
    ours = lift(depth.astype(np.float32), cam)
    theirs = _official_lift(depth)
    np.testing.assert_allclose(ours, frames.convert_points(theirs, "official", "engine"), rtol=1e-5, atol=1e-5)
    axis, angle, t = [0.2, 1.0, -0.3], 33.0, [0.4, -0.2, 0.7]
    moved_official = _official_transform(theirs, mask, axis, angle, t)
    c = object_centroid(depth, mask, cam)
    M = official_edit_to_matrix(t, axis, angle, c)
    np.testing.assert_allclose(apply(M, frames.convert_points(theirs, "official", "engine")),
                               frames.convert_points(moved_official, "official", "engine"), atol=1e-9)


def test_blender_world_edit_becomes_the_engine_transform_of_camera_space_points():
    rng = np.random.default_rng(7)
    from engine.geometry import blender_world_edit_to_engine

    # a camera somewhere, looking somewhere; an object moved, turned and scaled in world space
    C = make_transform(rotation_matrix(rng.normal(size=3), 70.0), rng.normal(size=3) * 3)
    A0 = make_transform(rotation_matrix(rng.normal(size=3), 20.0), rng.normal(size=3), 1.3)
    A1 = make_transform(rotation_matrix(rng.normal(size=3), -45.0), rng.normal(size=3), [0.7, 1.1, 0.9]) @ A0
    M = blender_world_edit_to_engine(C, A0, A1)
    world = rng.normal(size=(10, 3))
    moved = apply(A1 @ np.linalg.inv(A0), world)
    Cinv = np.linalg.inv(C)
    to_engine = lambda p: frames.convert_points(apply(Cinv, p), "blender", "engine")  # noqa: E731
    np.testing.assert_allclose(apply(M, to_engine(world)), to_engine(moved), atol=1e-9)
    np.testing.assert_allclose(blender_world_edit_to_engine(C, A0, A0), np.eye(4), atol=1e-12)
    with pytest.raises(GeometryError):
        blender_world_edit_to_engine(C, np.zeros((4, 4)), A1)
