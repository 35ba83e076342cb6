"""The diffusion jobs (invert, edit, estimate_depth, segment) with the tiny presets, run in-process."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from engine.jobs import JobContext, JobError, load_job  # noqa: E402

SETTINGS = {"resolution": 64, "num_steps": 4, "guided_steps": 3, "opt_steps": 1, "null_inner_steps": 1}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def ctx(tmp_path):
    messages = []
    context = JobContext("test", tmp_path / "work", messages.append)
    context.messages = messages
    return context


@pytest.fixture(scope="module")
def photo_files(photogen, tmp_path_factory):
    from engine.io import read_depth

    folder = tmp_path_factory.mktemp("photo")
    np.save(folder / "depth.npy", read_depth(photogen / "chair" / "depth.exr"))
    return {"photo": str(photogen / "chair" / "input.png"), "mask": str(photogen / "chair" / "mask.png"),
            "depth": str(folder / "depth.npy"), "prompt": "a chair desk and cupboard", "model": "tiny",
            "device": "cpu", "settings": SETTINGS}


def _move(x):
    return [[1, 0, 0, x], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]


def test_invert_then_edit_frames_share_one_inversion(ctx, photo_files, tmp_path):
    params = dict(photo_files, cache_dir=str(tmp_path / "cache"))
    first = load_job("invert").run(params, ctx)
    assert first["cache"] == "miss" and first["unet_evals"] > 0
    outputs = [str(tmp_path / f"frame_{i}.png") for i in range(2)]
    result = load_job("edit").run(dict(params, transforms=[_move(0.1), _move(0.2)], outputs=outputs), ctx)
    frames = result["frames"]
    assert [f["cache"] for f in frames] == ["hit", "hit"]
    for frame in frames:
        report = json.loads(open(frame["report"]).read())
        assert report["losses"] and report["stages"]["guided_sampling"]["unet_evals"] > 0
        assert frame["image"].endswith(".png") and frame["report"].endswith(".json")
    assert any(m["type"] == "progress" and m["stage"] == "edit" for m in ctx.messages)


def test_edit_refuses_to_overwrite_the_photo(ctx, photo_files):
    with pytest.raises(JobError) as error:
        load_job("edit").run(dict(photo_files, transform=_move(0.1), output=photo_files["photo"]), ctx)
    assert error.value.code == "output_is_input"


def test_edit_out_of_view_and_bad_settings(ctx, photo_files, tmp_path):
    with pytest.raises(JobError) as error:
        load_job("edit").run(dict(photo_files, transform=_move(50.0), output=str(tmp_path / "o.png")), ctx)
    assert error.value.code == "object_out_of_view"
    with pytest.raises(JobError) as error:
        load_job("edit").run(dict(photo_files, settings={"steps": 3}, transform=_move(0.1),
                                  output=str(tmp_path / "o.png")), ctx)
    assert error.value.code == "bad_params" and "steps" in error.value.message


def test_a_bad_cache_size_setting_is_a_clear_error(ctx, photo_files, tmp_path, monkeypatch):
    monkeypatch.setenv("DHANDLES_CACHE_MAX_GB", "twenty")
    with pytest.raises(JobError) as error:
        load_job("edit").run(dict(photo_files, transform=_move(0.1), output=str(tmp_path / "o.png")), ctx)
    assert error.value.code == "bad_params" and "DHANDLES_CACHE_MAX_GB" in error.value.message


def test_cancel_stops_between_steps(ctx, photo_files, tmp_path):
    from engine.jobs import Cancelled

    ctx._cancel_event.set()
    with pytest.raises(Cancelled):
        load_job("invert").run(dict(photo_files, cache_dir=str(tmp_path)), ctx)


def test_estimate_depth_and_segment(ctx, photo_files, tmp_path):
    from engine.io import read_depth

    depth = load_job("estimate_depth").run({"photo": photo_files["photo"], "model": "tiny-depth",
                                            "output": str(tmp_path / "d.exr")}, ctx)
    assert read_depth(depth["depth"]).shape == (512, 512) and depth["min"] > 0
    mask = load_job("segment").run({"photo": photo_files["photo"], "model": "tiny-segmentation", "prompt": "chair",
                                    "threshold": 0.01, "output": str(tmp_path / "m.png")}, ctx)
    assert 0 < mask["coverage"] <= 1
    with pytest.raises(JobError) as error:
        load_job("segment").run({"photo": photo_files["photo"], "model": "tiny-segmentation", "prompt": "chair",
                                 "threshold": 0.999999, "output": str(tmp_path / "m.png")}, ctx)
    assert error.value.code == "empty_mask"


def test_edit_with_perspective_guidance(ctx, photo_files, tmp_path):
    perspective = {"vps": [[700.0, 240.0, 1.0], [-300.0, 250.0, 1.0]], "width": 512, "height": 512,
                   "guidance": {"weight": 0.1, "every": 2}}
    params = dict(photo_files, cache_dir=str(tmp_path), transform=_move(0.1), output=str(tmp_path / "p.png"),
                  perspective=perspective)
    frame = load_job("edit").run(params, ctx)["frames"][0]
    report = json.loads(open(frame["report"]).read())
    assert report["perspective"] and report["extra_terms"]["perspective"]
    steps = {entry["step"] for entry in report["extra_terms"]["perspective"]}
    assert steps == {0, 2}  # every second of the 4 steps
    with pytest.raises(JobError) as error:
        load_job("edit").run(dict(params, perspective={"vps": []}), ctx)
    assert error.value.code == "bad_params"


def test_edit_reports_never_overwrite_inputs_or_each_other(ctx, photo_files, tmp_path):
    import shutil

    mask = tmp_path / "frame.json"  # a PNG mask under a name the report of frame.png would take
    shutil.copy(photo_files["mask"], mask)
    before = mask.read_bytes()
    with pytest.raises(JobError) as error:
        load_job("edit").run(dict(photo_files, mask=str(mask), transform=_move(0.1),
                                  output=str(tmp_path / "frame.png")), ctx)
    assert error.value.code == "output_is_input" and "report of output 0" in error.value.message
    assert mask.read_bytes() == before and not (tmp_path / "frame.png").exists()
    same = str(tmp_path / "same.png")
    with pytest.raises(JobError) as error:
        load_job("edit").run(dict(photo_files, transforms=[_move(0.1), _move(0.2)], outputs=[same, same]), ctx)
    assert error.value.code == "output_is_input" and "same file" in error.value.message


def test_invert_report_never_overwrites_an_input(ctx, photo_files, tmp_path):
    import shutil

    mask = ctx.workdir / "invert_report.json"
    shutil.copy(photo_files["mask"], mask)
    before = mask.read_bytes()
    result = load_job("invert").run(dict(photo_files, mask=str(mask), cache_dir=str(tmp_path)), ctx)
    assert result["report"] == str(ctx.workdir / "invert_report-1.json")  # a default output takes a fresh name
    assert mask.read_bytes() == before


def test_progress_streams_thumbnails_of_the_current_estimate(ctx, photo_files, tmp_path):
    from PIL import Image

    params = dict(photo_files, cache_dir=str(tmp_path / "cache"), transform=_move(0.1),
                  output=str(tmp_path / "t.png"), thumbnail_every=2)
    load_job("edit").run(params, ctx)  # a cache miss: the reconstruction runs too
    shown = [(m["stage"], m["step"], m["thumbnail"]) for m in ctx.messages
             if m["type"] == "progress" and m.get("thumbnail")]
    steps = {stage: [step for s, step, _ in shown if s == stage] for stage in ("reconstruct", "edit", "frame")}
    assert steps == {"reconstruct": [2, 4], "edit": [2, 4], "frame": [1]}  # 4 steps, every 2nd, and the result
    for _, _, path in shown:
        with Image.open(path) as thumbnail:
            assert max(thumbnail.size) <= 128 and thumbnail.size[0] == thumbnail.size[1]  # the square photo
    assert len({path for _, _, path in shown}) == len(shown)
    ctx.messages.clear()
    load_job("edit").run(dict(params, thumbnail_every=0), ctx)
    assert [m["stage"] for m in ctx.messages if m.get("thumbnail")] == ["frame"]
    with pytest.raises(JobError) as error:
        load_job("edit").run(dict(params, thumbnail_every=-1), ctx)
    assert error.value.code == "bad_params" and "thumbnail_every" in error.value.message
