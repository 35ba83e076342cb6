"""Model presets: the tiny SD2-depth architecture, loading back from a local folder, and the offline errors."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from engine.models import ModelMissingError, load_depth_estimator, load_diffusion, load_inpainter, load_segmenter  # noqa: E402
from engine.models.registry import resolve  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny():
    return load_diffusion("tiny", device="cpu")


def test_tiny_has_the_sd2_depth_architecture(tiny):
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    assert isinstance(tiny.unet, UNet2DConditionModel) and tiny.unet.config.in_channels == 5
    assert [type(b).__name__ for b in tiny.unet.up_blocks] == ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3
    assert isinstance(tiny.vae, AutoencoderKL) and isinstance(tiny.text_encoder, CLIPTextModel)
    assert isinstance(tiny.tokenizer, CLIPTokenizer) and isinstance(tiny.scheduler, DDIMScheduler)
    assert tiny.dtype == torch.float32 and tiny.device.type == "cpu"
    assert not any(p.requires_grad for p in tiny.unet.parameters())


def test_tiny_weights_are_seeded(tiny):
    again = load_diffusion("tiny", device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(tiny.unet.parameters(), again.unet.parameters(), strict=True))
    assert again.identity() == tiny.identity()


def test_loads_back_from_a_local_folder(tiny, tmp_path):
    tiny.save(tmp_path / "copy")
    assert list((tmp_path / "copy" / "unet").glob("*.safetensors"))
    loaded = load_diffusion(str(tmp_path / "copy"), device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(tiny.unet.parameters(), loaded.unet.parameters(), strict=True))
    tokens = loaded.tokenizer(["a chair"]).input_ids
    assert tokens == tiny.tokenizer(["a chair"]).input_ids


def test_folder_without_safetensors_is_refused(tiny, tmp_path):
    tiny.save(tmp_path / "copy")
    for weights in (tmp_path / "copy" / "unet").glob("*.safetensors"):
        weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(ModelMissingError) as error:
        load_diffusion(str(tmp_path / "copy"), device="cpu")
    assert "unet" in str(error.value)


@pytest.mark.parametrize("loader, hub_id, field", [
    (load_diffusion, "sd2-community/stable-diffusion-2-depth", "Diffusion Handles > Diffusion Model"),
    (load_depth_estimator, "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf",
     "Diffusion Handles > Depth Model"),
    (load_segmenter, "CIDAS/clipseg-rd64-refined", "Diffusion Handles > Segmentation Model"),
    (load_inpainter, "sd2-community/stable-diffusion-2-inpainting", None),
])
def test_offline_missing_model_says_which_and_how(loader, hub_id, field, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("DHANDLES_MODELS_DIR", raising=False)
    with pytest.raises(ModelMissingError) as error:
        loader(None, device="cpu")
    message = str(error.value)
    assert hub_id in message and f"hf download {hub_id}" in message and "folder" in message
    assert "Local model folder" not in message  # no such preference
    if field:  # the preference's label, as preferences.py spells it
        assert field in message
        label = field.rsplit("> ", 1)[1]
        assert f'name="{label}"' in (Path(__file__).parent.parent / "preferences.py").read_text()
    else:
        assert "Diffusion Model" not in message and "Depth Model" not in message


def test_connection_errors_are_recognised_through_the_wrapping():
    from engine.models.hub import connection_failed

    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as inner:
            raise OSError("someorg/x does not appear to have a file named config.json") from inner
    except OSError as wrapped:
        assert connection_failed(wrapped)
    assert not connection_failed(OSError("does not appear to have a file named config.json"))


_NETWORK_DOWN = """
from engine.models import ModelMissingError, load_depth_estimator, load_diffusion
for loader, name in ((load_depth_estimator, None), (load_diffusion, "someorg/not-cached")):
    try:
        loader(name, device="cpu")
    except ModelMissingError as error:
        print("ERROR:", error)
"""


def test_network_down_without_offline_flag_says_so(tmp_path):
    """HF_HUB_OFFLINE unset, the hub's host refuses connections: a quick, clear error, no half-minute retries."""
    import socket
    import subprocess
    import sys

    from conftest import REPO_ROOT, subprocess_env

    with socket.socket() as free:  # a port nobody listens on: connections are refused
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = subprocess_env(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HOME=str(tmp_path / "hf"))
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DHANDLES_MODELS_DIR", "HTTPS_PROXY", "https_proxy",
                 "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    run = subprocess.run([sys.executable, "-c", _NETWORK_DOWN], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    errors = [line for line in run.stdout.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 2, run.stdout + run.stderr
    for line in errors:
        assert "the network is unreachable" in line and "config.json" not in line
        assert "hf download" in line and "on the command line: `--model" in line
    assert "Depth Model" in errors[0] and "Diffusion Model" in errors[1]
    assert "Retry" not in run.stderr  # the hub client never started its retries


def test_missing_local_folder_is_named():
    with pytest.raises(ModelMissingError, match="/no/such/model/folder"):
        load_diffusion("/no/such/model/folder", device="cpu")


def test_models_dir_is_searched(tiny, tmp_path, monkeypatch):
    tiny.save(tmp_path / "stabilityai" / "stable-diffusion-2-depth")
    monkeypatch.setenv("DHANDLES_MODELS_DIR", str(tmp_path))
    assert load_diffusion("sd2-depth", device="cpu").unet.config.in_channels == 5


def test_preset_kind_is_checked():
    assert resolve(None, "diffusion") == ("sd2-depth", "sd2-community/stable-diffusion-2-depth")
    with pytest.raises(ValueError, match="depth model"):
        resolve("tiny-depth", "diffusion")


def test_tiny_depth_and_segmentation_run():
    import numpy as np

    photo = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    depth = load_depth_estimator("tiny-depth", device="cpu").estimate(photo)
    assert depth.shape == (40, 60) and depth.dtype == np.float32 and (depth > 0).all()
    probabilities = load_segmenter("tiny-segmentation", device="cpu").probabilities(photo, "a chair")
    assert probabilities.shape == (40, 60) and 0 <= probabilities.min() <= probabilities.max() <= 1


def test_tiny_inpainting_fills_only_the_hole():
    import numpy as np

    photo = (np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8)
    hole = np.zeros((50, 70), bool)
    hole[10:30, 20:45] = True
    out = load_inpainter("tiny-inpainting", device="cpu").complete(photo, hole, "a wall", steps=2, resolution=64)
    assert out.shape == photo.shape and np.array_equal(out[~hole], photo[~hole])
    assert not np.array_equal(out[hole], photo[hole])


class _ImageAsDepth:
    """A depth 'model' that returns its (preprocessed) input's red channel: whatever the processor did to the
    photo's geometry (padding, resizing) shows in the output, so the post-processing must undo exactly that."""

    def __call__(self, pixel_values):
        from types import SimpleNamespace

        return SimpleNamespace(predicted_depth=pixel_values[:, 0] + 3.0)


@pytest.mark.parametrize("build, mean, std", [("build_tiny_zoedepth", 0.5, 0.5), ("build_tiny_depth", 0.485, 0.229)])
def test_depth_lines_up_with_the_photo(build, mean, std):
    """ZoeDepth's processor reflect-pads the photo: its prediction must be un-padded, not stretched over the photo."""
    import numpy as np

    from engine.models import tiny
    from engine.models.depth_estimator import DepthEstimator

    height, width = 120, 180
    ys, xs = np.mgrid[0:height, 0:width]
    red = 255 * np.exp(-((xs - 50) ** 2 + (ys - 40) ** 2) / (2 * 14.0 ** 2))  # a blob off the centre
    photo = np.stack([red, np.zeros_like(red), np.zeros_like(red)], -1).astype(np.uint8)
    processor, _ = getattr(tiny, build)()
    depth = DepthEstimator("probe", processor, _ImageAsDepth(), "cpu").estimate(photo)
    expected = (photo[..., 0] / 255.0 - mean) / std + 3.0
    assert depth.shape == (height, width)
    assert np.abs(depth - expected).mean() < 0.01  # stretching the padded prediction gives 0.08 here


def test_zoedepth_padding_removal_matches_the_processor_padding():
    """The processor pads int(sqrt(side / 2) * 3) pixels per side; un-padding a padded ramp gives the ramp back."""
    import math

    import numpy as np

    from engine.models.depth_estimator import remove_zoedepth_padding

    height, width = 50, 72
    pad_h, pad_w = int(math.sqrt(height / 2) * 3), int(math.sqrt(width / 2) * 3)
    ramp = np.add.outer(np.arange(height, dtype=np.float32), 2 * np.arange(width, dtype=np.float32))
    padded = np.pad(ramp, ((pad_h, pad_h), (pad_w, pad_w)), mode="reflect")
    out = remove_zoedepth_padding(torch.from_numpy(padded)[None], height, width).numpy()
    assert np.allclose(out, ramp, atol=1e-3)
    unpadded = remove_zoedepth_padding(torch.from_numpy(ramp)[None], height, width, padded=False).numpy()
    assert np.allclose(unpadded, ramp, atol=1e-3)


def test_tiny_zoedepth_runs():
    import numpy as np

    photo = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    estimator = load_depth_estimator("tiny-zoedepth", device="cpu")
    depth = estimator.estimate(photo)
    assert type(estimator.model).__name__ == "ZoeDepthForDepthEstimation"
    assert depth.shape == (40, 60) and depth.dtype == np.float32 and (depth > 0).all() and np.isfinite(depth).all()


def test_inpainting_keeps_a_wide_photos_aspect():
    """A 16:9 photo is inpainted in the edit's working frame (aspect kept, padded to 64s), not squashed: what the
    model sees is the photo at its own aspect, and what comes back lines up with the photo."""
    import numpy as np

    inpainter = load_inpainter("tiny-inpainting", device="cpu")
    seen = {}
    model = inpainter.pipeline

    def spy(**kwargs):
        seen.update(kwargs)
        return model(**kwargs)

    inpainter.pipeline = spy
    photo = np.zeros((90, 160, 3), np.uint8)
    photo[:45] = 200  # top half bright: a squashed or shifted frame would move this edge
    hole = np.zeros((90, 160), bool)
    hole[30:60, 100:130] = True
    out = inpainter.complete(photo, hole, "a wall", steps=1, resolution=128)
    assert (seen["width"], seen["height"]) == (128, 128)
    sent = np.asarray(seen["image"])
    # the photo's 72 rows are centred (28 rows of edge padding above): its top half ends on row 28 + 36
    assert (sent[:64, 10, 0] == 200).all() and (sent[64:, 10, 0] == 0).all()
    sent_hole = np.asarray(seen["mask_image"]) > 0
    assert sent_hole[:28].all() and sent_hole[100:].all() and not sent_hole[28:100, :75].any()
    assert out.shape == photo.shape and np.array_equal(out[~hole], photo[~hole])
