"""Import a photo as a 3D scene with the real bpy module, edit the object, and preview the edit.

The scene is checked against the engine's own geometry: the camera projects every mesh vertex to the pixel its UV
samples, the object's origin is the official 3D centroid, an official edit read back from Blender is the engine's
matrix for it, and the preview's pixels are the engine's reprojection of the photo for that edit.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from PIL import Image

from engine.geometry import Camera, official_edit_to_matrix, reproject
from engine.geometry.transforms import object_centroid
from engine.io import read_depth, read_mask
from engine.jobs._inpaint import colour_hole_dilation, dilate

SAMPLE = "car"


pytestmark = pytest.mark.usefixtures("engine_python", "release_engine")


@pytest.fixture
def sample(photogen):
    return photogen / SAMPLE


def import_sample(bpy, folder, **extra):
    params = dict(filepath=str(folder / "input.png"), depth_path=str(folder / "depth.exr"),
                  mask_path=str(folder / "mask.png"), bg_path="", bg_depth_path="")
    params.update(extra)
    assert bpy.ops.dhandles.import_photo(**params) == {"FINISHED"}
    return bpy.context.scene.dhandles_rig.dhandles


def project(bpy, camera_obj, points_world):
    """Blender's own projection of world points into the render: pixel-centre (u, v) and camera depth."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    scene = bpy.context.scene
    width, height = scene.render.resolution_x, scene.render.resolution_y
    out = np.array([tuple(world_to_camera_view(scene, camera_obj, Vector(p))) for p in points_world])
    return out[:, 0] * width - 0.5, (1.0 - out[:, 1]) * height - 0.5, out[:, 2]


def mesh_arrays(obj):
    mesh = obj.data
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3).astype(np.float64)
    world = co @ np.array(obj.matrix_world)[:3, :3].T + np.array(obj.matrix_world)[:3, 3]
    loops = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", loops)
    uv = np.empty(len(mesh.loops) * 2, np.float32)
    mesh.uv_layers.active.data.foreach_get("uv", uv)
    return world, loops, uv.reshape(-1, 2)


def check_camera_and_mesh_agree(bpy, rig, obj, samples=400):
    """Every sampled vertex projects, through Blender's camera, onto the photo pixel its UV reads."""
    world, loops, uv = mesh_arrays(obj)
    pick = np.linspace(0, len(loops) - 1, samples).astype(int)
    u, v, _ = project(bpy, rig.camera, world[loops[pick]])
    assert np.allclose(u, uv[pick, 0] * rig.width - 0.5, atol=2e-3)
    assert np.allclose(v, (1.0 - uv[pick, 1]) * rig.height - 0.5, atol=2e-3)


def official_matrix(folder, edit, camera):
    depth, mask = read_depth(folder / "depth.exr"), read_mask(folder / "mask.png")
    e = json.loads((folder / "transforms.json").read_text())[edit]
    centroid = object_centroid(depth, mask, camera)
    return official_edit_to_matrix(e["translation"], e["rotation_axis"], e["rotation_angle"], centroid), depth, mask


def preview_matches_engine(bpy, rig, folder, matrix, depth, mask, tmp_path, name="preview.png"):
    """Preview through Blender and compare with the engine's reprojection of the photo by ``matrix``."""
    output = tmp_path / name
    assert bpy.ops.dhandles.preview_edit(output_path=str(output)) == {"FINISHED"}
    camera = Camera.official(rig.width, rig.height, rig.fov)
    r = reproject(depth, mask, matrix, camera)
    pairs = np.asarray(r.correspondences(0))
    preview = np.asarray(Image.open(output).convert("RGB"))
    photo = np.asarray(Image.open(folder / "input.png").convert("RGB"))
    assert pairs.shape[0] > 100
    # the same pixels moved to the same places (Blender's matrix may differ from the exact one by ~1e-6, which
    # can flip a boundary pixel or two of the rasteriser)
    same = np.all(preview[pairs[:, 3], pairs[:, 2]] == photo[pairs[:, 1], pairs[:, 0]], axis=1)
    assert same.mean() > 0.995
    # the background, away from where the object was and is, is the photo itself
    untouched = ~np.asarray(r.target_masks[0]) & ~np.asarray(
        reproject(depth, mask, np.eye(4), camera).target_masks[0])
    untouched &= ~dilate(mask, colour_hole_dilation(*mask.shape) + 1)
    assert np.array_equal(preview[untouched], photo[untouched])
    return preview, r


def test_import_builds_matched_camera_meshes_and_centroid(bpy, sample):
    rig = import_sample(bpy, sample, bg_path=str(sample / "bg.png"), bg_depth_path=str(sample / "bg_depth.exr"))
    scene = bpy.context.scene
    camera = Camera.official(512, 512, 55.0)
    assert (scene.render.resolution_x, scene.render.resolution_y) == (512, 512)
    assert scene.camera == rig.camera and rig.fov_source == "default"
    assert math.isclose(rig.camera.data.angle, 2 * math.atan(512 / (2 * camera.fx)), rel_tol=1e-6)
    assert rig.camera.data.background_images[0].image.filepath.endswith("input.png")
    collection = bpy.context.scene.dhandles_rig
    assert {rig.camera.name, rig.target.name, rig.background.name} == {o.name for o in collection.objects}

    mask = read_mask(sample / "mask.png")
    background, target = rig.background.data, rig.target.data
    assert 0.97 * 512 * 512 < len(background.polygons) <= 512 * 512  # full grid, a few faces torn
    assert 0.9 * mask.sum() < len(target.polygons) <= mask.sum()
    check_camera_and_mesh_agree(bpy, rig, rig.background)
    check_camera_and_mesh_agree(bpy, rig, rig.target)

    # the object's origin is the official centroid (engine frame -> Blender camera frame -> world)
    centroid = object_centroid(read_depth(sample / "depth.exr"), mask, camera)
    cam = np.array(rig.camera.matrix_world)
    expected = cam[:3, :3] @ (centroid * [1, -1, -1]) + cam[:3, 3]
    assert np.allclose(np.array(rig.target.matrix_world.translation), expected, atol=1e-4)
    _, _, z = project(bpy, rig.camera, [expected])
    assert math.isclose(z[0], centroid[2], rel_tol=1e-5)
    # the object's vertices sit at their pixels' depth: the mean camera depth is near the centroid's
    world, _, _ = mesh_arrays(rig.target)
    assert abs(np.mean(project(bpy, rig.camera, world[::50])[2]) - centroid[2]) < 0.05 * centroid[2]


def test_official_edit_reads_back_and_previews_like_the_engine(bpy, sample, tmp_path):
    from diffusion_handles.scene.edit_transform import edit_matrix

    rig = import_sample(bpy, sample)
    matrix, depth, mask = official_matrix(sample, "edit_002", Camera.official(512, 512, 55.0))
    assert bpy.ops.dhandles.apply_official_edit(filepath=str(sample / "transforms.json"), edit="edit_002") == \
        {"FINISHED"}
    assert np.allclose(edit_matrix(rig), matrix, atol=1e-5)
    preview, r = preview_matches_engine(bpy, rig, sample, matrix, depth, mask, tmp_path)
    assert bpy.data.images["DHandles Preview"].size[:] == (512, 512)
    photo = np.asarray(Image.open(sample / "input.png").convert("RGB"))
    assert not np.array_equal(preview, photo)

    # reset puts the object back: the preview is the photo again where the object is
    assert bpy.ops.dhandles.reset_edit() == {"FINISHED"}
    assert np.allclose(edit_matrix(rig), np.eye(4), atol=1e-6)
    assert bpy.ops.dhandles.preview_edit(output_path=str(tmp_path / "reset.png")) == {"FINISHED"}
    assert bpy.data.images["DHandles Preview"].filepath.endswith("reset.png")  # the same image, reused
    assert len([i for i in bpy.data.images if i.name.startswith("DHandles Preview")]) == 1


def test_moving_the_rig_is_no_edit_and_a_moved_camera_still_edits_right(bpy, sample, tmp_path):
    from diffusion_handles.scene.edit_transform import edit_matrix
    from mathutils import Euler, Matrix

    rig = import_sample(bpy, sample)
    matrix, depth, mask = official_matrix(sample, "edit_002", Camera.official(512, 512, 55.0))
    move = Matrix.LocRotScale((3.0, -7.0, 1.5), Euler((0.3, -0.5, 1.2)), None)
    for obj in (rig.camera, rig.target, rig.background):
        obj.matrix_world = move @ obj.matrix_world
    bpy.context.view_layer.update()
    assert np.allclose(edit_matrix(rig), np.eye(4), atol=1e-6)

    # moving the camera by T^-1 is the same edit as moving the object by T
    nudge = Matrix.LocRotScale((0.4, 0.2, -0.3), Euler((0.05, 0.1, -0.08)), None)
    rig.camera.matrix_world = nudge.inverted() @ rig.camera.matrix_world
    bpy.context.view_layer.update()
    by_camera = edit_matrix(rig)
    rig.camera.matrix_world = nudge @ rig.camera.matrix_world
    rig.target.matrix_world = nudge @ rig.target.matrix_world
    bpy.context.view_layer.update()
    assert np.allclose(by_camera, edit_matrix(rig), atol=1e-5)
    assert not np.allclose(by_camera, np.eye(4), atol=1e-3)

    # an official edit applied to the moved, rotated rig is still the engine's edit, and previews the same
    assert bpy.ops.dhandles.apply_official_edit(filepath=str(sample / "transforms.json"), edit="edit_002") == \
        {"FINISHED"}
    assert np.allclose(edit_matrix(rig), matrix, atol=1e-5)
    preview_matches_engine(bpy, rig, sample, matrix, depth, mask, tmp_path)


def test_moving_the_object_with_blender_tools_is_the_edit(bpy, sample, tmp_path):
    """A keyframed rotation and translation about the object's origin is the engine's rotation about the
    centroid, in the camera frame; the animation preview writes one PNG per frame."""
    from diffusion_handles.scene.edit_transform import edit_matrix
    from mathutils import Vector

    from engine.geometry.transforms import make_transform, rotation_matrix

    rig = import_sample(bpy, sample)
    scene = bpy.context.scene
    target = rig.target
    start = target.matrix_world.copy()
    scene.frame_start, scene.frame_end = 1, 2
    target.keyframe_insert("location", frame=1)
    target.keyframe_insert("rotation_euler", frame=1)
    # world +X is the camera's x (right); the camera looks along world +Y, so world +Z is up = engine -y
    target.location = start.translation + Vector((0.5, 0.0, 0.3))
    target.rotation_euler = (0.0, 0.0, math.radians(20.0))  # about world Z = camera up
    target.keyframe_insert("location", frame=2)
    target.keyframe_insert("rotation_euler", frame=2)
    scene.frame_set(2)
    centroid = np.asarray(rig.centroid)
    expected = make_transform(rotation=rotation_matrix([0.0, -1.0, 0.0], 20.0), translation=[0.5, -0.3, 0.0],
                              center=centroid)
    assert np.allclose(edit_matrix(rig), expected, atol=1e-5)

    pattern = tmp_path / "anim" / "frame_###.png"
    assert bpy.ops.dhandles.preview_animation(output_path=str(pattern)) == {"FINISHED"}
    first, second = tmp_path / "anim" / "frame_001.png", tmp_path / "anim" / "frame_002.png"
    assert first.is_file() and second.is_file()
    photo = np.asarray(Image.open(sample / "input.png").convert("RGB"))
    mask = read_mask(sample / "mask.png")
    assert np.array_equal(np.asarray(Image.open(first).convert("RGB"))[mask], photo[mask])  # frame 1: no edit
    assert not np.array_equal(np.asarray(Image.open(second).convert("RGB")), photo)
    assert scene.frame_current == 2


def test_default_preview_path_never_overwrites_inputs(bpy, sample, tmp_path):
    rig = import_sample(bpy, sample)
    before = (sample / "input.png").read_bytes()
    with pytest.raises(RuntimeError, match="never overwrite"):
        bpy.ops.dhandles.preview_edit(output_path=str(sample / "input.png"))
    assert (sample / "input.png").read_bytes() == before
    blend = tmp_path / "work.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    assert bpy.ops.dhandles.preview_edit() == {"FINISHED"}
    assert rig.last_preview == str(tmp_path / "work_input_preview.png")
    assert (tmp_path / "work_input_preview.png").is_file()


class FakeLayout:
    """Records what a panel's draw() asks for (background mode has no UI to draw into)."""

    def __init__(self, log):
        self.log = log

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.log.append((name, args, kwargs))
            return FakeLayout(self.log) if name in ("box", "row", "column", "split") else None

        return call


def draw_panel(bpy):
    log = []
    panel = type("P", (), {"layout": FakeLayout(log)})()
    bpy.types.DHANDLES_PT_photo.draw(panel, bpy.context)
    labels = [kwargs.get("text", "") for name, _, kwargs in log if name == "label"]
    operators = [args[0] for name, args, _ in log if name == "operator"]
    return labels, operators


def test_panel_shows_the_photo_and_the_current_edit(bpy, sample):
    labels, operators = draw_panel(bpy)
    assert operators == ["dhandles.import_photo", "dhandles.new_mask_image", "dhandles.mask_from_text"]
    assert "Import a photo" in labels[0]
    rig = import_sample(bpy, sample)
    rig.target.location.x += 0.5  # world +X is the camera's right
    bpy.context.view_layer.update()
    labels, operators = draw_panel(bpy)
    assert "Photo: input.png (512x512)" in labels and "Mask: mask.png" in labels
    assert "Move: +0.500  -0.000  +0.000" in labels or "Move: +0.500  +0.000  +0.000" in labels
    assert {"dhandles.preview_edit", "dhandles.apply_official_edit", "dhandles.reset_edit"} <= set(operators)


def test_file_import_menu_entry(bpy, addon):
    """File > Import lists the import (the menu's own draw, with every entry appended to it), and unregistering
    the add-on takes it out again."""
    from diffusion_handles.operators import import_photo

    menu = bpy.types.TOPBAR_MT_file_import

    def drawn_operators():
        log = []
        menu.draw(type("M", (), {"layout": FakeLayout(log)})(), bpy.context)
        return {args[0]: kwargs.get("text") for name, args, kwargs in log if name == "operator"}

    assert import_photo.menu_func_import in menu.draw._draw_funcs
    assert drawn_operators()["dhandles.import_photo"] == "Photo as 3D Scene (Diffusion Handles)"
    addon.unregister()
    try:
        assert import_photo.menu_func_import not in menu.draw._draw_funcs
        assert "dhandles.import_photo" not in drawn_operators()
        assert not hasattr(bpy.types, "DHANDLES_OT_import_photo")
    finally:
        addon.register()
    assert drawn_operators()["dhandles.import_photo"] == "Photo as 3D Scene (Diffusion Handles)"


def test_saved_and_reopened_scene_still_previews(bpy, sample, tmp_path):
    rig = import_sample(bpy, sample)
    rig.target.location.z += 0.4
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    rig = bpy.context.scene.dhandles_rig.dhandles
    assert rig.target is not None and bpy.data.images[f"{SAMPLE} background"].packed_file is not None
    assert np.allclose(describe_translation(rig), [0.0, -0.4, 0.0], atol=1e-6)
    assert bpy.ops.dhandles.preview_edit(output_path=str(tmp_path / "after_reopen.png")) == {"FINISHED"}


def describe_translation(rig):
    from diffusion_handles.scene.edit_transform import describe, edit_matrix

    return describe(edit_matrix(rig), rig.centroid)["translation"]


def test_import_at_a_moved_and_rotated_scene_camera(bpy, sample, tmp_path):
    """The rig can start anywhere: imported at an existing camera's pose, the meshes still line up with the
    photo and an official edit still previews like the engine."""
    from diffusion_handles.scene.edit_transform import edit_matrix
    from mathutils import Euler, Matrix

    data = bpy.data.cameras.new("shot")
    shot = bpy.data.objects.new("shot", data)
    bpy.context.scene.collection.objects.link(shot)
    shot.matrix_world = Matrix.LocRotScale((4.0, -2.0, 1.3), Euler((1.1, 0.2, -0.7)), None)
    bpy.context.scene.camera = shot
    rig = import_sample(bpy, sample, use_scene_camera=True)
    assert np.allclose(np.array(rig.camera.matrix_world), np.array(shot.matrix_world), atol=1e-6)
    check_camera_and_mesh_agree(bpy, rig, rig.target)
    check_camera_and_mesh_agree(bpy, rig, rig.background)
    matrix, depth, mask = official_matrix(sample, "edit_003", Camera.official(512, 512, 55.0))
    assert bpy.ops.dhandles.apply_official_edit(filepath=str(sample / "transforms.json"), edit="edit_003") == \
        {"FINISHED"}
    assert np.allclose(edit_matrix(rig), matrix, atol=1e-5)
    preview_matches_engine(bpy, rig, sample, matrix, depth, mask, tmp_path)


def test_preview_runs_modal_on_timer_events(bpy, sample, tmp_path):
    """The UI path: the preview advances on timer events and lets every other event through (background Blender
    fires no timers, so the events are fed by hand to the operator's own modal())."""
    from diffusion_handles.engine_link.preview_edit import PreviewOperator, engine_inputs

    rig = import_sample(bpy, sample)
    rig.target.location.x += 0.3
    bpy.context.view_layer.update()
    output = tmp_path / "modal.png"

    class Preview(PreviewOperator):
        bl_label = "Preview Edit"
        output_path = str(output)
        reports, result = [], None

        def report(self, kind, message):
            self.reports.append((kind, message))

        def make_params(self, context, output_path):
            from diffusion_handles.scene.edit_transform import edit_matrix

            return dict(engine_inputs(context, rig), transform=edit_matrix(rig).tolist(), output=output_path)

        def show_result(self, context, result):
            self.result = result
            return "shown"

    event = type("Event", (), {"type": "TIMER", "value": "NOTHING"})
    other = type("Event", (), {"type": "MOUSEMOVE", "value": "NOTHING"})
    operator = Preview()
    assert operator._start(bpy.context)
    assert operator.modal(bpy.context, other) == {"PASS_THROUGH"}
    states = set()
    for _ in range(6000):
        states.add(frozenset(operator.modal(bpy.context, event)))
        if operator._run.done:
            break
        time.sleep(0.005)
    assert frozenset({"FINISHED"}) in states and operator.result["frames"][0]["image"] == str(output)
    assert output.is_file() and operator.reports == [({"INFO"}, "shown")]


def test_cycles_render_of_the_imported_scene_is_the_photo(bpy, sample, tmp_path):
    """Camera, meshes, UVs and materials agree: rendering the imported scene gives the photo back (the object
    covers its own hole; the Standard view transform keeps the photo's colours)."""
    import_sample(bpy, sample)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 2
    scene.cycles.use_denoising = False
    scene.render.resolution_percentage = 25
    scene.render.filepath = str(tmp_path / "render.png")
    bpy.ops.render.render(write_still=True)
    render = np.asarray(Image.open(tmp_path / "render.png").convert("RGB")).astype(float)
    photo = Image.open(sample / "input.png").convert("RGB").resize((128, 128), Image.Resampling.BOX)
    difference = np.abs(render - np.asarray(photo).astype(float))
    assert render.shape == (128, 128, 3)
    assert difference.mean() < 6.0 and np.median(difference) <= 2.0
