"""Box rooms rendered by Blender: files, exact depth (checked against Blender's ray casts) and VPs that the rendered
image agrees with far better than perturbed ones."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
from mathutils import Vector  # noqa: E402
from perspective_drawing import perturb_vps  # noqa: E402

from engine.perspective.metric import vp_agreement  # noqa: E402

W, H = 192, 144


@pytest.fixture(scope="module")
def dataset(addon, tmp_path_factory):
    module = importlib.import_module(f"{addon.__name__}.perspective.perspective_dataset")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    folder = tmp_path_factory.mktemp("perspective_dataset")
    scenes_before = len(bpy.data.scenes)
    samples = module.make_perspective_dataset(str(folder), count=3, width=W, height=H, seed=4)
    assert len(bpy.data.scenes) == scenes_before and not bpy.data.cameras  # nothing left behind
    return module, folder, samples


def load(sample):
    import cv2

    image = cv2.imread(f"{sample}/image.png")[..., ::-1].astype(np.float32) / 255.0
    return image, np.load(f"{sample}/depth.npy"), json.loads(open(f"{sample}/vps.json").read())


def test_samples_have_all_files(dataset):
    module, folder, samples = dataset
    assert [s.rsplit("/", 1)[-1] for s in samples] == ["sample_0000", "sample_0001", "sample_0002"]
    for sample in samples:
        image, depth, meta = load(sample)
        assert image.shape == (H, W, 3) and depth.shape == (H, W) and depth.dtype == np.float32
        assert np.isfinite(depth).all() and depth.min() > 0
        assert len(meta["vps"]) == 3 and meta["camera"]["width"] == W
        assert open(f"{sample}/caption.txt").read().strip().startswith("a ")
    more = module.make_perspective_dataset(str(folder), count=1, width=W, height=H, seed=4)
    assert more[0].endswith("sample_0003")  # existing samples kept, numbering continues


def test_rendered_rooms_score_far_better_with_their_vps(dataset):
    _, _, samples = dataset
    right, wrong = [], []
    for sample in samples:
        image, _, meta = load(sample)
        vps = np.array(meta["vps"])
        right.append(vp_agreement(image, vps))
        wrong.append(vp_agreement(image, perturb_vps(vps, W, H, fraction=0.08)))

    def share(reports):
        return np.mean([r["inlier_share_2deg"] for r in reports])

    def median(reports):
        return np.mean([r["median_error_deg"] for r in reports])

    assert share(right) > 0.8, right
    assert share(right) > share(wrong) + 0.25, (right, wrong)
    assert median(wrong) > 2.5 * median(right)



def test_rendered_rooms_have_lower_no_reference_loss_with_their_vps(dataset):
    import torch

    from engine.perspective.no_reference import vp_consistency_loss

    _, _, samples = dataset
    right, wrong = [], []
    for sample in samples:
        image, _, meta = load(sample)
        batch = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        vps = np.array(meta["vps"])
        right.append(float(vp_consistency_loss(batch, vps)))
        wrong.append(float(vp_consistency_loss(batch, perturb_vps(vps, W, H, fraction=0.2))))
    assert np.mean(wrong) > 1.2 * np.mean(right), (right, wrong)


def test_depth_matches_blenders_ray_casts(dataset):
    """Rebuild the room from the saved boxes and cast Blender rays through pixel centres of the saved camera."""
    _, _, samples = dataset
    image, depth, meta = load(samples[1])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    boxes = [meta["scene"]["room"]] + meta["scene"]["boxes"]
    for low, high in boxes:
        bpy.ops.mesh.primitive_cube_add(size=1.0, location=[(a + b) / 2 for a, b in zip(low, high, strict=True)],
                                        scale=[b - a for a, b in zip(low, high, strict=True)])
    depsgraph = bpy.context.evaluated_depsgraph_get()
    camera = meta["camera"]
    rotation = np.array(meta["world_to_camera"])
    origin = Vector(meta["camera_position"])
    rng = np.random.default_rng(0)
    errors = []
    for u, v in zip(rng.integers(0, W, 60), rng.integers(0, H, 60), strict=True):
        ray = np.array([(u - camera["cx"]) / camera["fx"], (v - camera["cy"]) / camera["fy"], 1.0])
        direction = rotation.T @ ray
        hit, location, *_ = scene.ray_cast(depsgraph, origin + Vector(direction * 1e-3), Vector(direction))
        assert hit
        z = float(rotation[2] @ (np.array(location) - np.array(meta["camera_position"])))
        errors.append(abs(z - depth[v, u]) / z)
    assert np.median(errors) < 1e-4 and np.max(errors) < 1e-3


def test_the_engine_reads_the_rendered_dataset(dataset):
    from engine.perspective.dataset import read_dataset

    _, folder, _ = dataset
    samples = read_dataset(folder, size=64)
    assert len(samples) >= 3 and samples[0].image.shape == (64, 64, 3) and samples[0].caption
    _, _, meta = load(f"{folder}/sample_0000")
    finite = np.array(meta["vps"])[:, 2] != 0
    expected = (np.array(meta["vps"])[finite, :2] + 0.5) * [64 / W, 64 / H] - 0.5
    assert np.allclose(samples[0].vps[finite, :2], expected)
