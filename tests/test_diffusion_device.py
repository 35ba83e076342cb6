"""The device and dtype policy and the out-of-memory helpers."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from engine import device  # noqa: E402


def test_cpu_runs_in_fp32(monkeypatch):
    monkeypatch.delenv("DHANDLES_DEVICE", raising=False)
    monkeypatch.delenv("DHANDLES_DTYPE", raising=False)
    chosen = device.pick_device()
    if chosen.type == "cpu":
        assert device.pick_dtype(chosen) == torch.float32
    elif chosen.type == "cuda":
        assert device.pick_dtype(chosen) in (torch.bfloat16, torch.float16)
    assert device.pick_dtype("cpu", "bf16") == torch.bfloat16


def test_overrides_and_refusals(monkeypatch):
    monkeypatch.setenv("DHANDLES_DEVICE", "cpu")
    monkeypatch.setenv("DHANDLES_DTYPE", "fp16")
    assert device.pick_device().type == "cpu" and device.pick_dtype("cpu") == torch.float16
    with pytest.raises(ValueError, match="fp32"):
        device.pick_dtype("cpu", "int8")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            device.pick_device("cuda")


def test_out_of_memory_is_recognised():
    assert device.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB"))
    assert device.is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not device.is_out_of_memory(RuntimeError("shape mismatch"))
    message = device.out_of_memory_message("cuda", ["attention slicing"])
    assert "attention slicing" in message and "resolution" in message
    assert device.peak_memory_bytes("cpu") > 0


def test_bf16_only_where_the_gpu_does_it_natively(monkeypatch):
    """Pre-Ampere GPUs emulate bf16 (slowly): the policy must ask for native support and fall back to fp16."""
    monkeypatch.delenv("DHANDLES_DTYPE", raising=False)
    asked = []

    def supported(including_emulation=True):
        asked.append(including_emulation)
        return including_emulation  # an emulating (pre-Ampere) GPU: True only when emulation counts

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported)
    assert device.pick_dtype("cuda") == torch.float16 and asked == [False]
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # Ampere+
    assert device.pick_dtype("cuda") == torch.bfloat16


def test_out_of_memory_message_fits_the_device():
    cpu = device.out_of_memory_message("cpu", [])
    assert "run the engine on the CPU" not in cpu and "DHANDLES_DEVICE" not in cpu and "RAM" in cpu
    for text in (cpu, device.out_of_memory_message("cuda", ["VAE tiling"])):
        assert "add-on preferences" not in text and "Render panel > Settings > Working Size" in text
    gpu = device.out_of_memory_message("cuda", ["VAE tiling"])
    assert "GPU" in gpu and "DHANDLES_DEVICE=cpu" in gpu and "VAE tiling" in gpu
    assert "Apple GPU" in device.out_of_memory_message("mps", [])


def test_peak_memory_says_what_it_measures():
    assert "ru_maxrss" in device.peak_memory_measure("cpu") and device.peak_memory_reserved_bytes("cpu") is None
    assert device.peak_memory_measure("cuda") == "torch.cuda.max_memory_allocated"
