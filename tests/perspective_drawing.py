"""Synthetic images with known vanishing points for the perspective tests: a box room drawn with numpy/OpenCV.

The room is the box [-3, 3] x [-4, 4] x [0, 3] (world Z up), tiled with grid lines on every face, seen from
inside by a pinhole camera in the engine's frame. Every straight edge is parallel to a world axis, so the world
axes' vanishing points are exact for the image.
"""

from __future__ import annotations

import cv2
import numpy as np

from engine.geometry.camera import intrinsics_matrix as intrinsics
from engine.geometry.vanishing import vanishing_points

ROOM = np.array([[-3.0, -4.0, 0.0], [3.0, 4.0, 3.0]])


def look_rotation(yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0) -> np.ndarray:
    """World-to-camera rotation (engine frame) of a camera looking along world +Y turned by yaw (about Z),
    pitched up, and rolled."""
    yaw, pitch, roll = np.radians([yaw_deg, pitch_deg, roll_deg])
    # Camera axes in the world for yaw = pitch = 0: right = +X, down = -Z, forward = +Y.
    base = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    rz = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    rr = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
    return rr @ base @ rx.T @ rz.T


def room_segments(step: float = 0.5) -> np.ndarray:
    """Nx2x3 world segments: the room's grid lines, all parallel to a world axis."""
    (x0, y0, z0), (x1, y1, z1) = ROOM
    segments = []
    for x in np.arange(x0, x1 + 1e-9, step):
        segments += [[[x, y0, z0], [x, y1, z0]], [[x, y0, z1], [x, y1, z1]],
                     [[x, y1, z0], [x, y1, z1]], [[x, y0, z0], [x, y0, z1]]]
    for y in np.arange(y0, y1 + 1e-9, step):
        segments += [[[x0, y, z0], [x1, y, z0]], [[x0, y, z1], [x1, y, z1]],
                     [[x0, y, z0], [x0, y, z1]], [[x1, y, z0], [x1, y, z1]]]
    for z in np.arange(z0, z1 + 1e-9, step):
        segments += [[[x0, y0, z], [x0, y1, z]], [[x1, y0, z], [x1, y1, z]],
                     [[x0, y1, z], [x1, y1, z]], [[x0, y0, z], [x1, y0, z]]]
    return np.array(segments)


def draw_room(width=320, height=240, yaw=25.0, pitch=8.0, roll=0.0, focal=260.0, eye=(0.3, -2.5, 1.4),
              shift=(0.0, 0.0), seed=0):
    """(HxWx3 float image in [0, 1], 3x3 homogeneous VPs of the world X, Y, Z axes)."""
    K = intrinsics(focal, focal, (width - 1) / 2 + shift[0], (height - 1) / 2 + shift[1])
    R = look_rotation(yaw, pitch, roll)
    eye = np.asarray(eye, np.float64)
    rng = np.random.default_rng(seed)
    scale = 4  # draw supersampled, then shrink: anti-aliased edges
    canvas = np.full((height * scale, width * scale, 3), 0.55, np.float32)
    canvas += rng.normal(0.0, 0.01, canvas.shape).astype(np.float32)
    near = 0.05
    for a, b in room_segments():
        pa, pb = R @ (a - eye), R @ (b - eye)
        if pa[2] < near and pb[2] < near:
            continue
        if pa[2] < near or pb[2] < near:  # clip at the near plane
            t = (near - pa[2]) / (pb[2] - pa[2])
            cut = pa + t * (pb - pa)
            pa, pb = (cut, pb) if pa[2] < near else (pa, cut)
        ua, ub = K @ pa, K @ pb
        ua, ub = ua[:2] / ua[2], ub[:2] / ub[2]
        color = tuple(float(c) for c in rng.uniform(0.0, 0.35, 3))
        # Pixel centres on integers at both scales: u_big = scale * (u + 0.5) - 0.5; 4 fractional bits.
        p1 = np.round((scale * (ua + 0.5) - 0.5) * 16).astype(np.int64)
        p2 = np.round((scale * (ub + 0.5) - 0.5) * 16).astype(np.int64)
        big = 1 << 20
        if np.abs(np.concatenate([p1, p2])).max() > big:
            ok, q1, q2 = cv2.clipLine((0, 0, width * scale * 16, height * scale * 16), tuple(map(int, p1)),
                                      tuple(map(int, p2)))
            if not ok:
                continue
            p1, p2 = np.array(q1), np.array(q2)
        cv2.line(canvas, tuple(map(int, p1)), tuple(map(int, p2)), color, 2 * scale // 2, cv2.LINE_AA, shift=4)
    image = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(image, 0.0, 1.0), vanishing_points(K, R)


def perturb_vps(vps: np.ndarray, width: int, height: int, fraction: float = 0.08, seed: int = 1) -> np.ndarray:
    """The VPs moved: finite ones by ``fraction`` of the image diagonal (or of their distance from the centre,
    if larger), directions at infinity turned by 10 degrees."""
    rng = np.random.default_rng(seed)
    out = np.array(vps, np.float64).copy()
    centre = np.array([width / 2, height / 2])
    for row in out:
        if row[2] == 0:
            angle = np.radians(10.0) * rng.choice([-1, 1])
            c, s = np.cos(angle), np.sin(angle)
            row[:2] = [c * row[0] - s * row[1], s * row[0] + c * row[1]]
        else:
            distance = max(np.hypot(width, height), np.linalg.norm(row[:2] - centre)) * fraction
            angle = rng.uniform(0, 2 * np.pi)
            row[:2] += distance * np.array([np.cos(angle), np.sin(angle)])
    return out


def write_dataset(folder, size: int = 64, views=((20, 5), (-30, 10), (45, -5))):
    """Drawn box rooms in the fine-tuning layout Blender writes (image.png, depth.npy, caption.txt, vps.json),
    one sample folder per (yaw, pitch) of ``views``; returns ``folder``."""
    import json
    from pathlib import Path

    folder = Path(folder)
    for i, (yaw, pitch) in enumerate(views):
        sample = folder / f"sample_{i:04d}"
        sample.mkdir(parents=True)
        image, vps = draw_room(width=size, height=size, focal=50.0 * size / 64, yaw=yaw, pitch=pitch, seed=i)
        cv2.imwrite(str(sample / "image.png"), (image[..., ::-1] * 255 + 0.5).astype(np.uint8))
        np.save(sample / "depth.npy", np.linspace(2, 5, size * size, dtype=np.float32).reshape(size, size))
        (sample / "caption.txt").write_text("a tiled room\n")
        (sample / "vps.json").write_text(json.dumps({"vps": vps.tolist()}))
    return folder
