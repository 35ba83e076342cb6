"""The Blender side of models and online access: Download Models as an engine job followed per tick (with a real
engine and the fake hub), online access off giving the engine downloads off and refusing the download, and
Check Engine naming the weights the settings need."""

from __future__ import annotations

import json
import sys
import time

import pytest

pytest.importorskip("diffusers")

from fake_hub import FakeHub

ORIGINAL = "stabilityai/stable-diffusion-2-depth"


@pytest.fixture
def engine_with_hub(addon, tmp_path, monkeypatch):
    """Blender online, the engine pointed at a fake hub serving the tiny model under the original SD2-depth id."""
    import bpy
    from diffusion_handles.engine_link import engine_session

    from engine.models import load_diffusion

    folder = tmp_path / "tiny"
    load_diffusion("tiny", device="cpu").save(folder)
    system = bpy.context.preferences.system
    before = system.use_online_access
    engine_session.release()
    with FakeHub({ORIGINAL: folder}, delay_per_chunk=0.002) as hub:
        monkeypatch.setenv("DHANDLES_ENGINE_PYTHON", sys.executable)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DHANDLES_MODELS_DIR"):
            monkeypatch.delenv(name, raising=False)
        system.use_online_access = True
        yield hub
        system.use_online_access = before
        engine_session.release()


def test_download_models_per_tick_reports_bytes_then_the_models(engine_with_hub):
    from diffusion_handles.engine_link import engine_session, model_download

    job = engine_session.submit(None, "download_models", {"models": [{"kind": "diffusion", "model": "sd2-depth"}]})
    watch = model_download.DownloadWatch(job)
    seen, deadline = [], time.monotonic() + 300
    while watch.tick():
        seen.append((watch.message, watch.fraction))
        assert time.monotonic() < deadline, watch.message
        time.sleep(0.05)
    assert watch.state == "done", watch.message
    (entry,) = watch.models
    assert entry["status"] == "downloaded" and entry["where"] == ORIGINAL
    assert any(text.startswith("Downloading ") and " of " in text for text, _ in seen)
    assert "present" in model_download.describe({**entry, "status": "present", "from": "cache"})


def test_online_access_off_means_downloads_off(addon):
    import bpy
    from diffusion_handles import preferences

    system = bpy.context.preferences.system
    before = system.use_online_access
    try:
        system.use_online_access = False
        env = preferences.engine_env()
        assert env["HF_HUB_OFFLINE"] == "1" and env[preferences.ONLINE_ACCESS_ENV] == "0"
        with pytest.raises(RuntimeError, match="Allow Online Access"):
            bpy.ops.dhandles.download_models()
        system.use_online_access = True
        assert preferences.ONLINE_ACCESS_ENV not in preferences.engine_env()
    finally:
        system.use_online_access = before


def test_check_engine_names_the_missing_weights(addon, tmp_path, monkeypatch):
    from diffusion_handles.engine_link.check_engine import check_engine
    from diffusion_handles.engine_link.model_download import needed_models

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("DHANDLES_MODELS_DIR", raising=False)
    models = needed_models(None)
    assert [m["kind"] for m in models] == ["diffusion", "inpainting", "depth", "segmentation"]
    outcome = check_engine(sys.executable, models)
    assert not outcome.ok and "missing weights" in outcome.message and "Download Models" in outcome.message
    assert {m["status"] for m in outcome.models} == {"missing"}
    assert "diffusion model sd2-depth" in outcome.message
    tiny = [{"kind": "diffusion", "model": "tiny"}, {"kind": "depth", "model": "tiny-depth"}]
    outcome = check_engine(sys.executable, tiny)
    assert outcome.ok and "all model weights present" in outcome.message, outcome.message
    assert json.dumps(outcome.models)


def test_a_render_shows_model_loading_and_download_bytes(addon):
    from diffusion_handles.engine_link.engine_task import EngineTask

    task = EngineTask("edit", {}, label="Render")
    task._apply({"type": "progress", "stage": "loading model", "message": "loading the diffusion model sd2-depth"})
    assert task.status == "Render: Loading the model (loading the diffusion model sd2-depth)"
    task._apply({"type": "progress", "stage": "download", "step": 1_200_000, "total": 4_000_000,
                 "message": "sd2-community/stable-diffusion-2-depth: unet/diffusion_pytorch_model.safetensors"})
    assert task.status.startswith("Render: Downloading 1.2 MB of 4.0 MB (sd2-community/")
    assert round(task.fraction, 2) == 0.3
