"""Vanishing points from a camera: they are where projected 3D parallel lines meet."""

from __future__ import annotations

import numpy as np
import pytest
from perspective_drawing import look_rotation

from engine.geometry import frames
from engine.geometry.camera import intrinsics_matrix as intrinsics
from engine.geometry.vanishing import vanishing_line, vanishing_points
from engine.perspective.vanishing import parse_vp


def project(K, R, eye, points):
    camera = (R @ (np.asarray(points) - eye).T).T
    pixels = (K @ camera.T).T
    return pixels[:, :2] / pixels[:, 2:]


def meeting_point(lines_2d):
    """Least-squares intersection of 2D lines, each given by two points."""
    rows = [np.cross([*a, 1.0], [*b, 1.0]) for a, b in lines_2d]
    rows = np.array([r / np.linalg.norm(r[:2]) for r in rows])
    point = np.linalg.svd(rows)[2][-1]
    return point / point[2]


@pytest.mark.parametrize("yaw,pitch,roll", [(25.0, 8.0, 0.0), (-40.0, -12.0, 5.0), (10.0, 30.0, -20.0)])
def test_vps_are_where_projected_parallel_lines_meet(yaw, pitch, roll):
    K = intrinsics(300.0, 280.0, 170.0, 110.0)  # non-square pixels, off-centre principal point
    R = look_rotation(yaw, pitch, roll)
    eye = np.array([0.2, -1.0, 1.3])
    rng = np.random.default_rng(0)
    directions = np.vstack([np.eye(3), rng.normal(size=(2, 3))])
    vps = vanishing_points(K, R, directions)
    for direction, vp in zip(directions, vps, strict=True):
        lines = []
        for _ in range(4):
            start = eye + R.T @ np.array([*rng.uniform(-2, 2, 2), rng.uniform(3, 6)])  # in front of the camera
            ends = np.array([start, start + 0.5 * direction / np.linalg.norm(direction)])
            lines.append(project(K, R, eye, ends))
        met = meeting_point(lines)
        assert np.allclose(met[:2], vp[:2], rtol=1e-6, atol=1e-6 * np.linalg.norm(vp[:2]))


def test_directions_parallel_to_the_image_vanish_at_infinity():
    K = intrinsics(300.0, 300.0, 160.0, 120.0)
    R = look_rotation(0.0, 0.0, 30.0)  # level camera rolled: world Z parallel to the image plane
    vp = vanishing_points(K, R, [[0.0, 0.0, 1.0]])[0]
    assert vp[2] == 0.0 and np.linalg.norm(vp[:2]) == pytest.approx(1.0)
    a, b = project(K, R, np.zeros(3), [[0.0, 5.0, 0.0], [0.0, 5.0, 1.0]])
    image_direction = (b - a) / np.linalg.norm(b - a)
    assert abs(abs(image_direction @ vp[:2]) - 1.0) < 1e-9


def test_the_horizon_passes_through_the_ground_vps():
    K = intrinsics(300.0, 300.0, 160.0, 120.0)
    R = look_rotation(20.0, 10.0, 5.0)
    horizon = vanishing_line(K, R, [0.0, 0.0, 1.0])
    for vp in vanishing_points(K, R, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 2.0, 0.0]]):
        assert abs(horizon @ vp) < 1e-9 * max(1.0, np.linalg.norm(vp[:2]))


def test_blender_camera_frame_conversion():
    # A Blender camera with identity rotation looks down world -Z with +Y up: the engine camera's +Z is world -Z.
    R = frames.world_to_camera_rotation(np.eye(4))
    assert np.allclose(R @ [0.0, 0.0, -1.0], [0.0, 0.0, 1.0]) and np.allclose(R @ [0.0, 1.0, 0.0], [0.0, -1.0, 0.0])


def test_parse_vp():
    assert parse_vp("10,-2.5") == (10.0, -2.5, 1.0)
    assert parse_vp("0,1,0") == (0.0, 1.0, 0.0)
    for bad in ("1", "a,b", "1,2,3,4", "0,0,0", "nan,1"):
        with pytest.raises(ValueError):
            parse_vp(bad)
