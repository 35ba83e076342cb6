"""The scene job's meshes are the engine's surface (engine/geometry/surface_mesh.py): plane-exact, welded where
joined, split but never dropped at a jump, ramp faces flagged as the reprojection cuts them (no bpy here)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import BadParams
from engine.geometry import Camera
from engine.geometry import surface_mesh as surface
from engine.jobs import JobContext, JobError, scene


def grazing_floor(camera):
    """A floor seen from 1.5 m whose far edge (the top row) is 80 m away, slanted sideways a little too."""
    v, u = np.mgrid[0:camera.height, 0:camera.width].astype(np.float64)
    height_f = 1.5 * camera.fy
    return 1.0 / ((v + height_f / 80.0) / height_f + 2e-4 * (u - 255.5) / 255.5), (height_f, 80.0)


def lift_inverse(camera, mesh):
    """1/z of each vertex, and what the plane says it should be at its image position."""
    p = mesh.points.astype(np.float64)
    u = p[:, 0] / p[:, 2] * camera.fx + camera.cx
    v = p[:, 1] / p[:, 2] * camera.fy + camera.cy
    return 1.0 / p[:, 2], u, v


@pytest.mark.parametrize("step", [1, 3, 4])
def test_a_grazing_plane_stays_one_welded_exact_sheet(step):
    camera = Camera.official(512, 512, 55.0)
    depth, (height_f, far) = grazing_floor(camera)
    cell_depth, keep = surface.sample_cells(depth, None, step)
    mesh = surface.mesh_from_cells(cell_depth, keep, camera, step)
    rows, cols = cell_depth.shape
    assert len(mesh.quads) == rows * cols
    assert len(mesh.points) == (rows + 1) * (cols + 1)  # every corner one vertex: nothing split
    inv, u, v = lift_inverse(camera, mesh)
    plane = (v + height_f / far) / height_f + 2e-4 * (u - 255.5) / 255.5
    assert np.allclose(inv, plane, rtol=1e-5, atol=0)
    # the corners sit on pixel edges, the UVs read the photo where they project
    assert np.allclose(mesh.uv[:, 0], (u + 0.5) / 512, atol=1e-5)
    assert np.allclose(mesh.uv[:, 1], 1.0 - (v + 0.5) / 512, atol=1e-5)


def test_a_step_splits_the_surface_but_keeps_every_face():
    camera = Camera.official(128, 128, 55.0)
    depth = np.full((128, 128), 4.0)
    depth[40:80, 30:90] = 2.0
    mesh = surface.mesh_from_cells(depth, np.ones(depth.shape, bool), camera)
    assert len(mesh.quads) == 128 * 128  # split, never dropped: from the camera no pixel lacks a surface
    assert len(mesh.points) > 129 * 129  # the edges of the box are not welded to the wall
    z = mesh.points[:, 2]
    assert set(np.round(np.unique(z), 4)) == {2.0, 4.0}  # both sides stay flat at their own depth


def test_ramp_faces_are_the_rim_and_cut_only_when_turned_edge_on():
    camera = Camera.official(128, 128, 55.0)
    depth = np.full((128, 128), 3.0)
    mask = np.zeros(depth.shape, bool)
    mask[30:90, 30:90] = True
    mesh = surface.mesh_from_cells(depth, mask, camera, max_stretch=12.0)
    rim = mesh.ramp_limit != surface.NEVER_CUT
    x, y = mesh.cells[:, 0], mesh.cells[:, 1]
    expected = (np.minimum(np.minimum(x - 30, 89 - x), np.minimum(y - 30, 89 - y)) < surface.silhouette_px(128, 128))
    assert np.array_equal(rim, expected)
    # a flat object facing the camera: its |cos| now is far below 12 times itself, never cut at this pose
    assert np.all(surface.facing_cosine(mesh.points, mesh.quads) <= mesh.ramp_limit)


@pytest.mark.parametrize("tear", [0.0, -0.1, 0.005, 5.0])
def test_scene_refuses_a_tear_out_of_bounds(tmp_path, tear):
    ctx = JobContext("t", tmp_path, lambda message: None)
    with pytest.raises(BadParams, match=r"'tear' must be a number in \[0.01, 1\]"):
        scene.run({"photo": "/x.png", "depth": "/x.npy", "mask": "/m.png", "tear": tear}, ctx)


def test_scene_cuts_one_mesh_per_mask_from_one_background(tmp_path, photogen):
    """Two masks: the car's, and a box of the road beside it. One background with both holes, one mesh each."""
    from PIL import Image

    from engine.io import read_mask

    folder = photogen / "car"
    car = read_mask(folder / "mask.png")
    second = np.zeros_like(car)
    second[430:480, 40:120] = True
    assert not (second & car).any()
    Image.fromarray(second.astype(np.uint8) * 255).save(tmp_path / "second.png")
    ctx = JobContext("t", tmp_path / "work", lambda message: None)
    result = scene.run({"photo": str(folder / "input.png"), "depth": str(folder / "depth.exr"),
                        "mask": str(folder / "mask.png"), "masks": [str(tmp_path / "second.png")],
                        "output_dir": str(tmp_path / "out")}, ctx)
    objects = result["objects"]
    assert len(objects) == 2 and result["object"] == objects[0]["mesh"]
    assert [o["mask_pixels"] for o in objects] == [int(car.sum()), int(second.sum())]
    assert len(np.load(objects[1]["mesh"]["quads"])) == second.sum()
    assert objects[1]["centroid"][2] > 0 and objects[0]["centroid"] != objects[1]["centroid"]
    with pytest.raises(JobError, match="mask of object 2"):
        scene.run({"photo": str(folder / "input.png"), "depth": str(folder / "depth.exr"),
                   "mask": str(folder / "mask.png"), "masks": [str(tmp_path / "missing.png")],
                   "output_dir": str(tmp_path / "out2")}, ctx)
