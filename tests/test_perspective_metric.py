"""The LSD metric and the no-reference loss: right vanishing points score far better than perturbed ones."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from conftest import subprocess_env
from perspective_drawing import draw_room, perturb_vps

from engine.perspective.metric import perspective_report, segment_errors_deg, vp_agreement
from engine.perspective.no_reference import vp_consistency_loss

W, H = 320, 240


@pytest.fixture(scope="module")
def room():
    return draw_room(width=W, height=H)


def as_batch(image):
    return torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1)[None]


def test_segment_error_is_the_angle_to_the_nearest_vp():
    segments = np.array([[0.0, 0.0, 10.0, 0.0], [5.0, 5.0, 5.0, 25.0]])
    errors = segment_errors_deg(segments, [(105.0, 0.0), (5.0 + 20.0 * np.tan(np.radians(3.0)), 35.0)])
    assert errors[0] == pytest.approx(0.0, abs=1e-9)
    assert errors[1] == pytest.approx(np.degrees(np.arctan(20 * np.tan(np.radians(3.0)) / 20.0)), abs=1e-6)
    at_infinity = segment_errors_deg(segments, [(0.0, 1.0, 0.0)])
    assert at_infinity == pytest.approx([90.0, 0.0], abs=1e-9)


def test_right_vps_score_far_better_than_perturbed_ones(room):
    image, vps = room
    right = vp_agreement(image, vps)
    wrong = vp_agreement(image, perturb_vps(vps, W, H, fraction=0.08))
    assert right["segments"] > 100
    assert right["inlier_share_1deg"] > 0.6 and right["inlier_share_2deg"] > 0.85
    assert right["inlier_share_1deg"] > 1.8 * wrong["inlier_share_1deg"]
    assert right["median_error_deg"] < 0.6 and wrong["median_error_deg"] > 2.5 * right["median_error_deg"]


def test_no_reference_loss_prefers_the_right_vps(room):
    image, vps = room
    batch = as_batch(image)
    right = float(vp_consistency_loss(batch, vps))
    wrong = float(vp_consistency_loss(batch, perturb_vps(vps, W, H, fraction=0.2)))
    assert wrong > 1.4 * right, (right, wrong)
    # Contrast does not change it; gradients reach the image.
    assert float(vp_consistency_loss(0.5 * batch + 0.2, vps)) == pytest.approx(right, rel=1e-2)
    x = batch.clone().requires_grad_(True)
    vp_consistency_loss(x, vps).backward()
    assert torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0


def test_a_level_camera_has_its_vertical_vp_at_infinity():
    image, vps = draw_room(width=W, height=H, pitch=0.0)
    assert vps[2, 2] == 0.0 and abs(vps[2, 0]) < 1e-9  # vertical lines stay vertical
    right = vp_agreement(image, vps)
    tilted = vps.copy()
    tilted[2, :2] = [np.sin(np.radians(4.0)), np.cos(np.radians(4.0))]
    assert right["inlier_share_2deg"] > 0.85
    assert right["inlier_share_2deg"] > vp_agreement(image, tilted)["inlier_share_2deg"] + 0.2
    # The no-reference loss grows with the square of the angle: it needs a larger error to stand out of clutter.
    tilted[2, :2] = [np.sin(np.radians(10.0)), np.cos(np.radians(10.0))]
    batch = as_batch(image)
    assert float(vp_consistency_loss(batch, tilted)) > 1.3 * float(vp_consistency_loss(batch, vps))


def test_report_adds_the_loss_only_with_a_reference(room):
    image, vps = room
    assert "loss" not in perspective_report(image, vps)
    assert perspective_report(image, vps, reference=image)["loss"] == 0.0


def test_cli_prints_one_json_object(room, tmp_path):
    image, vps = room
    path = tmp_path / "room.png"
    cv2.imwrite(str(path), (image[..., ::-1] * 255 + 0.5).astype(np.uint8))
    args = [sys.executable, "-m", "engine", "perspective", "--image", str(path), "--reference", str(path)]
    for x, y, w in vps:
        args.append(f"--vp={x / w},{y / w}")
    done = subprocess.run(args, capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) >= {"inlier_share_1deg", "inlier_share_2deg", "inlier_share_5deg", "median_error_deg", "loss"}
    assert report["inlier_share_2deg"] > 0.85 and report["loss"] == 0.0
    bad = subprocess.run([sys.executable, "-m", "engine", "perspective", "--image", str(tmp_path / "missing.png"),
                          "--vp", "1,2"], capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert bad.returncode == 2 and "missing.png" in bad.stderr


def test_cli_vps_file_errors_name_the_file_and_the_fault(room, tmp_path):
    image, vps = room
    path = tmp_path / "room.png"
    cv2.imwrite(str(path), (image[..., ::-1] * 255 + 0.5).astype(np.uint8))
    good = tmp_path / "vps.json"
    good.write_text(json.dumps({"vps": vps.tolist(), "camera": {"width": W}}))
    cases = {"novps.json": ({"points": vps.tolist()}, "no 'vps' key (keys points)"),
             "notjson.json": (None, "is not a JSON file"),
             "badrow.json": ({"vps": [[1.0, 2.0], [3.0]]}, "vps[1]")}
    base = [sys.executable, "-m", "engine", "perspective", "--image", str(path), "--vps"]
    done = subprocess.run(base + [str(good)], capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout)["inlier_share_2deg"] > 0.85
    for name, (content, expected) in cases.items():
        bad = tmp_path / name
        bad.write_text("{not json" if content is None else json.dumps(content))
        done = subprocess.run(base + [str(bad)], capture_output=True, text=True, env=subprocess_env(), timeout=120)
        assert done.returncode == 2 and str(bad) in done.stderr and expected in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_read_vps_file(tmp_path):
    from engine.perspective.vanishing import read_vps_file

    path = tmp_path / "p.json"
    path.write_text(json.dumps({"vps": [[10, 20], [1, 0, 0]], "width": 640, "height": 480, "labels": ["x", "z"]}))
    assert read_vps_file(path) == {"vps": [[10.0, 20.0, 1.0], [1.0, 0.0, 0.0]], "width": 640, "height": 480}
    path.write_text(json.dumps({"vps": [[10, 20]], "width": 0}))
    with pytest.raises(ValueError, match="'width'"):
        read_vps_file(path)
    path.write_text('{"vps": [[10, 20]], "height": Infinity}')  # Python's json reads it; not a size
    with pytest.raises(ValueError, match="'height'"):
        read_vps_file(path)
    # Blender's dataset keeps the size with the camera's intrinsics
    path.write_text(json.dumps({"vps": [[10, 20]], "camera": {"width": 320, "height": 200, "fx": 300.0}}))
    assert read_vps_file(path) == {"vps": [[10.0, 20.0, 1.0]], "width": 320, "height": 200}
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_vps_file(tmp_path / "missing.json")
