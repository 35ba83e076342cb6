"""``ping``: check that the engine runs jobs, and exercise progress and cancellation without loading any model.

Params: ``PingParams`` (``engine/params/jobs.py``): ``steps`` steps of ``sleep`` seconds each, reporting progress
and honouring cancel between steps, as the diffusion jobs do between denoising steps; ``echo`` is returned
unchanged; ``device`` also imports torch and reports the accelerator it would use.
Result: ``{"pong": true, "echo", "steps", "pid", "python", "engine", "models", ["accelerator"]}``.
"""

from __future__ import annotations

import os
import sys
import time

from ..params import PingParams as PARAMS

NAME = "ping"


def run(params, ctx) -> dict:
    params = PARAMS.from_json(params)
    steps, sleep = params.steps, params.sleep
    for step in range(steps):
        ctx.check_cancelled()
        time.sleep(sleep)
        ctx.progress("ping", step + 1, steps)
    ctx.check_cancelled()

    from .. import __version__

    result = {
        "pong": True,
        "echo": params.echo,
        "steps": steps,
        "pid": os.getpid(),
        "python": sys.executable,
        "engine": __version__,
        "models": [str(key) for key in ctx.models.keys()],
    }
    if params.device:
        from ..environment import accelerator

        result["accelerator"] = accelerator()
    return result
