"""Perspective LoRA fine-tuning with the tiny preset: a few steps lower the combined loss; adapters round-trip."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from conftest import subprocess_env  # noqa: E402
from perspective_drawing import write_dataset  # noqa: E402

from engine.models import load_diffusion  # noqa: E402
from engine.perspective.dataset import read_dataset  # noqa: E402
from engine.perspective.finetune import (  # noqa: E402
    Batches,
    FinetuneSettings,
    combined_loss,
    finetune,
    load_perspective_lora,
    save_perspective_lora,
    unload_perspective_lora,
)

SIZE = 64


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Three drawn box rooms in the dataset layout Blender writes (image, depth, caption, vps.json)."""
    return write_dataset(tmp_path_factory.mktemp("perspective_data"), SIZE)


def test_a_few_steps_lower_the_combined_loss_and_adapters_round_trip(dataset, tmp_path):
    models = load_diffusion("tiny", device="cpu", dtype=torch.float32)
    samples = read_dataset(dataset, SIZE)
    batches = Batches(models, samples)
    generator = torch.Generator().manual_seed(123)
    noise = torch.randn((3, 4, SIZE // 8, SIZE // 8), generator=generator)
    timesteps = torch.tensor([100, 500, 900])

    def evaluate():
        with torch.no_grad():
            return [float(x) for x in combined_loss(models, batches, [0, 1, 2], noise, timesteps, 0.01, 250)]

    before = evaluate()
    settings = FinetuneSettings(steps=10, batch_size=3, learning_rate=1e-3, resolution=SIZE, num_lines=250)
    summary = finetune(models, samples, settings)
    after = evaluate()
    assert after[0] < before[0] - 1e-3, (before, after)  # total = mse + 0.01 x perspective
    assert summary["losses"] and all(np.isfinite(e["total"]) for e in summary["losses"])

    folder = save_perspective_lora(models.unet, tmp_path / "adapters", summary)
    assert (folder / "adapter_model.safetensors").is_file()
    fresh = load_diffusion("tiny", device="cpu", dtype=torch.float32)
    unet_in = torch.cat([batches.latents, batches.depth], dim=1)
    with torch.no_grad():
        base = fresh.unet(unet_in, timesteps, encoder_hidden_states=batches.embeddings).sample
        load_perspective_lora(fresh.unet, folder)
        loaded = fresh.unet(unet_in, timesteps, encoder_hidden_states=batches.embeddings).sample
        trained = models.unet(unet_in, timesteps, encoder_hidden_states=batches.embeddings).sample
    assert torch.allclose(loaded, trained, atol=1e-5)
    assert not torch.allclose(base, trained, atol=1e-5)
    with torch.no_grad():
        load_perspective_lora(fresh.unet, folder, scale=0.0)  # loading again replaces; scale 0 = the base model
        assert torch.allclose(fresh.unet(unet_in, timesteps, encoder_hidden_states=batches.embeddings).sample, base,
                              atol=1e-6)
        unload_perspective_lora(fresh.unet)
        assert torch.allclose(fresh.unet(unet_in, timesteps, encoder_hidden_states=batches.embeddings).sample, base,
                              atol=1e-6)
    with pytest.raises(FileNotFoundError):
        load_perspective_lora(fresh.unet, tmp_path / "nothing")


def test_command_trains_and_never_overwrites(dataset, tmp_path):
    out = tmp_path / "adapters"
    command = [sys.executable, "-m", "engine", "finetune-perspective", "--data", str(dataset), "--out", str(out),
               "--model", "tiny", "--steps", "2", "--resolution", str(SIZE), "--num-lines", "100", "--device", "cpu"]
    done = subprocess.run(command, capture_output=True, text=True, env=subprocess_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["samples"] == 3 and np.isfinite(summary["last"]["total"])
    assert (out / "adapter_model.safetensors").is_file() and (out / "training.json").is_file()
    again = subprocess.run(command, capture_output=True, text=True, env=subprocess_env(), timeout=600)
    assert again.returncode == 1 and "not empty" in again.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = subprocess.run(command[:5] + [str(empty), "--out", str(tmp_path / "x")] + command[8:],
                             capture_output=True, text=True, env=subprocess_env(), timeout=600)
    assert missing.returncode == 1 and "no samples" in missing.stderr


def test_command_refuses_a_file_as_out_and_a_vps_json_without_vps(dataset, tmp_path):
    def finetune(data, out):
        return subprocess.run([sys.executable, "-m", "engine", "finetune-perspective", "--data", str(data), "--out",
                               str(out), "--model", "tiny", "--steps", "1", "--resolution", str(SIZE),
                               "--device", "cpu"], capture_output=True, text=True, env=subprocess_env(), timeout=600)

    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    for out in (existing, existing / "adapters"):
        done = finetune(dataset, out)
        assert done.returncode == 1 and "is a file, not a folder" in done.stderr and str(existing) in done.stderr
        assert "Traceback" not in done.stderr and existing.read_text() == "mine"
    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    (broken / "sample_0001" / "vps.json").write_text(json.dumps({"points": [[1, 2, 1]]}))
    done = finetune(broken, tmp_path / "out")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert str(broken / "sample_0001" / "vps.json") in done.stderr and "no 'vps' key" in done.stderr
