"""How long a 4K photo takes to import as a 3D scene (``dhandles.import_photo``), without depth estimation.

Synthesises a 3840x2160 photo (PNG), metric depth (NPY) and object mask (PNG) in a temporary folder, registers the
add-on in this process's bpy, and times the operator end to end: the engine's ``scene`` job (read and validate the
files, fill the hole's depth, the meshes' arrays, the background texture) plus building the meshes in Blender.
The first import also starts the engine process; the goal (under 2 s) is for a warm engine. Also times one
full-resolution preview of an edit (``dhandles.preview_edit``).

Baselines in the same run: building the same background mesh with ``Mesh.from_pydata`` (per-vertex Python lists),
which is what the numpy + ``foreach_set`` path replaces; and the engine's arrays of the background mesh from the
previous mesh builder (``bench/grid_mesh_baseline.py``, once ``engine/jobs/_grid_mesh.py``: torn cells dropped, not
the engine's surface) against the surface builder the scene job uses now (``engine/geometry/surface_mesh.py``), on
the same cells.

    .venv/bin/python bench/import_4k.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 3840, 2160


def synthesise(folder: Path) -> dict:
    from PIL import Image

    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    depth = 2.0 + 10.0 * (1.0 - v / HEIGHT) + 0.3 * np.sin(u / 97.0)
    mask = ((u - 0.45 * WIDTH) / (0.16 * WIDTH)) ** 2 + ((v - 0.6 * HEIGHT) / (0.25 * HEIGHT)) ** 2 < 1.0
    depth[mask] = 3.0 + 0.5 * ((u[mask] - 0.45 * WIDTH) / WIDTH)
    rng = np.random.default_rng(0)
    photo = np.stack([(u / WIDTH * 255), (v / HEIGHT * 255), rng.integers(0, 255, (HEIGHT, WIDTH))], axis=2)
    paths = {"filepath": folder / "photo.png", "depth_path": folder / "depth.npy", "mask_path": folder / "mask.png"}
    Image.fromarray(photo.astype(np.uint8)).save(paths["filepath"], compress_level=1)
    np.save(paths["depth_path"], depth.astype(np.float32))
    Image.fromarray((mask * 255).astype(np.uint8)).save(paths["mask_path"])
    return {key: str(path) for key, path in paths.items()}


def compare_mesh_builders(files: dict, repeats: int = 3) -> tuple:
    """Best-of seconds and face counts of the background's arrays from the surface and the previous grid builder,
    on the same 4K depth and cells (the scene job's default 1024-cell grid)."""
    import math

    sys.path.insert(0, str(ROOT))  # this tree's engine, as the engine process runs it
    from engine.geometry import Camera
    from engine.geometry import surface_mesh as surface
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import grid_mesh_baseline as grid

    depth = np.load(files["depth_path"]).astype(np.float64)
    camera = Camera.official(WIDTH, HEIGHT, 55.0)
    step = max(1, math.ceil(max(WIDTH, HEIGHT) / 1024))
    new_s = old_s = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        cells, keep = surface.sample_cells(depth, None, step)
        new = surface.mesh_from_cells(cells, keep, camera, step)
        new_s = min(new_s, time.perf_counter() - started)
        started = time.perf_counter()
        xe, ye = grid.cell_edges(0, WIDTH, step), grid.cell_edges(0, HEIGHT, step)
        cells = grid.sample_cells(depth, xe, ye)
        old = grid.grid_mesh(cells, np.ones(cells.shape, bool), xe, ye, camera, 0.05)
        old_s = min(old_s, time.perf_counter() - started)
    return new_s, old_s, len(new.quads), len(old.quads)


def time_imports(files: dict, repeats: int) -> list:
    """Seconds of each Import Photo of the synthetic 4K photo; the first one starts the engine."""
    import bpy

    timings = []
    for _ in range(repeats + 1):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        started = time.perf_counter()
        assert bpy.ops.dhandles.import_photo(**files) == {"FINISHED"}
        timings.append(time.perf_counter() - started)
    return timings


def time_previews(rig, folder: Path) -> list:
    """Seconds of two previews of a small move at full resolution (reprojection, inpainting, PNG); the second
    reuses the engine's filled background depth of the first."""
    import bpy

    rig.target.location.x += 0.3
    bpy.context.view_layer.update()
    previews = []
    for turn in (0.2, 0.3):
        rig.target.rotation_euler.z = turn
        bpy.context.view_layer.update()
        started = time.perf_counter()
        assert bpy.ops.dhandles.preview_edit(output_path=str(folder / "preview.png")) == {"FINISHED"}
        previews.append(time.perf_counter() - started)
    return previews


def time_mesh_builds(background, scene_build) -> tuple:
    """Seconds of the Blender side's mesh build of the background, then of the per-vertex Python baseline
    (from_pydata) for the same mesh."""
    import bpy

    loops = np.empty(len(background.loops), np.int32)
    background.loops.foreach_get("vertex_index", loops)
    co = np.empty(len(background.vertices) * 3, np.float32)
    background.vertices.foreach_get("co", co)
    co, quads = co.reshape(-1, 3), loops.reshape(-1, 4)
    uv = np.zeros((len(co), 2), np.float32)
    started = time.perf_counter()
    scene_build.build_mesh("bench numpy", co, uv, quads)
    numpy_s = time.perf_counter() - started
    started = time.perf_counter()
    mesh = bpy.data.meshes.new("bench from_pydata")
    mesh.from_pydata(co.tolist(), [], quads.tolist())
    mesh.update(calc_edges=True)
    return numpy_s, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="dhandles-bench-blender-"))
    os.environ.setdefault("DHANDLES_ENGINE_PYTHON", sys.executable)
    folder = Path(tempfile.mkdtemp(prefix="dhandles-bench-4k-"))
    os.environ["TMPDIR"] = str(folder)  # the engine's job files go under it
    os.environ["XDG_CACHE_HOME"] = str(folder)  # and so do the scene files, in the add-on's cache
    files = synthesise(folder)

    import bpy

    addon_dir = Path(tempfile.mkdtemp(prefix="dhandles-bench-addon-"))
    (addon_dir / "diffusion_handles").symlink_to(ROOT, target_is_directory=True)
    sys.path.insert(0, str(addon_dir))
    import diffusion_handles
    from diffusion_handles.engine_link import engine_session
    from diffusion_handles.scene import scene_build

    diffusion_handles.register()
    try:
        timings = time_imports(files, args.repeats)
        rig = bpy.context.scene.dhandles_rig.dhandles
        background, target = rig.background.data, rig.target.data
        faces = (len(background.polygons), len(target.polygons))
        vertices = (len(background.vertices), len(target.vertices))
        previews = time_previews(rig, folder)

        # the engine job alone, timed inside the engine (reads the files, fills, meshes, writes the texture)
        params = {"photo": files["filepath"], "depth": files["depth_path"], "mask": files["mask_path"],
                  "output_dir": str(folder / "job")}
        started = time.perf_counter()
        engine_session.client().run("scene", params)
        job_s = time.perf_counter() - started
        numpy_s, pydata_s = time_mesh_builds(background, scene_build)
        builders = compare_mesh_builders(files)
    finally:
        engine_session.release()
        diffusion_handles.unregister()

    warm = timings[1:]
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, bpy "
        f"{bpy.app.version_string}",
        f"photo {WIDTH}x{HEIGHT}: background mesh {vertices[0]} vertices / {faces[0]} faces, object {vertices[1]} / "
        f"{faces[1]}",
        f"import, cold engine (includes engine start)   : {timings[0]:6.2f} s",
        f"import, warm engine (goal < 2 s)               : median {statistics.median(warm):6.2f} s  "
        f"(min {min(warm):.2f}, max {max(warm):.2f}, {len(warm)} runs)",
        f"  of which the engine's scene job (round trip) : {job_s:6.2f} s",
        f"preview of a move + turn, first (full res.)    : {previews[0]:6.2f} s  (loads torch, fills the hole)",
        f"preview of another turn (background cached)    : {previews[1]:6.2f} s",
        f"background mesh build, numpy + foreach_set     : {numpy_s:6.3f} s",
        f"baseline, the same mesh with from_pydata       : {pydata_s:6.3f} s  ({pydata_s / numpy_s:.0f}x slower)",
        f"background arrays, surface builder (now)       : {builders[0]:6.3f} s  ({builders[2]} faces)",
        f"background arrays, grid builder (before)       : {builders[1]:6.3f} s  ({builders[3]} faces)",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
