"""The engine over a loopback socket (``serve --listen``): token, same protocol, engine kept across clients."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from engine.process.client import EngineError
from engine.process.socket_client import SocketEngineClient

PYTHON = sys.executable


@pytest.fixture
def listening(repo_root, tmp_path):
    """The engine serving a loopback socket; its log (stderr) goes to ``engine.log`` in the test's folder."""
    with open(tmp_path / "engine.log", "w") as log:
        proc = subprocess.Popen([PYTHON, "-m", "engine", "serve", "--listen", "127.0.0.1:0", "--heartbeat", "0.2"],
                                cwd=repo_root, stdout=subprocess.PIPE, stderr=log, text=True)
    info = json.loads(proc.stdout.readline())
    assert info["type"] == "listening" and info["host"] == "127.0.0.1" and len(info["token"]) >= 32
    yield proc, info
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def wait_for_end(client, job, timeout=60.0) -> list[dict]:
    """Poll until ``job`` ends; returns every message of that job."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen += [m for m in client.poll() if m.get("job") == job]
        if seen and seen[-1]["type"] in ("result", "error"):
            return seen
        time.sleep(0.01)
    raise AssertionError(f"job {job} did not end within {timeout} s; saw {seen}")


def test_jobs_progress_and_cancel_over_the_socket(listening):
    proc, info = listening
    client = SocketEngineClient(port=info["port"], token=info["token"])
    steps = []
    result = client.run("ping", {"steps": 3, "echo": "via socket"}, on_progress=lambda m: steps.append(m["step"]))
    assert steps == [1, 2, 3] and result["echo"] == "via socket" and result["pid"] == proc.pid == client.pid

    job = client.submit("ping", {"steps": 10_000, "sleep": 0.02})
    while client.active_jobs[job]["state"] != "running":
        client.poll()
        time.sleep(0.005)
    asked = time.monotonic()
    client.cancel(job)
    codes = []
    while not codes:
        codes = [m["code"] for m in client.poll() if m.get("job") == job and m["type"] == "error"]
        time.sleep(0.005)
    assert codes == ["cancelled"] and time.monotonic() - asked < 1.0

    client.release()  # asks the engine to shut down
    assert proc.wait(timeout=20) == 0


def test_a_wrong_token_is_refused_and_the_engine_serves_the_next_client(listening):
    proc, info = listening
    with pytest.raises(EngineError) as caught:
        SocketEngineClient(port=info["port"], token="not-the-token").run("ping", {})
    assert caught.value.code == "bad_token"
    first = SocketEngineClient(port=info["port"], token=info["token"])
    assert first.run("ping", {})["pid"] == proc.pid
    first.disconnect()  # the engine stays up, models and all, for the next client
    second = SocketEngineClient(port=info["port"], token=info["token"])
    assert second.run("ping", {})["pid"] == proc.pid and proc.poll() is None
    second.release()


def test_one_job_at_a_time_across_connections(listening, tmp_path):
    """A client that goes away while its job is inside one long step (a model load, a forward pass): the job is
    cancelled, but it still holds the accelerator until that step ends, and the next client's job waits for it."""
    proc, info = listening
    first = SocketEngineClient(port=info["port"], token=info["token"])
    slow = first.submit("ping", {"steps": 2, "sleep": 4.0})
    while first.active_jobs[slow]["state"] != "running":
        first.poll()
        time.sleep(0.005)
    first.disconnect()

    second = SocketEngineClient(port=info["port"], token=info["token"])
    assert second.ping()["busy"] == slow  # the same worker, still inside the first client's step
    quick = second.submit("ping", {"echo": 2})
    messages = wait_for_end(second, quick)
    assert ("queued", 1) in [(m["type"], m.get("position")) for m in messages]
    assert messages[-1]["type"] == "result" and messages[-1]["result"]["echo"] == 2
    second.release()
    assert proc.wait(timeout=20) == 0

    log = (tmp_path / "engine.log").read_text().splitlines()
    order = [line for line in log if line.startswith("engine: job ")]
    assert order == [f"engine: job {slow} (ping) started", f"engine: job {slow} (ping) ended: cancelled",
                     f"engine: job {quick} (ping) started", f"engine: job {quick} (ping) ended: result"], log


def test_a_closed_connection_ends_only_its_own_jobs(tmp_path):
    """The shared queue in-process: dropping one owner cancels its running job and leaves another's queued job to
    run; a cancel from another owner is ignored; after stop nothing more is queued."""
    from engine.process.job_queue import JobQueue, QueuedJob

    jobs = JobQueue()
    jobs.start()
    first, second = [], []
    jobs.submit(QueuedJob("a", "ping", {"steps": 100_000, "sleep": 0.01}, str(tmp_path / "a"), first.append, "A"))
    jobs.submit(QueuedJob("b", "ping", {"echo": "b"}, str(tmp_path / "b"), second.append, "B"))
    while not any(m["type"] == "progress" for m in first):
        time.sleep(0.005)
    jobs.cancel("a", owner="B")  # not B's job: it goes on
    seen = len(first)
    while len(first) < seen + 3:
        time.sleep(0.005)
    assert "error" not in [m["type"] for m in first]
    jobs.drop("The client went away.", owner="A")
    while not second or second[-1]["type"] not in ("result", "error"):
        time.sleep(0.005)
    assert [m["type"] for m in second] == ["queued", "started", "result"] and second[-1]["result"]["echo"] == "b"
    assert first[0] == {"type": "queued", "job": "a", "position": 0}
    assert first[-1]["type"] == "error" and first[-1]["code"] == "cancelled"
    assert jobs.stop("The engine was shut down.")
    late = []
    jobs.submit(QueuedJob("c", "ping", {}, str(tmp_path / "c"), late.append, "B"))
    assert [(m["type"], m["code"]) for m in late] == [("error", "engine_released")]


def test_engine_killed_mid_job_is_reported(listening):
    proc, info = listening
    client = SocketEngineClient(port=info["port"], token=info["token"])
    job = client.submit("ping", {"steps": 10_000, "sleep": 0.02})
    client.poll()
    os.kill(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    codes = []
    while not codes and time.monotonic() < deadline:
        codes = [m["code"] for m in client.poll() if m.get("job") == job and m["type"] == "error"]
        time.sleep(0.01)
    assert codes == ["engine_crashed"]
    with pytest.raises(EngineError) as caught:
        client.submit("ping", {})
    assert caught.value.code == "engine_start_failed" and "--listen" in caught.value.message


def test_only_loopback_addresses(repo_root):
    done = subprocess.run([PYTHON, "-m", "engine", "serve", "--listen", "0.0.0.0:0"], cwd=repo_root,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "loopback" in done.stderr
