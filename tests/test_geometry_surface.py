"""The object surface (surface_mesh) through reprojection, where the flat-plane tests cannot see it: tilted planes
(1/z affine in the image) moved every way, exact to the pixel in mask and source and to float precision in depth,
at the mask border too; depth ramps rotated and curved or tilted objects magnified, with no cracks or holes; a
photogen edit that magnifies the object, with no holes the source mask does not have; silhouette ramps turned
face-on are not drawn."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from conftest import PHOTOGEN

from engine.geometry import Camera, make_transform, object_centroid, reproject, rotation_matrix

CAM = Camera.official(96, 96)
FAR = 50.0


def _rays(cam):
    v, u = np.mgrid[0:cam.height, 0:cam.width].astype(np.float64)
    return np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones_like(u)], -1)


def _plane_depth(cam, n, p0):
    """z-depth of the plane n . (X - p0) = 0 at every pixel centre."""
    return (p0 @ n) / (_rays(cam) @ n)


def _box(cam, v0, v1, u0, u1):
    mask = np.zeros(cam.shape, bool)
    mask[v0:v1 + 1, u0:u1 + 1] = True
    return mask


def _disc(cam, cv, cu, r):
    v, u = np.mgrid[0:cam.height, 0:cam.width]
    return (v - cv) ** 2 + (u - cu) ** 2 <= r * r


def _expected_plane(cam, n, p0, mask, M):
    """Ray-cast the moved plane: per target pixel, whether a source pixel of the mask is seen (its square
    footprint on the plane), which one, and the depth; plus centres within 1e-3 px of a footprint edge."""
    R, t = M[:3, :3], M[:3, 3]
    rays = _rays(cam)
    s = ((R @ p0 + t) @ (R @ n)) / (rays @ (R @ n))
    X = rays * s[..., None]
    src = (X - t) @ R
    su = src[..., 0] / src[..., 2] * cam.fx + cam.cx
    sv = src[..., 1] / src[..., 2] * cam.fy + cam.cy
    iu, iv = np.floor(su + 0.5).astype(np.int64), np.floor(sv + 0.5).astype(np.int64)
    inside = (s > 0) & (src[..., 2] > 0) & (iu >= 0) & (iu < cam.width) & (iv >= 0) & (iv < cam.height)
    at = iv.clip(0, cam.height - 1), iu.clip(0, cam.width - 1)
    hit = inside & mask[at]
    near = inside & ndi.binary_dilation(mask)[at]
    ambiguous = near & ((np.abs(su - np.floor(su) - 0.5) < 1e-3) | (np.abs(sv - np.floor(sv) - 0.5) < 1e-3))
    return hit, np.stack([iu, iv], -1), X[..., 2], ambiguous


NORMAL = np.array([0.35, -0.2, 1.0]) / np.linalg.norm([0.35, -0.2, 1.0])
P0 = np.array([0.0, 0.0, 2.5])
EDITS = {
    "identity": np.eye(4),
    "sideways": make_transform(translation=[0.21, -0.13, 0.0]),
    "closer x2": make_transform(translation=[0.0, 0.0, -1.25]),
    "away": make_transform(translation=[0.05, 0.0, 1.7]),
    "rotated": make_transform(rotation_matrix([0, 1, 0], 35.0), center=P0),
    "rotated closer": make_transform(rotation_matrix([1, 0, 0], -40.0), [0.0, 0.0, -0.8], center=P0),
}


@pytest.mark.parametrize("shape", ["box", "disc"])
@pytest.mark.parametrize("edit", list(EDITS))
def test_tilted_plane_moved_is_exact_to_the_pixel(edit, shape):
    mask = _box(CAM, 25, 70, 20, 72) if shape == "box" else _disc(CAM, 47.3, 45.8, 24.5)
    depth = np.where(mask, _plane_depth(CAM, NORMAL, P0), FAR).astype(np.float32)
    M = EDITS[edit]
    r = reproject(depth, mask, M, CAM, background_depth=np.full_like(depth, FAR))
    hit, src, z, amb = _expected_plane(CAM, NORMAL, P0, mask, M)
    ok = ~amb
    assert amb.sum() <= 0.03 * hit.sum()
    np.testing.assert_array_equal(r.target_masks[0][ok], hit[ok])       # the border pixels too
    both = ok & hit
    np.testing.assert_array_equal(r.source_pixel[both], src[both])
    np.testing.assert_allclose(r.depth[both], z[both], rtol=2e-6)       # float precision, border included
    assert np.all(np.abs(r.source_xy[both] - src[both]) <= 0.5 + 1e-4)
    if edit == "identity":
        np.testing.assert_array_equal(r.target_masks[0], mask)
        np.testing.assert_allclose(r.depth[mask], depth[mask], rtol=2e-6)


def _holes(mask):
    """Background pixels enclosed by the mask (a background pixel touching the outside diagonally is not)."""
    return ndi.binary_fill_holes(mask, structure=np.ones((3, 3))) & ~mask


@pytest.mark.parametrize("axis,angle,closer", [([0, 1, 0], 40.0, 0.0), ([1, 0, 0], -30.0, 0.3),
                                               ([0.3, 1, 0], 55.0, 0.0)])
def test_depth_ramp_rotated_does_not_crack(axis, angle, closer):
    # 6 % per pixel in x and in y: edge neighbours are joined (under 10 %), diagonal ones are not (12.4 %)
    cam = Camera.official(128, 128)
    v, u = np.mgrid[0:128, 0:128]
    mask = _box(cam, 50, 69, 50, 69)
    depth = np.where(mask, 1.06 ** ((u - 50) + (v - 50)), FAR).astype(np.float32)
    c = object_centroid(depth, mask, cam)
    M = make_transform(rotation_matrix(axis, angle), [0.0, 0.0, -closer * c[2]], center=c)
    r = reproject(depth, mask, M, cam, background_depth=np.full_like(depth, 1e4))
    tm = r.target_masks[0]
    assert tm.sum() > 1.5 * mask.sum() and _holes(tm).sum() == 0


def _sphere_cap(cam, centre, radius):
    rays = _rays(cam)
    b = rays @ centre
    a = (rays * rays).sum(-1)
    disc = b * b - a * (centre @ centre - radius * radius)
    hit = disc > 0
    return hit, np.where(hit, (b - np.sqrt(np.maximum(disc, 0))) / a, FAR)


@pytest.mark.parametrize("surface", ["sphere", "tilted plane"])
def test_curved_and_tilted_objects_magnified_twice_have_no_holes(surface):
    cam = Camera.official(128, 128)
    if surface == "sphere":
        mask, z = _sphere_cap(cam, np.array([0.05, -0.03, 3.0]), 0.45)
    else:
        mask = _disc(cam, 60, 66, 16)
        z = _plane_depth(cam, np.array([0.5, 0.3, 1.0]), np.array([0.0, 0.0, 3.0]))
    depth = np.where(mask, z, FAR).astype(np.float32)
    c = object_centroid(depth, mask, cam)
    r = reproject(depth, mask, make_transform(translation=[0.0, 0.0, -c[2] / 2]), cam,
                  background_depth=np.full_like(depth, FAR))
    tm = r.target_masks[0]
    assert tm.sum() > 3 * mask.sum()         # about 4x the pixels
    assert _holes(tm).sum() == 0


def test_silhouette_ramp_turned_face_on_is_cut_but_the_object_is_not():
    # a fronto-parallel slab whose left 3 columns ramp back 9 % per pixel (joined: under 10 %), like a depth
    # estimator's blurred silhouette; the photo sees the ramp almost edge-on
    cam = Camera.official(512, 512)
    mask = _box(cam, 230, 279, 230, 279)
    depth = np.full(cam.shape, FAR, np.float32)
    depth[mask] = 2.0
    for i, f in enumerate((1.09 ** 3, 1.09 ** 2, 1.09)):
        depth[230:280, 230 + i] = 2.0 * f
    c = object_centroid(np.where(mask, 2.0, FAR).astype(np.float32), mask, cam)
    bg = np.full_like(depth, 1e4)

    def parts(r):
        tm, sx = r.target_masks[0], r.source_pixel[..., 0]
        return (tm & (sx <= 232)).sum(), tm & (sx > 235)
    for angle, streak in ((-60.0, True), (60.0, True), (-5.0, False)):
        M = make_transform(rotation_matrix([0, 1, 0], angle), center=c)
        kept_ramp, kept_body = parts(reproject(depth, mask, M, cam, background_depth=bg, max_stretch=None))
        cut_ramp, cut_body = parts(reproject(depth, mask, M, cam, background_depth=bg))
        np.testing.assert_array_equal(cut_body, kept_body)         # the slab itself is untouched
        if streak:     # turned towards the camera the ramp would be a smear many times its 150 pixels
            assert kept_ramp > 20 * 150 and cut_ramp == 0
        else:          # still seen obliquely: drawn
            assert cut_ramp == kept_ramp > 0


def test_quads_cut_loose_still_show_where_their_centres_land():
    # a checkerboard of two depths 30 % apart: every quad is cut loose; pushed far back each shrinks below a
    # pixel, and the centre splats keep every source pixel visible where its centre lands
    v, u = np.mgrid[0:96, 0:96]
    mask = _box(CAM, 40, 55, 40, 55)
    depth = np.where(mask, np.where((u + v) % 2 == 0, 2.0, 2.6), FAR).astype(np.float32)
    t = np.array([0.0, 0.0, 9.0])
    r = reproject(depth, mask, make_transform(translation=t), CAM, background_depth=np.full_like(depth, 1e3))
    z = depth[mask] + t[2]
    cu = np.floor((u[mask] - CAM.cx) * depth[mask] / z + CAM.cx + 0.5).astype(int)
    cv = np.floor((v[mask] - CAM.cy) * depth[mask] / z + CAM.cy + 0.5).astype(int)
    assert r.target_masks[0][cv, cu].all()


needs_photogen = pytest.mark.skipif(not PHOTOGEN.is_dir(), reason=f"photogen test data not found at {PHOTOGEN}")


@needs_photogen
def test_photogen_magnified_object_has_no_holes_its_mask_does_not_have():
    from engine.geometry.io import read_sample
    from engine.geometry.official_edit import run_official_edit

    s = read_sample(PHOTOGEN / "car")
    r = run_official_edit(s.depth, s.mask, s.bg_depth, s.transforms["edit_002"], Camera.official(512, 512))
    assert r.visible_fraction > 1.4                           # the car comes closer: magnified
    assert _holes(s.mask).sum() == 0
    assert _holes(r.target_mask).sum() == 0
