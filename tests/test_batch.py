"""``python -m engine batch``: a manifest of tiny-model edits on a local Ray cluster (2 CPUs, started here) and on
one in-process engine; resume, retries after a killed actor, a failing job alone; ``edit --edit all``."""

from __future__ import annotations

import json

import pytest

from engine.batch.manifest import (  # no torch, no ray: importing them is cheap
    read_jobs,
    sample_edits,
)
from engine.batch.run import run_batch
from engine.errors import BadParams

pytest.importorskip("torch")
pytest.importorskip("diffusers")
ray = pytest.importorskip("ray")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SETTINGS = {"resolution": 64, "num_steps": 4, "guided_steps": 3, "opt_steps": 1, "null_inner_steps": 1}
EDITS = ("edit_000", "edit_001", "edit_002")


@pytest.fixture(scope="module")
def cluster():
    from engine.batch.ray_runner import runtime_env

    ray.init(num_cpus=2, runtime_env=runtime_env(), include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def manifest(photogen, tmp_path_factory):
    """6 edits over 2 photos (chair, car), then one whose photo does not exist."""
    folder = tmp_path_factory.mktemp("manifest")
    lines = []
    for sample in ("chair", "car"):
        for name, params in sample_edits(photogen / sample, "all").items():
            if name in EDITS:
                for key in ("photo", "mask", "depth", "bg_depth"):
                    params[key] = str(photogen / sample / params[key])
                lines.append({"id": f"{sample}-{name}", "name": "edit", "params": params})
    missing = dict(lines[0]["params"], photo=str(folder / "gone.png"))
    lines.append({"id": "missing-photo", "name": "edit", "params": missing})
    path = folder / "edits.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _jobs(manifest, out):
    from engine.batch.job_params import JobDefaults

    return read_jobs(manifest, out, JobDefaults(model="tiny", device="cpu", settings=SETTINGS,
                                                cache_dir=str(out / "inversion-cache")))


@pytest.fixture(scope="module")
def ray_run(cluster, manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray")
    return out, run_batch(_jobs(manifest, out), out, ray_address="auto")


def test_six_edits_over_two_photos_with_two_inversions_and_a_failing_job_alone(ray_run):
    out, summary = ray_run
    assert (summary["done"], summary["failed"], summary["skipped"], summary["workers"]) == (6, 1, 0, 2)
    assert summary["inversions"] == 2 and summary["cache_hits"] == 4
    assert [f["id"] for f in summary["failures"]] == ["missing-photo"]
    assert summary["failures"][0]["code"] == "file_not_found"
    written = json.loads((out / "batch-summary.json").read_text())
    assert written["done"] == 6 and len({job["worker"] for job in written["jobs"] if job["worker"]}) == 2
    for job in written["jobs"][:6]:
        assert job["unet_evals"] > 0 and job["seconds"] > 0
        report = json.loads((out / f"{job['id']}.json").read_text())
        inputs = report["inputs"]
        assert inputs["files"]["photo"]["path"].endswith("input.png") and len(inputs["files"]["mask"]["sha256"]) == 64
        assert inputs["prompt"] and inputs["model"] == "tiny" and inputs["settings"] == SETTINGS
        assert len(inputs["transform"]) == 4


def test_a_second_run_skips_everything_and_retry_failed_runs_the_failed_job(ray_run, manifest):
    out, _ = ray_run
    again = run_batch(_jobs(manifest, out), out, ray_address="auto")
    assert (again["done"], again["failed"], again["skipped"]) == (0, 0, 7)
    assert [job["reason"] for job in again["jobs"]] == ["done"] * 6 + ["failed before"]
    retried = run_batch(_jobs(manifest, out), out, retry_failed=True)
    assert (retried["done"], retried["failed"], retried["skipped"]) == (0, 1, 6)


def test_a_changed_input_runs_again(ray_run, manifest, tmp_path):
    out, _ = ray_run
    jobs = _jobs(manifest, out)
    jobs[0].params["prompt"] = "a different caption"
    from engine.batch.resume import job_done

    assert not job_done(jobs[0]) and job_done(jobs[1])


def test_without_ray_the_same_images_byte_for_byte(ray_run, manifest, tmp_path):
    from engine.cli import main

    out, _ = ray_run
    options = ["--model", "tiny", "--device", "cpu"] + [f"--set={key}={value}" for key, value in SETTINGS.items()]
    assert main(["batch", str(manifest), "--out", str(tmp_path)] + options) == 1  # the missing photo
    summary = json.loads((tmp_path / "batch-summary.json").read_text())
    assert (summary["runner"], summary["done"], summary["failed"], summary["inversions"]) == ("local", 6, 1, 2)
    for job in summary["jobs"][:6]:
        assert (tmp_path / f"{job['id']}.png").read_bytes() == (out / f"{job['id']}.png").read_bytes()


def test_a_killed_actor_is_replaced_and_its_job_retried_at_most_max_retries_times(cluster, manifest, tmp_path):
    """chair-edit_001's actor is killed once (retried, done); car-edit_001's on every try (then failed)."""
    killed = []

    def kill(runner, index, job):
        if job.id == "car-edit_001" or (job.id == "chair-edit_001" and job.id not in killed):
            killed.append(job.id)
            ray.kill(runner.slots[index].actor)

    summary = run_batch(_jobs(manifest, tmp_path)[:6], tmp_path, ray_address="auto", max_retries=1,
                        on_dispatch=kill)
    assert sorted(killed) == ["car-edit_001", "car-edit_001", "chair-edit_001"]
    assert (summary["done"], summary["failed"], summary["worker_restarts"]) == (5, 1, 3)
    attempts = {job["id"]: job["attempts"] for job in summary["jobs"]}
    assert attempts["chair-edit_001"] == 2 and attempts["car-edit_001"] == 2 and sum(attempts.values()) == 8
    assert summary["failures"][0]["id"] == "car-edit_001" and summary["failures"][0]["code"] == "worker_lost"
    assert (tmp_path / "chair-edit_001.png").is_file() and not (tmp_path / "car-edit_001.png").exists()


def test_manifest_errors_name_the_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('# a comment\nnot json\n')
    with pytest.raises(BadParams, match="m.jsonl line 2 is not JSON"):
        read_jobs(path, tmp_path / "out")
    path.write_text('{"name": "edit", "params": {}}\n')  # checked as the edit job checks its params
    with pytest.raises(BadParams, match="m.jsonl line 1: 'photo' is required"):
        read_jobs(path, tmp_path / "out")
    path.write_text('{"name": "preview", "params": {}}\n')
    with pytest.raises(BadParams, match="'edit' jobs only"):
        read_jobs(path, tmp_path / "out")


def test_outputs_never_overwrite_a_sample_file_or_each_other(photogen, tmp_path):
    import shutil

    sample = shutil.copytree(photogen / "chair", tmp_path / "chair")
    transforms = json.loads((sample / "transforms.json").read_text())
    (sample / "transforms.json").write_text(json.dumps({"transforms": transforms["edit_001"]}))
    before = (sample / "transforms.json").read_bytes()
    with pytest.raises(BadParams, match="never overwritten"):
        read_jobs(sample, sample)  # its report would be transforms.json
    assert (sample / "transforms.json").read_bytes() == before
    path = tmp_path / "m.jsonl"
    params = {"photo": "p.png", "mask": "m.png", "depth": "d.exr", "transform": [[1, 0, 0, 0]] * 4}
    path.write_text("".join(json.dumps({"id": i, "params": dict(params, output="same.png")}) + "\n" for i in "ab"))
    with pytest.raises(BadParams, match="'a' and 'b' both write"):
        read_jobs(path, tmp_path / "out")


def test_edit_all_runs_every_edit_of_a_sample(photogen, tmp_path, capsys):
    from engine.cli import main

    options = ["--model", "tiny", "--device", "cpu", "--steps", "4", "--resolution", "64", "--set", "opt_steps=1",
               "--set", "null_inner_steps=1"]
    out = tmp_path / "out"
    args = ["edit", "--sample", str(photogen / "chair"), "--edit", "all", "--out", str(out),
            "--cache-dir", str(tmp_path / "cache")]
    assert main(args + options) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["edit"] for line in lines] == list(EDITS) and all(line["ok"] for line in lines)
    assert all((out / f"{name}.png").is_file() and (out / f"{name}.json").is_file() for name in EDITS)
    assert main(args + options) == 0  # again: every edit skipped, still ok
    assert [json.loads(line)["status"] for line in capsys.readouterr().out.splitlines()] == ["skipped"] * 3


def test_a_repeated_single_valued_option_is_an_error(capsys):
    from engine.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["edit", "--sample", "a", "--sample", "b", "--edit", "edit_000", "--out", "o.png"])
    assert exit_.value.code == 2 and "--sample was given twice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["batch", "m.jsonl", "--out", "a", "--out", "b"])


def test_render_animation_sends_its_frames_to_the_cluster(cluster, addon, photogen, tmp_path, monkeypatch):
    import sys
    import time

    import bpy
    from diffusion_handles.engine_link import render_animation

    monkeypatch.setenv("DHANDLES_ENGINE_PYTHON", sys.executable)
    monkeypatch.setenv("DHANDLES_RAY_ADDRESS", ray.get_runtime_context().gcs_address)  # the cluster started here
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "edit.blend"))
    sample = photogen / "car"
    assert bpy.ops.dhandles.import_photo(filepath=str(sample / "input.png"), depth_path=str(sample / "depth.exr"),
                                         mask_path=str(sample / "mask.png")) == {"FINISHED"}
    context = bpy.context
    scene = context.scene
    for key, value in {"model": "tiny", "steps": 2, "inversion": "ddim", "resolution": 64,
                       "prompt": "a car on a road"}.items():
        setattr(scene.dhandles_render, key, value)
    target = scene.dhandles_rig.dhandles.target
    scene.frame_start, scene.frame_end = 1, 3
    target.keyframe_insert("location", frame=1)
    target.location.x += 0.15
    target.keyframe_insert("location", frame=3)

    run = render_animation.start(context)
    assert run.cluster is not None and run.task is None
    grown, deadline = [], time.monotonic() + 240
    while render_animation.tick(run, context) == "RUNNING" and time.monotonic() < deadline:
        if not grown or grown[-1] != run.done_frames:
            grown.append(list(run.done_frames))
        time.sleep(0.05)
    assert run.state == "FINISHED", (run.message, (run.cluster.out_dir / "batch.log").read_text()[-2000:])
    assert run.done_frames == [1, 2, 3] and all(g == [1, 2, 3][:len(g)] for g in grown)  # in order, no gaps
    assert sorted(p.name for p in run.folder.glob("frame_*.png")) == [f"frame_{n:04d}.png" for n in (1, 2, 3)]
    sidecar = json.loads((run.folder / "frame_0002.json").read_text())
    assert sidecar["report"]["inputs"]["files"]["photo"]["path"].endswith("input.png")
    summary = json.loads((run.cluster.out_dir / "batch-summary.json").read_text())
    assert summary["runner"] == "ray" and summary["done"] == 3 and summary["inversions"] == 1
    image = bpy.data.images[render_animation.ANIMATION_IMAGE]
    assert image.source == "SEQUENCE"



def test_a_run_hashes_each_input_file_once(tmp_path, monkeypatch):
    """The report's inputs section hashes a file the first time a job (or run) names it, then reuses the digest:
    an animation's frames and a batch's jobs of one photo read it once."""
    from engine.jobs import _edit_inputs

    photo = tmp_path / "photo.png"
    photo.write_bytes(b"pixels")
    reads = []
    real = _edit_inputs.file_sha256
    monkeypatch.setattr(_edit_inputs, "file_sha256", lambda path: reads.append(path) or real(path))
    digests, eye = {}, [[float(i == j) for j in range(4)] for i in range(4)]
    sections = [_edit_inputs.inputs_section({"photo": str(photo)}, eye, tmp_path / f"f{k}.png", digests)
                for k in range(3)]
    assert len(reads) == 1 and len({s["job_digest"] for s in sections}) == 1
    _edit_inputs.inputs_section({"photo": str(photo)}, eye, tmp_path / "alone.png")
    assert len(reads) == 2  # without a shared dict, each call reads the file
