"""The typed job parameters (``engine/params``): every field of every job, given a wrong value, is refused with
``bad_params`` naming the field, through the real job runner (and the ``job`` command); valid parameters round-trip
through JSON; ``docs/protocol.md`` matches the classes; official-format edits refuse unknown keys.

The cases are generated from the classes, so a new field is tested without writing a test for it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import subprocess
import sys

import pytest
from conftest import subprocess_env

from engine.errors import BadParams
from engine.params import PARAMS_BY_JOB, Frames, OfficialEdit
from engine.params import checks as c
from engine.params.parts import SettingsOverrides
from engine.process.job_runner import run_job

log = logging.getLogger(__name__)
FRAME_FIELDS = {"transform": "transforms", "output": "outputs", "transforms": "transform", "outputs": "output"}


def example(check, root: str):
    """A valid value for ``check`` (paths under ``root``, which does not exist)."""
    if isinstance(check, c.AbsolutePath):
        return f"{root}/file{check.suffixes[0] if check.suffixes else '.png'}"
    if isinstance(check, c.Device):
        return "cpu"
    if isinstance(check, c.Text):
        return check.choices[0] if check.choices else "a chair"
    if isinstance(check, c.Integer):
        return check.low + 1 if check.low + 1 <= check.high else check.low
    if isinstance(check, c.Number):
        if math.isfinite(check.low) and not check.open_low:
            return check.low + min(1.0, (check.high - check.low) / 2) if check.low < 0 or check.high > 60 else \
                check.low  # ping's sleep: no waiting
        low, high = max(check.low, -1e3), min(check.high, 1e3)
        return (low + high) / 2
    if isinstance(check, c.Boolean):
        return True
    if isinstance(check, c.ListOf):
        return [example(check.item, root) for _ in range(max(1, check.low))]
    if isinstance(check, c.ObjectTransforms):
        return example(check.single, root)
    if isinstance(check, c.Nested):
        return example_params(check.cls, root)
    if isinstance(check, SettingsOverrides):
        return {"guidance_scale": 5.0}
    return {"any": [1, "json"]}


def example_params(cls, root: str, frames: str = "single") -> dict:
    """Valid parameters of ``cls`` with every field given (one frame form: ``single`` or ``several``)."""
    values = {f.name: example(f.metadata["check"], root) for f in dataclasses.fields(cls)}
    if not issubclass(cls, Frames):
        return values
    for name in ("transforms", "outputs") if frames == "single" else ("transform", "output"):
        del values[name]
    if values.get("masks"):  # several objects: one 4x4 per object in each frame
        key = "transform" if frames == "single" else "transforms"
        one = values[key] if frames == "single" else values[key][0]
        several = [one] * (1 + len(values["masks"]))
        values[key] = several if frames == "single" else [several]
    if "outputs" in values:
        values["transforms"] = [values["transforms"][0]] * len(values["outputs"])
    return values


def wrong_values(check) -> list:
    """Values ``check`` must refuse, with a reason for the test's message."""
    if isinstance(check, c.AbsolutePath):
        return [["/a/list/where/a/path/belongs.png"], "relative/photo.png", "/nul\x00byte.png", 5, {"p": 1}]
    if isinstance(check, c.Device):
        return ["quantum", ["cpu"], "cpu\x00"]
    if isinstance(check, c.Text):
        return [["x"], "nul\x00byte", 3] + (["not-a-choice"] if check.choices else [])
    if isinstance(check, c.Integer):
        return ["1", 1.5, True, math.nan, check.low - 1, check.high + 1, [1]]
    if isinstance(check, c.Number):
        bad = ["1", True, math.nan, math.inf, -math.inf, [1.0]]
        return bad + [v for v in (check.low - 1, check.high + 1) if math.isfinite(v)]
    if isinstance(check, c.Boolean):
        return ["yes", 1, [True]]
    if isinstance(check, c.ObjectTransforms):  # a bad 4x4, or a list of them with one bad
        good = example(check.single, "/")
        return wrong_values(check.single) + [[good, [[1, 0, 0]] * 4], [good, [[math.nan] * 4] * 4]]
    if isinstance(check, c.ListOf):
        item = wrong_values(check.item)[0]
        return [5, "x", {"a": 1}, [item] * max(1, check.low)] + ([[]] if check.low > 0 else [])
    if isinstance(check, c.Nested):
        return ["x", [1], {"not_a_field": 1}]
    if isinstance(check, SettingsOverrides):
        return [5, {"guidance_scale": math.nan}, {"seed": 1.5}, {"num_steps": "50"}, {"not_a_setting": 1},
                {"inversion": "a\x00"}]
    if isinstance(check, c.JsonValue):
        return [{"a": "nul\x00"}] + ([{"loss": math.nan}] if check.finite else [])
    return []


def cases(cls, root: str, prefix: str = ""):
    """(parameters, dotted field name) for every wrong value of every field of ``cls``, nested ones included."""
    for field in dataclasses.fields(cls):
        form = "several" if field.name in ("transforms", "outputs") else "single"
        base = example_params(cls, root, form)
        name = f"{prefix}{field.name}"
        for value in wrong_values(field.metadata["check"]):
            yield {**base, field.name: value}, name
        check = field.metadata["check"]
        if isinstance(check, c.Nested):
            for nested, nested_name in cases(check.cls, root, f"{name}."):
                yield {**base, field.name: nested}, nested_name


def run(name: str, params, tmp_path) -> dict:
    messages = []
    run_job("t", name, params, messages.append, workdir=tmp_path / "work")
    return messages[-1]


@pytest.mark.parametrize("job", sorted(PARAMS_BY_JOB))
def test_every_wrong_field_is_bad_params_naming_it(job, tmp_path):
    cls = PARAMS_BY_JOB[job]
    root = str(tmp_path / "absent")
    failures, count = [], 0
    for params, field in cases(cls, root):
        count += 1
        final = run(job, params, tmp_path)
        if final["type"] != "error" or final["code"] != "bad_params" or field.split(".")[-1] not in final["message"]:
            failures.append(f"{field} = {params.get(field.split('.')[0])!r}: {final}")
    log.info("%s: %d wrong values, %d not refused as bad_params naming the field", job, count, len(failures))
    assert count >= 5 and not failures, "\n".join(failures)


@pytest.mark.parametrize("job", sorted(PARAMS_BY_JOB))
def test_valid_params_pass_and_round_trip(job, tmp_path):
    cls = PARAMS_BY_JOB[job]
    for form in ("single", "several"):
        raw = json.loads(json.dumps(example_params(cls, str(tmp_path / "absent"), form)))
        parsed = cls.from_json(raw)
        wire = json.loads(json.dumps(parsed.to_json(), allow_nan=False))
        assert cls.from_json(wire) == parsed
        final = run(job, raw, tmp_path)  # checked, then the job runs: a missing file, never bad_params
        # (bad_input: the scene job makes its output folder at the one example path, which the photo then names;
        # bad_transform: the example 4x4 is well-typed but all zeros, a scale to nothing)
        assert final["type"] == "result" or final["code"] in (
            "file_not_found", "output_is_input", "bad_input", "bad_transform"), final


def test_unknown_keys_name_the_key_and_the_allowed_ones(tmp_path):
    params = {**example_params(PARAMS_BY_JOB["segment"], str(tmp_path)), "treshold": 0.5}
    final = run("segment", params, tmp_path)
    assert final["code"] == "bad_params" and "'treshold'" in final["message"] and "threshold" in final["message"]
    final = run("edit", {**example_params(PARAMS_BY_JOB["edit"], str(tmp_path)),
                         "lora": {"path": "/x", "scael": 1.0}}, tmp_path)
    assert final["code"] == "bad_params" and "'scael'" in final["message"] and "'lora'" in final["message"]


def test_relative_paths_are_refused_saying_so(tmp_path):
    params = {**example_params(PARAMS_BY_JOB["inpaint"], str(tmp_path)), "mask": "mask.png"}
    final = run("inpaint", params, tmp_path)
    assert final["code"] == "bad_params" and "absolute paths only" in final["message"] and "'mask'" in final["message"]


def test_the_job_command_refuses_each_job_s_bad_field(tmp_path, repo_root):
    """The ``python -m engine job NAME --params FILE`` door: a list where a path belongs and a NaN number."""
    for job, cls in sorted(PARAMS_BY_JOB.items()):
        params = example_params(cls, str(tmp_path / "absent"))
        field = next(f for f in dataclasses.fields(cls) if isinstance(f.metadata["check"], (c.AbsolutePath,
                                                                                            c.Number, c.Boolean)))
        check = field.metadata["check"]
        params[field.name] = math.nan if isinstance(check, c.Number) else "yes" if isinstance(check, c.Boolean) \
            else ["/a", "/b"]
        path = tmp_path / f"{job}.json"
        path.write_text(json.dumps(params))  # Python writes NaN, as a careless client would
        done = subprocess.run([sys.executable, "-m", "engine", "job", job, "--params", str(path)], cwd=repo_root,
                              env=subprocess_env(), capture_output=True, text=True, timeout=120, check=False)
        final = json.loads(done.stdout.strip().splitlines()[-1])
        assert done.returncode == 1 and final["code"] == "bad_params", (job, final)
        assert f"'{field.name}'" in final["message"], (job, final)


def test_nested_paths_are_named_with_dots_and_indices():
    cls = PARAMS_BY_JOB["edit"]
    params = example_params(cls, "/absent")
    params["perspective"] = {"vps": [[1.0, 2.0], [3.0, math.nan]], "width": 64, "height": 48}
    with pytest.raises(BadParams, match=r"'perspective\.vps\[1\]\[1\]' must be a finite number"):
        cls.from_json(params)
    params = example_params(cls, "/absent", "several")
    params["transforms"] = [[[1, 0, 0, 0]] * 4, [[1, 0, 0]] * 4]
    with pytest.raises(BadParams, match=r"'transforms\[1\]\[0\]' must have 4 items"):
        cls.from_json(params)


def test_built_in_python_objects_are_checked_the_same_way():
    from engine.params import Lora, PreviewParams

    with pytest.raises(BadParams, match="'scale' must be a finite number"):
        Lora(path="/a", scale=math.inf)
    with pytest.raises(BadParams, match="'transform' is required"):
        PreviewParams(photo="/p.png", depth="/d.exr", mask="/m.png",
                      camera={"width": 4, "height": 3, "fx": 2, "fy": 2, "cx": 2, "cy": 1.5}, output="/o.png")


def test_protocol_doc_tables_match_the_classes(repo_root):
    from engine.params import docs

    text = (repo_root / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert docs.rewritten(text) == text, "docs/protocol.md drifted: run python -m engine.params.docs"
    for job, cls in PARAMS_BY_JOB.items():
        assert f"#### `{job}` ({cls.__name__})" in text
        for field in dataclasses.fields(cls):
            assert f"| `{field.name}` |" in text


def test_perspective_modes_are_the_guidance_modes():
    from engine.params.parts import PERSPECTIVE_MODES
    from engine.perspective.guidance import MODES

    assert tuple(MODES) == PERSPECTIVE_MODES


def test_official_edits_refuse_unknown_keys(tmp_path):
    from engine.geometry import GeometryError
    from engine.geometry.io import edit_parameters

    good = {"translation": [0.1, 0, 0], "rotation_axis": [0, 1, 0], "rotation_angle": 30}
    assert edit_parameters("t.json", "e", good)["rotation_angle"] == 30.0
    assert OfficialEdit.from_json({"translation": [0, 0, 1]}).rotation_axis == (0.0, 1.0, 0.0)
    with pytest.raises(GeometryError, match="'scale'"):
        edit_parameters("t.json", "e", {**good, "scale": 2.0})
    with pytest.raises(GeometryError, match=r"e\.translation"):
        edit_parameters("t.json", "e", {**good, "translation": [0, math.nan, 0]})
    from engine.diffusion.inputs import transform_from_json  # edit --transform edit.json

    with pytest.raises(ValueError, match="'scale'"):
        transform_from_json({**good, "scale": 2.0})


def test_the_server_answers_every_wrong_field_and_keeps_serving(tmp_path, repo_root):
    """The server door: every generated wrong value of every job sent to one ``python -m engine serve`` (Python's
    json writes NaN and Infinity, as a careless client would); each is answered ``bad_params``, never
    ``internal_error``, and a ping still works afterwards."""
    from engine.process import protocol

    sent = {}
    proc = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--heartbeat", "30"], cwd=repo_root,
                            env=subprocess_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        for job, cls in sorted(PARAMS_BY_JOB.items()):
            for params, field in cases(cls, str(tmp_path / "absent")):
                job_id = f"j{len(sent)}"
                sent[job_id] = field
                proc.stdin.write(json.dumps({"v": 1, "type": "submit", "job": job_id, "name": job,
                                             "params": params}) + "\n")
        proc.stdin.write(protocol.encode({"type": "submit", "job": "last", "name": "ping", "params": {}}))
        proc.stdin.flush()
        finals = {}
        while "last" not in finals:
            message = protocol.decode(proc.stdout.readline())
            if message["type"] in protocol.FINAL_TYPES:
                finals[message["job"]] = message
        proc.stdin.write(protocol.encode({"type": "shutdown"}))
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    wrong = {job_id: finals.get(job_id) for job_id, field in sent.items()
             if finals.get(job_id, {}).get("code") != "bad_params"
             or field.split(".")[-1] not in finals[job_id]["message"]}
    log.info("server: %d wrong values answered, %d not bad_params naming the field", len(sent), len(wrong))
    assert len(sent) > 500 and not wrong, wrong
    assert finals["last"]["type"] == "result"


def test_further_objects_masks_are_inputs_and_each_frame_moves_every_object(tmp_path):
    """``masks`` (further objects) are the job's inputs like ``mask``; each transform is one 4x4 per object."""
    from engine.io.safe_write import inputs_of

    eye = [[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]
    extra = tmp_path / "road.png"
    extra.write_bytes(b"not read here")
    base = {**example_params(PARAMS_BY_JOB["preview"], str(tmp_path / "absent")), "masks": [str(extra)]}
    params = PARAMS_BY_JOB["preview"].from_json({**base, "transform": [eye, eye]})
    assert params.input_files()["masks[0]"] == str(extra) and str(extra) in inputs_of(params).values()
    for wrong, found in ((eye, 1), ([eye, eye, eye], 3)):
        with pytest.raises(BadParams, match=rf"'transform' must be a list of 2 4x4 matrices.*not {found}"):
            PARAMS_BY_JOB["preview"].from_json({**base, "transform": wrong})
    several = {**base, "transform": None, "output": None, "transforms": [[eye, eye], eye], "outputs": ["/a.png"] * 2}
    with pytest.raises(BadParams, match=r"'transforms\[1\]' must be a list of 2"):
        PARAMS_BY_JOB["edit"].from_json({k: v for k, v in several.items() if k in PARAMS_BY_JOB["edit"].field_names()})
    single = {k: v for k, v in base.items() if k != "masks"}
    assert PARAMS_BY_JOB["preview"].from_json({**single, "transform": [eye]}).transform == (tuple(map(tuple, eye)),)
