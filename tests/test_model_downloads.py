"""Model downloads as an engine job, against a fake hub on loopback (tests/fake_hub.py): a 404 on the first hub id
falls through to the next, progress carries bytes, cancel stops the download, and with downloads off (HF_HUB_OFFLINE
or Blender's online access off) the job refuses before any request."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

pytest.importorskip("diffusers")

import itertools

from conftest import REPO_ROOT, subprocess_env
from fake_hub import FakeHub

from engine.errors import Cancelled, MissingWeights
from engine.process.client import EngineClient

MIRROR, ORIGINAL = "sd2-community/stable-diffusion-2-depth", "stabilityai/stable-diffusion-2-depth"
DIFFUSION = {"models": [{"kind": "diffusion", "model": "sd2-depth"}]}


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from engine.models import load_diffusion

    folder = tmp_path_factory.mktemp("tiny-sd2-depth")
    load_diffusion("tiny", device="cpu").save(folder)
    return folder


def engine(tmp_path, hub_url: str, **extra) -> EngineClient:
    env = subprocess_env(HF_ENDPOINT=hub_url, HF_HOME=str(tmp_path / "hf"), **extra)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DHANDLES_MODELS_DIR", "DHANDLES_ONLINE_ACCESS",
                 "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        if name not in extra:
            env.pop(name, None)
    return EngineClient(python=sys.executable, cwd=str(REPO_ROOT), env=env)


def test_a_missing_mirror_falls_through_to_the_original_id_with_byte_progress(tiny_folder, tmp_path):
    progress = []
    with FakeHub({ORIGINAL: tiny_folder}) as hub, engine(tmp_path, hub.url) as client:
        result = client.run("download_models", DIFFUSION, on_progress=progress.append, timeout=300)
        asked = list(hub.requests)
        again = client.run("download_models", {**DIFFUSION, "check_only": True}, timeout=120)
        assert hub.requests == asked  # a downloaded model is found in the cache: no more requests
    (entry,) = result["models"]
    assert entry["status"] == "downloaded" and entry["where"] == ORIGINAL
    assert entry["tried"] == [f"the hub ({hub.url}) '{MIRROR}': not found (withdrawn, renamed or private)"]
    infos = [path for path in asked if path.startswith("/api/models/")]
    assert infos[0] == f"/api/models/{MIRROR}" and f"/api/models/{ORIGINAL}" in infos
    weights = sum(p.stat().st_size for p in tiny_folder.rglob("*.safetensors"))
    assert entry["bytes"] >= weights > 0
    byte_steps = [m for m in progress if m["stage"] == "download" and m.get("total")]
    assert byte_steps and byte_steps[-1]["step"] == byte_steps[-1]["total"] == entry["bytes"]
    assert all(a["step"] <= b["step"] for a, b in itertools.pairwise(byte_steps))
    assert all(m["message"].startswith(f"{ORIGINAL}: ") for m in byte_steps)  # which repository and file
    (present,) = again["models"]
    assert present["status"] == "present" and present["from"] == "cache" and present["where"] == ORIGINAL
    assert present["bytes"] == entry["bytes"]
    # offline, the preset loads from the cache under the original id (as for a user who downloaded it before it
    # was withdrawn)
    load = subprocess.run([sys.executable, "-c", OFFLINE_LOAD], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300, check=False,
                          env=subprocess_env(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1",
                                             HF_ENDPOINT="http://127.0.0.1:9"))
    assert load.stdout.split() == [ORIGINAL, "5"], load.stderr[-2000:]


OFFLINE_LOAD = """
from engine.models import load_diffusion
models = load_diffusion("sd2-depth", device="cpu")
print(models.source, models.unet.config.in_channels)
"""


def test_online_access_off_is_named_among_the_sources_tried(monkeypatch, tmp_path):
    from engine.models import ModelMissingError
    from engine.models.sources import find

    monkeypatch.setenv("DHANDLES_ONLINE_ACCESS", "0")
    monkeypatch.delenv("DHANDLES_MODELS_DIR", raising=False)
    with pytest.raises(ModelMissingError) as error:
        find("sd2-inpainting", "inpainting", "inpainting model", "model_index.json")
    tried = error.value.tried
    assert len(tried) == 2 and "Hugging Face cache" in tried[0] and MIRROR.replace("depth", "inpainting") in tried[0]
    assert "not asked, online access is off in Blender" in tried[1]
    assert "Allow Online Access" in str(error.value) and "(1)" in str(error.value) and "(2)" in str(error.value)


def test_cancel_stops_a_download(tmp_path):
    repo = tmp_path / "big"
    (repo / "unet").mkdir(parents=True)
    (repo / "unet" / "config.json").write_text("{}")
    (repo / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(bytes(4 << 20))
    with FakeHub({MIRROR: repo}, delay_per_chunk=0.02) as hub, engine(tmp_path, hub.url) as client:
        job = client.submit("download_models", DIFFUSION)
        seen, outcome, deadline = [], None, time.monotonic() + 120
        while outcome is None and time.monotonic() < deadline:
            for message in client.poll():
                if message["type"] == "progress" and (message.get("step") or 0) > 0 and not seen:
                    seen.append(message)
                    client.cancel(job)
                elif message["type"] in ("result", "error"):
                    outcome = message
            time.sleep(0.02)
    assert seen and seen[0]["total"] == (4 << 20) + 2
    assert outcome["type"] == "error" and outcome["code"] == Cancelled.code
    cached = list((tmp_path / "hf").rglob("diffusion_pytorch_model.safetensors"))
    assert not cached  # no complete file: the partial one stays as .incomplete


def test_a_lost_connection_says_to_download_again(tmp_path):
    repo = tmp_path / "big"
    (repo / "unet").mkdir(parents=True)
    (repo / "unet" / "config.json").write_text("{}")
    (repo / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(bytes(1 << 20))
    with (FakeHub({MIRROR: repo}, cut_after=1 << 17) as hub, engine(tmp_path, hub.url) as client,
          pytest.raises(MissingWeights) as error):
        client.run("download_models", DIFFUSION, timeout=300)
    assert f"the download from '{MIRROR}' stopped" in str(error.value)
    assert "carries on where it stopped" in str(error.value)


@pytest.mark.parametrize("switch, words", [
    ({"HF_HUB_OFFLINE": "1"}, "downloads are off (HF_HUB_OFFLINE is set)"),
    ({"DHANDLES_ONLINE_ACCESS": "0"}, "Preferences > System > Network > Allow Online Access"),
])
def test_downloads_off_refuse_before_any_request(tiny_folder, tmp_path, switch, words):
    with (FakeHub({MIRROR: tiny_folder}) as hub, engine(tmp_path, hub.url, **switch) as client,
          pytest.raises(MissingWeights) as error):
        client.run("download_models", DIFFUSION, timeout=120)
    assert words in str(error.value) and "sd2-depth" in str(error.value)
    assert hub.requests == []


def test_a_job_loading_a_model_from_the_hub_reports_loading_and_bytes(tmp_path):
    """Progress from the first second: estimate_depth's model comes from the (fake) hub: the job reports loading,
    then the download in bytes, then its own stages."""
    from PIL import Image

    from engine.models.tiny import build_tiny_depth

    folder = tmp_path / "depth"
    processor, model = build_tiny_depth()
    processor.save_pretrained(folder)
    model.save_pretrained(folder, safe_serialization=True)
    Image.new("RGB", (64, 48), (120, 90, 60)).save(tmp_path / "photo.png")
    repo = "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf"
    progress = []
    with FakeHub({repo: folder}) as hub, engine(tmp_path, hub.url) as client:
        result = client.run("estimate_depth", {"photo": str(tmp_path / "photo.png"),
                                               "output": str(tmp_path / "depth.npy")},
                            on_progress=progress.append, timeout=300)
    stages = [m["stage"] for m in progress]
    assert result["model"] == "depth-anything-metric-indoor"
    assert stages.index("loading model") < stages.index("download") < stages.index("estimate_depth")
    loading = progress[stages.index("loading model")]
    assert "depth model" in loading["message"]
    sized = [m for m in progress if m["stage"] == "download" and m.get("total")]
    assert sized and sized[-1]["step"] == sized[-1]["total"] > 0


def test_a_missing_folder_or_a_ckpt_is_reported_not_downloaded(tmp_path):
    (tmp_path / "model.ckpt").write_bytes(b"x")
    with FakeHub({}) as hub, engine(tmp_path, hub.url) as client:
        for model, words in ((str(tmp_path / "nowhere"), "does not exist"), (str(tmp_path / "model.ckpt"), "pickle")):
            with pytest.raises(MissingWeights, match=words):
                client.run("download_models", {"models": [{"kind": "diffusion", "model": model}]}, timeout=120)
        with pytest.raises(MissingWeights, match="diffusion model only"):
            (tmp_path / "depth.safetensors").write_bytes(b"")
            client.run("download_models", {"models": [{"kind": "depth", "model": str(tmp_path / "depth.safetensors")}]},
                       timeout=120)
    assert [path for path in hub.requests if path.startswith("/api/models/")] == []
