"""The diffusion core against the paper's and the official code's choices: the timestep schedule, the guidance pair
weighting, the run's own random generator, and the optional loss measuring. Tiny models, 64-pixel edits."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from engine.diffusion import ddim  # noqa: E402
from engine.diffusion.cache import InversionCache  # noqa: E402
from engine.diffusion.guidance import GuidanceTargets, identity_loss  # noqa: E402
from engine.diffusion.pipeline import Editor  # noqa: E402
from engine.diffusion.settings import EditSettings, guided_steps_for  # noqa: E402

CHEAP = dict(resolution=64, num_steps=5, guided_steps=3, opt_steps=2, inversion="ddim")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def chair(photogen):
    from engine.diffusion.inputs import read_sample

    return read_sample(photogen / "chair", "edit_002")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return InversionCache(tmp_path_factory.mktemp("inversions"))


def test_official_timestep_schedule_whatever_the_model_folder_says(models, chair, tmp_path):
    assert models.scheduler.config.steps_offset == 1  # the tiny preset, like SD2-depth's folder, says 1
    assert ddim.timesteps(models.scheduler, 50) == list(range(980, -1, -20))  # the official 980 ... 0
    seen = []
    handle = models.unet.register_forward_pre_hook(lambda module, args: seen.append(int(args[1])))
    try:
        Editor(models, EditSettings(**CHEAP), InversionCache(tmp_path, enabled=False)).edit(chair)
    finally:
        handle.remove()
    assert set(seen) == {800, 600, 400, 200, 0}  # inversion and sampling alike, 5 steps of stride 200


def test_the_38_of_50_rule():
    assert guided_steps_for(50) == 38 and guided_steps_for(25) == 19 and guided_steps_for(4) == 3
    assert EditSettings().guided_steps == 38 and EditSettings.fast().guided_steps == guided_steps_for(25)


def _hand_reference(pairs, current, original, grid, size, unique):
    """The identity loss computed pair by pair: mean over the correspondence list (or its distinct cell pairs) and
    the channels of |current at the target cell - original at the source cell|."""
    (gh, gw), (h, w) = grid, size
    cells = [((sy * gh // h) * gw + sx * gw // w, (ty * gh // h) * gw + tx * gw // w) for sx, sy, tx, ty in pairs]
    if unique:
        cells = sorted(set(cells))
    cur, orig = current[0].reshape(current.shape[1], -1), original[0].reshape(original.shape[1], -1)
    total = 0.0
    for src, tgt in cells:
        total += sum(abs(float(cur[c, tgt]) - float(orig[c, src])) for c in range(cur.shape[0]))
    return total / (len(cells) * cur.shape[0])


def test_pairs_are_weighted_by_their_multiplicity():
    size = (8, 8)
    source = np.zeros(size, bool)
    source[0:4, 0:4] = True
    target = np.roll(source, 4, axis=1)
    # 2x2-pixel cells on a 4x4 grid: the first four pixels share one pair of cells, the last one has its own
    pairs = np.array([[0, 0, 4, 0], [1, 0, 5, 0], [0, 1, 4, 1], [1, 1, 5, 1], [2, 2, 6, 2]])
    generator = torch.Generator().manual_seed(0)
    current, original = torch.randn(1, 3, 4, 4, generator=generator), torch.randn(1, 3, 4, 4, generator=generator)
    official = float(identity_loss(current, original, GuidanceTargets(pairs, source, target, "cpu")))
    unique = float(identity_loss(current, original, GuidanceTargets(pairs, source, target, "cpu", "unique")))
    assert official == pytest.approx(_hand_reference(pairs, current, original, (4, 4), size, False), rel=1e-6)
    assert unique == pytest.approx(_hand_reference(pairs, current, original, (4, 4), size, True), rel=1e-6)
    assert abs(official - unique) > 1e-3  # 4:1 against 1:1: the weighting matters
    assert EditSettings().pair_weighting == "multiplicity"
    with pytest.raises(ValueError, match="pair weighting"):
        EditSettings(pair_weighting="each")


@pytest.mark.parametrize("weighting", ["multiplicity", "unique"])
def test_each_object_keeps_its_identity_whatever_its_size(weighting):
    """Several objects: the identity loss is the mean of each object's own loss, so a small object's pairs are not
    outweighed by a large one's; one object (or all pairs labelled alike) gives the single-object loss."""
    size = (8, 8)
    source, target = np.ones(size, bool), np.ones(size, bool)
    big = np.array([[x, y, x, y] for x in range(4) for y in range(8)])  # 32 pixels, 8 cell pairs
    small = np.array([[6, 6, 7, 7]])  # one pixel
    pairs = np.concatenate([big, small])
    generator = torch.Generator().manual_seed(1)
    current, original = torch.randn(1, 3, 4, 4, generator=generator), torch.randn(1, 3, 4, 4, generator=generator)

    def loss(p, objects=None):
        return float(identity_loss(current, original, GuidanceTargets(p, source, target, "cpu", weighting, objects)))

    per_object = loss(pairs, [0] * len(big) + [1])
    assert per_object == pytest.approx((loss(big) + loss(small)) / 2, rel=1e-6)
    assert loss(pairs, [0] * len(pairs)) == pytest.approx(loss(pairs), rel=1e-6)
    assert abs(per_object - loss(pairs)) > 1e-3  # pooled, the big object would dominate
    with pytest.raises(ValueError, match="one object index per correspondence"):
        GuidanceTargets(pairs, source, target, "cpu", weighting, [0])


def test_the_edit_uses_the_pair_weighting_it_is_given(models, chair, cache):
    official = Editor(models, EditSettings(**CHEAP), cache).edit(chair)
    unique = Editor(models, EditSettings(**CHEAP, pair_weighting="unique"), cache).edit(chair)
    assert unique.report["cache"]["inversion"] == "hit"  # a guidance setting: the same inversion
    assert not np.array_equal(official.working_image, unique.working_image)


def test_the_run_has_its_own_generator_and_leaves_the_global_one_alone(models, chair, cache):
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    first = Editor(models, EditSettings(**CHEAP), cache).edit(chair)
    assert torch.equal(torch.rand(4), expected)  # the edit neither seeded nor drew from the process-wide RNG
    torch.manual_seed(7)  # whatever state the process is in, the same seed gives the same edit
    second = Editor(models, EditSettings(**CHEAP), cache).edit(chair)
    assert np.array_equal(first.image, second.image)


def test_loss_measuring_is_optional_and_costs_two_forwards(models, chair, cache):
    off = Editor(models, EditSettings(**CHEAP), cache).edit(chair)
    on = Editor(models, EditSettings(**CHEAP, measure_losses=True), cache).edit(chair)
    cost_off, cost_on = off.report["stages"]["guided_sampling"], on.report["stages"]["guided_sampling"]
    assert cost_on["unet_forward"] == cost_off["unet_forward"] + 2
    assert cost_on["unet_backward"] == cost_off["unet_backward"]
    assert off.report["losses"] == {"measured": False}
    losses = on.report["losses"]
    assert losses["measured"] and losses["layers"] == ["up_blocks[2]", "up_blocks[3]"]  # the official cycle's
    assert losses["step"] == 0 and losses["timestep"] == 800
    assert all(np.isfinite(losses[k]) for k in ("identity_before", "identity_after", "background_before",
                                                 "background_after"))
    assert np.array_equal(on.image, off.image)  # measuring never changes the edit


def test_measure_losses_from_the_command_line():
    import argparse

    from engine.commands.edit import settings_from_args

    args = argparse.Namespace(set=["measure_losses=true"], inversion=None, steps=None, resolution=None)
    assert settings_from_args(args).measure_losses is True
    with pytest.raises(ValueError, match="measure_losses"):
        EditSettings.from_dict({"measure_losses": "sometimes"})
