"""Reading a perspective fine-tuning folder: one sub-folder per sample with ``image.png``, ``depth.npy`` or
``depth.exr`` (metric z-depth), ``caption.txt`` and ``vps.json`` (key ``vps``: rows [x, y, w] in the image's
pixels). ``dhandles.make_perspective_dataset`` in Blender writes this layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

REQUIRED = ("image.png", "caption.txt", "vps.json")


@dataclass
class PerspectiveSample:
    name: str
    image: np.ndarray  # HxWx3 float32 in [0, 1] at the training size
    depth: np.ndarray  # HxW float32 metric z-depth (any size with the image's aspect)
    caption: str
    vps: np.ndarray  # Kx3 homogeneous VPs in pixels of ``image``


def sample_folders(folder) -> list[Path]:
    """The sample sub-folders of ``folder`` (sorted); a clear error when there are none or one is incomplete."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"The dataset folder '{folder}' does not exist.")
    samples = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "image.png").is_file())
    if not samples:
        raise ValueError(f"'{folder}' holds no samples (sub-folders with image.png, depth.npy or depth.exr, "
                         "caption.txt and vps.json); make some with Blender's Make Perspective Dataset.")
    for sample in samples:
        missing = [name for name in REQUIRED if not (sample / name).is_file()]
        if not (sample / "depth.npy").is_file() and not (sample / "depth.exr").is_file():
            missing.append("depth.npy or depth.exr")
        if missing:
            raise ValueError(f"Sample '{sample}' lacks {', '.join(missing)}.")
    return samples


def read_sample(folder, size: int | None = None) -> PerspectiveSample:
    """One sample, its image resized to ``size`` x ``size`` (area resampling; VPs follow) when given."""
    from PIL import Image

    from ..io import read_depth, read_photo
    from .guidance import scale_vps
    from .vanishing import read_vps_file

    folder = Path(folder)
    image = Image.fromarray(read_photo(folder / "image.png", "dataset image"))
    original = image.size
    if size is not None and image.size != (size, size):
        image = image.resize((size, size), Image.BOX)
    array = np.asarray(image, np.float32) / 255.0
    depth_path = folder / "depth.npy" if (folder / "depth.npy").is_file() else folder / "depth.exr"
    depth = read_depth(depth_path)
    vps = scale_vps(read_vps_file(folder / "vps.json")["vps"], original, (array.shape[1], array.shape[0]))
    caption = (folder / "caption.txt").read_text(encoding="utf-8").strip()
    return PerspectiveSample(folder.name, array, depth, caption, vps)


def read_dataset(folder, size: int | None = None) -> list[PerspectiveSample]:
    return [read_sample(sample, size) for sample in sample_folders(folder)]
