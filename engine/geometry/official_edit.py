"""One edit of the official test-set layout, end to end in memory: the object's centroid, the official
(axis, angle, translation) edit as an engine 4x4, the background fill guided by bg_depth, the reprojection and the
disparity. Shared by the `geometry` command and the benchmark; file I/O stays outside so timings exclude it."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .camera import Camera
from .depth_fill import default_hole_dilation, dilate, fill_depth_hole
from .disparity import normalised_disparity
from .reprojection import DEFAULT_MAX_STRETCH, Reprojection, reproject
from .transforms import object_centroid, official_edit_to_matrix


@dataclass
class EditResult:
    depth: np.ndarray            # HxW float32 edited metric depth
    disparity: np.ndarray        # HxW float32 0..255
    target_mask: np.ndarray      # HxW bool
    correspondences: np.ndarray  # Nx4 int32 src_x, src_y, tgt_x, tgt_y
    visible_fraction: float
    matrix: np.ndarray           # 4x4 engine-frame transform
    fill_ms: float
    reproject_ms: float
    ms: float                    # everything above, end to end


def run_official_edit(depth: np.ndarray, mask: np.ndarray, bg_depth, edit: dict, camera: Camera, device=None,
                      discontinuity: float = 0.1, hole_dilation: int | None = None,
                      max_stretch: float | None = DEFAULT_MAX_STRETCH, name: str = "the object") -> EditResult:
    """Raises GeometryError for an empty mask, bad depth, or an edit that leaves nothing visible (messages call
    the object `name`)."""
    dev = torch.device(device) if device is not None else None
    t0 = time.perf_counter()
    c = object_centroid(depth, mask, camera)
    M = official_edit_to_matrix(edit["translation"], edit.get("rotation_axis", [0.0, 1.0, 0.0]),
                                float(edit.get("rotation_angle", 0.0)), c)
    r = hole_dilation if hole_dilation is not None else default_hole_dilation(*depth.shape)
    background = fill_depth_hole(depth, dilate(mask, r), guide=bg_depth)
    t1 = time.perf_counter()
    d_in = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))
    b_in = torch.from_numpy(background)
    if dev is not None:
        d_in, b_in = d_in.to(dev), b_in.to(dev)
    res: Reprojection = reproject(d_in, mask, M, camera, background_depth=b_in, discontinuity=discontinuity,
                                  max_stretch=max_stretch, device=dev, names=[name])
    disp = normalised_disparity(res.depth)
    corr = res.correspondences(0)
    target = res.target_masks[0]
    if dev is not None and dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t2 = time.perf_counter()
    return EditResult(
        depth=res.depth.cpu().numpy(), disparity=disp.cpu().numpy(), target_mask=target.cpu().numpy(),
        correspondences=corr.cpu().numpy(), visible_fraction=res.visible_fraction[0], matrix=M,
        fill_ms=(t1 - t0) * 1000, reproject_ms=(t2 - t1) * 1000, ms=(t2 - t0) * 1000)
