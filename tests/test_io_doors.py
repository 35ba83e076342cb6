"""Every door reads photos, masks and depth through engine.io: the ``edit`` and ``geometry`` commands and the
``scene``, ``preview`` and ``edit`` jobs give the same arrays for an RGBA cut-out, a phone JPEG stored turned, a
16-bit PNG or ``R``-channel EXR depth, and the same typed errors for bad inputs. (The Blender door:
tests/test_blender_photo_inputs.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from test_io_readers import cutout, oriented_jpeg, smooth_photo, true_mask, write_exr

from engine import io
from engine.cli import main
from engine.errors import BadInput, BadParams, InputNotFound, SizeMismatch
from engine.geometry import Camera, make_transform
from engine.geometry.io import write_depth_exr
from engine.jobs import JobContext, load_job

H, W = 48, 64
def scene_files(folder, height=H, width=W):
    """A wall at 5 m and a disc-shaped object at 3 m: photo, a cut-out mask (its alpha is the mask), 16-bit PNG
    depth in millimetres, an EXR depth in channel R, a transform."""
    folder.mkdir(parents=True, exist_ok=True)
    mask = true_mask(height, width)
    depth = np.where(mask, 3.0, 5.0).astype(np.float32)
    Image.fromarray(smooth_photo(height, width)).save(folder / "photo.png")
    cutout(folder / "cut.png", mask)
    Image.fromarray((depth * 1000).astype(np.uint16)).save(folder / "depth16.png")
    write_exr(folder / "depth_r.exr", {"R": depth, "G": depth, "B": depth})
    (folder / "t.json").write_text(json.dumps(make_transform(translation=[0.1, 0.0, 0.0]).tolist()))
    return {k: str(folder / n) for k, n in (("photo", "photo.png"), ("mask", "cut.png"), ("depth", "depth16.png"),
                                             ("exr", "depth_r.exr"), ("transform", "t.json"))}, mask, depth


@pytest.fixture
def ctx(tmp_path):
    return JobContext("test", tmp_path / "work", lambda message: None)


# --- the edit command --------------------------------------------------------------------------------------
def test_edit_command_reads_cutout_16_bit_and_exr_depth(tmp_path, capsys):
    from engine.diffusion.inputs import request_from_files

    files, mask, depth = scene_files(tmp_path)
    for depth_file in (files["depth"], files["exr"]):
        request = request_from_files(files["photo"], files["mask"], depth_file, files["transform"])
        assert (request.mask == mask).all() and np.allclose(request.depth, depth)
    # the files are read, then the (missing) model is what stops it
    assert main(["edit", "--photo", files["photo"], "--mask", files["mask"], "--depth", files["depth"],
                 "--transform", files["transform"], "--out", str(tmp_path / "o.png"),
                 "--model", str(tmp_path / "no-model")]) == 1
    assert "no-model" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["small mask", "small depth", "missing depth", "nul", "bomb"])
def test_edit_command_refuses_bad_inputs_before_any_work(tmp_path, capsys, monkeypatch, bad):
    files, mask, depth = scene_files(tmp_path)
    said = {"small mask": "The mask is 32x24 pixels but the photo is 64x48",
            "small depth": "The depth map is 32x24 pixels but the photo is 64x48",
            "missing depth": "does not exist", "nul": "NUL byte", "bomb": "decompression bomb"}[bad]
    if bad == "small mask":
        Image.fromarray(true_mask(24, 32).astype(np.uint8) * 255).save(tmp_path / "small.png")
        files["mask"] = str(tmp_path / "small.png")
    elif bad == "small depth":
        np.save(tmp_path / "small.npy", np.full((24, 32), 4.0, np.float32))
        files["depth"] = str(tmp_path / "small.npy")
    elif bad == "missing depth":
        files["depth"] = str(tmp_path / "nope.exr")
    elif bad == "nul":
        files["photo"] = files["photo"] + "\x00.png"
    else:
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    out = tmp_path / "out.png"
    assert main(["edit", "--photo", files["photo"], "--mask", files["mask"], "--depth", files["depth"],
                 "--transform", files["transform"], "--out", str(out), "--model", "no-such-model"]) == 1
    assert said in capsys.readouterr().err and not out.exists()


# --- the geometry command ----------------------------------------------------------------------------------
def geometry_sample(folder, mask_png, shape=(H, W)):
    folder.mkdir(parents=True, exist_ok=True)
    mask = true_mask(*shape)
    depth = np.where(mask, 3.0, 5.0).astype(np.float32)
    Image.fromarray(smooth_photo(*shape)).save(folder / "input.png")
    write_depth_exr(folder / "depth.exr", depth, half=True)
    mask_png(folder / "mask.png", mask)
    (folder / "transforms.json").write_text(json.dumps(
        {"edit_000": {"translation": [0.1, 0.0, 0.0], "rotation_axis": [0, 1, 0], "rotation_angle": 10.0}}))
    return folder


def test_geometry_command_cutout_equals_white_on_black(tmp_path, capsys):
    def white(path, mask):
        Image.fromarray(mask.astype(np.uint8) * 255).save(path)

    outputs = []
    for name, writer in (("white", white), ("cut", cutout)):
        sample = geometry_sample(tmp_path / name, writer)
        assert main(["geometry", "--sample", str(sample), "--out-dir", str(tmp_path / f"o_{name}")]) == 0
        outputs.append(np.load(tmp_path / f"o_{name}" / "edit_000.npz"))
    for key in ("depth", "target_mask", "correspondences"):
        np.testing.assert_array_equal(outputs[0][key], outputs[1][key])


def test_geometry_command_refuses_a_mask_of_another_size(tmp_path, capsys):
    def small(path, mask):
        Image.fromarray(true_mask(24, 32).astype(np.uint8) * 255).save(path)

    sample = geometry_sample(tmp_path / "s", small)
    assert main(["geometry", "--sample", str(sample), "--out-dir", str(tmp_path / "o")]) == 2
    assert "mask (mask.png) is 32x24 pixels but the photo is 64x48" in capsys.readouterr().err


# --- the jobs ----------------------------------------------------------------------------------------------
def test_scene_job_phone_jpeg_with_stored_size_depth_and_cutout(tmp_path, ctx):
    displayed_mask = true_mask(96, 64)
    depth = np.where(displayed_mask, 3.0, 5.0).astype(np.float32)
    photo = smooth_photo(96, 64)
    jpeg = oriented_jpeg(tmp_path / "phone.jpg", photo)
    np.save(tmp_path / "stored_depth.npy", np.rot90(depth, 1))  # made from the stored (landscape) pixels
    cutout(tmp_path / "cut.png", displayed_mask)
    result = load_job("scene").run({"photo": str(jpeg), "depth": str(tmp_path / "stored_depth.npy"),
                                    "mask": str(tmp_path / "cut.png"), "output_dir": str(tmp_path / "out")}, ctx)
    assert (result["width"], result["height"]) == (64, 96)
    assert result["mask_pixels"] == displayed_mask.sum() and result["depth_range"] == [3.0, 5.0]
    texture = np.asarray(Image.open(result["photo_texture"]).convert("RGB")).astype(int)
    assert texture.shape == photo.shape and np.abs(texture - photo).mean() < 2.0


@pytest.mark.parametrize("job", ["scene", "preview", "edit"])
@pytest.mark.parametrize("bad", ["small mask", "small depth", "missing mask", "nul", "list", "bomb"])
def test_jobs_refuse_bad_inputs_with_typed_errors(tmp_path, ctx, monkeypatch, job, bad):
    files, _, _ = scene_files(tmp_path)
    params = {"photo": files["photo"], "mask": files["mask"], "depth": files["exr"]}
    # a NUL byte in a job parameter is a wrong parameter (engine.params names the field), in a command's path a
    # bad input (test_edit_command_refuses_bad_inputs)
    error = {"small mask": SizeMismatch, "small depth": SizeMismatch, "missing mask": InputNotFound,
             "nul": BadParams, "list": BadParams, "bomb": BadInput}[bad]
    if bad == "small mask":
        cutout(tmp_path / "small.png", true_mask(24, 32))
        params["mask"] = str(tmp_path / "small.png")
    elif bad == "small depth":
        write_exr(tmp_path / "small.exr", {"Y": np.full((24, 32), 4.0)})
        params["depth"] = str(tmp_path / "small.exr")
    elif bad == "missing mask":
        params["mask"] = str(tmp_path / "nope.png")
    elif bad == "nul":
        params["depth"] = str(tmp_path / "depth\x00.exr")
    elif bad == "list":
        params["photo"] = [files["photo"]]
    else:
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    camera = Camera.official(W, H, 55.0).to_dict()
    transform = make_transform(translation=[0.1, 0.0, 0.0]).tolist()
    extra = {"scene": {"output_dir": str(tmp_path / "out")},
             "preview": {"camera": camera, "transform": transform, "output": str(tmp_path / "p.png")},
             "edit": {"camera": camera, "transform": transform, "output": str(tmp_path / "e.png"),
                      "model": "no-such-model"}}[job]
    with pytest.raises(error):
        load_job(job).run(dict(params, **extra), ctx)
    assert not (tmp_path / "p.png").exists() and not (tmp_path / "e.png").exists()


def test_preview_job_reads_the_cutout_like_the_edit_command(tmp_path, ctx):
    files, mask, _ = scene_files(tmp_path)
    params = {"photo": files["photo"], "mask": files["mask"], "depth": files["depth"],
              "camera": Camera.official(W, H, 55.0).to_dict(), "output": str(tmp_path / "p.png"),
              "transform": np.eye(4).tolist(), "save_arrays": True}
    frame = load_job("preview").run(params, ctx)["frames"][0]
    assert np.array_equal(np.load(frame["target_mask"]), mask)  # the identity moves nothing: the mask itself
    assert np.array_equal(io.read_mask(files["mask"]), mask)
