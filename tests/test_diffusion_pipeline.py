"""The whole Diffusion Handles edit with the tiny preset on the CPU: a photogen sample, a non-square photo, the
cache, guidance, reports, the extension point, the CLI and the jobs. Small sizes and few steps keep it fast."""

from __future__ import annotations

import json
from dataclasses import replace

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


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models are all overhead: on a shared 2-core box OpenMP's thread hand-offs cost 50x the maths."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models():
    return load_diffusion("tiny", device="cpu")


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
    assert set(report["losses"]) == {"identity_before", "identity_after", "background_before", "background_after"}
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
    assert guided["unet_forward"] == n + 2 + guided["unet_backward"]


def test_guidance_lowers_the_identity_loss(models, chair, shared_cache):
    settings = EditSettings(**{**CHEAP, "opt_steps": 3})
    losses = Editor(models, settings, shared_cache).edit(chair).report["losses"]
    assert losses["identity_after"] < losses["identity_before"]


def _non_square_request():
    from engine.diffusion.inputs import EditRequest
    from engine.geometry import Camera, make_transform

    height, width = 200, 330  # neither side a multiple of 64
    rng = np.random.default_rng(1)
    image = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    depth = np.full((height, width), 4.0, np.float32)
    mask = np.zeros((height, width), bool)
    mask[60:140, 50:130] = True
    depth[mask] = 2.5
    return EditRequest(image=image, mask=mask, depth=depth, transform=make_transform(translation=[0.4, 0.0, 0.0]),
                       camera=Camera.from_fov(width, height, 55.0), prompt="a box on a table")


def test_non_square_photo(models, shared_cache):
    request = _non_square_request()
    settings = EditSettings(**{**CHEAP, "resolution": 128, "num_steps": 4, "guided_steps": 3})
    result = Editor(models, settings, shared_cache).edit(request)
    assert result.image.shape == request.image.shape
    assert result.report["working_size"] == [128, 64] and result.working_image.shape == (64, 128, 3)
    assert result.report["visible_fraction"][0] > 0.5


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
        with pytest.raises(RuntimeError, match="ran out of memory"):
            editor.edit(chair)
    finally:
        models.low_memory.clear()
        models.unet.set_default_attn_processor()
        models.vae.disable_tiling()
        models.vae.disable_slicing()


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


def test_half_precision_and_offload_paths(chair, tmp_path):
    half = load_diffusion("tiny", device="cpu", dtype=torch.bfloat16)
    settings = EditSettings(**{**FAST, "num_steps": 4, "guided_steps": 3})
    report = Editor(half, settings, InversionCache(tmp_path)).edit(chair).report
    assert report["dtype"] == "bfloat16" and np.isfinite(report["losses"]["identity_after"])
    while half.enable_low_memory():
        pass
    assert half.offloaded and next(half.unet.parameters()).device.type == "cpu"
    again = Editor(half, settings, InversionCache(tmp_path)).edit(chair).report
    assert again["cache"]["inversion"] == "hit" and again["low_memory"][-1] == "CPU offload of idle models"


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
    with pytest.raises(FileNotFoundError):
        request_from_files(tmp_path / "nope.png", sample / "mask.png", sample / "depth.exr", tmp_path / "t.npy")
