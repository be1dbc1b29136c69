"""`nlmm bench kernels`: the delta-rule kernels and the training step, measured on this machine.

- chunked vs recurrent delta rule, forward + backward, B=8, 4 heads, d_head=32, T in (256, 1024);
- training-step throughput (samples/s) of a config (default configs/tiny.yaml) on synthetic batches
  of real shapes;
- the step's achieved GFLOP/s (FLOPs counted by torch.utils.flop_counter) against this machine's own
  `torch.mm` peak in the step's precision (fp32, or bf16 when the config autocasts to it), measured in the
  same run, as the best of several tries (a busy machine lowers the peak and flatters the step: the load
  average before and after says whether it was busy).

Targets: the chunked kernel gives the recurrent one's outputs (within 1e-4; checked on every run, quick
or not) and the step reaches TARGET_FRACTION of the peak.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from engine.bench.machine import describe, load_average, machine_line
from engine.bench.result import BenchResult, Target
from engine.config import NLMMConfig
from engine.device import autocast_dtype, pick_device
from engine.layers.fast_weights import fast_weight_chunked, fast_weight_recurrent
from engine.models.nlmm import NLMM
from engine.training.step import TrainStep, synthetic_batch


NAME = __name__.rsplit(".", 1)[-1]   # its name in `nlmm bench NAME` (engine.bench.BENCHES)
TARGET_FRACTION = 0.40   # of the matmul peak, a training step of the tiny model
MAX_KERNEL_DIFFERENCE = 1e-4
BUSY_LOAD = 0.5          # a 1-minute load average above this before the bench: other work was running


def add_arguments(parser) -> None:
    parser.add_argument("--config", default="tiny", help="config file or preset name (default: tiny)")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def delta_rule_timings(device: torch.device, lengths=(256, 1024), batch=8, heads=4, d_head=32,
                       chunk_size=64, progress=print) -> list[dict]:
    rows = []
    for T in lengths:
        g = torch.Generator().manual_seed(T)
        q, k = (torch.nn.functional.normalize(torch.randn(batch, heads, T, d_head, generator=g), dim=-1) for _ in range(2))
        v = torch.randn(batch, heads, T, d_head, generator=g)
        beta = torch.rand(batch, heads, T, generator=g)
        inputs = [x.to(device).requires_grad_(True) for x in (q, k, v, beta)]

        def run(kernel, **kwargs):
            def once():
                out, _ = kernel(*inputs, **kwargs)
                out.sum().backward()
            return once

        recurrent = _median_seconds(run(fast_weight_recurrent), device, repeats=2, warmup=0)  # seconds each
        chunked = _median_seconds(run(fast_weight_chunked, chunk_size=chunk_size), device, repeats=5)
        with torch.no_grad():
            difference = (fast_weight_chunked(*inputs, chunk_size=chunk_size)[0]
                          - fast_weight_recurrent(*inputs)[0]).abs().max().item()
        row = {"T": T, "recurrent_ms": recurrent * 1e3, "chunked_ms": chunked * 1e3, "speedup": recurrent / chunked,
               "max_difference": difference}
        progress(f"delta rule T={T}: recurrent {row['recurrent_ms']:.1f} ms, chunked {row['chunked_ms']:.1f} ms, "
                 f"x{row['speedup']:.1f}")
        rows.append(row)
    return rows


def matmul_peak_gflops(device: torch.device, size: int = 2048, repeats: int = 5,
                       dtype: torch.dtype = torch.float32) -> float:
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    seconds = min(_median_seconds(lambda: torch.mm(a, b), device, repeats=3) for _ in range(repeats))
    return 2 * size**3 / seconds / 1e9


def train_step_throughput(cfg: NLMMConfig, device: torch.device, steps: int = 10, progress=print) -> dict:
    torch.manual_seed(0)
    model = NLMM(cfg).to(device)
    step = TrainStep(model, cfg, device)
    batch, labels = synthetic_batch(cfg, cfg.data.batch_size, device)
    with FlopCounterMode(display=False) as counter:
        step.forward_backward(batch, labels)
    flops = counter.get_total_flops()
    seconds = _median_seconds(lambda: step(batch, labels), device, repeats=steps, warmup=2)
    samples_per_s = cfg.data.batch_size / seconds
    progress(f"train step ({cfg.name}, batch {cfg.data.batch_size}): {seconds * 1e3:.0f} ms, "
             f"{samples_per_s:.0f} samples/s, {flops / 1e9:.2f} GFLOP/step")
    return {"samples_per_s": samples_per_s, "gflops": flops / seconds / 1e9, "step_ms": seconds * 1e3,
            "gflop_per_step": flops / 1e9}


def run(cfg: NLMMConfig, device: str | None = None, progress=print, quick: bool = False) -> BenchResult:
    """`quick` shrinks every measurement (a smoke run for tests); its figures mean nothing."""
    dev = pick_device(device)
    progress(f"device: {dev}, torch threads: {torch.get_num_threads()}")
    load_before = load_average()
    delta = delta_rule_timings(dev, lengths=(32, 64) if quick else (256, 1024), progress=progress)
    size, repeats = (256, 1) if quick else (2048, 5)
    fp32_peak = matmul_peak_gflops(dev, size, repeats)
    progress(f"torch.mm fp32 peak: {fp32_peak:.0f} GFLOP/s (best of {repeats})")
    step_dtype = autocast_dtype(cfg.precision, dev) or torch.float32
    peak = fp32_peak if step_dtype == torch.float32 else matmul_peak_gflops(dev, size, repeats, step_dtype)
    precision = str(step_dtype).replace("torch.", "")
    if step_dtype != torch.float32:
        progress(f"torch.mm {precision} peak: {peak:.0f} GFLOP/s (the step autocasts to {precision})")
    if quick:
        cfg.data.batch_size = 4
    train = train_step_throughput(cfg, dev, steps=1 if quick else 10, progress=progress)
    train.update(peak_gflops=peak, peak_precision=precision, fp32_peak_gflops=fp32_peak, peak_tries=repeats,
                 fraction_of_peak=train["gflops"] / peak)
    progress(f"train step: {train['gflops']:.0f} GFLOP/s = {100 * train['fraction_of_peak']:.0f}% of the "
             f"{precision} peak")
    targets = {"chunked delta rule = recurrent (max difference)":
               Target(MAX_KERNEL_DIFFERENCE, max(row["max_difference"] for row in delta), at_most=True),
               f"train step, share of the {precision} matmul peak": Target(TARGET_FRACTION, train["fraction_of_peak"])}
    ran = describe(dev) | {"precision": precision, "load_average_before": load_before}
    return BenchResult(NAME, {"device": str(dev), "delta_rule": delta, "train_step": train}, targets, ran, quick)


def from_args(args, progress) -> BenchResult:
    from engine.config import load_config
    return run(load_config(args.config), args.device, progress=progress, quick=args.quick)


def format_table(result: BenchResult) -> str:
    lines = [f"Machine: {machine_line(result.ran)}",
             f"\nDelta rule, forward+backward, B=8, 4 heads, d_head=32 ({result['device']}):",
             f"{'T':>6} {'recurrent ms':>14} {'chunked ms':>12} {'speed-up':>9} {'max diff':>9}"]
    for row in result["delta_rule"]:
        lines.append(f"{row['T']:>6} {row['recurrent_ms']:>14.1f} {row['chunked_ms']:>12.1f} {row['speedup']:>8.1f}x "
                     f"{row['max_difference']:>9.1e}")
    t = result["train_step"]
    lines.append(f"\nTraining step: {t['samples_per_s']:.0f} samples/s, {t['gflops']:.1f} GFLOP/s "
                 f"of a {t['peak_gflops']:.0f} GFLOP/s {t['peak_precision']} torch.mm peak ({100 * t['fraction_of_peak']:.0f}%)"
                 + ("" if t["peak_precision"] == "float32" else
                    f"; {100 * t['gflops'] / t['fp32_peak_gflops']:.0f}% of the {t['fp32_peak_gflops']:.0f} GFLOP/s fp32 peak"))
    before = result.ran["load_average_before"]
    if before and before[0] > BUSY_LOAD:
        lines.append(f"the machine was busy when the bench started (load average {before[0]}): the peak reads "
                     "low and the step's share of it high")
    lines.append("targets:\n" + result.targets_table())
    return "\n".join(lines)
