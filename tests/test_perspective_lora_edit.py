"""A perspective LoRA trained by ``finetune-perspective`` used by the edit job and ``python -m engine edit`` (tiny
preset): it changes the edit, is recorded in the report and the inversion cache key, never stays on the warm model
for a job without it, and a wrong folder is a clear error. Also the command's vanishing-point options."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from conftest import subprocess_env  # noqa: E402
from perspective_drawing import draw_room, write_dataset  # noqa: E402

from engine import model_cache  # noqa: E402
from engine.jobs import JobContext, JobError, load_job  # noqa: E402

SIZE = 64
SETTINGS = {"resolution": SIZE, "num_steps": 4, "guided_steps": 3, "opt_steps": 1, "null_inner_steps": 1}
MOVE = [[1, 0, 0, 0.1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """Adapters trained for 2 steps by the real command (a large learning rate, so 2 steps change the UNet)."""
    folder = tmp_path_factory.mktemp("lora")
    data = write_dataset(folder / "data", SIZE)
    done = subprocess.run([sys.executable, "-m", "engine", "finetune-perspective", "--data", str(data), "--out",
                           str(folder / "adapters"), "--model", "tiny", "--steps", "2", "--lr", "1e-2",
                           "--resolution", str(SIZE), "--num-lines", "100", "--device", "cpu"],
                          capture_output=True, text=True, env=subprocess_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return folder / "adapters"


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photo")
    image, vps = draw_room(width=SIZE, height=SIZE, focal=SIZE * 0.8)
    cv2.imwrite(str(folder / "photo.png"), (image[..., ::-1] * 255 + 0.5).astype(np.uint8))
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[24:40, 24:40] = 255
    cv2.imwrite(str(folder / "mask.png"), mask)
    np.save(folder / "depth.npy", np.full((SIZE, SIZE), 3.0, np.float32))
    return {"photo": str(folder / "photo.png"), "mask": str(folder / "mask.png"), "depth": str(folder / "depth.npy"),
            "vps": vps, "prompt": "a room", "model": "tiny", "device": "cpu", "settings": SETTINGS}


@pytest.fixture
def ctx(tmp_path):
    return JobContext("test", tmp_path / "work", lambda message: None)


def edit(ctx, photo, output, **extra):
    params = {k: v for k, v in photo.items() if k != "vps"}
    frame = load_job("edit").run(dict(params, transform=MOVE, output=str(output), **extra), ctx)["frames"][0]
    return cv2.imread(frame["image"]), json.loads(open(frame["report"]).read())


def warm_models():
    return model_cache.get_or_load(("diffusion", "tiny", "cpu", None), lambda: None)


def test_edit_job_with_and_without_the_lora(ctx, photo, adapters, tmp_path):
    cache = str(tmp_path / "cache")
    plain, plain_report = edit(ctx, photo, tmp_path / "plain.png", cache_dir=cache)
    tuned, tuned_report = edit(ctx, photo, tmp_path / "tuned.png", cache_dir=cache, lora={"path": str(adapters)})
    assert plain_report["lora"] is None
    lora = tuned_report["lora"]
    assert lora["path"] == str(adapters.resolve()) and lora["scale"] == 1.0 and len(lora["fingerprint"]) == 16
    assert lora["fingerprint"] in tuned_report["model"] and lora["fingerprint"] not in plain_report["model"]
    assert tuned_report["cache"]["inversion"] == "miss"  # another key: the base model's inversion is not reused
    assert tuned_report["cache"]["key"] != plain_report["cache"]["key"]
    assert np.abs(tuned.astype(int) - plain.astype(int)).max() > 0
    half, half_report = edit(ctx, photo, tmp_path / "half.png", cache_dir=cache,
                             lora={"path": str(adapters), "scale": 0.5})
    assert half_report["lora"]["scale"] == 0.5 and half_report["cache"]["key"] != tuned_report["cache"]["key"]
    assert np.abs(half.astype(int) - tuned.astype(int)).max() > 0
    # The warm model with an adapter on it is not used by mistake: without one, the base UNet again.
    again, again_report = edit(ctx, photo, tmp_path / "again.png", cache_dir=cache)
    assert again_report["lora"] is None and again_report["cache"] == plain_report["cache"] | {"inversion": "hit"}
    assert np.array_equal(again, plain)


def test_a_wrong_lora_folder_is_a_clear_error(ctx, photo, adapters, tmp_path):
    from diffusers import UNet2DConditionModel

    from engine.perspective.finetune import add_perspective_lora, save_perspective_lora

    other = UNet2DConditionModel(sample_size=8, in_channels=5, out_channels=4, layers_per_block=1,
                                 block_out_channels=(16, 32), norm_num_groups=8, cross_attention_dim=32,
                                 attention_head_dim=(2, 4), use_linear_projection=True,
                                 down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    add_perspective_lora(other)
    foreign = save_perspective_lora(other, tmp_path / "foreign", {"model": "small@123"})
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [({"path": str(tmp_path / "nowhere")}, "does not exist", "bad_lora"),
             ({"path": str(empty)}, "is not a LoRA adapter folder", "bad_lora"),
             ({"path": str(adapters), "scale": "strong"}, "'lora.scale' must be a number", "bad_params"),
             ({"path": str(foreign)}, "trained for another model", "bad_lora")]
    edit(ctx, photo, tmp_path / "warm.png", use_cache=False, lora={"path": str(adapters)})  # an adapter on it
    for lora, expected, code in cases:
        with pytest.raises(JobError) as error:
            edit(ctx, photo, tmp_path / "o.png", use_cache=False, lora=lora)
        assert error.value.code == code and expected in error.value.message, error.value.message
        assert "finetune-perspective" in error.value.message or "scale" in error.value.message
    assert "small@123" in error.value.message
    models = warm_models()  # the failed load left the base UNet, not a half-loaded or the earlier adapter
    assert models.adapter is None and "perspective" not in (getattr(models.unet, "peft_config", None) or {})
    assert not (tmp_path / "o.png").exists()


def edit_command(photo, out, *options):
    (out.parent / "move.json").write_text(json.dumps(MOVE))
    return ["edit", "--photo", photo["photo"], "--mask", photo["mask"], "--depth", photo["depth"], "--transform",
            str(out.parent / "move.json"), "--prompt", "a room", "--model", "tiny", "--device", "cpu", "--no-cache",
            "--out", str(out), "--steps", "4", "--resolution", str(SIZE), "--inversion", "ddim", "--set",
            "opt_steps=1", *options]


def test_edit_command_with_lora_vps_and_guidance(photo, adapters, tmp_path):
    vps = photo["vps"]
    finite = [f"--vp={x / w},{y / w}" for x, y, w in vps if w != 0]
    infinite = [f"--vp={x},{y},0" for x, y, w in vps if w == 0]
    command = edit_command(photo, tmp_path / "tuned.png", "--lora", str(adapters), "--lora-scale", "0.8", *finite,
                           *infinite, "--perspective-weight", "0.5", "--perspective-mode", "reference")
    done = subprocess.run([sys.executable, "-m", "engine", *command], capture_output=True, text=True,
                          env=subprocess_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "tuned.json").read_text())
    assert report["lora"]["scale"] == 0.8 and report["lora"]["fingerprint"] in report["model"]
    figures = report["perspective"]
    assert {"inlier_share_2deg", "median_error_deg", "segments", "loss"} <= set(figures)
    assert figures["guidance"]["weight"] == 0.5 and figures["guidance"]["mode"] == "reference"
    assert figures["guidance"]["evaluations"] > 0 and report["extra_terms"]["perspective"]


def test_edit_command_vps_file_and_bad_options(photo, tmp_path, capsys):
    from engine.cli import main

    file = tmp_path / "vps.json"  # VPs from a file: the figures only (no guidance without a weight or mode)
    file.write_text(json.dumps({"vps": photo["vps"].tolist()}))
    assert main(edit_command(photo, tmp_path / "plain.png", "--vps", str(file))) == 0
    report = json.loads((tmp_path / "plain.json").read_text())
    assert report["lora"] is None and "guidance" not in report["perspective"] and not report["extra_terms"]
    assert {"inlier_share_1deg", "median_error_deg", "loss"} <= set(report["perspective"])
    for options, expected in [(["--perspective-weight", "1"], "needs vanishing points"),
                              (["--vp", "10,10", "--perspective-mode", "sideways"], "use one of no_reference"),
                              (["--lora-scale", "0.5"], "--lora-scale needs --lora"),
                              (["--lora", str(tmp_path)], "is not a LoRA adapter folder"),
                              (["--vps", str(tmp_path / "move.json")], "has no 'vps' key")]:
        capsys.readouterr()
        assert main(edit_command(photo, tmp_path / "bad.png", *options)) == 1
        assert expected in capsys.readouterr().err
        assert not (tmp_path / "bad.png").exists()
