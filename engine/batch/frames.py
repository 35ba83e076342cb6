"""An animation's frames as a batch, for Blender's *Render Animation* on a Ray cluster: the manifest of the frames'
``edit`` jobs, the command that runs it, and which frames are back, in order.

Standard library only and cheap to import: the Blender side (``engine_link/render_animation_cluster.py``) uses it.
A frame is back when its image and its report (written after the image) exist; frames are taken in frame order,
so the sequence grows without gaps: a frame that finished early waits for the ones before it.
"""

from __future__ import annotations

import json
from pathlib import Path

from .resume import SUMMARY_NAME

MANIFEST_NAME = "frames.jsonl"


def write_manifest(folder, jobs: list[tuple[str, dict]]) -> Path:
    """``folder/frames.jsonl`` with one ``edit`` job per ``(id, params)``; the params name their own output."""
    path = Path(folder) / MANIFEST_NAME
    path.write_text("".join(json.dumps({"id": job_id, "name": "edit", "params": params}) + "\n"
                            for job_id, params in jobs), encoding="utf-8")
    return path


def batch_command(python: str, manifest, out_dir, address: str) -> list[str]:
    """The engine command that runs the frames on the cluster at ``address`` (``auto``: this machine's)."""
    return [python, "-m", "engine", "batch", str(manifest), "--out", str(out_dir), "--ray", address]


def frames_back(outputs: list[str], start: int) -> int:
    """How many frames from ``outputs[start]`` on are back, without a gap."""
    count = 0
    for output in outputs[start:]:
        image = Path(output)
        if not (image.is_file() and image.with_suffix(".json").is_file()):
            break
        count += 1
    return count


def failures(out_dir) -> dict[str, str]:
    """``{job id: message}`` of the failed jobs in the batch's summary (empty before it is written)."""
    try:
        summary = json.loads((Path(out_dir) / SUMMARY_NAME).read_text())
        return {entry["id"]: (entry.get("error") or {}).get("message") or "failed"
                for entry in summary.get("jobs", []) if entry.get("status") == "failed"}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
