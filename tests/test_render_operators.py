"""Render Edit, Render Animation and Release Engine in real bpy, with the real engine process.

bpy in background mode never fires timers or modal events, so these tests call the operators' per-tick logic
(``render_edit.start``/``tick``, ``render_animation.start``/``tick``, the ``bpy.app.timers`` callback) directly, as
Blender's timers do.
The diffusion runs use the ``tiny`` preset (random weights), so they check the plumbing, not image quality.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

SAMPLE = "car"
FAST = {"model": "tiny", "steps": 2, "inversion": "ddim", "resolution": 64}


@pytest.fixture(scope="module")
def engine_env(addon, tmp_path_factory):
    """One warm engine for the module (as in a Blender session), with its own inversion cache."""
    from diffusion_handles.engine_link import engine_session

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DHANDLES_ENGINE_PYTHON", sys.executable)
        patch.setenv("DHANDLES_CACHE_DIR", str(tmp_path_factory.mktemp("inversions")))  # read by the engine
        # One compute thread: the tiny runs gain nothing from two, and on a busy 2-core runner torch's thread pool
        # made them several times slower (0.9 s against 7 s for one edit, measured here).
        patch.setenv("OMP_NUM_THREADS", "1")
        engine_session.release()  # an engine another test module left running has another environment
        yield
        engine_session.release()


@pytest.fixture
def rig_scene(engine_env, photogen, tmp_path):
    """An empty .blend saved in tmp_path (so renders land in tmp_path) with the car sample imported."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "edit.blend"))
    sample = photogen / SAMPLE
    result = bpy.ops.dhandles.import_photo(filepath=str(sample / "input.png"), depth_path=str(sample / "depth.exr"),
                                           mask_path=str(sample / "mask.png"))
    assert result == {"FINISHED"}
    settings = bpy.context.scene.dhandles_render
    for key, value in FAST.items():
        setattr(settings, key, value)
    yield bpy.context
    from diffusion_handles.engine_link import render_status

    render_status.cancel_all()


def tick_until(tick, run, context, done, timeout=300.0, interval=0.01):
    deadline = time.monotonic() + timeout
    states = []
    while time.monotonic() < deadline:
        states.append(tick(run, context))
        if done(states[-1]):
            return states
        time.sleep(interval)
    raise AssertionError(f"not done after {timeout} s; last status: {context.window_manager.dhandles_render_status}")


def test_progress_over_stages_only_grows(addon):
    from diffusion_handles.engine_link.engine_task import EngineTask

    task = EngineTask("edit", {}, stages=(("invert", 1.0), ("edit", 3.0)))
    seen = []
    for stage, step, total in [("invert", 1, 2), ("invert", 2, 2), ("edit", 1, 3), ("edit", 3, 3)]:
        task._apply({"type": "progress", "stage": stage, "step": step, "total": total})
        seen.append(round(task.fraction, 3))
    assert seen == [0.125, 0.25, 0.5, 1.0]
    cached = EngineTask("edit", {}, stages=(("invert", 1.0), ("edit", 3.0)))
    cached._apply({"type": "progress", "stage": "edit", "step": 1, "total": 3})  # inversion skipped: counts done
    assert round(cached.fraction, 3) == 0.5 and cached.status == "edit: Editing 1/3"


def test_render_edit_needs_an_imported_photo(addon):
    import bpy
    from diffusion_handles.engine_link import render_edit

    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert not bpy.ops.dhandles.render_edit.poll()
    with pytest.raises(render_edit.RenderError, match="Import Photo"):
        render_edit.start(bpy.context)


def test_result_goes_to_a_reused_image_with_its_settings(rig_scene, photogen, tmp_path):
    import bpy
    from diffusion_handles.scene import render_output

    context = rig_scene
    photo = photogen / SAMPLE / "input.png"
    first = render_output.store_result(context, photo, {"prompt": "a car", "seed": 1, "transform": [[1.0]]})
    second = render_output.store_result(context, photo, {"prompt": "a car", "seed": 2, "transform": [[1.0]]})
    assert first == second and first.name == render_output.RESULT_IMAGE
    folder = tmp_path / "edit_renders"
    assert sorted(p.name for p in folder.iterdir()) == ["edit_0001.json", "edit_0001.png", "edit_0002.json",
                                                      "edit_0002.png"]
    assert json.loads((folder / "edit_0002.json").read_text())["seed"] == 2
    assert json.loads(second[render_output.RENDER_PROPERTY])["seed"] == 2 and second["dhandles_seed"] == 2
    assert Path(bpy.path.abspath(second.filepath)) == folder / "edit_0002.png"
    assert tuple(second.size) == (512, 512)

    plane = render_output.show_on_plane(context, second)
    again = render_output.show_on_plane(context, second)
    assert plane == again and plane.parent == context.scene.camera and len(plane.data.vertices) == 4
    entry = render_output.show_as_camera_background(context, second)
    render_output.show_as_camera_background(context, second)
    backgrounds = context.scene.camera.data.background_images
    assert entry.image == second and len([b for b in backgrounds if b.image == second]) == 1


def statuses_while(tick, run, context, done, timeout=300.0):
    seen = []

    def record(state):
        seen.append((context.window_manager.dhandles_render_status, context.window_manager.dhandles_render_progress,
                     context.window_manager.dhandles_render_running))
        return done(state)

    states = tick_until(tick, run, context, record, timeout)
    return states[-1], seen


def test_render_edit_end_to_end_and_reproducible(rig_scene, tmp_path):
    import bpy
    import numpy as np
    from diffusion_handles.engine_link import render_edit
    from diffusion_handles.scene import render_output
    from diffusion_handles.scene.edit_transform import edit_matrix
    from PIL import Image

    context = rig_scene
    rig = context.scene.dhandles_rig.dhandles
    rig.target.location.x += 0.05
    context.view_layer.update()
    run = render_edit.start(context)
    state, seen = statuses_while(render_edit.tick, run, context, lambda s: s != "RUNNING")
    assert state == "FINISHED", context.window_manager.dhandles_render_error
    assert any("Editing" in text and running for text, _, running in seen)  # progress reached the panel
    assert any(0.0 < fraction < 1.0 for _, fraction, _ in seen)
    assert not context.window_manager.dhandles_render_running and not context.window_manager.dhandles_render_error
    for _ in range(3):  # a timer or loop ticking after the end stores nothing more
        assert render_edit.tick(run, context) == "FINISHED"
    assert sorted(p.name for p in (tmp_path / "edit_renders").iterdir()) == ["edit_0001.json", "edit_0001.png"]

    image = bpy.data.images[render_output.RESULT_IMAGE]
    record = json.loads(image[render_output.RENDER_PROPERTY])
    sidecar = json.loads(Path(record["image"]).with_suffix(".json").read_text())
    assert Path(record["image"]).parent == tmp_path / "edit_renders"
    assert np.allclose(sidecar["transform"], edit_matrix(rig)) and sidecar["seed"] == 2773
    assert sidecar["prompt"] == (Path(rig.photo_path).parent / "prompt.txt").read_text().strip()
    assert sidecar["model"] == "tiny" and sidecar["report"]["cache"]["inversion"] in ("hit", "miss")
    # The Perspective panel's vanishing points (on by default) went with the edit, and the report scores the result.
    assert sidecar["params"]["perspective"]["labels"] == ["world X", "world Y", "world Z"]
    figures = sidecar["report"]["perspective"]
    assert 0.0 <= figures["inlier_share_1deg"] <= 1.0 and figures["segments"] >= 0 and "loss" in figures
    assert "guidance" not in figures  # weight 0: scored, not guided

    assert render_output.PROGRESS_IMAGE in bpy.data.images  # the engine's thumbnail reached Blender

    # The job's work folder is gone (the cache would fill up), and nothing the sidecar needs was in it.
    assert not Path(run.task.workdir).exists()
    again = Path(sidecar["params"]["output"])
    assert again == tmp_path / "edit_renders" / "edit_0001_rerun.png" and not again.exists()
    # The sidecar reproduces the result exactly with the one-shot command, as it is.
    import subprocess

    done = subprocess.run([sys.executable, "-m", "engine", "job", "edit", "--params", record["image"][:-4] + ".json",
                           "--key", "params"], cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(record["image"])))


def test_a_painted_mask_is_kept_beside_the_render(rig_scene, photogen, tmp_path):
    """A mask painted in Blender reaches the engine as a file in the job's work folder; that folder is removed after
    the render, so the file is kept beside the result and the sidecar points there."""
    import bpy
    import numpy as np
    from diffusion_handles.engine_link import render_edit

    context = rig_scene
    rig = context.scene.dhandles_rig.dhandles
    painted = bpy.data.images.load(str(photogen / SAMPLE / "mask.png"), check_existing=False)
    painted.name = "painted"
    rig.mask_image = painted.name
    run = render_edit.start(context)
    assert tick_until(render_edit.tick, run, context, lambda s: s != "RUNNING")[-1] == "FINISHED", run.message
    mask = Path(run.record["params"]["mask"])
    assert mask == tmp_path / "edit_renders" / "edit_0001_mask.npy"
    assert np.load(mask).any() and not Path(run.task.workdir).exists()


def test_perspective_guidance_goes_with_the_edit_and_bad_settings_stop_it(rig_scene, tmp_path):
    import numpy as np
    from diffusion_handles.engine_link import render_edit

    context = rig_scene
    rig = context.scene.dhandles_rig.dhandles
    settings = context.scene.dhandles_perspective
    settings.guidance_weight, settings.guidance_every = 2.0, 1
    run = render_edit.start(context)
    assert tick_until(render_edit.tick, run, context, lambda s: s != "RUNNING")[-1] == "FINISHED", run.message
    guidance = run.record["report"]["perspective"]["guidance"]
    assert guidance["weight"] == 2.0 and guidance["mode"] == "no_reference" and guidance["evaluations"] > 0

    record = render_edit.settings_record(context, rig)
    settings.source, settings.reference_object = "OBJECT", None
    with pytest.raises(render_edit.RenderError, match="Axes Object"):
        render_edit.start(context)
    settings.enabled = False
    assert render_edit.edit_params(context, rig, [np.eye(4)], record, tmp_path / "job").perspective is None
    from engine.params import EditParams  # the engine's side of the wire parses what the extension sends

    sent = render_edit.edit_params(context, rig, [np.eye(4), np.eye(4)], record, tmp_path / "job").to_json()
    assert EditParams.from_json(json.loads(json.dumps(sent, allow_nan=False))).outputs[1].endswith("frame_0001.png")


def test_perspective_adapters_go_with_the_edit_and_a_missing_folder_stops_it(rig_scene, tmp_path, monkeypatch):
    """The Perspective Adapters setting becomes the edit job's ``lora`` parameter and part of the render's record."""
    import bpy
    from diffusion_handles.engine_link import engine_session, render_edit
    from diffusion_handles.scene import render_output

    context = rig_scene
    rig = context.scene.dhandles_rig.dhandles
    settings = context.scene.dhandles_render
    folder = tmp_path / "adapters"
    folder.mkdir()
    matrix = render_edit.rig_transform(rig)
    params, record, _ = render_edit.prepare_job(context, rig, matrix, 1)
    assert params.lora is None and "lora" not in record  # empty: none

    settings.perspective_adapters = "//adapters/"  # relative to the .blend, as Blender's folder picker writes it
    settings.perspective_adapter_scale = 0.75
    with pytest.raises(render_edit.RenderError, match="holds no adapters"):
        render_edit.prepare_job(context, rig, matrix, 1)
    for name in ("adapter_model.safetensors", "adapter_config.json"):  # what finetune-perspective writes
        (folder / name).write_bytes(b"")
    params, record, _ = render_edit.prepare_job(context, rig, matrix, 1)
    expected = {"path": str(folder.resolve()), "scale": 0.75}
    assert params.lora.to_json() == expected and record["lora"] == expected and record["params"]["lora"] == expected
    image = render_output.store_result(context, Path(rig.photo_path), record)
    sidecar = json.loads(Path(bpy.path.abspath(image.filepath)).with_suffix(".json").read_text())
    assert sidecar["lora"] == expected and json.loads(image[render_output.RENDER_PROPERTY])["lora"] == expected

    settings.perspective_adapters = str(tmp_path / "gone")
    submitted = []
    monkeypatch.setattr(engine_session, "submit", lambda *args, **kwargs: submitted.append(args))
    with pytest.raises(render_edit.RenderError, match="'.*gone' does not exist.*finetune-perspective"):
        render_edit.start(context)
    assert submitted == []  # nothing was sent


def test_render_edit_operator_in_background_blender(rig_scene, tmp_path):
    """Scripts call ``bpy.ops.dhandles.render_edit()`` headless: with no timers it runs the same ticks to the end."""
    import bpy
    from diffusion_handles.scene import render_output

    assert bpy.ops.dhandles.render_edit() == {"FINISHED"}
    image = bpy.data.images[render_output.RESULT_IMAGE]
    assert Path(bpy.path.abspath(image.filepath)).parent == tmp_path / "edit_renders"
    assert "done" in bpy.context.window_manager.dhandles_render_status


def test_render_edit_cancel_within_a_second_keeps_everything(rig_scene, tmp_path):
    from diffusion_handles.engine_link import render_edit

    context = rig_scene
    context.scene.dhandles_render.steps = 40
    run = render_edit.start(context)
    tick_until(render_edit.tick, run, context, lambda s: run.task.stage is not None)
    asked = time.monotonic()
    run.cancel()
    states = tick_until(render_edit.tick, run, context, lambda s: s != "RUNNING", timeout=30)
    latency = time.monotonic() - asked
    assert states[-1] == "CANCELLED" and latency < 1.0, f"cancel took {latency:.2f} s"
    assert "cancelled" in context.window_manager.dhandles_render_status
    assert not context.window_manager.dhandles_render_error
    assert not (tmp_path / "edit_renders").exists()  # no result, nothing half-written


def test_a_blocking_render_past_its_timeout_is_cancelled_and_ticked_to_its_end(rig_scene):
    """The blocking path (background Blender, scripts that wait): past the timeout the shared ``run_to_end`` cancels
    the run once and ticks on until the engine has stopped it; nothing of it is kept."""
    from diffusion_handles.engine_link import render_edit

    context = rig_scene
    context.scene.dhandles_render.steps = 40
    images_before = set(bpy_images())
    run = render_edit.start(context)
    assert render_edit.run_to_end(run, context, interval=0.01, timeout=0.0) == "CANCELLED"
    assert run.task.done and run.ended and "cancelled" in run.message
    assert not context.window_manager.dhandles_render_running and set(bpy_images()) == images_before


def bpy_images():
    import bpy

    return [image.name for image in bpy.data.images]


def test_modal_handler_passes_events_through_and_esc_cancels(rig_scene):
    """The modal operator's own event handling, driven with synthetic events (no timers fire in background)."""
    from collections import namedtuple

    from diffusion_handles.engine_link import render_edit

    context = rig_scene
    context.scene.dhandles_render.steps = 40
    Event = namedtuple("Event", "type value")

    class Handler(render_edit.RenderOperator):  # the operator's logic, with the state Blender's instance holds
        bl_label = "Render Edit"
        reports = []

        def report(self, kind, message):
            self.reports.append((set(kind), message))

    handler = Handler()
    handler._run = render_edit.start(context)
    deadline = time.monotonic() + 120
    while handler._run.task.stage is None and time.monotonic() < deadline:
        assert handler.modal(context, Event("TIMER", "NOTHING")) == {"PASS_THROUGH"}
        time.sleep(0.01)
    assert context.window_manager.dhandles_render_running
    assert handler.modal(context, Event("MOUSEMOVE", "NOTHING")) == {"PASS_THROUGH"}
    assert handler.modal(context, Event("ESC", "PRESS")) == {"RUNNING_MODAL"}
    outcome = None
    while outcome in (None, {"PASS_THROUGH"}) and time.monotonic() < deadline:
        outcome = handler.modal(context, Event("TIMER", "NOTHING"))
        time.sleep(0.01)
    assert outcome == {"CANCELLED"} and handler.reports[-1][0] == {"WARNING"}
    assert "cancelled" in handler.reports[-1][1] and not context.window_manager.dhandles_render_running


@pytest.fixture
def timers_fire(monkeypatch):
    """Blender with its UI, as far as the operators can tell (background bpy never fires timers): the timers the
    operators register are captured, and ticked by the test as Blender's event loop would."""
    import bpy
    from diffusion_handles.engine_link import render_status

    monkeypatch.setattr(render_status, "timers_fire", lambda: True)
    registered = []
    real_register = bpy.app.timers.register

    def register(function, **options):
        registered.append(function)
        return real_register(function, **options)

    monkeypatch.setattr(bpy.app.timers, "register", register)
    yield registered
    for function in registered:
        if bpy.app.timers.is_registered(function):
            bpy.app.timers.unregister(function)


@pytest.mark.parametrize("operator", ["render_edit", "render_animation"])
def test_exec_in_the_ui_returns_at_once_and_a_timer_drives_the_render(rig_scene, timers_fire, operator, tmp_path):
    """``bpy.ops.dhandles.render_edit()`` from the Python console must not block Blender until the render ends."""
    import bpy

    context = rig_scene
    context.scene.frame_start = context.scene.frame_end = 1
    wm = context.window_manager
    assert getattr(bpy.ops.dhandles, operator)() == {"FINISHED"}
    results = lambda: list((tmp_path / "edit_renders").rglob("*.png"))  # noqa: E731
    assert wm.dhandles_render_running and not results()  # started, not finished
    [step] = timers_fire
    assert bpy.app.timers.is_registered(step)
    intervals = []
    deadline = time.monotonic() + 300
    while (not intervals or intervals[-1] is not None) and time.monotonic() < deadline:
        intervals.append(step())
        time.sleep(0.01)
    assert intervals[-1] is None and all(isinstance(i, float) and i > 0 for i in intervals[:-1])
    assert not wm.dhandles_render_running and not wm.dhandles_render_error, wm.dhandles_render_error
    assert "done" in wm.dhandles_render_status
    assert len(results()) == 1


def test_loading_a_file_cancels_a_timer_driven_render(rig_scene, timers_fire):
    import bpy
    from diffusion_handles.engine_link import render_status

    context = rig_scene
    assert bpy.ops.dhandles.render_edit() == {"FINISHED"}
    [step] = timers_fire
    [run] = render_status._active
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert not bpy.app.timers.is_registered(step) and render_status.active_count() == 0
    assert not context.window_manager.dhandles_render_running
    # a timer that outlives the load sees the cancelled job to its end, so it cannot hold the engine
    [_, see_through] = timers_fire
    assert bpy.app.timers.is_registered(see_through)
    deadline = time.monotonic() + 60
    while see_through() is not None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert run.task.state == "CANCELLED"


def test_status_bar_shows_a_progress_bar_while_a_render_runs(addon):
    import bpy
    from diffusion_handles.engine_link import render_status
    from diffusion_handles.panels import status_bar

    class Layout:  # records what a draw function asks of the status bar's UILayout
        def __init__(self):
            self.calls = []

        def row(self, **options):
            self.calls.append(("row", options))
            return self

        def __setattr__(self, name, value):
            if name != "calls":
                self.calls.append(("set", name, value))
            object.__setattr__(self, name, value)

        def progress(self, **options):
            self.calls.append(("progress", options))

        def operator(self, name, **options):
            self.calls.append(("operator", name, options))

    assert status_bar.draw_status_bar in bpy.types.STATUSBAR_HT_header._dyn_ui_initialize()
    wm = bpy.context.window_manager
    header = type("Header", (), {})()
    wm.dhandles_render_running, wm.dhandles_render_status, wm.dhandles_render_progress = False, "", 0.0
    header.layout = Layout()
    status_bar.draw_status_bar(header, bpy.context)
    assert header.layout.calls == []  # nothing while no render runs
    render_status.update(bpy.context, "Render Edit: Editing 3/38", 0.4, running=True)
    status_bar.draw_status_bar(header, bpy.context)
    calls = header.layout.calls
    [progress] = [call[1] for call in calls if call[0] == "progress"]
    assert progress["text"] == "Render Edit: Editing 3/38" and abs(progress["factor"] - 0.4) < 1e-6
    assert progress.get("type", "BAR") == "BAR" and ("set", "ui_units_x", status_bar.STATUS_BAR_UNITS) in calls
    assert any(call[0] == "operator" and call[1] == "dhandles.cancel_render" for call in calls)
    render_status.update(bpy.context, "", 0.0, running=False)

    status_bar.unregister()
    try:
        assert status_bar.draw_status_bar not in bpy.types.STATUSBAR_HT_header._dyn_ui_initialize()
    finally:
        status_bar.register()


def test_an_import_behind_a_render_fails_at_once_and_leaves_the_scene(rig_scene, photogen, tmp_path):
    """A blocking engine job (the import's scene job, a scripted preview) would wait, with Blender frozen, for the
    whole render."""
    import bpy
    from diffusion_handles.engine_link import render_edit

    context = rig_scene
    context.scene.dhandles_render.steps = 10
    run = render_edit.start(context)

    def scene_contents():
        return [sorted(getattr(bpy.data, kind).keys()) for kind in ("collections", "objects", "meshes", "images")]

    before = scene_contents()
    sample = photogen / "chair"
    with pytest.raises(RuntimeError, match="A render is running: wait for it to finish or cancel it, then try again"):
        bpy.ops.dhandles.import_photo(filepath=str(sample / "input.png"), depth_path=str(sample / "depth.exr"),
                                      mask_path=str(sample / "mask.png"))
    assert scene_contents() == before
    preview = tmp_path / "behind_render.png"
    with pytest.raises(RuntimeError, match="A render is running"):  # a scripted preview would wait as long
        bpy.ops.dhandles.preview_edit(output_path=str(preview))
    assert not preview.exists()
    assert tick_until(render_edit.tick, run, context, lambda s: s != "RUNNING")[-1] == "FINISHED"  # unaffected
    assert bpy.ops.dhandles.import_photo(filepath=str(sample / "input.png"), depth_path=str(sample / "depth.exr"),
                                         mask_path=str(sample / "mask.png")) == {"FINISHED"}  # once it ended


def test_engine_killed_mid_render_then_a_fresh_engine(rig_scene):
    from diffusion_handles.engine_link import engine_session, render_edit

    context = rig_scene
    context.scene.dhandles_render.steps = 40
    run = render_edit.start(context)
    tick_until(render_edit.tick, run, context, lambda s: run.task.stage is not None)
    killed = engine_session.pid()
    os.kill(killed, signal.SIGKILL)
    states = tick_until(render_edit.tick, run, context, lambda s: s != "RUNNING", timeout=30)
    assert states[-1] == "FAILED" and run.task.error_code == "engine_crashed"
    error = context.window_manager.dhandles_render_error
    assert "engine stopped" in error and "fresh engine" in error
    assert context.scene.dhandles_rig.dhandles.target is not None  # the scene is intact

    context.scene.dhandles_render.steps = 2
    again = render_edit.start(context)
    assert tick_until(render_edit.tick, again, context, lambda s: s != "RUNNING")[-1] == "FINISHED"
    assert engine_session.pid() != killed and not context.window_manager.dhandles_render_error


def test_render_animation_reuses_the_inversion(rig_scene, tmp_path):
    import bpy
    from diffusion_handles.engine_link import render_animation

    context = rig_scene
    scene = context.scene
    target = scene.dhandles_rig.dhandles.target
    scene.frame_start, scene.frame_end = 1, 2
    start_x = target.location.x
    target.keyframe_insert("location", frame=1)
    target.location.x = start_x + 0.1
    target.keyframe_insert("location", frame=2)
    scene.frame_set(5)
    scene.dhandles_render.prompt = "a car on a road, animated"  # an inversion no other test made

    run = render_animation.start(context)
    state, seen = statuses_while(render_animation.tick, run, context, lambda s: s != "RUNNING")
    assert state == "FINISHED", run.message
    assert scene.frame_current == 5  # the artist's frame is left alone
    assert run.done_frames == [1, 2] and run.reused_inversion == [False, True]
    files = sorted(p.name for p in run.folder.iterdir())
    assert files == ["frame_0001.json", "frame_0001.png", "frame_0002.json", "frame_0002.png"]
    transforms = [json.loads((run.folder / f"frame_{n:04d}.json").read_text())["transform"] for n in (1, 2)]
    assert abs(transforms[1][0][3] - transforms[0][0][3] - 0.1) < 1e-6  # engine +X is Blender camera +X
    image = bpy.data.images[render_animation.ANIMATION_IMAGE]
    assert image.source == "SEQUENCE" and json.loads(image["dhandles_render"])["frames"] == [1, 2]
    assert any("frame 2 (2/2)" in text for text, _, _ in seen)


def test_an_animation_with_an_out_of_view_frame_completes(rig_scene, photogen):
    import numpy as np
    from diffusion_handles.engine_link import render_animation
    from PIL import Image

    context = rig_scene
    scene = context.scene
    target = scene.dhandles_rig.dhandles.target
    scene.frame_start, scene.frame_end = 1, 3
    home = target.location.copy()
    target.keyframe_insert("location", frame=1)
    target.location.x += 1000.0  # far out of the frame (whole frames land on the keys: no in-between)
    target.keyframe_insert("location", frame=2)
    target.location = home
    target.keyframe_insert("location", frame=3)

    run = render_animation.start(context)
    state = tick_until(render_animation.tick, run, context, lambda s: s != "RUNNING")[-1]
    assert state == "FINISHED", run.message
    assert run.done_frames == [1, 2, 3] and run.background_frames == [2]
    assert "frames 2 show the photo's background" in run.message
    sidecar = json.loads((run.folder / "frame_0002.json").read_text())
    assert sidecar["out_of_view"] is True and "background" in sidecar["note"]
    assert not json.loads((run.folder / "frame_0001.json").read_text()).get("out_of_view")
    frame = np.asarray(Image.open(run.folder / "frame_0002.png").convert("RGB"))
    photo = np.asarray(Image.open(photogen / SAMPLE / "input.png").convert("RGB"))
    assert frame.shape == photo.shape and not np.array_equal(frame, photo)  # the object is gone from it


def test_two_objects_render_with_each_ones_transform(engine_env, photogen, tmp_path):
    import bpy
    import numpy as np
    from diffusion_handles.engine_link import render_edit
    from mathutils import Matrix
    from PIL import Image

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "two.blend"))
    sample = photogen / SAMPLE
    road = np.zeros((512, 512), np.uint8)
    road[440:490, 40:140] = 255
    Image.fromarray(road).save(tmp_path / "road.png")
    assert bpy.ops.dhandles.import_photo(filepath=str(sample / "input.png"), depth_path=str(sample / "depth.exr"),
                                         mask_path=str(sample / "mask.png"),
                                         extra_masks=str(tmp_path / "road.png")) == {"FINISHED"}
    context = bpy.context
    for key, value in FAST.items():
        setattr(context.scene.dhandles_render, key, value)
    rig = context.scene.dhandles_rig.dhandles
    rig.target.matrix_world = Matrix.Translation((0.2, 0.0, 0.0)) @ rig.target.matrix_world
    second = rig.extra_objects[0].target
    second.matrix_world = Matrix.Translation((-0.1, 0.0, 0.0)) @ second.matrix_world
    context.view_layer.update()
    run = render_edit.start(context)
    params = run.task.params
    assert len(params["masks"]) == 1 and np.asarray(params["transform"]).shape == (2, 4, 4)
    assert not np.allclose(params["transform"][0], params["transform"][1])
    assert tick_until(render_edit.tick, run, context, lambda s: s != "RUNNING")[-1] == "FINISHED"
    from diffusion_handles.scene import render_output

    record = json.loads(bpy.data.images[render_output.RESULT_IMAGE][render_output.RENDER_PROPERTY])
    report = record["report"]
    assert len(report["visible_fraction"]) == 2 and min(report["visible_fraction"]) > 0.5


def test_a_cancelled_animation_leaves_no_work_folder(rig_scene):
    from diffusion_handles.engine_link import render_animation

    context = rig_scene
    context.scene.frame_start, context.scene.frame_end = 1, 2
    context.scene.dhandles_render.steps = 20
    run = render_animation.start(context)
    tick_until(render_animation.tick, run, context, lambda s: run.task.stage is not None)
    workdir = Path(run.task.workdir)
    assert workdir.is_dir()  # the engine writes there
    run.cancel()
    assert tick_until(render_animation.tick, run, context, lambda s: s != "RUNNING")[-1] == "CANCELLED"
    assert not workdir.exists()


def test_engine_task_progress_cancel_and_release(engine_env):
    import bpy
    from diffusion_handles.engine_link import engine_session
    from diffusion_handles.engine_link.engine_task import CANCELLED, FINISHED, EngineTask

    task = EngineTask("ping", {"steps": 3, "sleep": 0.02}, label="Ping")
    task.start(bpy.context)
    fractions = []
    while not task.done:
        task.tick()
        fractions.append(task.fraction)
        time.sleep(0.005)
    assert task.state == FINISHED and task.fraction == 1.0 and task.status.startswith("Ping: done")
    assert engine_session.running()

    slow = EngineTask("ping", {"steps": 10_000, "sleep": 0.02}, label="Ping")
    slow.start(bpy.context)
    while slow.stage is None:
        slow.tick()
        time.sleep(0.005)
    asked = time.monotonic()
    slow.cancel()
    while not slow.done:
        slow.tick()
        time.sleep(0.005)
    assert slow.state == CANCELLED and time.monotonic() - asked < 1.0

    pid = engine_session.pid()
    assert bpy.ops.dhandles.release_engine() == {"FINISHED"}
    assert not engine_session.running() and "released" in bpy.context.window_manager.dhandles_engine_status
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_job_that_ignores_cancel_gets_the_engine_restarted(engine_env):
    """A job busy outside its steps (a model loading, a stuck call) cannot honour a cancel: after a grace period
    the engine process is ended, so Cancel always ends the render."""
    import bpy
    from diffusion_handles.engine_link import engine_session
    from diffusion_handles.engine_link.engine_task import CANCELLED, EngineTask

    task = EngineTask("ping", {"steps": 2, "sleep": 30.0}, label="Ping")
    task.cancel_grace = 0.5
    task.start(bpy.context)
    while task.stage is None and engine_session.busy():
        task.tick()
        time.sleep(0.01)
        if engine_session.client().active_jobs.get(task.job, {}).get("state") == "running":
            break
    stuck = engine_session.pid()
    asked = time.monotonic()
    task.cancel()
    while not task.done:
        task.tick()
        time.sleep(0.01)
    assert task.state == CANCELLED and "restarted" in task.status
    assert time.monotonic() - asked < 3.0
    with pytest.raises(ProcessLookupError):
        os.kill(stuck, 0)


def test_wrong_engine_python_is_reported_in_the_panel(rig_scene, monkeypatch, tmp_path):
    import bpy
    from diffusion_handles.engine_link import render_edit

    context = rig_scene
    target = context.scene.dhandles_rig.dhandles.target
    before = [tuple(row) for row in target.matrix_world]
    monkeypatch.setenv("DHANDLES_ENGINE_PYTHON", str(tmp_path / "missing" / "python"))
    run = render_edit.start(context)
    assert tick_until(render_edit.tick, run, context, lambda s: s != "RUNNING")[-1] == "FAILED"
    wm = context.window_manager
    assert "does not exist" in wm.dhandles_render_error and "preferences" in wm.dhandles_render_error
    assert not wm.dhandles_render_running
    assert [tuple(row) for row in target.matrix_world] == before  # nothing the user made changed
    # a script's call (background Blender: it waits) says the same, and leaves nothing running or in the cache
    # (with a painted mask, which the job's work folder receives)
    from diffusion_handles.scene import photo_files

    painted = bpy.data.images.load(str(Path(context.scene.dhandles_rig.dhandles.mask_path)), check_existing=False)
    context.scene.dhandles_rig.dhandles.mask_image = painted.name
    jobs = photo_files.cache_root(context) / "render_jobs"
    before_jobs = sorted(jobs.iterdir()) if jobs.is_dir() else []
    wm.dhandles_render_error = ""
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.dhandles.render_edit()
    assert "does not exist" in wm.dhandles_render_error and not wm.dhandles_render_running
    assert (sorted(jobs.iterdir()) if jobs.is_dir() else []) == before_jobs


def test_the_stall_timeout_preference_reaches_the_jobs(engine_env, monkeypatch):
    """A first render that downloads several GB of weights reports no progress meanwhile: the preference gives it
    longer before the client takes it for hung (0: never)."""
    import math
    from types import SimpleNamespace

    from diffusion_handles import preferences
    from diffusion_handles.engine_link import engine_session

    monkeypatch.setattr(preferences, "get", lambda context=None: SimpleNamespace(engine_python="", stall_minutes=0.5))
    job = engine_session.submit(None, "ping", {"steps": 1})
    assert engine_session.client().active_jobs[job]["stall_timeout"] == 30.0
    monkeypatch.setattr(preferences, "get", lambda context=None: SimpleNamespace(engine_python="", stall_minutes=0))
    assert engine_session.client().stall_timeout == math.inf
