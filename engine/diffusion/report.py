"""What an edit cost and how well guidance worked, as a JSON-able report written beside the image.

UNet cost is counted in batch-1 forward equivalents, the unit used to compare with the official implementation:
a forward of batch b counts b, a backward through the UNet of batch b counts 2b (the usual estimate; ours only
computes gradients for the latents, not the weights, so the real cost is lower). A forward abandoned early by an
activation hook still counts as a whole forward.

Report keys: ``stages`` (name -> ``seconds``, ``unet_evals``, ``unet_forward``, ``unet_backward``),
``unet_evals`` (total), ``peak_memory_bytes`` (``peak_memory_measure`` names the quantity: CUDA
``max_memory_allocated``, the MPS driver's memory, or the CPU process's peak RSS; on CUDA also
``peak_memory_reserved_bytes``, the allocator's reserved peak), ``losses`` (``identity_before``/``after``,
``background_before``/``after``: the guidance losses at the first guided timestep before its first gradient step,
and after its last one), ``cache`` (``inversion``: ``hit`` or ``miss``, ``key``), ``device``, ``dtype``,
``model``, ``settings``, ``image``/``working_size``, plus ``extra_terms`` (losses of plugged-in guidance terms).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path


class UNetCounter:
    """Counts UNet work in batch-1 forward equivalents, attributed to the current stage."""

    def __init__(self):
        self.forwards = 0
        self.backwards = 0

    def forward(self, batch: int = 1) -> None:
        self.forwards += int(batch)

    def backward(self, batch: int = 1) -> None:
        self.backwards += int(batch)

    @property
    def evals(self) -> int:
        return self.forwards + 2 * self.backwards


class Report:
    def __init__(self, device, dtype, model: str):
        from ..device import dtype_name

        self.device = device
        self.counter = UNetCounter()
        self.data = {"stages": {}, "unet_evals": 0, "peak_memory_bytes": None, "losses": {},
                     "cache": {"inversion": None}, "device": str(device), "dtype": dtype_name(dtype),
                     "model": model}

    @contextlib.contextmanager
    def stage(self, name: str):
        from ..device import synchronize

        synchronize(self.device)
        start, forwards, backwards = time.perf_counter(), self.counter.forwards, self.counter.backwards
        try:
            yield
        finally:
            synchronize(self.device)
            entry = self.data["stages"].setdefault(name, {"seconds": 0.0, "unet_evals": 0, "unet_forward": 0,
                                                          "unet_backward": 0})
            entry["seconds"] = round(entry["seconds"] + time.perf_counter() - start, 4)
            entry["unet_forward"] += self.counter.forwards - forwards
            entry["unet_backward"] += self.counter.backwards - backwards
            entry["unet_evals"] = entry["unet_forward"] + 2 * entry["unet_backward"]
            self.data["unet_evals"] = self.counter.evals

    def set(self, key: str, value) -> None:
        self.data[key] = value

    def finish(self) -> dict:
        from ..device import peak_memory_bytes, peak_memory_measure, peak_memory_reserved_bytes

        self.data["peak_memory_bytes"] = peak_memory_bytes(self.device)
        self.data["peak_memory_measure"] = peak_memory_measure(self.device)
        self.data["peak_memory_reserved_bytes"] = peak_memory_reserved_bytes(self.device)
        self.data["seconds"] = round(sum(s["seconds"] for s in self.data["stages"].values()), 4)
        return self.data


def write_report(report: dict, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, sort_keys=True, default=str))
    return path
