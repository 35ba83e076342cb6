"""The engine as a real process, driven through ``engine.process.client``: progress, cancel, queueing, crashes, hangs,
malformed messages and broken installations. Uses the ``ping`` job, which loads no model, so it runs in seconds."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types
import weakref
from pathlib import Path

import pytest

from engine.process import protocol
from engine.process.client import EngineClient, EngineError
from engine.process.job_runner import describe_exception

PYTHON = sys.executable


@pytest.fixture
def client(repo_root):
    engine = EngineClient(python=PYTHON, cwd=repo_root, hang_timeout=20.0)
    yield engine
    engine.release()


def wait_for(client, job, kinds=protocol.FINAL_TYPES, timeout=20.0):
    """Poll until a message of one of ``kinds`` arrives for ``job``; returns (that message, all seen)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in client.poll():
            seen.append(message)
            if message.get("job") == job and message["type"] in kinds:
                return message, seen
        time.sleep(0.005)
    raise AssertionError(f"no {kinds} for job {job} within {timeout} s; saw {seen}")


def test_one_shot_job_prints_protocol_lines(tmp_path, repo_root):
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"steps": 2, "echo": {"a": [1, 2]}}))
    done = subprocess.run([PYTHON, "-m", "engine", "job", "ping", "--params", str(params)], cwd=repo_root,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    messages = [protocol.decode(line) for line in done.stdout.splitlines()]
    assert [m["type"] for m in messages] == ["started", "progress", "progress", "result"]
    assert [m["step"] for m in messages[1:3]] == [1, 2]
    assert messages[-1]["result"]["echo"] == {"a": [1, 2]}

    failed = subprocess.run([PYTHON, "-m", "engine", "job", "no_such_job"], cwd=repo_root, capture_output=True,
                            text=True, timeout=60)
    assert failed.returncode == 1
    error = protocol.decode(failed.stdout.splitlines()[-1])
    assert error["type"] == "error" and error["code"] == "unknown_job" and "ping" in error["message"]


def test_progress_then_result(client):
    steps = []
    result = client.run("ping", {"steps": 4, "echo": "hi"}, on_progress=lambda m: steps.append(m["step"]))
    assert steps == [1, 2, 3, 4]
    assert result["pong"] is True and result["echo"] == "hi" and result["pid"] == client.pid
    assert not client.active_jobs


def test_cancel_stops_a_job_within_a_second_and_the_engine_stays(client):
    job = client.submit("ping", {"steps": 10_000, "sleep": 0.02})
    wait_for(client, job, kinds=("progress",))
    pid = client.pid
    asked = time.monotonic()
    assert client.cancel(job)
    error, _ = wait_for(client, job)
    latency = time.monotonic() - asked
    assert error["type"] == "error" and error["code"] == "cancelled"
    assert latency < 1.0, f"cancel took {latency:.3f} s"
    assert client.run("ping", {})["pid"] == pid  # same warm engine, not a restart


def test_two_jobs_queue_and_run_in_order(client):
    first = client.submit("ping", {"steps": 5, "sleep": 0.05})
    second = client.submit("ping", {"echo": 2})
    third = client.submit("ping", {"echo": 3})
    assert client.cancel(third)  # cancelling a queued job drops it before it starts
    order = []
    deadline = time.monotonic() + 20
    while len([o for o in order if o[0] in ("result", "error")]) < 3 and time.monotonic() < deadline:
        order += [(m["type"], m.get("job"), m.get("position")) for m in client.poll()]
        time.sleep(0.005)
    assert ("queued", first, 0) in order and ("queued", second, 1) in order
    kinds = [(kind, job) for kind, job, _ in order if kind in ("started", "result", "error")]
    assert kinds.index(("result", first)) < kinds.index(("started", second)) < kinds.index(("result", second))
    assert ("error", third) in kinds and ("started", third) not in kinds


def test_engine_killed_mid_job_reports_and_restarts(client):
    job = client.submit("ping", {"steps": 10_000, "sleep": 0.02})
    wait_for(client, job, kinds=("progress",))
    old_pid = client.pid
    os.kill(old_pid, signal.SIGKILL)
    error, _ = wait_for(client, job)
    assert error["code"] == "engine_crashed"
    assert "next job starts a fresh engine" in error["message"] and "ping" in error["message"]
    assert not client.running
    started = time.monotonic()
    result = client.run("ping", {})
    assert result["pid"] != old_pid and client.starts == 2
    assert time.monotonic() - started < 10.0


def test_engine_exiting_on_its_own_mid_job(client):
    job = client.submit("ping", {"steps": 10_000, "sleep": 0.02})
    wait_for(client, job, kinds=("progress",))
    os.kill(client.pid, signal.SIGTERM)
    error, _ = wait_for(client, job)
    assert error["code"] == "engine_crashed" and "SIGTERM" in error["message"]
    assert client.run("ping", {})["pong"]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP is POSIX only")
def test_hung_engine_is_stopped_and_replaced(repo_root):
    client = EngineClient(python=PYTHON, cwd=repo_root, hang_timeout=1.0)
    try:
        job = client.submit("ping", {"steps": 10_000, "sleep": 0.02})
        wait_for(client, job, kinds=("progress",))
        hung_pid = client.pid
        os.kill(hung_pid, signal.SIGSTOP)  # alive but silent: no heartbeats, no progress
        error, _ = wait_for(client, job, timeout=10)
        assert error["code"] == "engine_hung"
        assert client.run("ping", {})["pid"] != hung_pid
    finally:
        client.release()


def test_a_job_stuck_in_one_step_is_reported_as_hung(repo_root):
    """Heartbeats go on from their own thread while a job is stuck inside one step: only the progress stops."""
    client = EngineClient(python=PYTHON, cwd=repo_root, hang_timeout=60.0, heartbeat=0.05, stall_timeout=0.5)
    try:
        stuck = client.submit("ping", {"steps": 2, "sleep": 30.0})
        waiting = client.submit("ping", {"echo": "behind it"})
        stuck_pid = client.pid
        errors = {}
        deadline = time.monotonic() + 20
        while len(errors) < 2 and time.monotonic() < deadline:
            errors.update((m["job"], m) for m in client.poll() if m["type"] == "error")
            time.sleep(0.01)
        assert errors[stuck]["code"] == "engine_hung" and errors[waiting]["code"] == "engine_hung"
        message = errors[stuck]["message"]
        assert "made no progress for 0.5 s" in message and "'ping'" in message
        assert "stall_timeout" in message and "fresh engine" in message
        assert "'ping' was stuck" in errors[waiting]["message"] and "Submit it again" in errors[waiting]["message"]
        with pytest.raises(ProcessLookupError):
            os.kill(stuck_pid, 0)  # the stuck engine was ended, not left holding the accelerator
        # A job that is slow but not stuck gets its own, longer limit; the client's next job starts a fresh engine.
        result = client.run("ping", {"steps": 1, "sleep": 2.0}, stall_timeout=60.0)
        assert result["pid"] != stuck_pid and client.starts == 2
    finally:
        client.release()


def test_an_idle_engine_queues_nothing_but_stays_heard(repo_root):
    client = EngineClient(python=PYTHON, cwd=repo_root, heartbeat=0.05)
    try:
        client.start()
        time.sleep(0.6)  # about a dozen heartbeats, and nobody polling, as in Blender between renders
        assert client._messages.qsize() == 0
        assert time.monotonic() - client._last_heard < 0.5
        assert client.poll() == []
    finally:
        client.release()


@contextlib.contextmanager
def _served(repo_root):
    """``python -m engine serve`` in text mode, spoken to directly; it must shut down cleanly at the end."""
    proc = subprocess.Popen([PYTHON, "-m", "engine", "serve", "--heartbeat", "30"], cwd=repo_root,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        yield proc
        proc.stdin.write(protocol.encode({"type": "shutdown"}))
        proc.stdin.flush()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_malformed_messages_are_answered_and_the_engine_keeps_working(repo_root):
    with _served(repo_root) as proc:
        hello = protocol.decode(proc.stdout.readline())
        assert hello["type"] == "hello" and hello["protocol"] == protocol.VERSION and "ping" in hello["jobs"]
        bad_lines = [
            "this is not json",
            "[1, 2, 3]",
            json.dumps({"no": "type"}),
            json.dumps({"type": "explode"}),
            json.dumps({"type": "submit", "name": "ping"}),
            json.dumps({"type": "submit", "job": "x", "name": "ping", "params": [1]}),
            json.dumps({"v": 99, "type": "ping"}),
        ]
        for line in bad_lines:
            proc.stdin.write(line + "\n")
        proc.stdin.write(protocol.encode(protocol.submit("ok", "ping", {"echo": 7})))
        proc.stdin.flush()
        replies = [protocol.decode(proc.stdout.readline()) for _ in range(len(bad_lines) + 3)]
        errors = [m for m in replies if m["type"] == "error"]
        assert [m["code"] for m in errors] == ["bad_message"] * 6 + ["unsupported_version"]
        assert all(m["message"] for m in errors)
        assert replies[-1]["type"] == "result" and replies[-1]["result"]["echo"] == 7


def test_non_finite_numbers_travel_as_null():
    import numpy as np

    nan, inf = float("nan"), float("inf")
    line = protocol.encode(protocol.result("j", {"loss": nan, "terms": [1.5, inf, {"deep": -inf}], "pair": (nan, 2),
                                                 "numpy": np.float64(nan), "fine": 0.25}))
    assert "NaN" not in line and "Infinity" not in line
    assert protocol.decode(line)["result"] == {"loss": None, "terms": [1.5, None, {"deep": None}],
                                               "pair": [None, 2], "numpy": None, "fine": 0.25}


def test_a_result_with_nan_is_still_a_result(repo_root):
    """A finished job whose report holds a NaN (a diverged loss) must arrive as its result, not internal_error."""
    with _served(repo_root) as proc:
        assert protocol.decode(proc.stdout.readline())["type"] == "hello"
        # Python's json reads NaN and Infinity, so a client may send them; the echo brings them back.
        proc.stdin.write('{"v":1,"type":"submit","job":"n","name":"ping","params":{"echo":{"loss":NaN,'
                         '"terms":[Infinity,1]}}}\n')
        proc.stdin.flush()
        final = protocol.decode(proc.stdout.readline())
        while final["type"] not in protocol.FINAL_TYPES:
            final = protocol.decode(proc.stdout.readline())
        assert final["type"] == "result", final
        assert final["result"]["echo"] == {"loss": None, "terms": [None, 1]}


def test_end_of_stdin_stops_the_engine(repo_root):
    proc = subprocess.Popen([PYTHON, "-m", "engine", "serve"], cwd=repo_root, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdin.write(protocol.encode(protocol.submit("long", "ping", {"steps": 10_000, "sleep": 0.02})).encode())
    proc.stdin.close()  # as when Blender dies: the running job is cancelled and the engine exits
    assert proc.wait(timeout=20) == 0
    codes = [protocol.decode(line).get("code") for line in proc.stdout.read().splitlines()]
    assert "cancelled" in codes or "engine_released" in codes


def test_job_with_bad_params_or_unknown_name_is_an_error_not_a_crash(client):
    with pytest.raises(EngineError) as caught:
        client.run("ping", {"steps": "many"})
    assert caught.value.code == "bad_params" and "steps" in caught.value.message
    with pytest.raises(EngineError) as caught:
        client.run("no_such_job", {})
    assert caught.value.code == "unknown_job"
    assert client.starts == 1 and client.running


def test_release_ends_the_process_and_the_running_job(client):
    job = client.submit("ping", {"steps": 10_000, "sleep": 0.02})
    wait_for(client, job, kinds=("progress",))
    proc_pid = client.pid
    client.release()
    assert not client.running and client.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(proc_pid, 0)
    codes = [m["code"] for m in client.poll() if m.get("job") == job and m["type"] == "error"]
    assert codes and codes[0] in ("cancelled", "engine_released")
    assert client.run("ping", {})["pid"] != proc_pid


def test_wrong_python_path(repo_root, tmp_path):
    with pytest.raises(EngineError) as caught:
        EngineClient(python=str(tmp_path / "no" / "python"), cwd=repo_root).submit("ping")
    assert caught.value.code == "engine_python_not_found" and "preferences" in caught.value.message


@pytest.mark.skipif(sys.platform == "win32", reason="uses /bin/sh")
def test_a_program_that_is_not_the_engine(repo_root, tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'fake python: no engine here' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(EngineError) as caught:
        EngineClient(python=str(fake), cwd=repo_root).submit("ping")
    assert caught.value.code == "engine_start_failed"
    assert "exit code 3" in caught.value.message and "no engine here" in caught.value.detail


def test_python_without_the_engine_packages(repo_root, tmp_path):
    """A bare virtual environment: the engine starts, reports torch & co. missing, and the client says what to
    install instead of failing later inside a job."""
    venv = tmp_path / "bare"
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    bare_python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    with pytest.raises(EngineError) as caught:
        EngineClient(python=str(bare_python), cwd=repo_root).submit("ping")
    assert caught.value.code == "engine_missing_packages"
    assert "torch" in caught.value.message and "pip install" in caught.value.message
    # Scripts that only need the protocol can opt out of the check: ping needs no package.
    lenient = EngineClient(python=str(bare_python), cwd=repo_root, require_packages=False)
    try:
        assert lenient.run("ping", {}, timeout=30)["pong"]
        assert "torch" in lenient.hello["missing_packages"]
    finally:
        lenient.release()


def other_pythons() -> list[str]:
    """Interpreters on this machine other than the engine's Python 3.11 (pyenv's, the system's), if any."""
    found = {path for path in glob.glob(str(Path.home() / ".pyenv" / "versions" / "*" / "bin" / "python"))
             if not Path(path).parent.parent.name.startswith("3.11")}
    found |= {shutil.which(f"python{v}") for v in ("2.7", "3.6", "3.8", "3.9", "3.10", "3.12", "3.13", "3.14")}
    return sorted(path for path in found if path and "shims" not in Path(path).parts)  # pyenv's shims may not run


@pytest.mark.parametrize("python", other_pythons() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no Python other than 3.11 on this machine"))])
def test_another_python_says_which_it_is_and_what_to_do(python, repo_root):
    """Too old or too new for the engine's pins: said before any import fails, with no talk of pip."""
    with pytest.raises(EngineError) as caught:
        EngineClient(python=python, cwd=repo_root).submit("ping")
    found = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                           capture_output=True, text=True, timeout=60).stdout.strip()
    assert caught.value.code == "engine_start_failed"
    assert f"is Python {found}" in caught.value.message and "needs Python 3.11" in caught.value.message
    assert "make setup" in caught.value.message and "pip" not in caught.value.message
    info = subprocess.run([python, "-m", "engine", "info"], cwd=repo_root, capture_output=True, text=True,
                          timeout=60)
    assert info.returncode != 0 and info.stdout == "" and "needs Python 3.11" in info.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="uses /bin/sh")
def test_a_hello_from_another_python_is_refused(repo_root, tmp_path):
    """An engine that got as far as its hello on Python 3.13 (no pinned packages exist for it): the client names
    the version instead of asking for packages."""
    hello = protocol.encode({"type": "hello", "protocol": protocol.VERSION, "engine": "0.1.0", "pid": 1,
                             "python": "/opt/python3.13/bin/python3", "python_version": "3.13.0", "jobs": ["ping"],
                             "packages": {"torch": None}, "missing_packages": ["torch"], "heartbeat": 1.0})
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nprintf '%s' '{hello.strip()}'\necho\nexec sleep 30\n")
    fake.chmod(0o755)
    client = EngineClient(python=str(fake), cwd=repo_root)
    with pytest.raises(EngineError) as caught:
        client.submit("ping")
    assert caught.value.code == "engine_start_failed"
    assert "'/opt/python3.13/bin/python3' is Python 3.13.0" in caught.value.message
    assert "needs Python 3.11" in caught.value.message and "make setup" in caught.value.message
    assert not client.running  # the fake engine was ended


@pytest.mark.parametrize("exception, code", [
    (MemoryError(), "out_of_memory"),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "out_of_memory"),
    (ModuleNotFoundError("No module named 'diffusers'", name="diffusers"), "engine_missing_packages"),
    (OSError("stabilityai/stable-diffusion-2-depth does not appear to have a file named config.json"),
     "missing_weights"),
    (__import__("engine.models", fromlist=["ModelMissingError"]).ModelMissingError(
        "stabilityai/stable-diffusion-2-depth", "depth-conditioned diffusion model", "offline and not cached"),
     "missing_weights"),
    (FileNotFoundError(2, "No such file or directory", "/photos/gone.png"), "file_not_found"),
    (ZeroDivisionError("division by zero"), "internal_error"),
])
def test_failures_become_codes_and_sentences(exception, code):
    got_code, message, _ = describe_exception(exception)
    assert got_code == code
    assert message.endswith((".", "again.")) or "pip install" in message


def test_a_job_for_a_photo_that_does_not_exist(client, tmp_path):
    gone = tmp_path / "holiday.png"
    job = client.submit("scene", {"photo": str(gone), "depth": str(tmp_path / "d.exr"),
                                  "mask": str(tmp_path / "m.png")})
    error, _ = wait_for(client, job, timeout=60)
    assert error["type"] == "error" and error["code"] == "file_not_found"
    assert str(gone) in error["message"]
    assert client.run("ping", {})["pong"]  # the engine is still up and serves the next job


def test_missing_weights_are_a_clear_error(client, photogen, tmp_path):
    """HF_HUB_OFFLINE is set for tests and the hub cache is empty: the real model cannot be loaded."""
    sample = photogen / "car"
    job = client.submit("edit", {"photo": str(sample / "input.png"), "depth": str(sample / "depth.exr"),
                                 "mask": str(sample / "mask.png"), "fov": 55.0,
                                 "transform": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
                                 "output": str(tmp_path / "never-written.png"),
                                 "model": "stabilityai/stable-diffusion-2-depth", "use_cache": False})
    error, _ = wait_for(client, job, timeout=180)
    assert error["type"] == "error" and error["code"] == "missing_weights", error
    assert "stable-diffusion-2-depth" in error["message"] and "download" in error["message"].lower()
    assert not (tmp_path / "never-written.png").exists()


class _Held:
    """Stands in for a model, or for a tensor that the failed step still held."""


def _raise_job_oom():
    from engine.jobs._diffusion_job import user_errors

    with user_errors():  # how the pipeline's last fallback reaches the runner: JobError code out_of_memory
        raise RuntimeError("The cuda ran out of memory (already tried: attention slicing, VAE tiling).")


def _raise_torch_oom():
    raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")


@pytest.mark.parametrize("fail", [_raise_job_oom, _raise_torch_oom])
def test_out_of_memory_frees_the_cached_models(fail, monkeypatch, tmp_path):
    from engine import model_cache
    from engine.process import job_runner

    held = []

    def run(params, ctx):
        ctx.models.get_or_load(("test", "big"), _Held)
        activations = _Held()  # referenced by the traceback's frame only
        held.append(weakref.ref(activations))
        fail()

    freed_when_cleared = []
    clear = model_cache.clear
    monkeypatch.setattr(model_cache, "clear", lambda: (freed_when_cleared.append(held[0]() is None), clear()))
    monkeypatch.setattr(job_runner, "load_job", lambda name: types.SimpleNamespace(run=run))
    messages = []
    assert not job_runner.run_job("j", "edit", {}, messages.append, workdir=tmp_path)
    assert messages[-1]["code"] == "out_of_memory" and "Cached models were freed." in messages[-1]["message"]
    assert model_cache.keys() == []
    assert freed_when_cleared == [True]  # cleared once the failed step's memory could go too


def test_other_errors_keep_the_cached_models(monkeypatch, tmp_path):
    from engine import model_cache
    from engine.jobs import JobError
    from engine.process import job_runner

    def run(params, ctx):
        ctx.models.get_or_load(("test", "kept"), _Held)
        raise JobError("empty_mask", "The mask is empty.")

    monkeypatch.setattr(job_runner, "load_job", lambda name: types.SimpleNamespace(run=run))
    try:
        assert not job_runner.run_job("j", "edit", {}, lambda message: None, workdir=tmp_path)
        assert ("test", "kept") in model_cache.keys()
    finally:
        model_cache.clear()
