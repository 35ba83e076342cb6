"""Background completion with a diffusers inpainting model (the tiny random-weight preset): the ``inpaint`` job,
and the ``scene`` and ``preview`` jobs' optional ``inpaint_model`` in place of OpenCV's inpainting."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from engine import model_cache  # noqa: E402
from engine.jobs import JobContext, JobError, _inpaint, job_names, load_job  # noqa: E402

FAST = {"inpaint_model": "tiny-inpainting", "inpaint_steps": 2, "inpaint_resolution": 64, "device": "cpu"}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def ctx(tmp_path):
    return JobContext("test", tmp_path / "work", lambda message: None)


@pytest.fixture
def files(tmp_path):
    """A 120x80 photo of a smooth gradient wall with a red box at 3 m in front of a wall at 6 m."""
    v, u = np.mgrid[0:80, 0:120]
    mask = (np.abs(u - 60) < 20) & (np.abs(v - 40) < 16)
    photo = np.stack([u * 2, v * 3, np.full_like(u, 99)], axis=2).astype(np.uint8)
    photo[mask] = [255, 0, 0]
    depth = np.where(mask, 3.0, 6.0).astype(np.float32)
    paths = {"photo": tmp_path / "photo.png", "mask": tmp_path / "mask.png", "depth": tmp_path / "depth.npy"}
    Image.fromarray(photo).save(paths["photo"])
    Image.fromarray(mask.astype(np.uint8) * 255).save(paths["mask"])
    np.save(paths["depth"], depth)
    return {k: str(p) for k, p in paths.items()}, photo, mask


def read(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_inpaint_job_completes_only_the_hole(ctx, files, tmp_path):
    params, photo, mask = files
    assert "inpaint" in job_names()
    result = load_job("inpaint").run({"photo": params["photo"], "mask": params["mask"], "prompt": "a wall",
                                      "model": "tiny-inpainting", "steps": 2, "resolution": 64, "dilate": 2,
                                      "device": "cpu", "output": str(tmp_path / "out" / "done.png")}, ctx)
    image = read(result["image"])
    hole = _inpaint.dilate(mask, 2)
    assert result["hole_pixels"] == int(hole.sum()) and result["model"] == "tiny-inpainting"
    assert np.array_equal(image[~hole], photo[~hole])  # the rest of the photo keeps its pixels
    assert (image[hole] != [255, 0, 0]).any(axis=1).mean() > 0.9  # the red box is gone
    assert any(key[0] == "inpainting" for key in model_cache.keys())  # kept warm for the next job


def test_inpaint_job_refuses_bad_params(ctx, files, tmp_path):
    params, _, _ = files
    base = {"photo": params["photo"], "mask": params["mask"], "model": "tiny-inpainting", "steps": 1,
            "resolution": 64, "device": "cpu", "output": str(tmp_path / "o.png")}
    empty = tmp_path / "empty.png"
    Image.new("L", (120, 80), 0).save(empty)
    small = tmp_path / "small.png"
    Image.new("L", (60, 40), 255).save(small)
    cases = [({"output": params["photo"]}, "output_is_input"), ({"output": params["mask"]}, "output_is_input"),
             ({"output": str(tmp_path / "o.jpg")}, "bad_params"), ({"model": "tiny"}, "bad_params"),
             ({"steps": 0}, "bad_params"), ({"prompt": 3}, "bad_params"), ({"mask": str(empty)}, "empty_mask"),
             ({"mask": str(small)}, "size_mismatch"), ({"photo": str(tmp_path / "nothing.png")}, "file_not_found")]
    before = read(params["photo"]).copy()
    for change, code in cases:
        with pytest.raises(JobError) as error:
            load_job("inpaint").run(dict(base, **change), ctx)
        assert error.value.code == code, (change, error.value.code, error.value.message)
    assert np.array_equal(read(params["photo"]), before) and not (tmp_path / "o.png").exists()


def test_preview_and_scene_use_the_inpainting_model_when_asked(ctx, files, tmp_path):
    from engine.geometry import Camera

    params, photo, mask = files
    camera = Camera.from_fov(120, 80, 55.0).to_dict()
    move = np.eye(4)
    move[0, 3] = 1.0  # the box moves right: its old place shows the completed background
    job = dict(params, camera=camera, transform=move.tolist())
    plain = read(load_job("preview").run(dict(job, output=str(tmp_path / "plain.png")), ctx)["frames"][0]["image"])
    _inpaint._completion_cache.clear()
    model = read(load_job("preview").run(dict(job, **FAST, output=str(tmp_path / "model.png")), ctx)["frames"][0]
                 ["image"])
    hole = _inpaint.dilate(mask, _inpaint.colour_hole_dilation(80, 120))
    revealed = hole & (model != [255, 0, 0]).any(axis=2)  # the hole where the moved box is not
    assert revealed.sum() > 100 and (model[revealed] != plain[revealed]).any(axis=1).mean() > 0.5
    assert np.array_equal(model[~hole], plain[~hole])
    (entry,) = _inpaint._completion_cache.values()  # one completion, reused by the next preview of the photo
    again = read(load_job("preview").run(dict(job, **FAST, output=str(tmp_path / "again.png")), ctx)["frames"][0]
                 ["image"])
    assert np.array_equal(again, model) and next(iter(_inpaint._completion_cache.values())) is entry

    out = tmp_path / "scene"
    texture = read(load_job("scene").run(dict(params, **FAST, fov=55.0, max_grid=40, output_dir=str(out)), ctx)
                   ["background_texture"])
    opencv = read(load_job("scene").run(dict(params, fov=55.0, max_grid=40, output_dir=str(tmp_path / "cv")), ctx)
                  ["background_texture"])
    assert np.array_equal(texture[hole], entry[hole]) and not np.array_equal(texture[hole], opencv[hole])
    with pytest.raises(JobError) as error:
        load_job("preview").run(dict(job, inpaint_model="", output=str(tmp_path / "x.png")), ctx)
    assert error.value.code == "bad_params" and "inpaint_model" in error.value.message
