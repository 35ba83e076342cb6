"""The imported scene is the engine's surface: rendered (Workbench, real bpy) from the photo's own camera it covers
every pixel and shows the object on every mask pixel; turned, the object's silhouette is the engine's target mask
for the same edit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from engine.geometry import Camera, reproject
from engine.io import read_depth as read_depth_exr
from engine.io import read_mask

SAMPLES = ("banana_fruits", "car", "car_3", "chair", "chair_2", "cube_toy", "guitar", "milk_carton", "plane",
           "potted_plant", "red_block", "shoe")  # every photogen sample
BACKGROUND, OBJECT = (1.0, 0.0, 0.0, 1.0), (0.0, 1.0, 0.0, 1.0)


pytestmark = pytest.mark.usefixtures("engine_python", "release_engine")


def import_sample(bpy, folder):
    assert bpy.ops.dhandles.import_photo(
        filepath=str(folder / "input.png"), depth_path=str(folder / "depth.exr"), mask_path=str(folder / "mask.png"),
        bg_path="", bg_depth_path="") == {"FINISHED"}
    return bpy.context.scene.dhandles_rig.dhandles


def render_parts(bpy, rig, path):
    """Workbench render from the scene camera, flat object colours, no anti-aliasing, black world: per pixel
    0 nothing, 1 background, 2 object."""
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.render_aa = "OFF"
    scene.display.shading.light = "FLAT"
    scene.display.shading.color_type = "OBJECT"
    scene.display.shading.background_type = "VIEWPORT"
    scene.display.shading.background_color = (0.0, 0.0, 0.0)
    if scene.world is None:
        scene.world = bpy.data.worlds.new("black")
    scene.world.color = (0.0, 0.0, 0.0)
    rig.background.color, rig.target.color = BACKGROUND, OBJECT
    for entry in rig.extra_objects:
        entry.target.color = OBJECT
    scene.render.filepath = str(path)
    scene.render.image_settings.file_format = "PNG"
    bpy.ops.render.render(write_still=True)
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    parts = np.zeros(rgb.shape[:2], np.int8)
    parts[(rgb[..., 0] > 128) & (rgb[..., 1] < 128)] = 1
    parts[(rgb[..., 1] > 128) & (rgb[..., 0] < 128)] = 2
    odd = (parts == 0) & (rgb.sum(axis=2) >= 30)
    assert not odd.any(), f"{int(odd.sum())} pixels neither black nor a part's colour, e.g. {rgb[odd][:3].tolist()}"
    return parts


@pytest.mark.parametrize("name", SAMPLES)
def test_import_render_covers_every_pixel_and_the_mask_with_the_object(bpy, photogen, tmp_path, name):
    folder = photogen / name
    rig = import_sample(bpy, folder)
    parts = render_parts(bpy, rig, tmp_path / "parts.png")
    mask = read_mask(folder / "mask.png")
    assert int((parts == 0).sum()) == 0, "pixels with no surface behind them"
    assert int((parts[mask] != 2).sum()) == 0, "mask pixels not rendered from the object"
    assert int((parts[~mask] == 2).sum()) == 0, "object pixels outside the mask"
    # the Photo panel's thumbnails: the mask and depth files are images of the .blend, not packed
    loaded = {bpy.path.abspath(image.filepath) for image in bpy.data.images if image.packed_file is None}
    assert {str(folder / "mask.png"), str(folder / "depth.exr")} <= loaded


def test_a_turned_object_has_the_engines_silhouette(bpy, photogen, tmp_path):
    from diffusion_handles.scene.edit_transform import edit_matrix
    from mathutils import Matrix

    folder = photogen / "chair"
    rig = import_sample(bpy, folder)
    # 30 degrees about the world's vertical through the object's origin (the camera looks along +Y, +Z up)
    origin = rig.target.matrix_world.translation.copy()
    turn = Matrix.Translation(origin) @ Matrix.Rotation(math.radians(30), 4, "Z") @ Matrix.Translation(-origin)
    rig.target.matrix_world = turn @ rig.target.matrix_world
    bpy.context.view_layer.update()
    parts = render_parts(bpy, rig, tmp_path / "turned.png")
    assert int((parts == 0).sum()) == 0
    camera = Camera.official(rig.width, rig.height, rig.fov)
    r = reproject(read_depth_exr(folder / "depth.exr"), read_mask(folder / "mask.png"), edit_matrix(rig), camera)
    target, seen = np.asarray(r.target_masks[0]), parts == 2
    iou = (target & seen).sum() / (target | seen).sum()
    assert iou >= 0.97, f"silhouette IoU {iou:.3f}"


def test_two_objects_from_two_masks_move_apart_and_preview_like_the_engine(bpy, photogen, tmp_path):
    from diffusion_handles.scene.edit_transform import edit_matrices
    from mathutils import Matrix

    folder = photogen / "car"
    car = read_mask(folder / "mask.png")
    road = np.zeros_like(car)
    road[440:490, 40:140] = True  # a patch of road, the second object
    Image.fromarray(road.astype(np.uint8) * 255).save(tmp_path / "road.png")
    assert bpy.ops.dhandles.import_photo(
        filepath=str(folder / "input.png"), depth_path=str(folder / "depth.exr"), mask_path=str(folder / "mask.png"),
        extra_masks=str(tmp_path / "road.png"), bg_path="", bg_depth_path="") == {"FINISHED"}
    rig = bpy.context.scene.dhandles_rig.dhandles
    assert len(rig.extra_objects) == 1
    second = rig.extra_objects[0].target
    assert len(second.data.polygons) == road.sum() and len(rig.target.data.polygons) == car.sum()
    # at the import pose the render shows each object on its own mask
    parts = render_parts(bpy, rig, tmp_path / "two.png")
    assert int((parts == 0).sum()) == 0 and np.all(parts[car | road] == 2)

    rig.target.matrix_world = Matrix.Translation((0.3, 0.0, 0.0)) @ rig.target.matrix_world
    second.matrix_world = Matrix.Translation((-0.2, 0.0, 0.1)) @ second.matrix_world
    bpy.context.view_layer.update()
    matrices = edit_matrices(rig)
    assert not np.allclose(matrices[0], matrices[1])
    output = tmp_path / "preview.png"
    assert bpy.ops.dhandles.preview_edit(output_path=str(output)) == {"FINISHED"}
    camera = Camera.official(rig.width, rig.height, rig.fov)
    r = reproject(read_depth_exr(folder / "depth.exr"), [car, road], matrices, camera)
    preview = np.asarray(Image.open(output).convert("RGB"))
    photo = np.asarray(Image.open(folder / "input.png").convert("RGB"))
    for k in (0, 1):
        pairs = np.asarray(r.correspondences(k))
        assert pairs.shape[0] > 100
        same = np.all(preview[pairs[:, 3], pairs[:, 2]] == photo[pairs[:, 1], pairs[:, 0]], axis=1)
        assert same.mean() > 0.995


def test_a_painted_mask_survives_save_and_reopen(bpy, photogen, tmp_path):
    folder = photogen / "car"
    mask = read_mask(folder / "mask.png")
    image = bpy.data.images.new("painted", 512, 512)
    pixels = np.zeros((512, 512, 4), np.float32)
    pixels[..., 3] = 1.0
    pixels[mask[::-1]] = (1.0, 1.0, 1.0, 1.0)  # Blender's rows go bottom first
    image.pixels.foreach_set(pixels.ravel())
    assert bpy.ops.dhandles.import_photo(
        filepath=str(folder / "input.png"), depth_path=str(folder / "depth.exr"), mask_image="painted",
        bg_path="", bg_depth_path="") == {"FINISHED"}
    blend = tmp_path / "painted.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    reopened = bpy.data.images["painted"]
    assert reopened.packed_file is not None
    values = np.empty(512 * 512 * reopened.channels, np.float32)
    reopened.pixels.foreach_get(values)
    assert np.array_equal(values.reshape(512, 512, -1)[::-1, :, 0] > 0.5, mask)
    assert bpy.ops.dhandles.preview_edit(output_path=str(tmp_path / "after.png")) == {"FINISHED"}


def test_add_object_cuts_another_object_out_of_the_imported_photo(bpy, photogen, tmp_path):
    from mathutils import Matrix

    folder = photogen / "car"
    rig = import_sample(bpy, folder)
    rig.target.matrix_world = Matrix.Translation((0.3, 0.0, 0.0)) @ rig.target.matrix_world  # an edit in progress
    moved = rig.target.matrix_world.copy()
    faces_before = len(rig.background.data.polygons)
    road = np.zeros((512, 512), np.uint8)
    road[440:490, 40:140] = 255
    Image.fromarray(road).save(tmp_path / "road.png")
    assert bpy.ops.dhandles.add_object(mask_path=str(tmp_path / "road.png")) == {"FINISHED"}
    assert len(rig.extra_objects) == 1 and rig.target.matrix_world == moved
    second = rig.extra_objects[0].target
    assert len(second.data.polygons) == 50 * 100 and len(rig.background.data.polygons) == faces_before

    from diffusion_handles.scene.edit_transform import edit_matrices

    first, added = edit_matrices(rig)
    assert np.allclose(added, np.eye(4), atol=1e-5) and not np.allclose(first, np.eye(4), atol=1e-3)
    rig.target.matrix_world = Matrix.Translation((-0.3, 0.0, 0.0)) @ rig.target.matrix_world
    bpy.context.view_layer.update()
    parts = render_parts(bpy, rig, tmp_path / "added.png")
    assert int((parts == 0).sum()) == 0
    assert np.all(parts[(road > 0) | read_mask(folder / "mask.png")] == 2)


def test_drawn_vanishing_lines_converge_at_the_cameras_vanishing_points(bpy, photogen):
    from diffusion_handles.perspective import vanishing_draw
    from diffusion_handles.perspective.vanishing_points import view_vanishing_points
    from mathutils import Euler

    rig = import_sample(bpy, photogen / "car")
    rig.camera.rotation_euler = Euler((math.radians(80), math.radians(5), math.radians(20)))  # all three VPs finite
    bpy.context.view_layer.update()
    bpy.context.scene.dhandles_draw_vps = True  # no viewport in background mode: the toggle is harmless
    coords, colours = vanishing_draw.scene_lines(bpy.context)
    count = vanishing_draw.FAN
    assert coords.shape == (3 * count * 2, 3) and colours.shape == (3 * count * 2, 4)
    vps = view_vanishing_points(rig.camera_dict(), rig.camera.matrix_world, np.eye(3))
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    scene = bpy.context.scene
    for axis in range(3):
        vp = vps[axis, :2] / vps[axis, 2]
        for line in coords[axis * 2 * count:(axis + 1) * 2 * count].reshape(count, 2, 3):
            (u0, v0, _), (u1, v1, z1) = (world_to_camera_view(scene, rig.camera, Vector(p)) for p in line)
            a = np.array([u0 * rig.width - 0.5, (1 - v0) * rig.height - 0.5])
            b = np.array([u1 * rig.width - 0.5, (1 - v1) * rig.height - 0.5])
            assert z1 > 0  # the far end is in front of the camera
            # the image of the line runs from its start through (almost) the vanishing point
            along = (b - a) / np.linalg.norm(b - a)
            to_vp = vp - a
            off = abs(along[0] * to_vp[1] - along[1] * to_vp[0])
            assert off < 1e-3 * max(1.0, np.linalg.norm(to_vp)), (axis, off)
    bpy.context.scene.dhandles_draw_vps = False


def test_mask_from_text_makes_a_packed_mask_image_to_import_with(bpy, photogen):
    folder = photogen / "car"
    assert bpy.ops.dhandles.mask_from_text(filepath=str(folder / "input.png"), prompt="the car", threshold=0.01,
                                           model="tiny-segmentation") == {"FINISHED"}
    image = bpy.data.images["input mask: the car"]
    assert image.packed_file is not None and tuple(image.size) == (512, 512)
    with pytest.raises(RuntimeError, match="Name the object"):
        bpy.ops.dhandles.mask_from_text(filepath=str(folder / "input.png"), prompt=" ")


def test_import_jobs_run_a_tick_at_a_time_with_progress_cancel_and_errors(bpy, photogen, tmp_path):
    """The import's engine jobs as a job sequence (what the modal import drives from its timer): the next job
    starts when one ends, a cancel stops the job in flight and cleans up, a failed job's error reaches the work."""
    import time

    from diffusion_handles.engine_link import job_sequence
    from diffusion_handles.engine_link.engine_task import EngineTask

    folder = photogen / "car"
    params = {"photo": str(folder / "input.png"), "depth": str(folder / "depth.exr"),
              "mask": str(folder / "mask.png")}
    cleaned = []

    def work(output, second=None):
        try:
            first = yield EngineTask("scene", dict(params, output_dir=str(output)), label="Scene")
            if second is not None:
                yield EngineTask("scene", dict(params, **second), label="Again")
            return f"{first['width']}x{first['height']}"
        finally:
            cleaned.append(output)

    def drive(run, until):
        seen, deadline = [], time.monotonic() + 120
        while run.state == "RUNNING" and not until(run) and time.monotonic() < deadline:
            seen.append(job_sequence.tick(run, bpy.context))
            time.sleep(0.01)
        return seen

    run = job_sequence.JobSequence(work(tmp_path / "a", {"output_dir": str(tmp_path / "b")}), "Import")
    assert run.start(bpy.context) == "RUNNING" and run.task.label == "Scene"
    drive(run, lambda r: False)
    assert run.state == "FINISHED" and run.result == "512x512" and run.jobs_done == 2
    assert cleaned == [tmp_path / "a"] and (tmp_path / "b" / "background_points.npy").is_file()

    run = job_sequence.JobSequence(work(tmp_path / "c", {"output_dir": str(tmp_path / "d")}), "Import")
    run.start(bpy.context)
    run.cancel()
    drive(run, lambda r: False)
    assert run.state == "CANCELLED" and cleaned[-1] == tmp_path / "c" and run.jobs_done == 0
    assert not (tmp_path / "d").exists()  # the second job never started

    run = job_sequence.JobSequence(work(tmp_path / "e", {"output_dir": str(tmp_path / "f"), "tear": 0.0}), "Import")
    assert job_sequence.run_to_end(run, bpy.context) == "FAILED"
    assert "'tear' must be a number in [0.01, 1]" in run.error and cleaned[-1] == tmp_path / "e"
