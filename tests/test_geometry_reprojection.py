"""Reprojection on analytic scenes with exact answers: a fronto-parallel plane moved sideways, towards and away
from the camera, rotated about its centroid; occlusion both ways; several objects; non-square images.

The expected answer treats each source pixel as its square footprint on the object: a target pixel shows the
object when its centre's ray hits a footprint, and its source is that footprint's pixel. Pixel centres within
1e-3 px of a footprint edge are ambiguous in float and left out of the comparison (asserted to be rare).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.geometry import Camera, GeometryError, make_transform, reproject, rotation_matrix

Z_OBJ, Z_BG = 2.0, 6.0


def _scene(cam, box):
    """Constant-depth object rectangle box=(v0, v1, u0, u1) inclusive, on a constant far background."""
    H, W = cam.shape
    depth = np.full((H, W), Z_BG, np.float32)
    mask = np.zeros((H, W), bool)
    v0, v1, u0, u1 = box
    mask[v0:v1 + 1, u0:u1 + 1] = True
    depth[mask] = Z_OBJ
    return depth, mask, np.full((H, W), Z_BG, np.float32)


def _expected(cam, box, M):
    """Ray-cast the moved plane: per target pixel, the source footprint pixel (or -1) and the depth."""
    H, W = cam.shape
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    rays = np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones_like(u)], -1)
    R, t = M[:3, :3], M[:3, 3]
    n = R @ np.array([0.0, 0.0, 1.0])           # moved plane normal
    p0 = R @ np.array([0.0, 0.0, Z_OBJ]) + t     # a point on the moved plane
    s = (p0 @ n) / (rays @ n)
    X = rays * s[..., None]
    src = (X - t) @ R                            # back to the source plane (R^T (X - t))
    su = src[..., 0] / src[..., 2] * cam.fx + cam.cx
    sv = src[..., 1] / src[..., 2] * cam.fy + cam.cy
    v0, v1, u0, u1 = box
    hit = (s > 0) & (su >= u0 - 0.5) & (su <= u1 + 0.5) & (sv >= v0 - 0.5) & (sv <= v1 + 0.5)
    frac_u, frac_v = su - np.floor(su), sv - np.floor(sv)
    near = (s > 0) & (su >= u0 - 1) & (su <= u1 + 1) & (sv >= v0 - 1) & (sv <= v1 + 1)
    ambiguous = near & ((np.abs(frac_u - 0.5) < 1e-3) | (np.abs(frac_v - 0.5) < 1e-3))
    src_px = np.stack([np.floor(su + 0.5), np.floor(sv + 0.5)], -1).astype(np.int64)
    return hit, src_px, X[..., 2], ambiguous


def _check(cam, box, M, min_pixels=1):
    depth, mask, bg = _scene(cam, box)
    r = reproject(depth, mask, M, cam, background_depth=bg)
    hit, src, z, amb = _expected(cam, box, M)
    assert amb.sum() <= 0.02 * max(hit.sum(), 1)
    ok = ~amb
    np.testing.assert_array_equal(r.target_masks[0][ok], hit[ok])
    both = ok & hit
    assert both.sum() >= min_pixels
    np.testing.assert_array_equal(r.source_pixel[both], src[both])
    np.testing.assert_allclose(r.depth[both], z[both], rtol=1e-5)
    np.testing.assert_allclose(r.depth[~r.target_masks[0]], Z_BG)
    # dense: every visible target pixel has a correspondence, and the sub-pixel source lies in its pixel
    corr = r.correspondences(0)
    assert len(corr) == r.target_masks[0].sum()
    assert np.all(np.abs(r.source_xy[both] - src[both]) <= 0.5 + 1e-4)
    return r, hit


CAM = Camera.official(96, 96)


def test_identity_reproduces_mask_and_sources_exactly():
    box = (20, 60, 10, 45)
    r, hit = _check(CAM, box, np.eye(4))
    depth, mask, _ = _scene(CAM, box)
    np.testing.assert_array_equal(r.target_masks[0], mask)
    c = r.correspondences(0)
    np.testing.assert_array_equal(c[:, :2], c[:, 2:])
    assert r.visible_fraction == [1.0]


@pytest.mark.parametrize("shift_px", [7.3, -12.8, 0.2])
def test_sideways_shift_moves_mask_by_rounded_pixels(shift_px):
    box = (20, 60, 30, 55)
    tx = shift_px * Z_OBJ / CAM.fx
    r, hit = _check(CAM, box, make_transform(translation=[tx, 0.0, 0.0]))
    _, mask, _ = _scene(CAM, box)
    np.testing.assert_array_equal(r.target_masks[0], np.roll(mask, int(round(shift_px)), axis=1))


@pytest.mark.parametrize("scale", [2.63, 1.37, 0.57])
def test_moving_towards_and_away_magnifies_without_holes(scale):
    box = (38, 57, 40, 61)
    M = make_transform(translation=[0.0, 0.0, Z_OBJ / scale - Z_OBJ])
    r, hit = _check(CAM, box, M)
    # the magnified object is one solid rectangle: no holes
    tm = r.target_masks[0]
    rows, cols = np.nonzero(tm)
    assert tm[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
    if scale > 1:
        assert tm.sum() > (scale ** 2) * 0.8 * (20 * 22)


@pytest.mark.parametrize("axis,angle", [([0, 1, 0], 30.0), ([1, 0, 0], -23.0), ([0.3, 1, 0.2], 50.0),
                                        ([0, 0, 1], 17.0)])
def test_rotation_about_centroid_matches_ray_casting(axis, angle):
    box = (29, 66, 24, 68)
    v, u = np.mgrid[box[0]:box[1] + 1, box[2]:box[3] + 1]
    c = np.array([((u - CAM.cx) / CAM.fx).mean() * Z_OBJ, ((v - CAM.cy) / CAM.fy).mean() * Z_OBJ, Z_OBJ])
    M = make_transform(rotation=rotation_matrix(axis, angle), center=c)
    _check(CAM, box, M, min_pixels=100)


def test_non_square_image_with_off_centre_principal_point():
    cam = Camera.from_focal(80, 48, 70.0, cx=30.25, cy=20.5)
    box = (10, 30, 20, 50)
    tx = -9.4 * Z_OBJ / cam.fx
    ty = 3.2 * Z_OBJ / cam.fy
    _check(cam, box, make_transform(translation=[tx, ty, -0.37]))
    _check(Camera.from_fov(40, 72, 50.0), (5, 60, 8, 30), make_transform(rotation_matrix([0, 1, 0], 20.0)))


def test_torch_input_gives_torch_output_and_same_answer():
    box = (20, 60, 30, 55)
    depth, mask, bg = _scene(CAM, box)
    M = make_transform(translation=[0.1, 0.05, -0.3])
    a = reproject(depth, mask, M, CAM, background_depth=bg)
    b = reproject(torch.from_numpy(depth), torch.from_numpy(mask), torch.from_numpy(M), CAM,
                  background_depth=torch.from_numpy(bg))
    assert isinstance(b.depth, torch.Tensor) and b.correspondences().dtype == torch.int32
    np.testing.assert_array_equal(a.target_masks, b.target_masks.numpy())
    np.testing.assert_array_equal(a.correspondences(), b.correspondences().numpy())


def test_background_occludes_object_and_object_occludes_background():
    box = (30, 60, 30, 60)
    depth, mask, bg = _scene(CAM, box)
    wall = bg.copy()
    wall[:, :48] = 3.0                   # a wall nearer than the moved object on the left half
    M = make_transform(translation=[0.0, 0.0, 1.5])     # object goes back to z = 3.5
    r = reproject(depth, mask, M, CAM, background_depth=wall)
    tm = r.target_masks[0]
    assert tm.any() and not tm[:, :48].any()
    np.testing.assert_allclose(r.depth[:, :48], 3.0)
    np.testing.assert_allclose(r.depth[tm], 3.5, rtol=1e-5)
    with pytest.raises(GeometryError, match="hidden behind the background"):
        reproject(depth, mask, make_transform(translation=[0, 0, 5.0]), CAM, background_depth=np.full_like(bg, 4.0))


def test_several_objects_z_buffer_each_other():
    depth = np.full((96, 96), Z_BG, np.float32)
    a = np.zeros((96, 96), bool)
    a[20:50, 20:50] = True
    b = np.zeros((96, 96), bool)
    b[20:50, 60:90] = True
    depth[a] = 2.0
    depth[b] = 3.0
    shift_b = -35 * 3.0 / CAM.fx          # move b left by 35 px so it overlaps a's area, behind a
    r = reproject(depth, [a, b], [np.eye(4), make_transform(translation=[shift_b, 0, 0])], CAM,
                  background_depth=np.full_like(depth, Z_BG))
    np.testing.assert_array_equal(r.target_masks[0], a)
    expected_b = np.zeros_like(b)
    expected_b[20:50, 25:55] = True
    expected_b &= ~a
    np.testing.assert_array_equal(r.target_masks[1], expected_b)
    assert set(np.unique(r.object_index)) == {-1, 0, 1}
    np.testing.assert_array_equal(r.correspondences(1)[:, 0] - r.correspondences(1)[:, 2], 35)
    assert len(r.correspondences()) == len(r.correspondences(0)) + len(r.correspondences(1))
    # the same objects as a K x H x W stack and a K x 4 x 4 array
    r2 = reproject(torch.from_numpy(depth), torch.from_numpy(np.stack([a, b])),
                   torch.from_numpy(np.stack([np.eye(4), make_transform(translation=[shift_b, 0, 0])])), CAM,
                   background_depth=torch.full((96, 96), Z_BG))
    np.testing.assert_array_equal(r2.object_index.numpy(), r.object_index)


def test_depth_step_inside_object_does_not_rubber_sheet():
    depth = np.full((96, 96), Z_BG, np.float32)
    mask = np.zeros((96, 96), bool)
    mask[30:60, 20:70] = True
    depth[30:60, 20:45] = 2.0
    depth[30:60, 45:70] = 4.0
    # sideways parallax opens a gap between the layers: near layer moves 2x the far one's pixels
    M = make_transform(translation=[-0.3, 0.0, 0.0])
    r = reproject(depth, mask, M, CAM, background_depth=np.full_like(depth, Z_BG))
    tm = r.target_masks[0]
    z = r.depth[tm]
    assert np.all((np.abs(z - 2.0) < 1e-4) | (np.abs(z - 4.0) < 1e-4))
    row = tm[45]
    gap = np.flatnonzero(~row[np.argmax(row):len(row) - np.argmax(row[::-1])])
    assert gap.size >= 5   # background shows through the gap instead of a stretched sheet


def test_bad_inputs_raise_clear_errors():
    box = (20, 60, 30, 55)
    depth, mask, bg = _scene(CAM, box)
    with pytest.raises(GeometryError, match="empty"):
        reproject(depth, np.zeros_like(mask), np.eye(4), CAM, background_depth=bg)
    with pytest.raises(GeometryError, match="behind the camera"):
        reproject(depth, mask, make_transform(translation=[0, 0, -10.0]), CAM, background_depth=bg)
    with pytest.raises(GeometryError, match="out of the frame"):
        reproject(depth, mask, make_transform(translation=[50.0, 0, 0]), CAM, background_depth=bg)
    bad = depth.copy()
    bad[0, 0] = np.nan
    with pytest.raises(GeometryError, match="non-finite"):
        reproject(bad, mask, np.eye(4), CAM, background_depth=bg)
    with pytest.raises(GeometryError, match="one 4x4 per object"):
        reproject(depth, [mask, mask], [np.eye(4)], CAM, background_depth=bg)
    r = reproject(depth, mask, make_transform(translation=[50.0, 0, 0]), CAM, background_depth=bg,
                  require_visible=False)
    assert r.visible_fraction == [0.0] and len(r.correspondences()) == 0


def test_hole_is_filled_when_no_background_is_given():
    box = (30, 60, 30, 60)
    depth, mask, _ = _scene(CAM, box)
    r = reproject(depth, mask, make_transform(translation=[0.0, 0.0, 20.0]), CAM, require_visible=False)
    np.testing.assert_allclose(r.background_depth, Z_BG, rtol=1e-5)


def test_rasteriser_refuses_surfaces_covering_the_image_hundreds_of_times():
    from engine.geometry.rasterise import rasterise

    n = 150   # every quad (two triangles) covers the whole 96 x 96 image
    u = torch.tensor([[-10.0], [500.0], [500.0], [-10.0]]).expand(4, n).contiguous()
    v = torch.tensor([[-10.0], [-10.0], [500.0], [500.0]]).expand(4, n).contiguous()
    iz = torch.full((4, n), 0.5)
    with pytest.raises(GeometryError, match="close to the camera"):
        rasterise(u, v, iz, torch.ones(n, dtype=torch.bool), 96, 96)
    hits = rasterise(u[:, :5], v[:, :5], iz[:, :5], torch.ones(5, dtype=torch.bool), 96, 96, max_candidates=5000)
    # ties go to the lowest id: quad 0's triangles, 0 above its diagonal and 5 (= Q + 0) below
    assert hits.pixel.numel() == 96 * 96 and set(hits.triangle.tolist()) == {0, 5}
    np.testing.assert_allclose(hits.depth.numpy(), 2.0)


def test_pixel_indices_stay_exact_on_photos_past_float32s_integers():
    """Above 2**24 pixels (a 24 MP photo) float32 cannot hold every pixel index; the z-buffer's flat indices must
    still be exact, in integer arithmetic (float64 does not exist on Apple GPUs)."""
    from engine.geometry.rasterise import _flat_index

    width, height = 6000, 4000
    x0 = torch.tensor([0.0, 5999.0, 1234.0, 5999.0])
    y0 = torch.tensor([0.0, 3999.0, 2797.0, 2796.0])
    index = _flat_index(x0, y0, width, height)
    assert index.dtype == torch.int64
    assert index.tolist() == [int(y) * width + int(x) for x, y in zip(x0.tolist(), y0.tolist(), strict=True)]
