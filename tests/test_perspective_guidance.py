"""Perspective guidance in the diffusion engine's guided sampler (tiny preset): it lowers the perspective loss of
the sample, reports its cost, and its job parameters and report figures behave."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from perspective_drawing import draw_room, perturb_vps  # noqa: E402

from engine.diffusion.cache import InversionCache  # noqa: E402
from engine.diffusion.inputs import EditRequest  # noqa: E402
from engine.diffusion.pipeline import Editor  # noqa: E402
from engine.diffusion.settings import EditSettings  # noqa: E402
from engine.geometry.camera import Camera  # noqa: E402
from engine.models import load_diffusion  # noqa: E402
from engine.perspective.guidance import PerspectiveGuidance, edit_figures, from_params, scale_vps  # noqa: E402
from engine.perspective.loss import perspective_loss  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def setup():
    image, vps = draw_room(width=SIZE, height=SIZE, focal=SIZE * 0.8)
    photo = (image * 255 + 0.5).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), bool)
    mask[24:40, 24:40] = True
    transform = np.eye(4)
    transform[0, 3] = 0.2
    request = EditRequest(image=photo, mask=mask, depth=np.full((SIZE, SIZE), 3.0, np.float32), transform=transform,
                          camera=Camera.from_fov(SIZE, SIZE, 55.0), prompt="a room")
    models = load_diffusion("tiny", device="cpu", dtype=torch.float32)
    settings = EditSettings(num_steps=5, guided_steps=4, resolution=SIZE, inversion="ddim")
    editor = Editor(models, settings, InversionCache(None, enabled=False))
    return editor, request, photo, vps


def as_batch(image):
    return torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1)[None]


def test_reference_guidance_lowers_the_papers_loss(setup):
    editor, request, photo, vps = setup

    def loss(image):
        return float(perspective_loss(as_batch(image), as_batch(photo), vps, num_lines=250))

    plain = editor.edit(request)
    term = PerspectiveGuidance(vps=vps.tolist(), image_size=(SIZE, SIZE), weight=100.0, mode="reference",
                               reference=photo, num_lines=250)
    guided = editor.edit(request, extra_terms=[term])
    before, after = loss(plain.working_image), loss(guided.working_image)
    print(f"reference loss without guidance {before:.4f}, with {after:.4f}")
    assert after < 0.97 * before
    summary = term.summary()
    assert summary["evaluations"] == 5 * 3  # every step of every timestep (t_range covers them all)
    assert summary["forward_seconds"] > 0 and summary["backward_seconds"] > 0
    assert summary["last_loss"] < summary["first_loss"]
    assert len(guided.report["extra_terms"]["perspective"]) == 15


def test_no_reference_guidance_descends_its_loss_and_respects_cadence(setup):
    """Through the sampler, each timestep's gradient steps lower the no-reference loss of the x0 prediction.
    (On the tiny preset's random weights the final image's loss is not lower than without guidance: its decoded
    images are noise whose loss sits at about the same level either way.)"""
    editor, request, _, vps = setup
    term = PerspectiveGuidance(vps=vps.tolist(), image_size=(SIZE, SIZE), weight=100.0)
    guided = editor.edit(request, extra_terms=[term])
    log = guided.report["extra_terms"]["perspective"]
    first_timestep = [entry["loss"] for entry in log if entry["step"] == 0]
    assert len(first_timestep) == 3 and first_timestep[2] < first_timestep[0] - 1e-3
    sparse = PerspectiveGuidance(vps=vps.tolist(), image_size=(SIZE, SIZE), weight=100.0, every=2, t_range=(0, 600))
    assert [sparse.active(i, t) for i, t in [(0, 900), (2, 500), (3, 400), (4, 0)]] == [False, True, False, True]


def test_job_parameters_and_report_figures():
    image, vps = draw_room(width=256, height=192, focal=210.0)
    photo = (image * 255 + 0.5).astype(np.uint8)
    params = {"vps": vps.tolist(), "width": 256, "height": 192,
              "guidance": {"weight": 5.0, "every": 2, "t_range": [100, 800]}}
    term = from_params(params)
    assert term.weight == 5.0 and term.every == 2 and term.t_range == (100, 800) and term.mode == "no_reference"
    assert from_params({**params, "guidance": {"weight": 0}}) is None and from_params(None) is None
    with pytest.raises(ValueError):
        from_params({**params, "guidance": {"mode": "reference"}})  # no reference image
    with pytest.raises(ValueError):
        from_params({**params, "guidance": {"strength": 1}})
    figures = edit_figures(photo, params, reference=photo, term=term)
    assert figures["loss"] == 0.0 and "guidance" in figures
    moved = {**params, "vps": perturb_vps(vps, 256, 192, fraction=0.1).tolist()}
    assert figures["inlier_share_2deg"] > edit_figures(photo, moved)["inlier_share_2deg"] + 0.2
    # The photo at half size, with the VPs given for the full size: the figures barely change.
    half = photo[::2, ::2]
    assert edit_figures(half, params)["inlier_share_5deg"] > 0.8
    # VPs given for another resolution of the same view are rescaled.
    doubled = scale_vps(vps, (SIZE, SIZE), (2 * SIZE, 2 * SIZE))
    finite = vps[:, 2] != 0
    assert np.allclose(doubled[finite, :2], (vps[finite, :2] + 0.5) * 2 - 0.5)


def test_edit_job_helpers():
    from engine.perspective.edit_job import check_params, guidance_terms, report_figures

    image, vps = draw_room(width=256, height=192, focal=210.0)
    photo = (image * 255 + 0.5).astype(np.uint8)
    params = {"perspective": {"vps": vps.tolist(), "width": 256, "height": 192}}
    assert guidance_terms(params, photo) == [] and guidance_terms({}, photo) == []
    figures = report_figures(params, photo, photo)
    assert figures["loss"] == 0.0 and figures["inlier_share_2deg"] > 0.85 and "guidance" not in figures
    assert report_figures({}, photo) is None
    params["perspective"]["guidance"] = {"weight": 3.0, "mode": "reference"}
    (term,) = guidance_terms(params, photo)
    assert term.mode == "reference" and term.reference is photo
    for bad in ({"vps": []}, {"vps": [[1, 2]], "width": 0, "height": 5}, {"vps": [[1]], "width": 2, "height": 2},
                [1, 2]):
        with pytest.raises(ValueError):
            check_params(bad)


def test_report_figures_restart_the_terms_cost_per_frame():
    from engine.perspective.edit_job import report_figures

    image, vps = draw_room(width=128, height=96, focal=105.0)
    params = {"perspective": {"vps": vps.tolist(), "width": 128, "height": 96, "guidance": {"weight": 1.0}}}
    term = from_params(params["perspective"])
    term.loss(torch.zeros(1, 4, 12, 16), lambda latents: torch.full((1, 3, 96, 128), 0.5))
    first = report_figures(params, image, terms=[term])
    assert first["guidance"]["evaluations"] == 1 and term.summary()["evaluations"] == 0


def test_perspective_param_from_command_line_options(tmp_path):
    import json

    from engine.perspective.edit_job import build_params, guidance_terms

    assert build_params(64, 48) is None
    only = build_params(64, 48, [(10.0, 20.0, 1.0)])
    assert only == {"vps": [[10.0, 20.0, 1.0]], "width": 64, "height": 48}
    file = tmp_path / "vps.json"  # given for twice the size: rescaled to the photo's pixels (centres aligned)
    file.write_text(json.dumps({"vps": [[20.5, 40.5, 1.0], [0.0, 1.0, 0.0]], "width": 128, "height": 96}))
    both = build_params(64, 48, [(10.0, 20.0, 1.0)], file, mode="reference")
    assert np.allclose(both["vps"], [[10, 20, 1], [10, 20, 1], [0, 1, 0]])
    assert both["guidance"] == {"weight": 1.0, "mode": "reference"}
    (term,) = guidance_terms({"perspective": both}, np.zeros((48, 64, 3)))
    assert term.mode == "reference" and term.image_size == (64, 48)
    assert build_params(64, 48, [(1.0, 2.0)], weight=0.0)["guidance"]["weight"] == 0.0
    with pytest.raises(ValueError, match="needs vanishing points"):
        build_params(64, 48, weight=2.0)
