"""Where the engine runs: CUDA when present, else CPU; which autocast dtype that precision means."""
from __future__ import annotations

import contextlib

import torch


def pick_device(preferred: str | None = None) -> torch.device:
    """`preferred` ("cuda", "cpu", "cuda:1") wins when usable; otherwise CUDA if present, else CPU."""
    if preferred:
        device = torch.device(preferred)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device '{preferred}' requested but CUDA is not available on this machine")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """None means plain fp32. 'auto' is bf16 on a CUDA device that supports it, else fp32."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    if precision == "fp16" and device.type == "cpu":
        return torch.bfloat16  # fp16 autocast on CPU is slow and gains nothing; bf16 is the CPU's half type
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(precision: str, device: torch.device):
    dtype = autocast_dtype(precision, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
