"""Make the README's picture, headless: a room Blender renders itself stands in for the photo (no photogen copy is
committed), then Import Photo, a turn and a move of one box with the object's own transform, Preview Edit, and a
side view of the imported scene, side by side in one PNG.

    python tools/readme_picture.py [--output docs/images/walkthrough.png]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
log = logging.getLogger("readme_picture")


def room_with_mask(folder: Path, addon, seed: int) -> tuple[Path, Path, Path] | None:
    """Render one box room and write the mask of the box that covers the most pixels, if it covers 5-25 % of the
    picture; None otherwise."""
    import json

    from PIL import Image

    dataset = sys.modules[f"{addon.__name__}.perspective.perspective_dataset"]
    sample = Path(dataset.make_perspective_dataset(str(folder), count=1, width=640, height=480, seed=seed)[0])
    payload = json.loads((sample / "vps.json").read_text())
    depth = np.load(sample / "depth.npy")
    position = np.asarray(payload["camera_position"])
    room = dataset.ray_depth(payload, position, [])
    best = None
    for low, high in payload["scene"]["boxes"]:
        alone = dataset.ray_depth(payload, position, [(np.asarray(low), np.asarray(high), None)])
        mask = (np.abs(alone - depth) < 1e-4) & (alone < room - 1e-4)  # this box, in front of everything
        if best is None or mask.sum() > best.sum():
            best = mask
    if not 0.05 <= best.mean() <= 0.25:
        return None
    mask_path = sample / "mask.png"
    Image.fromarray((best * 255).astype(np.uint8)).save(mask_path)
    return sample / "image.png", sample / "depth.npy", mask_path


def side_view(bpy, rig, path: Path) -> None:
    """A Workbench render of the imported scene from beside and above the photo's camera."""
    scene = bpy.context.scene
    data = bpy.data.cameras.new("readme_side")
    camera = bpy.data.objects.new("readme_side", data)
    scene.collection.objects.link(camera)
    photo_camera = rig.camera.matrix_world
    target = rig.target.matrix_world.translation
    eye = photo_camera @ __import__("mathutils").Vector((1.6, 1.0, 0.3))
    camera.location = eye
    camera.rotation_euler = (target - eye).to_track_quat("-Z", "Y").to_euler()
    data.lens = 24.0
    world = scene.world or bpy.data.worlds.new("readme_world")
    scene.world = world
    world.color = (0.6, 0.62, 0.65)
    previous = scene.camera
    scene.camera = camera
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "FLAT"
    scene.display.shading.color_type = "TEXTURE"
    scene.render.filepath = str(path)
    scene.render.image_settings.file_format = "PNG"
    bpy.ops.render.render(write_still=True)
    scene.camera = previous


def compose(paths: list[Path], output: Path, height: int = 300) -> None:
    from PIL import Image

    tiles = []
    for path in paths:
        image = Image.open(path).convert("RGB")
        tiles.append(image.resize((round(image.width * height / image.height), height), Image.LANCZOS))
    gap = 8
    canvas = Image.new("RGB", (sum(t.width for t in tiles) + gap * (len(tiles) - 1), height), (255, 255, 255))
    x = 0
    for tile in tiles:
        canvas.paste(tile, (x, 0))
        x += tile.width + gap
    output.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(output, optimize=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="first room seed to try (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "images" / "walkthrough.png")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="dhandles-picture-blender-"))
    os.environ.setdefault("DHANDLES_ENGINE_PYTHON", sys.executable)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import bpy
    from demo_preview import load_addon

    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon = load_addon(None)
    work = Path(tempfile.mkdtemp(prefix="dhandles-picture-"))
    try:
        found = None
        for seed in range(args.seed, args.seed + 40):
            found = found or room_with_mask(work / f"room_{seed}", addon, seed)
        if found is None:
            raise SystemExit("readme_picture: no room with a box covering 5-25 % of the picture; try another --seed")
        photo, depth, mask = found
        bpy.ops.dhandles.import_photo(filepath=str(photo), depth_path=str(depth), mask_path=str(mask))
        rig = bpy.context.scene.dhandles_rig.dhandles
        side_view(bpy, rig, work / "side.png")
        rig.target.rotation_euler.z += math.radians(35)
        rig.target.location.x += 0.4
        bpy.ops.dhandles.preview_edit(output_path=str(work / "preview.png"))
        compose([photo, work / "side.png", work / "preview.png"], args.output.resolve())
    finally:
        sys.modules[f"{addon.__name__}.engine_link.engine_session"].release()
    log.info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
