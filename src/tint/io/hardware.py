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


def float32_matmul_peak(device: torch.device, seconds: float = 0.5) -> float:
    """FLOP/s of large float32 matrix products on `device`: what its float32 arithmetic reaches
    at best, timed over about `seconds` after a warm-up product."""
    import time

    n = 4096 if device.type == "cuda" else 1024
    a, b = (torch.randn(n, n, device=device) for _ in range(2))
    a @ b
    _synchronize(device)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or count == 0:
        a @ b
        _synchronize(device)
        count += 1
    return 2 * n**3 * count / elapsed


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
