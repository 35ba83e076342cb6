"""`python -m engine geometry` on a synthetic sample in the official layout (good, out-of-view and behind-camera
edits, empty mask, missing files), and on the photogen samples when ../shared/photogen is there."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import PHOTOGEN
from PIL import Image

from engine.cli import main
from engine.geometry import Camera
from engine.geometry.io import write_depth_exr
from engine.io import read_depth

EDITS = {
    "edit_000": {"translation": [0.1, 0.0, -0.2], "rotation_axis": [0.0, 1.0, 0.0], "rotation_angle": 20.0},
    "edit_001": {"translation": [-40.0, 0.0, 0.0], "rotation_axis": [0.0, 1.0, 0.0], "rotation_angle": 0.0},
    "edit_002": {"translation": [0.0, 0.0, -9.0], "rotation_axis": [0.0, 1.0, 0.0], "rotation_angle": 0.0},
}


def _sample(folder, mask_box=(20, 44, 16, 40), shape=(64, 80), edits=EDITS, far=6.0):
    folder.mkdir(parents=True, exist_ok=True)
    H, W = shape
    depth = np.full((H, W), far, np.float32)
    mask = np.zeros((H, W), np.uint8)
    if mask_box:
        v0, v1, u0, u1 = mask_box
        mask[v0:v1, u0:u1] = 255
        depth[v0:v1, u0:u1] = 2.5
    write_depth_exr(folder / "depth.exr", depth, half=True)
    write_depth_exr(folder / "bg_depth.exr", np.full((H, W), far, np.float32), half=True)
    Image.fromarray(mask).save(folder / "mask.png")
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(folder / "input.png")
    (folder / "transforms.json").write_text(edits if isinstance(edits, str) else json.dumps(edits))
    return folder


def _lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_all_edits_write_npz_and_report_bad_ones(tmp_path, capsys):
    sample = _sample(tmp_path / "toy")
    out = tmp_path / "out"
    assert main(["geometry", "--sample", str(sample), "--edit", "all", "--out-dir", str(out)]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(x) for x in captured.out.splitlines()]
    assert [x["edit"] for x in lines] == ["edit_000", "edit_001", "edit_002"]
    good, side, behind = lines
    assert all({"edit", "ms", "visible_fraction"} <= set(x) for x in lines)   # error lines too
    assert good["ok"] and good["ms"] > 0 and 0.5 < good["visible_fraction"] < 2.0
    assert not side["ok"] and "out of the frame" in side["error"]
    assert not behind["ok"] and "behind the camera" in behind["error"]
    assert side["visible_fraction"] == 0.0 and side["ms"] >= 0
    # the object is named by its mask, never "object 0"
    assert f"the object in {sample / 'mask.png'}" in side["error"] and "object 0" not in captured.err
    assert "edit_001" in captured.err and "edit_002" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["edit_000.npz"]
    z = np.load(out / "edit_000.npz")
    assert sorted(z.files) == ["correspondences", "depth", "disparity", "target_mask"]
    assert z["depth"].dtype == np.float32 and z["depth"].shape == (64, 80)
    assert z["disparity"].dtype == np.float32 and z["disparity"].min() == 0 and z["disparity"].max() == 255
    assert z["target_mask"].dtype == bool
    c = z["correspondences"]
    assert c.dtype == np.int32 and c.shape == (z["target_mask"].sum(), 4)
    assert z["target_mask"][c[:, 3], c[:, 2]].all()
    src_mask = np.asarray(Image.open(sample / "mask.png")) > 127
    assert src_mask[c[:, 1], c[:, 0]].all()


def test_single_edit_and_bad_samples(tmp_path, capsys):
    sample = _sample(tmp_path / "toy")
    assert main(["geometry", "--sample", str(sample), "--edit", "edit_000", "--out-dir", str(tmp_path / "o")]) == 0
    assert [x["edit"] for x in _lines(capsys)] == ["edit_000"]
    assert main(["geometry", "--sample", str(sample), "--edit", "nope", "--out-dir", str(tmp_path / "o")]) == 2
    assert "no edit 'nope'" in capsys.readouterr().err
    assert main(["geometry", "--sample", str(tmp_path / "missing"), "--out-dir", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    import torch

    if not torch.cuda.is_available():
        assert main(["geometry", "--sample", str(sample), "--device", "cuda", "--out-dir", str(tmp_path / "o")]) == 2
        assert "not available" in capsys.readouterr().err
    empty = _sample(tmp_path / "empty", mask_box=None)
    assert main(["geometry", "--sample", str(empty), "--out-dir", str(tmp_path / "e")]) == 1
    lines = _lines(capsys)
    assert len(lines) == 3 and all(not x["ok"] and "empty" in x["error"] for x in lines)


def test_a_malformed_entry_fails_only_its_edit(tmp_path, capsys):
    edits = ('{"short": {"translation": [0.1, 0.0], "rotation_axis": [0, 1, 0], "rotation_angle": 0},'
             ' "nan": {"translation": [NaN, 0, 0]}, "words": {"translation": "left"},'
             ' "fine": {"translation": [0.1, 0.0, 0.0], "rotation_axis": [0, 1, 0], "rotation_angle": 10}}')
    sample = _sample(tmp_path / "toy", edits=edits)
    out = tmp_path / "out"
    assert main(["geometry", "--sample", str(sample), "--out-dir", str(out)]) == 1
    lines = {x["edit"]: x for x in _lines(capsys)}
    assert list(lines) == ["short", "nan", "words", "fine"]
    for bad in ("short", "nan", "words"):
        assert not lines[bad]["ok"] and f"edit '{bad}' needs translation [x, y, z]" in lines[bad]["error"]
    assert "3 items, not 2" in lines["short"]["error"] and "nan" in lines["nan"]["error"]
    assert lines["fine"]["ok"] and sorted(p.name for p in out.iterdir()) == ["fine.npz"]


def test_a_failed_edit_removes_its_npz_from_an_earlier_run(tmp_path, capsys):
    sample = _sample(tmp_path / "toy")
    out = tmp_path / "out"
    out.mkdir()
    stale = out / "edit_001.npz"
    stale.write_bytes(b"an earlier run's result")
    assert main(["geometry", "--sample", str(sample), "--edit", "edit_001", "--out-dir", str(out)]) == 1
    captured = capsys.readouterr()
    line = json.loads(captured.out.splitlines()[0])
    assert not stale.exists() and line["removed"] == str(stale)
    assert f"removed {stale}" in captured.err


def test_an_object_pushed_too_far_to_cover_a_pixel_is_reported_as_such(tmp_path, capsys):
    # a very far background, so the object stays in front of it, in the frame, but smaller than a pixel
    sample = _sample(tmp_path / "toy", far=60000.0,
                     edits={"far": {"translation": [0.0, 0.0, 5000.0], "rotation_axis": [0, 1, 0],
                                    "rotation_angle": 0}})
    assert main(["geometry", "--sample", str(sample), "--out-dir", str(tmp_path / "out")]) == 1
    line = _lines(capsys)[0]
    assert not line["ok"] and "too small to cover a pixel" in line["error"] and "bring it closer" in line["error"]


def test_keep_freed_memory_takes_effect_on_glibc():
    import platform

    from engine.geometry.arrays import keep_freed_memory

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert keep_freed_memory() is True


def test_exr_round_trip(tmp_path):
    d = np.random.default_rng(0).random((5, 7)).astype(np.float32) + 1
    write_depth_exr(tmp_path / "d.exr", d)
    np.testing.assert_array_equal(read_depth(tmp_path / "d.exr"), d)


needs_photogen = pytest.mark.skipif(not PHOTOGEN.is_dir(), reason=f"photogen test data not found at {PHOTOGEN}")


@needs_photogen
def test_photogen_stale_edits_are_reported_and_the_rest_complete(tmp_path, capsys):
    assert main(["geometry", "--sample", str(PHOTOGEN / "red_block"), "--out-dir", str(tmp_path)]) == 1
    lines = {x["edit"]: x for x in _lines(capsys)}
    assert not lines["edit_000"]["ok"] and not lines["edit_001"]["ok"]
    assert lines["edit_002"]["ok"] and lines["edit_002"]["visible_fraction"] > 0.9
    assert (tmp_path / "edit_002.npz").is_file()


@needs_photogen
def test_photogen_moved_object_agrees_with_the_official_splatting():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from bench_geometry import agreement, baseline_reproject

    from engine.geometry import object_centroid, official_edit_to_matrix, reproject
    from engine.geometry.depth_fill import dilate, fill_depth_hole
    from engine.geometry.io import read_sample

    s = read_sample(PHOTOGEN / "milk_carton")
    cam = Camera.official(512, 512)
    e = s.transforms["edit_002"]
    M = official_edit_to_matrix(e["translation"], e["rotation_axis"], e["rotation_angle"],
                                object_centroid(s.depth, s.mask, cam))
    bg = fill_depth_hole(s.depth, dilate(s.mask, 15), guide=s.bg_depth)
    r = reproject(s.depth, s.mask, M, cam, background_depth=bg)
    off_mask, off_corr = baseline_reproject(s.depth.astype(np.float64), bg.astype(np.float64), s.mask, M, cam)
    a = agreement(r.target_masks[0], r.correspondences(0), off_mask, off_corr)
    assert a["iou_unshifted"] > 0.95 and a["src_within_2px"] > 0.98
    # identity: the object stays exactly where it was
    r0 = reproject(s.depth, s.mask, np.eye(4), cam, background_depth=bg)
    c = r0.correspondences(0)
    np.testing.assert_array_equal(c[:, :2], c[:, 2:])
    assert r0.visible_fraction[0] > 0.98
