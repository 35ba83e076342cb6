"""The whole Diffusion Handles edit with the tiny preset on the CPU: a photogen sample, a non-square photo, the
cache, guidance, reports, the extension point, the CLI and the jobs. Small sizes and few steps keep it fast."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from engine.diffusion.cache import InversionCache  # noqa: E402
from engine.diffusion.pipeline import Editor  # noqa: E402
from engine.diffusion.settings import EditSettings  # noqa: E402
from engine.models import load_diffusion  # noqa: E402

FAST = dict(resolution=64, num_steps=6, guided_steps=4, opt_steps=2, null_inner_steps=2)
CHEAP = dict(FAST, inversion="ddim")  # where the inversion method is not what a test is about


pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return InversionCache(tmp_path_factory.mktemp("inversions"))


@pytest.fixture(scope="module")
def chair(photogen):
    from engine.diffusion.inputs import read_sample

    return read_sample(photogen / "chair", "edit_002")


def test_photogen_sample_end_to_end(models, chair, tmp_path):
    editor = Editor(models, EditSettings(**FAST), InversionCache(tmp_path / "cache"))
    result = editor.edit(chair)
    report = result.report
    assert result.image.shape == chair.image.shape and result.image.dtype == np.uint8
    assert set(report["stages"]) >= {"prepare", "geometry", "encode", "inversion", "guided_sampling", "decode",
                                     "composite"}
    for stage in report["stages"].values():
        assert stage["seconds"] >= 0 and stage["unet_evals"] >= 0
    assert report["cache"]["inversion"] == "miss" and report["device"] == "cpu" and report["model"].startswith("tiny")
    assert report["losses"] == {"measured": False}  # measuring costs two forwards: off by default
    assert report["peak_memory_bytes"] > 0 and report["working_size"] == [64, 64]
    # null-text: DDIM inversion N, and per step one cond forward, <= k (forward + backward), one uncond forward
    n, k = FAST["num_steps"], FAST["null_inner_steps"]
    assert n * 3 <= report["stages"]["inversion"]["unet_evals"] <= 3 * n + 3 * k * n
    json.dumps(report)
    # only the changed region is replaced: far from the object the photo is untouched, pixel for pixel
    untouched = result.alpha == 0
    assert untouched.any()
    far = np.kron(untouched, np.ones((8, 8), bool))  # working 64 -> photo 512
    assert np.array_equal(result.image[far], chair.image[far])
    assert not np.array_equal(result.image, chair.image)


def test_second_edit_hits_the_cache_and_costs_only_the_guided_pass(models, chair, tmp_path):
    settings = EditSettings(**CHEAP)
    Editor(models, settings, InversionCache(tmp_path)).edit(chair)
    fresh = Editor(models, settings, InversionCache(tmp_path))  # nothing in memory: read from disk
    report = fresh.edit(replace(chair, transform=np.eye(4))).report
    assert report["cache"]["inversion"] == "hit" and "inversion" not in report["stages"]
    assert report["unet_evals"] == report["stages"]["guided_sampling"]["unet_evals"]
    changed = Editor(models, replace(settings, num_steps=5, guided_steps=3), InversionCache(tmp_path))
    assert changed.edit(chair).report["cache"]["inversion"] == "miss"  # other settings, other inversion


def test_ddim_inversion_is_cheaper(models, chair, tmp_path):
    report = Editor(models, EditSettings(**CHEAP), InversionCache(tmp_path)).edit(chair).report
    n = FAST["num_steps"]
    assert report["stages"]["inversion"]["unet_evals"] == 2 * n
    assert report["inversion"]["method"] == "ddim"
    # no classifier-free guidance batch: one forward per denoising step, plus the guided steps
    guided = report["stages"]["guided_sampling"]
    assert guided["unet_forward"] == n + guided["unet_backward"]


def test_guidance_lowers_the_identity_loss(models, chair, shared_cache):
    settings = EditSettings(**{**CHEAP, "opt_steps": 3, "measure_losses": True})
    losses = Editor(models, settings, shared_cache).edit(chair).report["losses"]
    assert losses["identity_after"] < losses["identity_before"]
    # the identity term, not the background term, does it: without it the identity loss stays higher
    unguided = Editor(models, replace(settings, identity_weight=0.0), shared_cache).edit(chair).report["losses"]
    assert unguided["identity_before"] == pytest.approx(losses["identity_before"])  # same start, same inversion
    assert unguided["identity_after"] > losses["identity_after"]


def _box_request(width, height, box, seed, far, near, translation, prompt):
    """A random photo of a box (rows, columns ``box``) at depth ``near`` before a wall at ``far``, moved by
    ``translation``."""
    from engine.diffusion.inputs import EditRequest
    from engine.geometry import Camera, make_transform

    rng = np.random.default_rng(seed)
    image = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    depth = np.full((height, width), far, np.float32)
    mask = np.zeros((height, width), bool)
    mask[box] = True
    depth[mask] = near
    return EditRequest(image=image, mask=mask, depth=depth, transform=make_transform(translation=translation),
                       camera=Camera.from_fov(width, height, 55.0), prompt=prompt)


def _non_square_request():
    # 330x200: neither side a multiple of 64
    return _box_request(330, 200, np.s_[60:140, 50:130], 1, 4.0, 2.5, [0.4, 0.0, 0.0], "a box on a table")


def test_non_square_photo(models, shared_cache):
    request = _non_square_request()
    settings = EditSettings(**{**CHEAP, "resolution": 128, "num_steps": 4, "guided_steps": 3})
    result = Editor(models, settings, shared_cache).edit(request)
    assert result.image.shape == request.image.shape
    # 330x200 at 128: 128x78 (the aspect kept), padded to 128x128 for the models and cropped back
    assert result.report["working_size"] == [128, 78] and result.report["padded_size"] == [128, 128]
    assert result.working_image.shape == (78, 128, 3) and result.alpha.shape == (78, 128)
    assert result.report["visible_fraction"][0] > 0.5


def test_an_object_moved_into_the_padding_band_is_out_of_view(models, shared_cache):
    """The working frame pads a wide photo to 64s; an object moved off the photo's top edge but still inside that
    band is out of the photo's view all the same."""
    from dataclasses import replace as replaced

    from engine.geometry import GeometryError, make_transform

    # 330x200 at 128: rows 25..102 of the 128x128 frame are the photo; the box (rows ~23..54 of the photo's 78, at
    # depth 2.5, f ~123 px) moved up by 1.15 m lands ~57 px higher, inside the 25 rows of padding above the photo
    request = _non_square_request()
    request = replaced(request, depth=np.full_like(request.depth, 2.5),  # flat, so no mask-edge pixel lags behind
                       transform=make_transform(translation=[0.0, -1.15, 0.0]))
    settings = EditSettings(**{**CHEAP, "resolution": 128, "num_steps": 4, "guided_steps": 3})
    with pytest.raises(GeometryError, match="out of the frame"):
        Editor(models, settings, shared_cache).edit(request)


def test_working_layout_keeps_the_aspect():
    from engine.diffusion.composite import working_layout
    from engine.geometry import Camera

    layout = working_layout(3840, 2160, 512)  # 16:9: 512x288 of photo, padded to 512x320 (not squashed to 512x256)
    assert layout.content == (512, 288) and layout.padded == (512, 320) and layout.offset == (0, 16)
    image = np.arange(288 * 512 * 3, dtype=np.int64).reshape(288, 512, 3)
    padded = layout.pad(image)
    assert padded.shape == (320, 512, 3) and np.array_equal(layout.crop(padded), image)
    assert np.array_equal(padded[0], image[0]) and np.array_equal(padded[-1], image[-1])  # edges replicated
    mask = layout.pad(np.ones((288, 512), bool), fill=False)
    assert mask.sum() == 288 * 512 and not mask[:16].any() and not mask[-16:].any()  # padding is background
    camera = Camera.from_fov(3840, 2160, 55.0)
    content, frame = camera.scaled(512, 288), layout.camera(camera)
    assert (frame.width, frame.height) == (512, 320) and frame.fx == content.fx and frame.fy == content.fy
    assert (frame.cx, frame.cy) == (content.cx, content.cy + 16)  # a pixel moves by the offset, nothing else
    for side in (64, 100, 130):
        lay = working_layout(side, 1000, 512)
        assert lay.padded[0] % 64 == 0 and lay.padded[1] == 512
        assert abs(lay.content[0] / lay.content[1] - side / 1000) < 1 / 512


def test_a_16_9_photo_keeps_its_aspect_and_its_pixels_outside_the_edit(models, shared_cache):
    from engine.diffusion.composite import resize
    from engine.geometry import reproject

    height, width = 360, 640
    request = _box_request(width, height, np.s_[120:240, 200:330], 3, 5.0, 3.0, [0.4, 0.1, 0.0], "a box")
    image, mask, depth, transform, camera = (request.image, request.mask, request.depth, request.transform,
                                             request.camera)
    settings = EditSettings(**{**CHEAP, "resolution": 128, "num_steps": 3, "guided_steps": 2})
    previews = []

    def progress(stage, step, total, preview=None):
        if preview is not None:
            previews.append((stage, preview().shape))

    result = Editor(models, settings, shared_cache).edit(request, progress=progress)
    report = result.report
    assert report["working_size"] == [128, 72] and report["padded_size"] == [128, 128]
    assert [stage for stage, _ in previews].count("edit") == 3
    assert all(shape == (72, 128, 3) for _, shape in previews)  # progress previews show the photo, not padding
    assert result.working_image.shape == (72, 128, 3) and result.edited_depth.shape == (72, 128)
    assert result.image.shape == image.shape
    untouched = resize(result.alpha, (width, height), "soft") == 0
    assert untouched.mean() > 0.4 and np.array_equal(result.image[untouched], image[untouched])
    assert not np.array_equal(result.image, image)
    # the padded frame's geometry is the photo's: the object lands where it lands without any padding
    direct = reproject(resize(depth, (128, 72), "nearest"), resize(mask, (128, 72), "mask"), transform,
                       camera.scaled(128, 72))
    landed = np.asarray(direct.target_masks).any(axis=0)
    assert landed.sum() > 50
    assert np.allclose(result.edited_depth[landed], np.asarray(direct.depth)[landed], atol=1e-4)


class _Probe:
    """An extra guidance term that pulls the clean-latent estimate towards zero, active on even steps."""

    name, weight = "probe", 0.5

    def __init__(self):
        self.calls = []

    def active(self, step_index, t):
        return step_index % 2 == 0

    def loss(self, x0_latents, decode):
        self.calls.append(x0_latents.shape)
        return x0_latents.pow(2).mean()


def test_extra_guidance_terms_plug_in(models, chair, shared_cache):
    probe = _Probe()
    settings = EditSettings(**{**CHEAP, "guided_steps": 0})
    report = Editor(models, settings, shared_cache).edit(chair, extra_terms=[probe]).report
    steps = [entry["step"] for entry in report["extra_terms"]["probe"]]
    assert steps and all(step % 2 == 0 for step in steps) and len(probe.calls) == len(steps)
    assert len(steps) == 3 * FAST["opt_steps"]


class _SizeProbe:
    """An extra term that records the size of the image it decodes."""

    name, weight = "size", 0.1

    def __init__(self):
        self.sizes = []

    def active(self, step_index, t):
        return step_index == 0

    def loss(self, x0_latents, decode):
        image = decode(x0_latents)
        self.sizes.append(tuple(image.shape))
        return image.mean()


def test_extra_terms_decode_the_photos_part_only(models, shared_cache):
    """Perspective guidance scales its vanishing points from the photo to the decoded image: that image must have
    the photo's aspect, not the padded frame's."""
    probe = _SizeProbe()
    settings = EditSettings(**{**CHEAP, "resolution": 128, "num_steps": 2, "guided_steps": 1, "opt_steps": 1})
    Editor(models, settings, shared_cache).edit(_non_square_request(), extra_terms=[probe])
    assert probe.sizes == [(1, 3, 78, 128)]


def test_out_of_memory_retries_with_less_memory(models, chair, shared_cache, monkeypatch):
    editor = Editor(models, EditSettings(**CHEAP), shared_cache)
    attempts = []

    def fake_edit(request, progress, extra_terms):
        attempts.append(list(models.low_memory))
        if len(attempts) < 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return "done"

    monkeypatch.setattr(editor, "_edit", fake_edit)
    try:
        assert editor.edit(chair) == "done"
        assert attempts == [[], ["attention slicing"], ["attention slicing", "VAE tiling"]]

        def always(request, progress, extra_terms):
            raise torch.OutOfMemoryError("CUDA out of memory")

        monkeypatch.setattr(editor, "_edit", always)
        from engine.errors import OutOfMemory

        with pytest.raises(OutOfMemory, match="ran out of memory") as error:  # typed: the job's out_of_memory
            editor.edit(chair)
        assert "run the engine on the CPU" not in str(error.value)  # it is on the CPU already
        assert "Working Size" in str(error.value)
    finally:
        models.low_memory.clear()
        models.unet.set_default_attn_processor()
        models.vae.disable_tiling()
        models.vae.disable_slicing()


def test_out_of_memory_frees_outside_the_handler_and_says_so_in_the_report(models, chair, shared_cache,
                                                                         monkeypatch):
    """The failed attempt's tensors live in its frames, which the exception's traceback holds: memory is freed
    only once the handler is left, and the report of the edit that then succeeds names the fallback."""
    import sys
    import weakref

    editor = Editor(models, EditSettings(**CHEAP), shared_cache)
    real_edit, attempt, freed = editor._edit, [], []

    class Activations:  # stands for the tensors of the failed forward
        pass

    def edit_once_out_of_memory(request, progress, extra_terms):
        if not attempt:
            held = Activations()
            attempt.append(weakref.ref(held))
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return real_edit(request, progress, extra_terms)

    monkeypatch.setattr(editor, "_edit", edit_once_out_of_memory)
    monkeypatch.setattr("engine.device.free_memory",
                        lambda: freed.append((sys.exc_info()[0], attempt[0]() is None)))
    try:
        report = editor.edit(chair).report
        assert freed[0] == (None, True)  # no exception being handled, the failed attempt's objects gone
        assert report["memory_fallbacks"] == ["attention slicing"]
        assert "ran out of memory" in report["memory_note"] and "attention slicing" in report["memory_note"]
    finally:
        models.low_memory.clear()
        models.unet.set_default_attn_processor()
    assert Editor(models, EditSettings(**CHEAP), shared_cache).edit(chair).report["memory_fallbacks"] == []


def test_object_moved_out_of_view_is_a_clear_error(models, photogen, shared_cache):
    from engine.diffusion.inputs import read_sample
    from engine.geometry import GeometryError

    request = read_sample(photogen / "cube_toy", "edit_000")  # a stale edit: moves the object out of the frame
    with pytest.raises(GeometryError, match="visible|view|frame"):
        Editor(models, EditSettings(**CHEAP), shared_cache).edit(request)


def test_cli_edit_from_a_sample(photogen, tmp_path, monkeypatch):
    from engine.cli import main

    monkeypatch.setenv("DHANDLES_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out" / "chair.png"
    args = ["edit", "--sample", str(photogen / "chair"), "--edit", "edit_001", "--model", "tiny", "--out", str(out),
            "--resolution", "64", "--steps", "4", "--set", "null_inner_steps=1", "--device", "cpu"]
    assert main(args) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert out.is_file() and report["cache"]["inversion"] == "miss" and report["settings"]["guided_steps"] == 3
    assert main(args + ["--report", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["cache"]["inversion"] == "hit"
    assert main(["edit", "--sample", str(photogen / "chair"), "--out", str(out), "--model", "tiny"]) == 1


@pytest.fixture
def sample_copy(photogen, tmp_path):
    import shutil

    return Path(shutil.copytree(photogen / "chair", tmp_path / "chair"))


def _fingerprints(folder):
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


@pytest.mark.parametrize("outputs", [
    ["--out", "{S}/input.png"],  # the photo
    ["--out", "{S}/transforms.png"],  # its default report would be transforms.json
    ["--out", "{T}/o.png", "--report", "{S}/mask.png"],
    ["--out", "{T}/o.png", "--report", "{S}/prompt.txt"],  # any file of the sample folder
    ["--out", "{T}/o.png", "--report", "{T}/o.png"],  # the report over the image
])
def test_cli_never_overwrites_a_sample_file(sample_copy, tmp_path, monkeypatch, capsys, outputs):
    from engine import models as engine_models
    from engine.cli import main

    monkeypatch.setattr(engine_models, "load_diffusion", lambda *a, **k: pytest.fail("work started"))
    before = _fingerprints(sample_copy)
    args = [a.format(S=sample_copy, T=tmp_path) for a in outputs]
    assert main(["edit", "--sample", str(sample_copy), "--edit", "edit_001", "--model", "tiny", *args]) == 1
    error = capsys.readouterr().err
    assert "never overwritten" in error or "same file" in error
    assert _fingerprints(sample_copy) == before and not (tmp_path / "o.png").exists()


def test_cli_never_overwrites_an_input_file(sample_copy, tmp_path, monkeypatch, capsys):
    from engine import models as engine_models
    from engine.cli import main

    monkeypatch.setattr(engine_models, "load_diffusion", lambda *a, **k: pytest.fail("work started"))
    transform = tmp_path / "t.json"
    transform.write_text(json.dumps(np.eye(4).tolist()))
    files = ["--photo", str(sample_copy / "input.png"), "--mask", str(sample_copy / "mask.png"), "--depth",
             str(sample_copy / "depth.exr"), "--transform", str(transform)]
    for outputs in (["--out", str(tmp_path / "t.png")],  # default report t.json: the transform
                    ["--out", str(tmp_path / "o.png"), "--report", str(sample_copy / "depth.exr")]):
        assert main(["edit", *files, *outputs, "--model", "tiny"]) == 1
        assert "is the --" in capsys.readouterr().err
    assert json.loads(transform.read_text()) == np.eye(4).tolist()


def test_half_precision_and_offload_paths(chair, tmp_path):
    half = load_diffusion("tiny", device="cpu", dtype=torch.bfloat16)
    settings = EditSettings(**{**FAST, "num_steps": 4, "guided_steps": 3, "measure_losses": True})
    report = Editor(half, settings, InversionCache(tmp_path)).edit(chair).report
    assert report["dtype"] == "bfloat16" and np.isfinite(report["losses"]["identity_after"])
    while half.enable_low_memory():
        pass
    assert half.offloaded and next(half.unet.parameters()).device.type == "cpu"
    again = Editor(half, settings, InversionCache(tmp_path)).edit(chair).report
    assert again["cache"]["inversion"] == "hit" and again["memory_fallbacks"][-1] == "CPU offload of idle models"


def test_a_4k_photo_keeps_its_pixels_outside_the_edit(models, shared_cache):
    from engine.diffusion.inputs import EditRequest
    from engine.geometry import Camera, make_transform

    height, width = 2160, 3840
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.arange(width, dtype=np.uint32)[None, :] % 251  # fine detail a 64-pixel edit would lose
    image[..., 1] = np.arange(height, dtype=np.uint32)[:, None] % 241
    depth = np.full((height, width), 5.0, np.float32)
    mask = np.zeros((height, width), bool)
    mask[800:1400, 1500:2200] = True
    depth[mask] = 3.0
    request = EditRequest(image=image, mask=mask, depth=depth, transform=make_transform(translation=[0.3, 0, 0]),
                          camera=Camera.from_fov(width, height, 55.0), prompt="a box")
    settings = EditSettings(**{**CHEAP, "resolution": 128, "num_steps": 3, "guided_steps": 2})
    result = Editor(models, settings, shared_cache).edit(request)
    assert result.image.shape == image.shape
    changed = np.any(result.image != image, axis=2)
    rows, cols = np.nonzero(changed)
    assert changed.mean() < 0.5 and cols.min() > 1000 and rows.max() < 2000  # only around the object
    assert np.array_equal(result.image[:, :1000], image[:, :1000])


def test_inputs_from_files(photogen, tmp_path):
    from engine.diffusion.inputs import request_from_files
    from engine.geometry import frames

    sample = photogen / "chair"
    official = request_from_files(sample / "input.png", sample / "mask.png", sample / "depth.exr",
                                  sample / "transforms.json", camera="official", frame="official",
                                  edit_name="edit_001")
    assert official.transform.shape == (4, 4)
    # transforms.json's edit_001 moves 0.25 along the official +X (image left): engine -X
    assert official.transform[0, 3] == pytest.approx(-0.25) and official.transform[1, 3] == pytest.approx(0.0)
    blender = np.eye(4)
    blender[1, 3] = 0.5  # up in Blender's camera frame is -Y in the engine frame
    np.save(tmp_path / "t.npy", blender)
    request = request_from_files(sample / "input.png", sample / "mask.png", sample / "depth.exr", tmp_path / "t.npy",
                                 frame="blender")
    assert request.transform[1, 3] == pytest.approx(-0.5)
    assert np.allclose(request.transform, frames.convert(blender, "blender", "engine"))
    from engine.errors import InputNotFound

    with pytest.raises(InputNotFound):
        request_from_files(tmp_path / "nope.png", sample / "mask.png", sample / "depth.exr", tmp_path / "t.npy")
