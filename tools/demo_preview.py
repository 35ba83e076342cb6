"""The offline main job, headless: import a photo as a 3D scene with bpy, apply an official 3D edit to its object,
and preview the edit by reprojection (no diffusion model, no network, no weights), writing a PNG.

    python tools/demo_preview.py --sample ../shared/photogen/car --edit edit_002 [--zip dist/diffusion_handles-*.zip]

With ``--zip`` the built extension is installed into a private Blender user folder and enabled, as a user would;
without it the source tree is imported directly. Runs in any Python with the bpy module (and the engine's
packages, which run the engine process). Prints what it did; exits non-zero with the reason when something fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "diffusion_handles"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=ROOT.parent / "shared" / "photogen" / "car",
                        help="a folder with input.png, depth.exr, mask.png and transforms.json (default: %(default)s)")
    parser.add_argument("--edit", default="edit_002", help="edit name in transforms.json (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=ROOT / "out" / "demo" / "preview.png",
                        help="PNG to write (default: %(default)s)")
    parser.add_argument("--blend", type=Path, default=None,
                        help="also save the scene as this .blend (default: beside the output)")
    parser.add_argument("--zip", type=Path, default=None,
                        help="install and enable this built extension zip (a folder: the zip of this version in it)")
    parser.add_argument("--no-background-image", action="store_true",
                        help="ignore bg.png/bg_depth.exr: fill the revealed background by inpainting")
    return parser.parse_args(argv)


def load_addon(zip_path: Path | None):
    """The add-on's Python package, registered in this process's bpy."""
    import bpy

    if zip_path is not None:
        if zip_path.is_dir():
            import tomllib

            manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
            zip_path = zip_path / f"{manifest['id']}-{manifest['version']}.zip"
        if not zip_path.is_file():
            raise SystemExit(f"demo: no extension zip at {zip_path}: build it with 'make extension'")
        bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default",
                                                 enable_on_install=True)
        module = f"bl_ext.user_default.{PACKAGE}"
        if module not in bpy.context.preferences.addons:
            raise SystemExit(f"installing {zip_path} did not enable {module}")
        return sys.modules[module]
    folder = Path(tempfile.mkdtemp(prefix="dhandles-demo-addon-"))
    (folder / PACKAGE).symlink_to(ROOT, target_is_directory=True)
    sys.path.insert(0, str(folder))
    import importlib

    addon = importlib.import_module(PACKAGE)
    addon.register()
    return addon


def main(argv=None) -> int:
    args = parse_args(argv)
    sample = args.sample.resolve()
    needed = [sample / name for name in ("input.png", "depth.exr", "mask.png", "transforms.json")]
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        print(f"demo: missing sample files: {', '.join(missing)}. Point --sample at a photogen sample folder.",
              file=sys.stderr)
        return 2
    # a private Blender user folder (read when bpy is imported) and the engine in this very Python
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="dhandles-demo-blender-"))
    os.environ.setdefault("DHANDLES_ENGINE_PYTHON", sys.executable)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)  # an empty scene (and factory add-ons: enable ours after)
    addon = load_addon(args.zip)
    output = args.output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    use_bg = not args.no_background_image and (sample / "bg.png").is_file()
    report = {"sample": str(sample), "edit": args.edit, "addon": addon.__name__}

    try:
        started = time.perf_counter()
        bpy.ops.dhandles.import_photo(
            filepath=str(sample / "input.png"), depth_path=str(sample / "depth.exr"),
            mask_path=str(sample / "mask.png"),
            bg_path=str(sample / "bg.png") if use_bg else "",
            bg_depth_path=str(sample / "bg_depth.exr") if use_bg and (sample / "bg_depth.exr").is_file() else "")
        report["import_s"] = round(time.perf_counter() - started, 3)
        rig = bpy.context.scene.dhandles_rig.dhandles
        report["scene"] = {"camera": rig.camera.name, "fov_deg": round(rig.fov, 3),
                           "resolution": [rig.width, rig.height],
                           "background_faces": len(rig.background.data.polygons),
                           "object_faces": len(rig.target.data.polygons),
                           "object_origin_world": [round(v, 4) for v in rig.target.matrix_world.translation]}

        bpy.ops.dhandles.apply_official_edit(filepath=str(sample / "transforms.json"), edit=args.edit)
        edit_module = sys.modules[f"{addon.__name__}.scene.edit_transform"]
        described = edit_module.describe(edit_module.edit_matrix(rig), rig.centroid)
        report["edit_camera_frame"] = {k: ([round(x, 4) for x in v] if isinstance(v, list) else round(v, 3))
                                       for k, v in described.items()}

        started = time.perf_counter()
        bpy.ops.dhandles.preview_edit(output_path=str(output))
        report["preview_s"] = round(time.perf_counter() - started, 3)
        report["preview"] = str(output)
        blend = (args.blend or output.with_suffix(".blend")).resolve()
        bpy.ops.wm.save_as_mainfile(filepath=str(blend))
        report["blend"] = str(blend)
    except RuntimeError as error:  # an operator's error report
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    finally:
        sys.modules[f"{addon.__name__}.engine_link.engine_session"].release()
    print(json.dumps(report, indent=2))
    print(f"demo: previewed {sample.name} {args.edit} -> {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
