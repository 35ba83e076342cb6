"""The engine side of the photo import and preview: the ``scene`` and ``preview`` jobs, called directly and through
the one-shot ``python -m engine job`` command (no bpy here)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from engine.errors import BadGeometry
from engine.geometry import Camera, make_transform, reproject
from engine.jobs import JobContext, JobError, _photo_inputs, preview, scene


def write_inputs(folder, width=120, height=80, background=False):
    """A wall at 6 m with a red box at 3 m; the wall's colours encode the pixel, the background image is flat
    blue."""
    v, u = np.mgrid[0:height, 0:width]
    depth = np.full((height, width), 6.0, np.float32)
    mask = (np.abs(u - width / 2) < width / 6) & (np.abs(v - height / 2) < height / 5)
    depth[mask] = 3.0
    photo = np.stack([u * 2 % 256, v * 3 % 256, np.full_like(u, 99)], axis=2).astype(np.uint8)
    photo[mask] = [255, 0, 0]
    paths = {"photo": folder / "photo.png", "depth": folder / "depth.npy", "mask": folder / "mask.png"}
    Image.fromarray(photo).save(paths["photo"])
    np.save(paths["depth"], depth)
    Image.fromarray(mask.astype(np.uint8) * 255).save(paths["mask"])
    if background:
        paths["bg"] = folder / "bg.png"
        Image.new("RGB", (width, height), (0, 0, 255)).save(paths["bg"])
    return {k: str(p) for k, p in paths.items()}, photo, depth, mask


@pytest.fixture
def ctx(tmp_path):
    return JobContext("test", tmp_path / "work", lambda message: None)


def test_scene_decimates_covers_the_image_and_composites_the_background(tmp_path, ctx):
    params, photo, _, mask = write_inputs(tmp_path, background=True)
    result = scene.run(dict(params, fov=60.0, max_grid=20, output_dir=str(tmp_path / "out")), ctx)
    assert result["grid_step"] == 6 and result["object_step"] == 1
    assert result["camera"] == Camera.official(120, 80, 60.0).to_dict()
    uv = np.load(result["background"]["uv"])
    quads = np.load(result["background"]["quads"])
    # edge to edge: 120 x 80 in cells of 6 is 20 x 14 cells, the last row of cells reaching 4 pixels past the photo's
    # bottom edge (outside the camera's frame), so that every cell is the same size and planes stay exact
    assert uv.min(0).tolist() == [0.0, pytest.approx(-4 / 80)] and uv.max(0).tolist() == [1.0, 1.0]
    assert len(quads) == 20 * 14  # the hole is filled, so nothing to tear: every cell is a face
    assert np.load(result["object"]["quads"]).shape == (mask.sum(), 4)
    points = np.load(result["background"]["points"])
    assert np.allclose(points[:, 2], 6.0, atol=1e-4)  # the box is gone from the background: a flat wall

    texture = np.asarray(Image.open(result["background_texture"]).convert("RGB"))
    assert (texture[mask] == [0, 0, 255]).all()
    far = np.ones_like(mask)
    far[10:-10, 15:-15] = False
    assert np.array_equal(texture[far], photo[far])


def test_depth_as_16_bit_png_in_millimetres(tmp_path, ctx):
    params, _, depth, _ = write_inputs(tmp_path)
    Image.fromarray((depth * 1000).astype(np.uint16)).save(tmp_path / "depth16.png")
    result = scene.run(dict(params, depth=str(tmp_path / "depth16.png"), fov=55.0), ctx)
    assert result["depth_range"] == [3.0, 6.0]
    Image.fromarray((depth * 10).astype(np.uint8)).save(tmp_path / "depth8.png")
    with pytest.raises(JobError, match="8 bits per pixel"):
        scene.run(dict(params, depth=str(tmp_path / "depth8.png")), ctx)


def test_preview_fills_revealed_background_and_never_overwrites_inputs(tmp_path, ctx):
    params, photo, depth, mask = write_inputs(tmp_path, background=True)
    camera = Camera.official(120, 80, 55.0)
    move = make_transform(translation=[1.2, 0.0, 0.0])
    output = tmp_path / "preview.png"
    result = preview.run(dict(params, camera=camera.to_dict(), transform=move.tolist(), output=str(output),
                              save_arrays=True), ctx)
    image = np.asarray(Image.open(output).convert("RGB"))
    r = reproject(depth, mask, move, camera)
    target = np.asarray(r.target_masks[0])
    assert np.array_equal(np.load(result["frames"][0]["target_mask"]), target)
    pairs = np.load(result["frames"][0]["correspondences"])
    assert np.array_equal(pairs, np.asarray(r.correspondences(0)))
    assert np.array_equal(image[pairs[:, 3], pairs[:, 2]], photo[pairs[:, 1], pairs[:, 0]])
    revealed = mask & ~target
    assert revealed.sum() > 50 and (image[revealed] == [0, 0, 255]).all()

    # a second preview reuses the filled background depth of the first, with the same result
    assert len(preview._background_cache) == 1
    again = tmp_path / "again.png"
    preview.run(dict(params, camera=camera.to_dict(), transform=move.tolist(), output=str(again)), ctx)
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(output)))

    before = (tmp_path / "photo.png").read_bytes()
    with pytest.raises(JobError, match="never overwrite"):
        preview.run(dict(params, camera=camera.to_dict(), transform=move.tolist(), output=params["photo"]), ctx)
    assert (tmp_path / "photo.png").read_bytes() == before


def test_preview_without_background_inpaints(tmp_path, ctx):
    params, photo, depth, mask = write_inputs(tmp_path)
    camera = Camera.official(120, 80, 55.0)
    move = make_transform(translation=[1.2, 0.0, 0.0])
    output = tmp_path / "preview.png"
    preview.run(dict(params, camera=camera.to_dict(), transform=move.tolist(), output=str(output)), ctx)
    image = np.asarray(Image.open(output).convert("RGB")).astype(int)
    revealed = mask & ~np.asarray(reproject(depth, mask, move, camera).target_masks[0])
    # inpainting continues the wall (blue 99 everywhere), not the red box that stood there
    assert revealed.sum() > 50
    assert np.abs(image[revealed][:, 2] - 99).max() <= 5 and (image[revealed][:, 0] < 250).all()


def test_scene_job_through_the_one_shot_command(tmp_path, repo_root):
    params, _, _, _ = write_inputs(tmp_path)
    params_file = tmp_path / "params.json"
    params_file.write_text(json.dumps(dict(params, output_dir=str(tmp_path / "out"))))
    done = subprocess.run([sys.executable, "-m", "engine", "job", "scene", "--params", str(params_file)],
                          cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])["result"]
    assert result["fov_source"] == "default" and result["fov_deg"] == 55.0
    assert result["fov_note"] == "the default: the photo has no EXIF data"

    params_file.write_text(json.dumps(dict(params, mask=str(tmp_path / "missing.png"))))
    done = subprocess.run([sys.executable, "-m", "engine", "job", "scene", "--params", str(params_file)],
                          cwd=repo_root, capture_output=True, text=True, timeout=120)
    error = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 1 and error["code"] == "file_not_found" and "missing.png" in error["message"]


def jpeg_with_exif(path, size, **tags):
    """A JPEG whose EXIF sub-IFD holds ``tags`` (tag number as ``t<number>``), as a camera writes them."""
    from PIL.TiffImagePlugin import IFDRational

    exif = Image.Exif()
    ifd = exif.get_ifd(0x8769)
    for name, value in tags.items():
        ifd[int(name[1:])] = IFDRational(round(value * 1000), 1000) if isinstance(value, float) else value
    Image.new("RGB", size, (90, 90, 90)).save(path, exif=exif, quality=90)
    return path


FOCAL, X_RES, Y_RES, UNIT, PIXEL_X, PIXEL_Y, FOCAL_35 = (f"t{t}" for t in (37386, 41486, 41487, 41488, 40962, 40963,
                                                                               41989))


def test_exif_focal_length_with_the_focal_plane_resolution(tmp_path):
    """A phone's JPEG: no 35 mm tag, a 4.2 mm focal length and a 6.3 x 4.2 mm sensor given as pixels per cm, for
    the 3000 x 2000 image it wrote; the photo is that image resized to 300 x 200 (portrait: the sensor's height)."""
    expected = math.degrees(2 * math.atan(6.3 / (2 * 4.2)))
    sensor = {FOCAL: 4.2, X_RES: 3000 / 0.63, Y_RES: 2000 / 0.42, UNIT: 3, PIXEL_X: 3000, PIXEL_Y: 2000}
    fov, source, note = _photo_inputs.resolve_fov(None, jpeg_with_exif(tmp_path / "a.jpg", (300, 200), **sensor), 300,
                                                  200)
    assert source == "exif_focal_plane" and math.isclose(fov, expected, rel_tol=1e-4)
    assert "focal length, 4.2 mm" in note and "6.30 mm" in note
    portrait = dict(sensor, **{X_RES: 2000 / 0.42, Y_RES: 3000 / 0.63, PIXEL_X: 2000, PIXEL_Y: 3000})
    fov, source, _ = _photo_inputs.resolve_fov(None, jpeg_with_exif(tmp_path / "p.jpg", (200, 300), **portrait), 200,
                                               300)
    assert source == "exif_focal_plane" and math.isclose(fov, expected, rel_tol=1e-4)
    # in inches (the EXIF default unit, also when the unit tag is missing), without the pixel dimensions
    inches = {FOCAL: 4.2, X_RES: 300 / (6.3 / 25.4), Y_RES: 200 / (4.2 / 25.4)}
    fov, source, _ = _photo_inputs.resolve_fov(None, jpeg_with_exif(tmp_path / "i.jpg", (300, 200), **inches), 300, 200)
    assert source == "exif_focal_plane" and math.isclose(fov, expected, rel_tol=1e-4)


def test_exif_35_mm_tag_wins_and_unusable_exif_says_why(tmp_path):
    both = jpeg_with_exif(tmp_path / "b.jpg", (300, 200), **{FOCAL: 4.2, X_RES: 500.0, UNIT: 3, FOCAL_35: 24})
    fov, source, note = _photo_inputs.resolve_fov(None, both, 300, 200)
    assert source == "exif_35mm" and "35 mm equivalent focal length, 24 mm" in note
    assert math.isclose(fov, math.degrees(2 * math.atan(36 / 48)), rel_tol=1e-6)  # 36 mm long side for 3:2
    focal_only = jpeg_with_exif(tmp_path / "f.jpg", (300, 200), **{FOCAL: 4.2})
    assert _photo_inputs.resolve_fov(None, focal_only, 300, 200) == (55.0, "default", (
        "the default: the photo's EXIF has a focal length (4.2 mm) but no focal plane resolution, so the sensor "
        "size is unknown"))
    Image.new("RGB", (30, 20)).save(tmp_path / "plain.png")
    assert _photo_inputs.resolve_fov(None, tmp_path / "plain.png", 30, 20) == (
        55.0, "default", "the default: the photo has no EXIF data")
    assert _photo_inputs.resolve_fov(40, both, 300, 200) == (40.0, "given", "as given")


def test_scene_result_says_where_the_field_of_view_came_from(tmp_path, ctx):
    params, photo, _, _ = write_inputs(tmp_path)
    jpeg = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif.get_ifd(0x8769).update({37386: 5.0, 41486: 120 / 0.6, 41487: 80 / 0.4, 41488: 3})
    Image.fromarray(photo).save(jpeg, exif=exif, quality=100)
    result = scene.run(dict(params, photo=str(jpeg)), ctx)
    assert result["fov_source"] == "exif_focal_plane" and "focal plane" in result["fov_note"]
    assert math.isclose(result["fov_deg"], math.degrees(2 * math.atan(6.0 / 10.0)), rel_tol=1e-4)


def test_preview_reports_visible_share_and_on_screen_size_apart(tmp_path, ctx):
    """Brought to half its distance the box is 4x its size on screen, all of it visible (the geometry's
    visible_fraction says 4); moved until half of it leaves the frame, half of it is visible at 1x."""
    params, _, _, _ = write_inputs(tmp_path)
    camera = Camera.official(120, 80, 55.0)
    closer = make_transform(translation=[0.0, 0.0, -1.5])  # the box is at 3 m
    sideways = make_transform(translation=[(119.5 - 59.5) * 3.0 / camera.fx, 0.0, 0.0])  # its centre to the edge
    frames = preview.run(dict(params, camera=camera.to_dict(), transforms=[closer.tolist(), sideways.tolist()],
                              outputs=[str(tmp_path / "a.png"), str(tmp_path / "b.png")]), ctx)["frames"]
    assert math.isclose(frames[0]["visible_fraction"], 4.0, rel_tol=0.02)
    assert math.isclose(frames[0]["screen_scale"], 4.0, rel_tol=1e-9) and frames[0]["visible_share"] == 1.0
    assert math.isclose(frames[1]["screen_scale"], 1.0, rel_tol=1e-9)
    assert 0.45 < frames[1]["visible_share"] < 0.55


def test_a_turned_object_in_full_view_reads_as_all_visible(photogen, ctx, tmp_path):
    """chair_2 edit_000 turns the chair (its back then hides part of its front, and the silhouette ramps the edit
    turns face-on are cut): nothing of it is behind the background and nearly all of it is in the frame, so the
    preview calls it all but fully visible, not the half that its surface's total area would suggest."""
    from engine.geometry import object_centroid, official_edit_to_matrix
    from engine.geometry.io import edit_parameters, read_sample

    sample = read_sample(photogen / "chair_2")
    camera = Camera.official(512, 512, 55.0)
    edit = edit_parameters("transforms.json", "edit_000", sample.transforms["edit_000"])
    turn = official_edit_to_matrix(edit["translation"], edit["rotation_axis"], edit["rotation_angle"],
                                   object_centroid(sample.depth, sample.mask, camera))
    folder = photogen / "chair_2"
    params = {"photo": str(folder / "input.png"), "depth": str(folder / "depth.exr"), "mask": str(folder / "mask.png"),
              "bg": str(folder / "bg.png"), "bg_depth": str(folder / "bg_depth.exr"), "camera": camera.to_dict(),
              "transform": turn.tolist(), "output": str(tmp_path / "turned.png")}
    frame = preview.run(params, ctx)["frames"][0]
    assert 0.95 < frame["visible_share"] <= 1.0


def test_a_failed_scene_job_waits_for_its_texture(tmp_path, ctx, monkeypatch):
    """The background texture (possibly a diffusion inpainting model) is made beside the meshes; when the meshes
    fail, the job ends only after the texture work has, so it never runs on into the next job."""
    import time

    ended = []

    def slow_texture(*args):
        time.sleep(0.5)
        ended.append(True)

    monkeypatch.setattr(scene, "_write_texture", slow_texture)
    params, _, _, _ = write_inputs(tmp_path)

    def failing_mesh(*args):
        raise BadGeometry("the meshes failed")

    monkeypatch.setattr(scene, "_background_mesh", failing_mesh)  # fails after the texture work has started
    with pytest.raises(BadGeometry, match="meshes failed"):
        scene.run(dict(params, output_dir=str(tmp_path / "out")), ctx)
    assert ended == [True]
