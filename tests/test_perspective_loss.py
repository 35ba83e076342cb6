"""The reference perspective loss and its line sweep: exact zeros, gradients, VPs at infinity, batching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from perspective_drawing import draw_room

from engine.perspective.image_gradients import image_gradients
from engine.perspective.loss import perspective_loss, profiles_from_gradients
from engine.perspective.sweep import sweep_lines


def as_batch(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1)[None]


def line_profiles(image: torch.Tensor, vps, num_lines: int) -> torch.Tensor:
    """The loss's BxKxN line profiles of one image, from the loss module's own steps."""
    sweep, _ = sweep_lines(vps, image.shape[0], image.shape[2], image.shape[3], num_lines=num_lines)
    return profiles_from_gradients(image_gradients(image), sweep)


@pytest.fixture(scope="module")
def room():
    image, vps = draw_room(width=256, height=192, focal=210.0)
    return as_batch(image), vps


def test_identical_images_have_zero_loss_and_zero_gradient(room):
    image, vps = room
    x = image.clone().requires_grad_(True)
    loss = perspective_loss(x, image, vps)
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert torch.isfinite(x.grad).all() and float(x.grad.abs().max()) == 0.0


def test_gradient_reaches_the_image_and_a_step_down_it_lowers_the_loss(room):
    image, vps = room
    start = (image + 0.1 * torch.randn_like(image, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    x = start.clone().requires_grad_(True)
    loss = perspective_loss(x, image, vps)
    loss.backward()
    assert torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0
    with torch.no_grad():
        stepped = perspective_loss(x - 0.5 * x.grad / x.grad.norm() * start.numel() ** 0.5 * 1e-3, image, vps)
    assert float(stepped) < loss.item()


def test_gradcheck_on_a_small_image():
    torch.manual_seed(0)
    x = torch.rand(1, 1, 12, 14, dtype=torch.float64, requires_grad=True)
    reference = torch.rand(1, 1, 12, 14, dtype=torch.float64)
    vps = [(30.0, -5.0), (3.0, 1.0, 0.0)]
    assert torch.autograd.gradcheck(lambda x: perspective_loss(x, reference, vps, num_lines=24, samples_per_line=13),
                                    (x,), eps=1e-6, atol=1e-5)


def test_the_loss_sees_geometry_more_than_photometry():
    """A 2-degree turn of the camera costs far more than noise and a contrast change on the right geometry."""
    reference, vps = draw_room(width=256, height=192, focal=210.0)
    rng = np.random.default_rng(3)
    photometric = np.clip(0.85 * reference + 0.05 + rng.normal(0, 0.02, reference.shape), 0, 1)
    turned, _ = draw_room(width=256, height=192, focal=210.0, yaw=27.0)
    ref = as_batch(reference)
    small = float(perspective_loss(as_batch(photometric), ref, vps))
    large = float(perspective_loss(as_batch(turned), ref, vps))
    assert large > 2.5 * small, (small, large)


def test_a_vp_at_infinity_is_a_pencil_of_parallel_lines():
    sweep, usable = sweep_lines([(0.0, 1.0, 0.0)], 1, 40, 60, num_lines=30, samples_per_line=8)
    assert usable.all() and sweep.valid.all()
    grid = sweep.grid.view(30, 8, 2)
    u = (grid[..., 0] + 1) * 60 / 2 - 0.5
    assert torch.allclose(u, u[:, :1].expand_as(u), atol=1e-5)  # each line is vertical
    assert float(u[:, 0].min()) > -0.5 and float(u[:, 0].max()) < 59.5
    # The limit of ever farther finite VPs is the pencil.
    image = torch.rand(1, 3, 40, 60, generator=torch.Generator().manual_seed(1))
    at_infinity = line_profiles(image, [(0.0, 1.0, 0.0)], num_lines=50)
    far = line_profiles(image, [(29.5, 1e8)], num_lines=50)
    # Same lines; the order of a pencil depends on the sign of its direction, which names the same VP.
    assert torch.allclose(at_infinity, far.flip(-1), atol=1e-4) or torch.allclose(at_infinity, far, atol=1e-4)


def test_vps_inside_the_image_sweep_all_around():
    sweep, _ = sweep_lines([(30.0, 20.0)], 1, 40, 60, num_lines=64)
    normals = sweep.normals.view(64, 2).double()
    angles = torch.atan2(normals[:, 1], normals[:, 0])
    assert sweep.valid.all()
    assert float(angles.max() - angles.min()) > 1.9 * math.pi


def test_far_vps_stay_exact_and_unusable_rows_are_skipped(room):
    image, vps = room
    batch = torch.cat([image, image.flip(-1)])
    per_image = torch.tensor([vps.tolist(), vps.tolist()], dtype=torch.float64)
    per_image[1, 2] = float("nan")  # the second image has only two VPs
    reference = torch.rand_like(batch)
    both = perspective_loss(batch, reference, per_image, reduction="none")
    first = perspective_loss(batch[:1], reference[:1], vps)
    second = perspective_loss(batch[1:], reference[1:], vps[:2])
    assert torch.allclose(both, torch.stack([first, second]), rtol=1e-5)
    assert float(perspective_loss(batch[:1], reference[:1], [(float("nan"), 0.0)])) == 0.0
    profiles = line_profiles(image, [(1e7, 90.0)], num_lines=200)
    assert torch.isfinite(profiles).all() and float(profiles.abs().sum()) > 0
