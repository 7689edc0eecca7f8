"""What this machine computes fast: bfloat16 where the hardware has it, float32 elsewhere.

A precision setting is "auto", "float32" or "bfloat16"; "auto" is decided here, at run time, for
the device the work runs on."""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "float32", "bfloat16")


def fast_bfloat16(device: torch.device) -> bool:
    """Whether `device` has bfloat16 arithmetic faster than float32: on a CPU, AMX or
    AVX512-BF16 with ATen's AVX-512 kernels in use (ATEN_CPU_CAPABILITY can turn them off)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch 2.3 and later
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolved_precision(precision: str, device: torch.device) -> str:
    """What work runs in on `device`: "bfloat16" or "float32" ("auto" decided)."""
    if precision == "auto":
        return "bfloat16" if fast_bfloat16(device) else "float32"
    return precision


def autocast(device: torch.device, precision: str):
    """A context that runs matrix products and convolutions in bfloat16 where `precision`
    (resolved) says so; a no-op for float32."""
    if precision != "bfloat16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, torch.bfloat16)
