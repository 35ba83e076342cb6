"""The command line's human messages go through logging to the stderr of the moment; results stay on stdout."""

from __future__ import annotations

import io
import json
import logging
import sys

from engine.cli import configure_logging, main


def test_engine_messages_reach_the_current_stderr_once(monkeypatch):
    configure_logging()
    configure_logging("%(levelname)s %(message)s")  # a second call changes the format, adds no handler
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logging.getLogger("engine.commands.example").info("one")
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("engine.geometry.example").error("two")
    assert first.getvalue() == "INFO one\n"
    assert second.getvalue() == "ERROR two\n"
    configure_logging()


def test_a_command_error_is_on_stderr_and_its_result_on_stdout(capsys, tmp_path):
    assert main(["geometry", "--sample", str(tmp_path / "missing"), "--out-dir", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ") and "does not exist" in captured.err
    assert main(["info", "--no-accelerator"]) in (0, 1)
    captured = capsys.readouterr()
    assert json.loads(captured.out)["engine"]
