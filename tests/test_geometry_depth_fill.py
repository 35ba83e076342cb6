"""Harmonic depth fill (exact on harmonic functions, equal to a direct sparse solve), hole dilation, disparity."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import scipy.sparse.linalg
import torch

from engine.geometry import GeometryError, dilate, fill_depth_hole, normalised_disparity, resample_to_grid
from engine.geometry.depth_fill import HoleSystem


def _ramp(H, W):
    v, u = np.mgrid[0:H, 0:W]
    return (2.0 + 0.01 * u + 0.02 * v).astype(np.float64)


def _blob(H, W, cy, cx, r):
    v, u = np.mgrid[0:H, 0:W]
    return (v - cy) ** 2 + 0.5 * (u - cx) ** 2 < r * r


def test_linear_depth_is_recovered_exactly_small_and_multigrid_sized():
    for H, W, r in ((40, 50, 10), (200, 180, 60)):   # the second has > 4000 unknowns: multigrid path
        truth = _ramp(H, W)
        hole = _blob(H, W, H // 2, W // 2, r)
        d = truth.copy()
        d[hole] = 100.0
        out = fill_depth_hole(d.astype(np.float32), hole)
        np.testing.assert_allclose(out, truth, rtol=2e-6)


def test_guided_fill_keeps_the_guide_detail():
    H, W = 64, 80
    rng = np.random.default_rng(3)
    guide = 3.0 + rng.random((H, W))
    truth = guide + 0.5 - 0.003 * np.mgrid[0:H, 0:W][1]    # guide plus a harmonic (linear) offset
    hole = _blob(H, W, 30, 40, 15)
    d = truth.copy()
    d[hole] = 1.0
    out = fill_depth_hole(d, hole, guide=guide)
    np.testing.assert_allclose(out, truth, rtol=1e-5)


def test_multigrid_matches_a_direct_solve_on_a_ragged_hole_at_the_border():
    H, W = 160, 200
    rng = np.random.default_rng(5)
    d = 2.0 + rng.random((H, W))
    hole = scipy.ndimage.binary_dilation(rng.random((H, W)) > 0.97, iterations=4)
    hole[:, :30] |= _blob(H, W, 80, 0, 60)[:, :30]       # touches the image border: Neumann there
    system = HoleSystem(hole)
    A, b, flat = system.A, system.rhs(d), system.flat
    assert A.shape[0] > 4000
    exact = d.copy().reshape(-1)
    exact[flat] = scipy.sparse.linalg.spsolve(A.tocsc(), b)
    out = fill_depth_hole(d, hole)
    np.testing.assert_allclose(out.reshape(-1), exact, rtol=1e-5)
    assert np.all(out[~hole] == d[~hole].astype(np.float32))


def test_fill_accepts_torch_and_reports_impossible_holes():
    d = torch.full((20, 30), 4.0)
    hole = torch.zeros(20, 30, dtype=torch.bool)
    hole[5:10, 5:10] = True
    out = fill_depth_hole(d, hole)
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out, d)
    with pytest.raises(GeometryError, match="whole image"):
        fill_depth_hole(np.ones((8, 8)), np.ones((8, 8), bool))
    np.testing.assert_array_equal(fill_depth_hole(np.ones((8, 8)), np.ones((8, 8), bool), guide=np.full((8, 8), 2.0)),
                                  2.0)


def test_dilate_is_the_official_iterated_cross_dilation():
    rng = np.random.default_rng(2)
    m = rng.random((60, 70)) > 0.995
    for r in (1, 4, 15):
        np.testing.assert_array_equal(dilate(m, r), scipy.ndimage.binary_dilation(m, iterations=r))


def test_disparity_is_official_min_max_normalised_inverse_depth():
    d = np.array([[1.0, 2.0], [4.0, 0.5]], np.float32)
    disp = normalised_disparity(d)
    inv = 1 / d
    np.testing.assert_allclose(disp, 255 * (inv - inv.min()) / (inv.max() - inv.min()), rtol=1e-6)
    assert disp.dtype == np.float32 and disp.max() == pytest.approx(255) and disp.min() == 0
    np.testing.assert_array_equal(normalised_disparity(np.full((3, 3), 2.0)), 0)
    t = normalised_disparity(torch.tensor(d))
    assert isinstance(t, torch.Tensor)
    with pytest.raises(GeometryError):
        normalised_disparity(np.zeros((2, 2)))


def test_resample_to_latent_grid():
    a = np.arange(64, dtype=np.float32).reshape(8, 8)
    small = resample_to_grid(a, (2, 2), mode="area")
    np.testing.assert_allclose(small, [[a[:4, :4].mean(), a[:4, 4:].mean()], [a[4:, :4].mean(), a[4:, 4:].mean()]])
    m = np.zeros((8, 8), bool)
    m[:4] = True
    np.testing.assert_array_equal(resample_to_grid(m, (4, 4), mode="nearest"), [[1] * 4] * 2 + [[0] * 4] * 2)
    assert resample_to_grid(torch.ones(3, 16, 16), (4, 4)).shape == (3, 4, 4)
    with pytest.raises(ValueError):
        resample_to_grid(a, (2, 2), mode="lanczos")


def test_latent_depth_condition_matches_the_official_init_depth():
    from engine.geometry import latent_depth_condition

    rng = np.random.default_rng(4)
    disp = normalised_disparity((1.0 + rng.random((64, 48))).astype(np.float32))
    out = latent_depth_condition(disp, (16, 12))
    t = torch.nn.functional.interpolate(torch.from_numpy(disp)[None, None], size=(16, 12), mode="bicubic",
                                        align_corners=False)
    t = 2.0 * (t - t.min()) / (t.max() - t.min()) - 1.0
    np.testing.assert_allclose(out, t[0, 0].numpy(), atol=1e-6)
    assert out.min() == -1.0 and out.max() == pytest.approx(1.0)


def test_repeated_holes_reuse_their_system_and_stay_exact():
    from engine.geometry import depth_fill

    depth_fill.clear_cache()
    H, W = 120, 140
    hole = _blob(H, W, 60, 70, 40)
    rng = np.random.default_rng(9)
    for k in range(3):                    # same hole, different depths: every answer is the exact fill
        truth = _ramp(H, W) * (1 + k) + rng.random()
        d = truth.copy()
        d[hole] = 0.5
        np.testing.assert_allclose(fill_depth_hole(d, hole), truth, rtol=2e-6)
    assert len(depth_fill._SYSTEMS) == 1
    for r in range(10, 16):               # new holes push old ones out; the cache stays small
        fill_depth_hole(_ramp(H, W), _blob(H, W, 60, 70, r))
    assert len(depth_fill._SYSTEMS) == depth_fill._KEEP


def test_repeated_fills_are_served_from_the_kept_result_only_for_identical_inputs(monkeypatch):
    from engine.geometry import depth_fill

    depth_fill.clear_cache()
    solves = []
    real = depth_fill._harmonic
    monkeypatch.setattr(depth_fill, "_harmonic", lambda v, h: solves.append(1) or real(v, h))
    H, W = 60, 70
    hole = _blob(H, W, 30, 35, 12)
    d = _ramp(H, W).astype(np.float32)
    d[hole] = 9.0
    guide = (_ramp(H, W) + 0.25).astype(np.float32)
    first = fill_depth_hole(d, hole, guide=guide)
    again = fill_depth_hole(d.copy(), hole.copy(), guide=guide.copy())   # equal content, new arrays
    assert len(solves) == 1
    np.testing.assert_array_equal(first, again)
    again[:] = -1.0                                   # what the caller does to its result stays its own
    np.testing.assert_array_equal(fill_depth_hole(d, hole, guide=guide), first)
    t = fill_depth_hole(torch.from_numpy(d), torch.from_numpy(hole), guide=torch.from_numpy(guide))
    assert isinstance(t, torch.Tensor) and len(solves) == 1
    # any change to any input is a new fill
    d2 = d.copy()
    d2[0, 0] += 1e-3
    for args in ((d2, hole, guide), (d, _blob(H, W, 30, 35, 11), guide), (d, hole, guide + 1e-3), (d, hole, None)):
        fill_depth_hole(args[0], args[1], guide=args[2])
    assert len(solves) == 5
    assert len(depth_fill._FILLS) == depth_fill._KEEP  # bounded: the oldest went
