"""The inversion cache: keyed only on what the inversion uses, on which weights the model has, robust to damaged
entries, and bounded in size with least-recently-used eviction."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from engine.diffusion.cache import InversionCache, max_cache_bytes  # noqa: E402
from engine.diffusion.inversion import Inversion  # noqa: E402
from engine.diffusion.pipeline import Editor  # noqa: E402
from engine.diffusion.settings import EditSettings  # noqa: E402
from engine.models import load_diffusion  # noqa: E402

CHEAP = dict(resolution=64, num_steps=4, guided_steps=3, opt_steps=1, inversion="ddim")


pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def chair(photogen):
    from engine.diffusion.inputs import read_sample

    return read_sample(photogen / "chair", "edit_002")


# (a) only what the chosen method uses

def test_ddim_inversion_ignores_the_null_text_and_guidance_settings():
    base = EditSettings(inversion="ddim")
    for change in ({"null_inner_steps": 1}, {"null_learning_rate": 0.5}, {"null_early_stop": 0.1},
                   {"guidance_scale": 3.0}, {"opt_steps": 1}, {"identity_weight": 0.0}, {"seed": 1}):
        assert replace(base, **change).inversion_key() == base.inversion_key(), change
    assert replace(base, num_steps=20, guided_steps=10).inversion_key() != base.inversion_key()


def test_null_text_keys_its_optimisation_and_every_key_names_the_recorded_steps():
    base = EditSettings()
    for change in ({"null_inner_steps": 1}, {"null_learning_rate": 0.5}, {"null_early_stop": 0.1},
                   {"guidance_scale": 3.0}):
        assert replace(base, **change).inversion_key() != base.inversion_key(), change
    assert replace(base, opt_steps=1, background_weight=0.0).inversion_key() == base.inversion_key()
    # activations are recorded for the first guided_steps timesteps only: that count is part of the key
    for inversion in ("null-text", "ddim"):
        settings = replace(base, inversion=inversion)
        assert replace(settings, guided_steps=10).inversion_key() != settings.inversion_key()


def test_an_ignored_setting_reuses_the_cached_inversion(models, chair, tmp_path):
    first = Editor(models, EditSettings(**CHEAP, null_inner_steps=5), InversionCache(tmp_path)).edit(chair).report
    again = Editor(models, EditSettings(**CHEAP, null_inner_steps=1, guidance_scale=2.0),
                   InversionCache(tmp_path)).edit(chair).report
    assert first["cache"]["inversion"] == "miss" and again["cache"]["inversion"] == "hit"
    assert again["cache"]["key"] == first["cache"]["key"]


# (b) which weights

def test_random_presets_are_identified_by_their_seed(models):
    from engine.models.diffusion import DiffusionModels
    from engine.models.tiny import build_tiny_diffusion

    assert models.weights == "seed:1234"
    other = DiffusionModels(name="tiny", source="tiny", weights="seed:7", **build_tiny_diffusion(7))
    assert other.identity() != models.identity()


def test_a_local_folder_with_other_weights_is_another_model(models, tmp_path):
    from engine.models.diffusion import DiffusionModels
    from engine.models.tiny import build_tiny_diffusion

    folder = models.save(tmp_path / "model")
    first = load_diffusion(str(folder), device="cpu").identity()
    assert load_diffusion(str(folder), device="cpu").identity() == first  # stable for the same files
    weights = sorted((folder / "unet").glob("*.safetensors"))
    times = {path: path.stat().st_mtime_ns for path in weights}
    sizes = {path: path.stat().st_size for path in weights}
    DiffusionModels(name="x", source="x", **build_tiny_diffusion(99)).save(folder)  # same names, sizes, config
    for path in weights:
        os.utime(path, ns=(times[path], times[path]))  # even with the old times
        assert path.stat().st_size == sizes[path]
    assert load_diffusion(str(folder), device="cpu").identity() != first


def test_hub_models_are_identified_by_their_commit(models, monkeypatch):
    import uuid

    from huggingface_hub import constants

    repo = f"dhandles-test/tiny-{uuid.uuid4().hex[:8]}"
    root = os.path.join(constants.HF_HUB_CACHE, "models--" + repo.replace("/", "--"))
    for commit in ("a" * 40, "b" * 40):
        models.save(os.path.join(root, "snapshots", commit))
    os.makedirs(os.path.join(root, "refs"), exist_ok=True)
    identities = {}
    for commit in ("a" * 40, "b" * 40):
        with open(os.path.join(root, "refs", "main"), "w") as ref:
            ref.write(commit)
        loaded = load_diffusion(repo, device="cpu")
        assert loaded.weights == f"hub:{repo}@{commit}"
        identities[commit] = loaded.identity()
    assert identities["a" * 40] != identities["b" * 40]


# (c) damaged entries

def _inversion(layers=(2, 3), steps=3):
    return Inversion(latents_t=torch.randn(1, 4, 8, 8), null_embeddings=None,
                     activations={layer: torch.randn(steps, 4, 8, 8) for layer in layers}, reconstruction_mse=0.1,
                     method="ddim")


def test_damaged_entries_are_misses_with_a_warning(tmp_path):
    from safetensors.torch import save_file

    cache = InversionCache(tmp_path)
    path = cache.store("good", _inversion())
    assert cache.load("good", "cpu", torch.float32, layers=(2, 3)) is not None and cache.warning is None
    truncated = cache.path("truncated")
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    save_file({"activations.2": torch.zeros(1)}, str(cache.path("no_latents")), metadata={"method": "ddim"})
    save_file({"latents_t": torch.zeros(1, 4, 8, 8)}, str(cache.path("no_null")), metadata={"method": "null-text"})
    for key, layers in (("truncated", ()), ("no_latents", ()), ("no_null", ()), ("good", (1, 2, 3))):
        with pytest.warns(RuntimeWarning, match="computed again"):
            assert cache.load(key, "cpu", torch.float32, layers=layers) is None
        assert str(cache.path(key)) in cache.warning


def test_a_damaged_entry_is_recomputed_and_overwritten(models, chair, tmp_path):
    settings = EditSettings(**CHEAP)
    key = Editor(models, settings, InversionCache(tmp_path)).edit(chair).report["cache"]["key"]
    entry = InversionCache(tmp_path).path(key)
    entry.write_bytes(entry.read_bytes()[:100])  # truncated, e.g. by a full disk
    with pytest.warns(RuntimeWarning):
        report = Editor(models, settings, InversionCache(tmp_path)).edit(chair).report
    assert report["cache"]["inversion"] == "miss" and "could not be used" in report["cache"]["warning"]
    assert entry.stat().st_size > 100  # rewritten
    again = Editor(models, settings, InversionCache(tmp_path)).edit(chair).report
    assert again["cache"]["inversion"] == "hit" and "warning" not in again["cache"]


# (d) size limit, least recently used first

def test_size_limit_evicts_the_least_recently_used(tmp_path):
    cache = InversionCache(tmp_path, max_bytes=None)
    size = cache.store("probe", _inversion()).stat().st_size
    cache.path("probe").unlink()
    cache = InversionCache(tmp_path, max_bytes=int(3.5 * size))
    for n, key in enumerate(("a", "b", "c")):
        cache.store(key, _inversion())
        os.utime(cache.path(key), ns=(10**18 + n * 10**9,) * 2)  # stored in this order, a second apart
    assert cache.load("a", "cpu", torch.float32) is not None  # a hit makes "a" the most recently used
    cache.store("d", _inversion())
    assert sorted(p.stem for p in tmp_path.glob("*.safetensors")) == ["inversion-a", "inversion-c",
                                                                      "inversion-d"]  # "b" was least recent
    tiny = InversionCache(tmp_path, max_bytes=1)
    tiny.store("e", _inversion())
    assert [p.stem for p in tmp_path.glob("*.safetensors")] == ["inversion-e"]  # the newest stays over the limit


def test_size_limit_setting(monkeypatch):
    monkeypatch.delenv("DHANDLES_CACHE_MAX_GB", raising=False)
    assert max_cache_bytes() == 20 * 10**9
    monkeypatch.setenv("DHANDLES_CACHE_MAX_GB", "1.5")
    assert max_cache_bytes() == 1_500_000_000 and InversionCache("x").max_bytes == 1_500_000_000
    monkeypatch.setenv("DHANDLES_CACHE_MAX_GB", "0")
    assert max_cache_bytes() is None
    monkeypatch.setenv("DHANDLES_CACHE_MAX_GB", "lots")
    with pytest.raises(ValueError, match="DHANDLES_CACHE_MAX_GB"):
        max_cache_bytes()


def test_the_key_follows_the_pixels():
    from engine.diffusion.cache import inversion_key

    image = np.zeros((8, 8, 3), np.uint8)
    depth = np.ones((8, 8), np.float32)
    key = inversion_key(image, depth, "p", "m", "float32", {"a": 1})
    assert key == inversion_key(image.copy(), depth.copy(), "p", "m", "float32", {"a": 1})
    assert key != inversion_key(image, depth * 2, "p", "m", "float32", {"a": 1})
