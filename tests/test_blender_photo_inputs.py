"""Photos that are not the 512x512 test set, masks painted in Blender, and bad inputs, with the real bpy module.

Synthetic scenes (a slanted floor with a box standing on it) make every expectation exact; bad inputs must give a
clear operator error and leave the scene exactly as it was.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.geometry import Camera, reproject

pytestmark = pytest.mark.usefixtures("engine_python", "release_engine")


def write_scene(folder, width, height, fov=50.0):
    """A floor receding from 3 m to 12 m, a pillar at 2.5 m on the right, and a box (the object) at 4 m in front
    of the floor; photo colours encode the pixel."""
    folder.mkdir(parents=True, exist_ok=True)
    v, u = np.mgrid[0:height, 0:width]
    depth = (12.0 - 9.0 * v / (height - 1)).astype(np.float32)
    mask = (np.abs(u - width * 0.45) < width * 0.15) & (np.abs(v - height * 0.6) < height * 0.18)
    depth[u > 0.85 * width] = 2.5
    depth[mask] = 4.0
    photo = np.stack([(u * 7) % 256, (v * 5) % 256, ((u + v) * 3) % 256], axis=2).astype(np.uint8)
    photo[mask] = [220, 40, 40]
    paths = {"filepath": folder / "photo.png", "depth_path": folder / "depth.npy", "mask_path": folder / "mask.png"}
    Image.fromarray(photo).save(paths["filepath"])
    np.save(paths["depth_path"], depth)
    Image.fromarray((mask * 255).astype(np.uint8)).save(paths["mask_path"])
    return {key: str(path) for key, path in paths.items()}, depth, mask


def scene_state(bpy):
    data = bpy.data
    return {kind: sorted(block.name for block in getattr(data, kind))
            for kind in ("collections", "objects", "meshes", "materials", "images", "cameras")}


@pytest.mark.parametrize("size", [(320, 200), (200, 320)], ids=["landscape", "portrait"])
def test_non_square_photo(bpy, tmp_path, size):
    from bpy_extras.object_utils import world_to_camera_view
    from diffusion_handles.scene.edit_transform import edit_matrix
    from mathutils import Vector

    from engine.geometry.transforms import make_transform, rotation_matrix

    width, height = size
    files, depth, mask = write_scene(tmp_path / "photo", width, height)
    assert bpy.ops.dhandles.import_photo(**files, fov=50.0) == {"FINISHED"}
    rig = bpy.context.scene.dhandles_rig.dhandles
    scene = bpy.context.scene
    assert (scene.render.resolution_x, scene.render.resolution_y) == (width, height)
    camera = Camera.official(width, height, 50.0)
    # Blender's angle spans the larger side's outer edges; the official fov its outermost pixel centres
    assert math.isclose(rig.camera.data.angle, 2 * math.atan(max(size) / (2 * camera.fx)), rel_tol=1e-6)
    assert rig.fov_source == "given"

    # the box's corner pixel centres project back to themselves through Blender's camera
    rows, cols = np.nonzero(mask)
    for u, v in ((cols.min(), rows.min()), (cols.max(), rows.max())):
        point = np.array([(u - camera.cx) / camera.fx * 4.0, (v - camera.cy) / camera.fy * 4.0, 4.0])
        cam = np.array(rig.camera.matrix_world)
        world = cam[:3, :3] @ (point * [1, -1, -1]) + cam[:3, 3]
        x, y, z = world_to_camera_view(scene, rig.camera, Vector(world))
        assert math.isclose(x * width - 0.5, u, abs_tol=1e-3) and math.isclose((1 - y) * height - 0.5, v, abs_tol=1e-3)
        assert math.isclose(z, 4.0, rel_tol=1e-5)

    # the background splits at the pillar's edge: no face spans a depth jump, and none is missing (both sides keep
    # their faces, unwelded, so from the camera every pixel has a surface)
    mesh = rig.background.data
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    to_camera = np.array(rig.camera.matrix_world.inverted() @ rig.background.matrix_world)
    z = -(co.reshape(-1, 3) @ to_camera[:3, :3].T + to_camera[:3, 3])[:, 2]
    loops = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", loops)
    quad_z = z[loops.reshape(-1, 4)]
    assert np.all(quad_z.max(1) <= 1.05 * quad_z.min(1) + 1e-6)
    assert len(mesh.polygons) == width * height
    assert len(rig.target.data.polygons) == mask.sum()

    rig.target.rotation_euler = (0.0, 0.0, math.radians(15.0))
    rig.target.location.x += 0.4
    bpy.context.view_layer.update()
    centroid = np.asarray(rig.centroid)
    expected = make_transform(rotation=rotation_matrix([0, -1, 0], 15.0), translation=[0.4, 0, 0], center=centroid)
    assert np.allclose(edit_matrix(rig), expected, atol=1e-5)
    output = tmp_path / "preview.png"
    assert bpy.ops.dhandles.preview_edit(output_path=str(output)) == {"FINISHED"}
    preview = np.asarray(Image.open(output).convert("RGB"))
    assert preview.shape == (height, width, 3)
    pairs = np.asarray(reproject(depth, mask, expected, camera).correspondences(0))
    photo = np.asarray(Image.open(files["filepath"]).convert("RGB"))
    same = np.all(preview[pairs[:, 3], pairs[:, 2]] == photo[pairs[:, 1], pairs[:, 0]], axis=1)
    assert same.mean() > 0.995


def test_mask_painted_in_blender(bpy, tmp_path):
    files, _, mask = write_scene(tmp_path / "photo", 160, 120)
    height, width = mask.shape
    image = bpy.data.images.new("painted mask", width, height)
    pixels = np.zeros((height, width, 4), np.float32)
    pixels[..., 3] = 1.0
    pixels[mask[::-1]] = [1.0, 1.0, 1.0, 1.0]  # Blender's rows go bottom up
    image.pixels.foreach_set(pixels.ravel())
    before = np.array(image.pixels[:])
    files.pop("mask_path")
    assert bpy.ops.dhandles.import_photo(**files, mask_image="painted mask") == {"FINISHED"}
    rig = bpy.context.scene.dhandles_rig.dhandles
    assert rig.mask_image == "painted mask" and rig.mask_path == ""
    assert len(rig.target.data.polygons) == mask.sum()
    assert np.array_equal(np.array(image.pixels[:]), before)  # never modified
    assert bpy.ops.dhandles.preview_edit(output_path=str(tmp_path / "p.png")) == {"FINISHED"}


@pytest.mark.parametrize("tags, source, fov, said", [
    ({41989: 24}, "exif_35mm", math.degrees(2 * math.atan(36 / 48)), "35 mm equivalent focal length, 24 mm"),
    ({37386: 4.0, 41486: 300 / 0.6, 41487: 200 / 0.4, 41488: 3}, "exif_focal_plane",
     math.degrees(2 * math.atan(6 / 8)), "focal length, 4 mm, on a 6.00 mm wide sensor"),
    ({37386: 4.0}, "default", 55.0, "no focal plane resolution"),
], ids=["35 mm tag", "focal plane", "focal length only"])
def test_exif_focal_length_sets_the_field_of_view(bpy, tmp_path, capfd, tags, source, fov, said):
    """FocalLengthIn35mmFilm, else FocalLength with FocalPlaneX/YResolution (pixels per cm here), else 55; the
    import's report says which."""
    files, _, _ = write_scene(tmp_path / "photo", 300, 200)
    photo = Image.open(files["filepath"])
    exif = Image.Exif()
    exif.get_ifd(0x8769).update(tags)
    jpeg = tmp_path / "photo" / "photo.jpg"
    photo.save(jpeg, exif=exif, quality=95)
    files["filepath"] = str(jpeg)
    capfd.readouterr()
    assert bpy.ops.dhandles.import_photo(**files) == {"FINISHED"}
    assert said in capfd.readouterr().out  # the operator's report, as background Blender prints it
    rig = bpy.context.scene.dhandles_rig.dhandles
    assert rig.fov_source == source
    assert math.isclose(rig.fov, fov, rel_tol=1e-6)


def _bad(files, tmp_path, kind):
    folder = tmp_path / "photo"
    if kind == "missing photo":
        return dict(files, filepath=str(folder / "nope.png")), "does not exist"
    if kind == "missing depth":
        return dict(files, depth_path=str(folder / "nope.exr")), "does not exist"
    if kind == "photo is a folder":
        return dict(files, filepath=str(folder)), "is a folder, not a file"
    if kind == "depth is a folder":
        return dict(files, depth_path=str(folder)), "The depth map .* is a folder, not a file"
    if kind == "mask of the wrong size":
        Image.new("L", (50, 40), 255).save(folder / "small.png")
        return dict(files, mask_path=str(folder / "small.png")), "50x40 pixels but the photo is 160x120"
    if kind == "empty mask":
        Image.new("L", (160, 120), 0).save(folder / "empty.png")
        return dict(files, mask_path=str(folder / "empty.png")), "selects no pixels"
    depth = np.load(files["depth_path"])
    if kind == "depth with NaNs":
        depth[10:20, 10:20] = np.nan
        expected = "100 NaN or infinite pixels"
    else:
        depth[:5] = 0.0
        expected = "800 zero or negative pixels"
    np.save(folder / "bad_depth.npy", depth)
    return dict(files, depth_path=str(folder / "bad_depth.npy")), expected


@pytest.mark.parametrize("kind", ["missing photo", "missing depth", "photo is a folder", "depth is a folder",
                                  "mask of the wrong size", "empty mask", "depth with NaNs", "depth with zeros"])
def test_bad_input_is_a_clear_error_and_changes_nothing(bpy, tmp_path, kind):
    files, _, _ = write_scene(tmp_path / "photo", 160, 120)
    assert bpy.ops.dhandles.import_photo(**files) == {"FINISHED"}  # a scene to keep intact
    before = scene_state(bpy)
    rig_before = bpy.context.scene.dhandles_rig
    params, message = _bad(files, tmp_path, kind)
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.dhandles.import_photo(**params)
    assert scene_state(bpy) == before
    assert bpy.context.scene.dhandles_rig == rig_before
    # nothing of the failed import stays behind (nor of the good one: its meshes and the packed texture hold it all)
    assert list((tmp_path / "diffusion_handles" / "scenes").iterdir()) == []


def test_operators_without_a_photo_say_what_to_do(bpy, tmp_path):
    with pytest.raises(RuntimeError, match="import one"):
        bpy.ops.dhandles.preview_edit(output_path=str(tmp_path / "x.png"))
    with pytest.raises(RuntimeError, match="No imported photo"):
        bpy.ops.dhandles.reset_edit()


def test_edit_out_of_view_and_unknown_edit(bpy, tmp_path):
    files, _, _ = write_scene(tmp_path / "photo", 160, 120)
    assert bpy.ops.dhandles.import_photo(**files) == {"FINISHED"}
    rig = bpy.context.scene.dhandles_rig.dhandles
    transforms = tmp_path / "transforms.json"
    transforms.write_text('{"edit_000": {"translation": [40.0, 0.0, 0.0], "rotation_axis": [0, 1, 0], '
                          '"rotation_angle": 0}}')
    with pytest.raises(RuntimeError, match="no edit called 'edit_009'"):
        bpy.ops.dhandles.apply_official_edit(filepath=str(transforms), edit="edit_009")
    assert bpy.ops.dhandles.apply_official_edit(filepath=str(transforms), edit="edit_000") == {"FINISHED"}
    output = tmp_path / "out.png"
    with pytest.raises(RuntimeError, match="out of the frame"):
        bpy.ops.dhandles.preview_edit(output_path=str(output))
    assert not output.exists()
    assert rig.last_preview == ""


def test_depth_estimated_by_the_engine(bpy, tmp_path):
    """Depth "estimate" runs the engine's estimate_depth job (the tiny random-weight preset: plumbing only) and the
    import and preview use the depth it wrote in the cache, never beside the photo."""
    files, _, _ = write_scene(tmp_path / "photo", 96, 64)
    files["depth_path"] = "estimate"
    assert bpy.ops.dhandles.import_photo(**files, depth_model="tiny-depth") == {"FINISHED"}
    rig = bpy.context.scene.dhandles_rig.dhandles
    # in the persistent user cache (here the test's XDG_CACHE_HOME), which a saved .blend can rely on after a
    # reboot, not in the system's temporary folder
    depth = Path(rig.depth_path)
    assert depth.name == "estimated_depth.npy" and depth.parent.parent == tmp_path / "diffusion_handles" / "scenes"
    assert Path(rig.workdir) == depth.parent
    assert np.load(rig.depth_path).shape == (64, 96)
    assert bpy.ops.dhandles.preview_edit(output_path=str(tmp_path / "p.png")) == {"FINISHED"}


def test_the_default_cache_is_persistent(bpy, tmp_path, monkeypatch):
    """Empty Cache Folder preference: the extension's user folder when installed as an extension (Blender's user
    resources are a temporary folder in tests), else $XDG_CACHE_HOME or ~/.cache; the preference wins."""
    import os

    from diffusion_handles import preferences

    extension = preferences.default_cache_dir("bl_ext.user_default.diffusion_handles")
    assert extension == Path(os.environ["BLENDER_USER_RESOURCES"]) / "extensions" / ".user" / "user_default" / \
        "diffusion_handles" / "cache" and extension.is_dir()
    assert preferences.cache_dir() == tmp_path / "diffusion_handles"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert preferences.default_cache_dir() == tmp_path / "home" / ".cache" / "diffusion_handles"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the XDG spec ignores relative values
    assert preferences.default_cache_dir() == tmp_path / "home" / ".cache" / "diffusion_handles"
    prefs = type("Prefs", (), {"cache_dir": str(tmp_path / "mine")})()
    assert preferences.cache_dir(prefs) == tmp_path / "mine"


def test_new_mask_image_shows_the_photo_dimmed_and_reads_as_mask_once_painted(bpy, tmp_path):
    files, _, mask = write_scene(tmp_path / "photo", 160, 120)
    assert bpy.ops.dhandles.new_mask_image(filepath=files["filepath"]) == {"FINISHED"}
    image = bpy.data.images["photo mask"]
    assert tuple(image.size) == (160, 120)
    pixels = np.array(image.pixels[:], np.float32).reshape(120, 160, 4)[::-1]
    photo = np.asarray(Image.open(files["filepath"]).convert("RGB")) / 255.0
    assert np.allclose(pixels[..., :3], photo * 0.3, atol=1.5 / 255)  # the guide: nothing in it reads as mask
    with pytest.raises(RuntimeError, match="selects no pixels"):
        bpy.ops.dhandles.import_photo(filepath=files["filepath"], depth_path=files["depth_path"],
                                      mask_image="photo mask")
    pixels[mask] = 1.0  # the artist paints the object white
    image.pixels.foreach_set(pixels[::-1].ravel())
    assert bpy.ops.dhandles.import_photo(filepath=files["filepath"], depth_path=files["depth_path"],
                                         mask_image="photo mask") == {"FINISHED"}
    assert len(bpy.context.scene.dhandles_rig.dhandles.target.data.polygons) == mask.sum()


def test_relative_paths_are_taken_from_the_current_folder(bpy, tmp_path, monkeypatch):
    """A script's plain relative paths mean its current folder, although the engine runs in the add-on's: the
    photo (its side files found beside it), the preview and an animation pattern."""
    from diffusion_handles import preferences

    write_scene(tmp_path / "work" / "shot", 160, 120)
    monkeypatch.chdir(tmp_path / "work")  # restored after the test
    assert bpy.ops.dhandles.import_photo(filepath="shot/photo.png") == {"FINISHED"}
    rig = bpy.context.scene.dhandles_rig.dhandles
    assert rig.photo_path == str(tmp_path / "work" / "shot" / "photo.png")
    assert (rig.depth_path, rig.mask_path) == (str(tmp_path / "work" / "shot" / "depth.npy"),
                                               str(tmp_path / "work" / "shot" / "mask.png"))
    rig.target.location.x += 0.2
    bpy.context.view_layer.update()
    assert bpy.ops.dhandles.preview_edit(output_path="out/preview.png") == {"FINISHED"}
    assert (tmp_path / "work" / "out" / "preview.png").is_file()
    assert not (preferences.ADDON_ROOT / "out" / "preview.png").exists()
    assert bpy.data.images["DHandles Preview"].filepath == str(tmp_path / "work" / "out" / "preview.png")
    bpy.context.scene.frame_start, bpy.context.scene.frame_end = 1, 2
    assert bpy.ops.dhandles.preview_animation(output_path="anim/f_##.png") == {"FINISHED"}
    assert sorted(p.name for p in (tmp_path / "work" / "anim").iterdir()) == ["f_01.png", "f_02.png"]

    explicit = dict(filepath="shot/photo.png", depth_path="shot/depth.npy", mask_path="shot/mask.png")
    assert bpy.ops.dhandles.import_photo(**explicit) == {"FINISHED"}
    assert bpy.context.scene.dhandles_rig.dhandles.depth_path == str(tmp_path / "work" / "shot" / "depth.npy")
    with pytest.raises(RuntimeError, match=r"'nope/depth.npy' \(.*/work/nope/depth.npy\) does not exist"):
        bpy.ops.dhandles.import_photo(**dict(explicit, depth_path="nope/depth.npy"))


def test_readme_headless_snippet_runs_as_written(bpy, tmp_path, monkeypatch, repo_root):
    """The README's own script, run as it stands from a folder holding photo.png, depth.exr and mask.png."""
    from engine.geometry.io import write_depth_exr

    readme = (repo_root / "README.md").read_text()
    start = readme.index("```python", readme.index("## Walkthrough")) + len("```python")
    snippet = readme[start:readme.index("```", start)]
    assert "import_photo" in snippet and "preview_edit" in snippet
    files, depth, _ = write_scene(tmp_path / "shot", 160, 120)
    write_depth_exr(tmp_path / "shot" / "depth.exr", depth)
    Path(files["depth_path"]).unlink()
    monkeypatch.chdir(tmp_path / "shot")
    exec(compile(snippet, "README.md", "exec"), {"__name__": "__main__"})
    preview = np.asarray(Image.open(tmp_path / "shot" / "preview.png").convert("RGB"))
    assert not np.array_equal(preview, np.asarray(Image.open(files["filepath"]).convert("RGB")))


def test_preview_output_paths(bpy, tmp_path):
    """A folder gets the default name in it, another image type's suffix becomes .png, any other suffix stays."""
    files, _, _ = write_scene(tmp_path / "photo", 160, 120)
    assert bpy.ops.dhandles.import_photo(**files) == {"FINISHED"}
    rig = bpy.context.scene.dhandles_rig.dhandles
    (tmp_path / "existing").mkdir()
    for given, written in ((f"{tmp_path}/new/", "new/photo_preview.png"), (tmp_path / "existing",
                           "existing/photo_preview.png"), (tmp_path / "out.v1", "out.v1.png"),
                           (tmp_path / "out.jpg", "out.png"), (tmp_path / "out.PNG", "out.PNG")):
        assert bpy.ops.dhandles.preview_edit(output_path=str(given)) == {"FINISHED"}
        assert rig.last_preview == str(tmp_path / written) and Path(rig.last_preview).is_file()
    assert not (tmp_path / "new.png").exists() and not (tmp_path / "out.v1").exists()
    assert bpy.ops.dhandles.preview_animation(output_path=str(tmp_path / "existing")) == {"FINISHED"}
    assert (tmp_path / "existing" / "photo_preview_0001.png").is_file()
    assert not (tmp_path / "diffusion_handles" / "previews").exists()  # the unsaved file's default is not used
    assert bpy.ops.dhandles.preview_edit() == {"FINISHED"}
    assert rig.last_preview == str(tmp_path / "diffusion_handles" / "previews" / "photo_preview.png")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot.v2.blend"))  # a dot in the name stays
    assert bpy.ops.dhandles.preview_edit() == {"FINISHED"}
    assert rig.last_preview == str(tmp_path / "shot.v2_photo_preview.png")


def test_preview_never_overwrites_the_painted_masks_file(bpy, tmp_path):
    """A mask image loaded from a file (then perhaps painted on) is one of the photo's inputs too."""
    files, _, _ = write_scene(tmp_path / "photo", 160, 120)
    mask_file = Path(files.pop("mask_path"))
    before = mask_file.read_bytes()
    image = bpy.data.images.load(str(mask_file))
    assert bpy.ops.dhandles.import_photo(**files, mask_image=image.name, mask_path="") == {"FINISHED"}
    with pytest.raises(RuntimeError, match="never overwrite"):
        bpy.ops.dhandles.preview_edit(output_path=str(mask_file))
    assert mask_file.read_bytes() == before


def test_preview_report_separates_visibility_from_size(bpy, tmp_path, capfd):
    """Brought from 4 m to 2.5 m the box is 2.56x its size on screen and all of it shows; the report says so
    instead of '256% of the object visible'."""
    files, _, _ = write_scene(tmp_path / "photo", 160, 120)
    assert bpy.ops.dhandles.import_photo(**files) == {"FINISHED"}
    rig = bpy.context.scene.dhandles_rig.dhandles
    rig.target.location.y -= 1.5  # the camera looks along world +Y
    bpy.context.view_layer.update()
    capfd.readouterr()
    assert bpy.ops.dhandles.preview_edit(output_path=str(tmp_path / "p.png")) == {"FINISHED"}
    assert "(100% of the object visible, at 2.56x its size in the photo)" in capfd.readouterr().out


def test_dialogs_never_remember_the_last_files(bpy):
    """Blender pre-fills an operator's dialog with the properties of its last run unless they are SKIP_SAVE; a
    remembered depth or mask (or field of view) would stop the next photo's side files (and EXIF) from being used.
    (Background Blender remembers nothing, so the properties' flags are what can be checked.)"""
    def skip_save(operator):
        return {name for name, prop in operator.get_rna_type().properties.items() if prop.is_skip_save}

    assert {"depth_path", "mask_path", "mask_image", "bg_path", "bg_depth_path", "fov"} <= \
        skip_save(bpy.ops.dhandles.import_photo)
    assert "tear" not in skip_save(bpy.ops.dhandles.import_photo)  # settings are still remembered
    assert "output_path" in skip_save(bpy.ops.dhandles.preview_edit)
    assert "output_path" in skip_save(bpy.ops.dhandles.preview_animation)


def test_16_bit_png_depth_in_millimetres(bpy, tmp_path):
    files, depth, mask = write_scene(tmp_path / "photo", 160, 120)
    assert bpy.ops.dhandles.import_photo(**files) == {"FINISHED"}
    from_npy = np.asarray(bpy.context.scene.dhandles_rig.dhandles.centroid)
    png = tmp_path / "photo" / "depth_mm.png"
    Image.fromarray(np.round(depth * 1000).astype(np.uint16)).save(png)
    assert Image.open(png).mode.startswith("I;16")
    assert bpy.ops.dhandles.import_photo(**dict(files, depth_path=str(png))) == {"FINISHED"}
    rig = bpy.context.scene.dhandles_rig.dhandles
    assert np.allclose(rig.centroid, from_npy, atol=1e-4) and math.isclose(rig.centroid[2], 4.0, rel_tol=1e-6)
    assert len(rig.target.data.polygons) == mask.sum()


def test_unwritable_places_are_errors_not_tracebacks(bpy, tmp_path, monkeypatch):
    files, _, _ = write_scene(tmp_path / "photo", 160, 120)
    assert bpy.ops.dhandles.import_photo(**files) == {"FINISHED"}
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(RuntimeError) as error:  # the engine cannot make the output's folder
        bpy.ops.dhandles.preview_edit(output_path=str(blocker / "preview.png"))
    assert "a_file" in str(error.value) and "Traceback" not in str(error.value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache folder cannot be made
    with pytest.raises(RuntimeError) as error:
        bpy.ops.dhandles.import_photo(**files)
    assert "Cache Folder preference" in str(error.value) and "Traceback" not in str(error.value)
    with pytest.raises(RuntimeError) as error:  # an unsaved file's default preview goes to the cache
        bpy.ops.dhandles.preview_edit()
    assert "Cache Folder preference" in str(error.value) and "Traceback" not in str(error.value)


def test_cutout_mask_and_a_phone_photo_stored_turned(bpy, tmp_path):
    """The Blender door reads through engine.io like the others: an RGBA cut-out's alpha is the mask (whatever
    the colour of its transparent pixels), and a JPEG stored turned (EXIF orientation 6) with a depth made from its
    stored pixels imports upright, with the photo as displayed on the camera and the object."""
    files, depth, mask = write_scene(tmp_path / "photo", 96, 128)  # portrait as displayed
    rgba = np.random.default_rng(0).integers(0, 256, (128, 96, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(mask, 255, 0)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "photo" / "cut.png")
    displayed = np.asarray(Image.open(files["filepath"]))
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(displayed, 1))).save(tmp_path / "photo" / "phone.jpg", exif=exif,
                                                                        quality=98)
    np.save(tmp_path / "photo" / "stored_depth.npy", np.ascontiguousarray(np.rot90(depth, 1)))
    assert bpy.ops.dhandles.import_photo(filepath=str(tmp_path / "photo" / "phone.jpg"),
                                         depth_path=str(tmp_path / "photo" / "stored_depth.npy"),
                                         mask_path=str(tmp_path / "photo" / "cut.png"), fov=50.0) == {"FINISHED"}
    scene = bpy.context.scene
    rig = scene.dhandles_rig.dhandles
    assert (scene.render.resolution_x, scene.render.resolution_y) == (96, 128)
    assert len(rig.target.data.polygons) == mask.sum()
    image = scene.camera.data.background_images[0].image
    assert tuple(image.size) == (96, 128) and image.packed_file is not None
