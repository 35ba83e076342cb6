"""How well an image's straight edges agree with given vanishing points, for reports and benchmarks.

Line segments come from OpenCV's LSD detector. A segment's error is the angle between its direction and the
direction from its midpoint to the nearest vanishing point (for a VP at infinity, the VP's direction), folded to
[0, 90] degrees. The figures are length-weighted, so long structural edges count more than short texture:
``inlier_share_Ndeg`` is the share of segment length within N degrees, ``median_error_deg`` the length-weighted
median error. numpy and OpenCV only; the reference loss (torch) is imported only when a reference is given.
"""

from __future__ import annotations

import numpy as np

INLIER_THRESHOLDS_DEG = (1, 2, 5)
# Segments shorter than this (pixels) have too noisy a direction to judge; LSD finds many in texture.
DEFAULT_MIN_LENGTH = 10.0


def to_gray_uint8(image: np.ndarray) -> np.ndarray:
    """HxW uint8 luminance of an HxW or HxWxC image, uint8 or float in [0, 1]."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (np.clip(image.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if image.ndim == 3:
        if image.shape[2] == 1:
            image = image[..., 0]
        else:
            rgb = image[..., :3].astype(np.float32)
            image = (rgb @ np.array([0.299, 0.587, 0.114], np.float32) + 0.5).clip(0, 255).astype(np.uint8)
    if image.ndim != 2:
        raise ValueError(f"expected an HxW or HxWxC image, got shape {image.shape}")
    return image


def detect_segments(image: np.ndarray, min_length: float = DEFAULT_MIN_LENGTH) -> np.ndarray:
    """Mx4 segments (u1, v1, u2, v2) in pixels, at least ``min_length`` long."""
    import cv2

    gray = to_gray_uint8(image)
    lines = cv2.createLineSegmentDetector().detect(gray)[0]
    if lines is None:
        return np.zeros((0, 4), np.float64)
    segments = lines.reshape(-1, 4).astype(np.float64)  # LSD, like this package, puts pixel centres on integers
    lengths = np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1])
    return segments[lengths >= min_length]


def homogeneous_vps(vps) -> np.ndarray:
    """Kx3 homogeneous VPs from rows (x, y) or (x, y, w); finite ones scaled to w = 1."""
    rows = [tuple(float(c) for c in v) + ((1.0,) if len(v) == 2 else ()) for v in vps]
    array = np.array(rows, np.float64).reshape(-1, 3)
    finite = array[:, 2] != 0
    array[finite] /= array[finite, 2:3]
    return array


def segment_errors_deg(segments: np.ndarray, vps) -> np.ndarray:
    """M errors in degrees: each segment's angle to the direction towards its nearest vanishing point."""
    vps = homogeneous_vps(vps)
    if len(segments) == 0 or len(vps) == 0:
        return np.full(len(segments), 90.0)
    start, end = segments[:, :2], segments[:, 2:]
    direction = end - start
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    middle = (start + end) / 2
    to_vp = vps[None, :, :2] - vps[None, :, 2:] * middle[:, None, :]  # MxKx2
    to_vp /= np.maximum(np.linalg.norm(to_vp, axis=2, keepdims=True), 1e-12)
    cosine = np.abs(np.einsum("mkc,mc->mk", to_vp, direction)).clip(0.0, 1.0)
    return np.degrees(np.arccos(cosine)).min(axis=1)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def vp_agreement(image: np.ndarray, vps, min_length: float = DEFAULT_MIN_LENGTH) -> dict:
    """Length-weighted inlier shares at 1/2/5 degrees, median error and segment count of ``image``."""
    segments = detect_segments(image, min_length)
    report = {f"inlier_share_{t}deg": 0.0 for t in INLIER_THRESHOLDS_DEG}
    report.update(median_error_deg=90.0, segments=int(len(segments)))
    if len(segments) == 0:
        return report
    errors = segment_errors_deg(segments, vps)
    lengths = np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1])
    for threshold in INLIER_THRESHOLDS_DEG:
        report[f"inlier_share_{threshold}deg"] = float(lengths[errors <= threshold].sum() / lengths.sum())
    report["median_error_deg"] = weighted_median(errors, lengths)
    return report


# Samples along each swept line for the report's loss: one per pixel up to this, so a 4K photo costs what 1K does.
REPORT_SAMPLES_PER_LINE = 1024


def reference_loss(image: np.ndarray, reference: np.ndarray, vps) -> float:
    """The paper's reference loss between two HxWxC float [0, 1] images of the same size (torch, CPU/GPU)."""
    import torch

    from .loss import perspective_loss

    if image.shape != reference.shape:
        raise ValueError(f"image {image.shape} and reference {reference.shape} differ in size")
    device = "cuda" if torch.cuda.is_available() else "cpu"

    def as_batch(array):
        array = array[..., None] if array.ndim == 2 else array
        return torch.from_numpy(np.ascontiguousarray(array, np.float32)).permute(2, 0, 1)[None].to(device)

    with torch.no_grad():
        samples = min(max(image.shape[:2]), REPORT_SAMPLES_PER_LINE)
        return float(perspective_loss(as_batch(image), as_batch(reference), homogeneous_vps(vps),
                                      samples_per_line=samples))


def perspective_report(image: np.ndarray, vps, reference: np.ndarray | None = None,
                       min_length: float = DEFAULT_MIN_LENGTH) -> dict:
    """The figures of an edit report's ``perspective`` entry (an edit whose job has a ``perspective`` parameter):
    the agreement of ``image`` with ``vps``, and the loss against ``reference`` when one is given. Images are
    HxWxC float in [0, 1] or uint8."""
    report = vp_agreement(image, vps, min_length)
    if reference is not None:
        report["loss"] = reference_loss(_as_float(np.asarray(image)), _as_float(np.asarray(reference)), vps)
    return report


def _as_float(image: np.ndarray) -> np.ndarray:
    """An image as float32 in [0, 1] (uint8 images are scaled)."""
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
