"""`nlmm bench kernels`: the delta-rule kernels and the training step, measured on this machine.

- chunked vs recurrent delta rule, forward + backward, B=8, 4 heads, d_head=32, T in (256, 1024);
- training-step throughput (samples/s) of a config (default configs/tiny.yaml) on synthetic batches
  of real shapes, in fp32 and, where the config autocasts, in its precision too;
- the step's achieved GFLOP/s (FLOPs counted by torch.utils.flop_counter) against this machine's own
  `torch.mm` peak in the same precision, measured in the same run as the best of several tries (a busy
  machine lowers the peak and flatters the step: the load average before says whether it was busy);
- the fp32 step once more beside one busy process (what a desktop running other programs gets), on this
  process's threads and on one.

Targets: the chunked kernel gives the recurrent one's outputs (within 1e-4; checked on every run, quick
or not); the fp32 step reaches TARGET_FRACTION of the fp32 peak; a step in the config's lower precision
is no slower than in fp32 (else that precision is not worth asking for on this machine).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from engine.bench.machine import describe, load_average, machine_line
from engine.bench.query import busy_processes
from engine.bench.result import BenchResult, Target
from engine.config import NLMMConfig
from engine.device import autocast_dtype, pick_device
from engine.layers.fast_weights import fast_weight_chunked, fast_weight_recurrent
from engine.models.nlmm import NLMM
from engine.threads import intra_op_threads
from engine.training.step import TrainStep, synthetic_batch


NAME = __name__.rsplit(".", 1)[-1]   # its name in `nlmm bench NAME` (engine.bench.BENCHES)
TARGET_FRACTION = 0.40   # of the fp32 matmul peak, an fp32 training step of the tiny model at batch 64
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


class _StepTimer:
    """One precision's training step, built once and timed in rounds."""

    def __init__(self, cfg: NLMMConfig, device: torch.device):
        torch.manual_seed(0)
        self.cfg, self.device = cfg, device
        self.step = TrainStep(NLMM(cfg).to(device), cfg, device)
        self.batch, self.labels = synthetic_batch(cfg, cfg.data.batch_size, device)
        with FlopCounterMode(display=False) as counter:
            self.step.forward_backward(self.batch, self.labels)
        self.flops = counter.get_total_flops()

    def seconds(self, steps: int) -> float:
        return _median_seconds(lambda: self.step(self.batch, self.labels), self.device, repeats=steps, warmup=2)

    def figures(self, seconds: float) -> dict:
        return {"samples_per_s": self.cfg.data.batch_size / seconds, "gflops": self.flops / seconds / 1e9,
                "step_ms": seconds * 1e3, "gflop_per_step": self.flops / 1e9}


def train_step_throughput(configs: dict[str, NLMMConfig], device: torch.device, steps: int = 10, rounds: int = 3,
                          progress=print) -> dict[str, dict]:
    """Each config's step timed in `rounds` alternating rounds (median of `steps` steps each), the best round
    kept: as for the peak, the best of several tries is what the machine can do, and alternating spreads a
    neighbour's load over all of them alike."""
    timers = {name: _StepTimer(cfg, device) for name, cfg in configs.items()}
    best = {name: float("inf") for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.seconds(steps))
    figures = {name: timer.figures(best[name]) | {"rounds": rounds} for name, timer in timers.items()}
    for name, row in figures.items():
        progress(f"train step ({configs[name].name}, {name}, batch {configs[name].data.batch_size}): "
                 f"{row['step_ms']:.0f} ms, {row['samples_per_s']:.0f} samples/s, "
                 f"{row['gflop_per_step']:.2f} GFLOP/step")
    return figures


def run(cfg: NLMMConfig, device: str | None = None, progress=print, quick: bool = False) -> BenchResult:
    """`quick` shrinks every measurement (a smoke run for tests); its figures mean nothing."""
    dev = pick_device(device)
    progress(f"device: {dev}, torch threads: {torch.get_num_threads()}")
    load_before = load_average()
    delta = delta_rule_timings(dev, lengths=(32, 64) if quick else (256, 1024), progress=progress)
    size, repeats, steps, rounds = (256, 1, 1, 1) if quick else (2048, 5, 5, 4)
    if quick:
        cfg.data.batch_size = 4
    step_dtype = autocast_dtype(cfg.precision, dev) or torch.float32
    precision = _name(step_dtype)
    dtypes = {_name(dtype): dtype for dtype in (torch.float32, step_dtype)}   # fp32; the config's own if other
    peaks = {name: matmul_peak_gflops(dev, size, repeats, dtype) for name, dtype in dtypes.items()}
    for name, peak in peaks.items():
        progress(f"torch.mm {name} peak: {peak:.0f} GFLOP/s (best of {repeats})")
    configs = {name: replace(cfg, precision="fp32" if name == "float32" else cfg.precision) for name in dtypes}
    steps_by_precision = train_step_throughput(configs, dev, steps, rounds, progress)
    for name, row in steps_by_precision.items():
        row.update(precision=name, peak_gflops=peaks[name], peak_tries=repeats,
                   fraction_of_peak=row["gflops"] / peaks[name])
        progress(f"train step, {name}: {row['gflops']:.0f} GFLOP/s = {100 * row['fraction_of_peak']:.0f}% of its peak")
    fp32 = steps_by_precision["float32"]
    busy = []   # on this process's threads, then on one: one thread has no barrier to wait at for a busy core
    with busy_processes(1) as pids:
        for threads in dict.fromkeys((torch.get_num_threads(), 1)):
            with intra_op_threads(threads):
                row = train_step_throughput({"float32": configs["float32"]}, dev, steps, 1, progress)["float32"]
            busy.append(row | {"threads": threads, "busy_processes": len(pids),
                               "fraction_of_quiet_peak": row["gflops"] / fp32["peak_gflops"]})
    targets = {"chunked delta rule = recurrent (max difference)":
               Target(MAX_KERNEL_DIFFERENCE, max(row["max_difference"] for row in delta), at_most=True),
               "train step in fp32, share of the fp32 matmul peak": Target(TARGET_FRACTION, fp32["fraction_of_peak"])}
    if precision != "float32":
        own = steps_by_precision[precision]
        own["speedup_over_fp32"] = own["samples_per_s"] / fp32["samples_per_s"]
        targets[f"train step in {precision} / in fp32 (samples/s)"] = Target(1.0, own["speedup_over_fp32"])
    ran = describe(dev) | {"precision": precision, "load_average_before": load_before}
    return BenchResult(NAME, {"device": str(dev), "delta_rule": delta, "train_step": steps_by_precision,
                              "train_step_busy": busy}, targets, ran, quick)


def _name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


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
    lines.append("")
    for precision, t in result["train_step"].items():
        lines.append(f"Training step, {precision}: {t['samples_per_s']:.0f} samples/s, {t['gflops']:.1f} GFLOP/s "
                     f"of a {t['peak_gflops']:.0f} GFLOP/s {precision} torch.mm peak ({100 * t['fraction_of_peak']:.0f}%)"
                     + (f", {t['speedup_over_fp32']:.2f}x the fp32 step" if "speedup_over_fp32" in t else ""))
    for busy in result["train_step_busy"]:
        lines.append(f"beside {busy['busy_processes']} busy process, float32, {busy['threads']} thread(s): "
                     f"{busy['samples_per_s']:.0f} samples/s ({100 * busy['fraction_of_quiet_peak']:.0f}% of the quiet peak)")
    before = result.ran["load_average_before"]
    if before and before[0] > BUSY_LOAD:
        lines.append(f"the machine was busy when the bench started (load average {before[0]}): the peak reads "
                     "low and the step's share of it high")
    lines.append("targets:\n" + result.targets_table())
    return "\n".join(lines)
