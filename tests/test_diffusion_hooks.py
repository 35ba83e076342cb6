"""Forward hooks on the stock diffusers UNet, and the guidance losses on activation grids."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from engine.diffusion.activations import ActivationHooks, run_unet  # noqa: E402
from engine.diffusion.guidance import GuidanceTargets, background_loss, identity_loss  # noqa: E402
from engine.diffusion.report import UNetCounter  # noqa: E402
from engine.models import load_diffusion  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def unet():
    return load_diffusion("tiny", device="cpu").unet


def _inputs(batch=1, h=16, w=12):
    generator = torch.Generator().manual_seed(0)
    return (torch.randn(batch, 5, h, w, generator=generator), torch.tensor(500),
            torch.randn(batch, 77, 32, generator=generator))


def test_hooks_capture_the_outputs_of_up_blocks_1_to_3(unet):
    x, t, text = _inputs()
    seen = {}
    handles = [unet.up_blocks[i].register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(i, out))
               for i in range(4)]
    try:
        with ActivationHooks(unet, (1, 2, 3)) as hooks:
            out = run_unet(unet, x, t, text)
            captured = hooks.take()
    finally:
        for handle in handles:
            handle.remove()
    assert sorted(captured) == [1, 2, 3]
    for i in (1, 2, 3):
        assert torch.equal(captured[i], seen[i])
    # a 16x12 latent: up_blocks[1] upsamples to 4x3 -> 8x6, [2] to 16x12, [3] keeps 16x12 (non-square works)
    assert captured[1].shape == (1, 32, 8, 6) and captured[2].shape == (1, 32, 16, 12)
    assert captured[3].shape == (1, 16, 16, 12)
    assert torch.equal(out, unet(x, t, encoder_hidden_states=text).sample)  # hooks change nothing
    assert all(not block._forward_hooks for block in unet.up_blocks)  # and are gone afterwards


def test_batch_index_and_early_stop(unet):
    x, t, text = _inputs(batch=2)
    conv_out_calls = []
    handle = unet.conv_out.register_forward_hook(lambda *a: conv_out_calls.append(1))
    counter = UNetCounter()
    try:
        with ActivationHooks(unet, (2, 3), batch_index=1) as hooks:
            hooks.stop_after = 2
            assert run_unet(unet, x, t, text, counter) is None
            captured = hooks.take()
    finally:
        handle.remove()
    assert sorted(captured) == [2] and captured[2].shape[0] == 1 and not conv_out_calls
    assert counter.forwards == 2


def test_bad_layer_is_refused(unet):
    with pytest.raises(ValueError, match="up_blocks"):
        ActivationHooks(unet, (4,))


def test_correspondences_are_resampled_to_each_grid():
    height, width = 64, 96
    source = np.zeros((height, width), bool)
    source[8:24, 8:24] = True
    target = np.zeros_like(source)
    target[8:24, 40:56] = True
    ys, xs = np.nonzero(source)
    pairs = np.stack([xs, ys, xs + 32, ys], axis=1)
    targets = GuidanceTargets(pairs, source, target, "cpu")
    small = targets.grid((4, 6))  # 16-pixel cells: the object moved two cells right
    cells = set(zip(small["src"].tolist(), small["tgt"].tolist(), strict=True))
    assert all(t - s == 2 for s, t in cells)
    big = targets.grid((8, 12))
    assert len(big["src"]) == 4 and set((big["tgt"] - big["src"]).tolist()) == {4}
    assert 0 < len(big["bg_both"]) < len(big["bg_src"]) <= 8 * 12


def test_losses_vanish_when_the_features_moved_with_the_object():
    height, width = 32, 32
    source = np.zeros((height, width), bool)
    source[4:12, 4:12] = True
    target = np.roll(source, 16, axis=1)
    ys, xs = np.nonzero(source)
    targets = GuidanceTargets(np.stack([xs, ys, xs + 16, ys], axis=1), source, target, "cpu")
    original = torch.randn(1, 8, 8, 8)
    moved = original.clone()
    moved[..., 1:3, 5:7] = original[..., 1:3, 1:3]  # the object's cells, four to the right on the 8x8 grid
    assert float(identity_loss(moved, original, targets)) == 0.0
    assert float(identity_loss(original, original, targets)) > 0.0
    assert float(background_loss(original, original, targets, "local")) == 0.0
    assert float(background_loss(moved, original, targets, "local")) == 0.0
    with pytest.raises(ValueError):
        background_loss(moved, original, targets, "nope")


def test_ddim_steps_up_and_down_are_inverse():
    from diffusers import DDIMScheduler

    from engine.diffusion import ddim

    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    steps = ddim.timesteps(scheduler, 10)
    assert steps[0] > steps[-1] and len(steps) == 10
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 4, 8, 8, generator=generator)
    eps = torch.randn(1, 4, 8, 8, generator=generator)
    z = x0
    for t in reversed(steps):  # a noise prediction that does not depend on z: inversion is exact
        z = ddim.step_up(scheduler, z, eps, t)
    assert z.std() > 0.5 * eps.std()
    for t in steps:
        z = ddim.step_down(scheduler, z, eps, t)
    assert torch.allclose(z, x0, atol=1e-4)
    # the clean estimate of a noised latent recovers x0 exactly
    t = steps[3]
    a = scheduler.alphas_cumprod[t]
    noisy = a.sqrt() * x0 + (1 - a).sqrt() * eps
    assert torch.allclose(ddim.predict_x0(scheduler, noisy, eps, t), x0, atol=1e-5)


def test_identity_loss_pulls_targets_towards_the_source_features_not_the_reverse():
    """Through the geometry engine's correspondences: a plane moved right by exactly 6 activation cells. The loss is
    zero when the cells where the object lands carry the features of the cells it came from, and large for the
    reverse (features carried from the new place back to the old one), so the pairs' direction is right."""
    from engine.geometry import Camera, make_transform, reproject

    size, cell = 64, 4  # 16x16 activation grid
    camera = Camera.from_focal(size, size, 64.0)
    depth = np.full((size, size), 4.0, np.float32)
    mask = np.zeros((size, size), bool)
    mask[16:32, 8:24] = True
    depth[mask] = 2.0
    geo = reproject(depth, mask, make_transform(translation=[0.75, 0.0, 0.0]), camera)  # 64 * 0.75 / 2 = 24 px
    target_mask = np.asarray(geo.target_masks).any(axis=0)
    assert target_mask[16:32, 32:48].all() and target_mask.sum() == mask.sum()
    targets = GuidanceTargets(geo.correspondences(), mask, target_mask, "cpu")
    original = torch.randn(1, 8, size // cell, size // cell, generator=torch.Generator().manual_seed(1))
    rows, old, new = slice(4, 8), slice(2, 6), slice(8, 12)
    forward = original.clone()
    forward[..., rows, new] = original[..., rows, old]  # the object's features moved with it
    reverse = original.clone()
    reverse[..., rows, old] = original[..., rows, new]  # the wrong way round
    assert float(identity_loss(forward, original, targets)) < 1e-6
    assert float(identity_loss(reverse, original, targets)) > 0.5
