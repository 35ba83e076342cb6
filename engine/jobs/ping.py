"""``ping``: check that the engine runs jobs, and exercise progress and cancellation without loading any model.

Params (all optional): ``steps`` (int, default 0) steps of ``sleep`` seconds each (float, default 0), reporting
progress and honouring cancel between steps, as the diffusion jobs do between denoising steps; ``echo`` (any JSON)
is returned unchanged; ``device`` (bool) also imports torch and reports the accelerator it would use.
Result: ``{"pong": true, "echo", "steps", "pid", "python", "engine", "models", ["accelerator"]}``.
"""

from __future__ import annotations

import os
import sys
import time

from . import JobError

NAME = "ping"

MAX_STEPS = 100_000


def run(params: dict, ctx) -> dict:
    steps = params.get("steps", 0)
    sleep = params.get("sleep", 0.0)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 0 <= steps <= MAX_STEPS:
        raise JobError("bad_params", f"'steps' must be a whole number from 0 to {MAX_STEPS}, not {steps!r}.")
    if not isinstance(sleep, (int, float)) or isinstance(sleep, bool) or not 0.0 <= sleep <= 60.0:
        raise JobError("bad_params", f"'sleep' must be a number of seconds from 0 to 60, not {sleep!r}.")

    for step in range(steps):
        ctx.check_cancelled()
        time.sleep(sleep)
        ctx.progress("ping", step + 1, steps)
    ctx.check_cancelled()

    from .. import __version__

    result = {
        "pong": True,
        "echo": params.get("echo"),
        "steps": steps,
        "pid": os.getpid(),
        "python": sys.executable,
        "engine": __version__,
        "models": [str(key) for key in ctx.models.keys()],
    }
    if params.get("device"):
        from ..commands.info import accelerator

        result["accelerator"] = accelerator()
    return result
