"""What a benchmark ran on and how, so that its figures can be read: the CPU and cores, torch's thread
counts, the OpenMP wait policy, the precision actually used (bf16 falls back to fp32 on CPUs without
native bf16), the GPU if any, and how busy the machine was."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from engine.device import autocast_dtype, cpu_has_native_bf16
from engine.threads import openmp_wait_policy, usable_cores


def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo on Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages (runnable processes); None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def rss_mb() -> float:
    """This process' resident memory in MB (/proc on Linux; NaN elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def precision_used(precision: str, device: torch.device) -> str:
    """What a config's `precision` means here: bfloat16 / float16 autocast, or float32."""
    dtype = autocast_dtype(precision, device) or torch.float32
    return str(dtype).replace("torch.", "")


def describe(device: torch.device, precision: str | None = None) -> dict:
    """What ran: the CPU, cores, threads, torch, the device, the load; with a config's `precision`, what it
    meant here (`precision_used`)."""
    info = {"cpu": cpu_model(), "logical_cores": os.cpu_count(), "usable_cores": usable_cores(),
            "native_bf16": cpu_has_native_bf16(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "openmp_wait_policy": openmp_wait_policy(),
            "device": str(device), "load_average": load_average()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    if precision is not None:
        info["precision"] = precision_used(precision, device)
    return info


def machine_line(machine: dict) -> str:
    """What ran, in one line for a table's head."""
    return (f"{machine['cpu']}, {machine['usable_cores']} of {machine['logical_cores']} cores, "
            f"{machine['torch_threads']} torch threads, native bf16 {'yes' if machine['native_bf16'] else 'no'}, "
            f"OpenMP wait {machine['openmp_wait_policy']}, load average {machine['load_average']}"
            + (f", {machine['precision']}" if "precision" in machine else ""))
