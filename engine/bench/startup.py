"""`nlmm bench startup`: `nlmm query` as a user runs it, a fresh process each time, on the built-in test
gallery (1 200 images, captions and clips):

  first query     an empty gallery cache: the gallery is embedded, then kept (what a new install meets)
  next query      the same, with the gallery read from the cache
  bad input       an empty WAV given as the query: refused with one line before anything heavy loads
  nlmm --help     the floor: starting Python and importing torch

Each is run REPEATS times, alternating, and its median reported; quiet, then beside a busy process (a
desktop runs other programs). The targets are the quiet figures'.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.bench.machine import describe, load_average, machine_line
from engine.bench.query import busy_processes
from engine.bench.result import BenchResult, Target
from engine.paths import ROOT

NAME = __name__.rsplit(".", 1)[-1]   # its name in `nlmm bench NAME` (engine.bench.BENCHES)
REPEATS = 3
# Targets (issue "Fast at any gallery size"), on 2 quiet cores.
FIRST_QUERY_S = 6.0        # the first query, the built-in gallery embedded
CACHED_OVER_HELP = 1.5     # the next query against `nlmm --help`
REFUSED_OVER_HELP = 1.2    # a bad input refused, against `nlmm --help`
QUERY = ("query", "--text", "forty two", "--k", "1")


def add_arguments(parser) -> None:
    from engine.cli_args import checkpoint_option
    checkpoint_option(parser)


def timed_nlmm(args: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    """`nlmm ARGS` in a fresh process: (its wall time in seconds, how it ended)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=3600)
    return time.perf_counter() - start, done


def _phase(checkpoint: Path, device: str | None, folder: Path, repeats: int) -> dict:
    """Each call `repeats` times, alternating: {name: median seconds}, {name: every run's seconds}."""
    empty = folder / "empty.wav"
    empty.write_bytes(b"")
    query = [*QUERY, "--checkpoint", str(checkpoint)] + (["--device", device] if device else [])
    runs: dict[str, list[float]] = {"help": [], "first_query": [], "next_query": [], "bad_input": []}
    for n in range(repeats):
        env = {**os.environ, "NLMM_CACHE_DIR": str(folder / f"cache-{n}")}   # empty: the first query embeds
        for name, args, ok in (("help", ["--help"], True), ("first_query", query, True),
                               ("next_query", query, True),
                               ("bad_input", ["query", "--audio", str(empty), "--checkpoint", str(checkpoint)], False)):
            seconds, done = timed_nlmm(args, env)
            if (done.returncode == 0) != ok:
                raise RuntimeError(f"nlmm {' '.join(args)} ended with {done.returncode}: "
                                   f"{(done.stderr.strip().splitlines() or [''])[-1]}")
            runs[name].append(round(seconds, 2))
    return {"median_s": {name: round(statistics.median(times), 2) for name, times in runs.items()}, "runs_s": runs}


def run(checkpoint, device: str | None = None, progress=print, quick: bool = False,
        repeats: int = REPEATS) -> BenchResult:
    """`quick`: once each, quiet only (a check that it runs, not a figure)."""
    from engine.device import pick_device
    checkpoint = Path(checkpoint)
    repeats = 1 if quick else repeats
    load_before = load_average()
    phases = {}
    with tempfile.TemporaryDirectory(prefix="nlmm-bench-startup-") as tmp:
        for phase in ("quiet",) if quick else ("quiet", "beside a busy process"):
            progress(f"{phase}: nlmm --help, the first query, the next one, an empty WAV; {repeats} times each")
            folder = Path(tmp) / phase.replace(" ", "-")
            folder.mkdir()
            if phase == "quiet":
                phases[phase] = _phase(checkpoint, device, folder, repeats)
            else:
                with busy_processes(1):
                    phases[phase] = _phase(checkpoint, device, folder, repeats)
            median = phases[phase]["median_s"]
            progress("  " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in median.items()))
    quiet = phases["quiet"]["median_s"]
    for phase in phases.values():
        median = phase["median_s"]
        phase["next_over_help"] = round(median["next_query"] / median["help"], 2)
        phase["bad_over_help"] = round(median["bad_input"] / median["help"], 2)
    targets = {"first query, the gallery embedded (s)": Target(FIRST_QUERY_S, quiet["first_query"], at_most=True),
               "next query, from the cache (x nlmm --help)": Target(
                   CACHED_OVER_HELP, phases["quiet"]["next_over_help"], at_most=True),
               "an empty WAV refused (x nlmm --help)": Target(
                   REFUSED_OVER_HELP, phases["quiet"]["bad_over_help"], at_most=True)}
    figures = {"repeats": repeats, "query": " ".join(QUERY), "phases": phases}
    from engine.training.checkpoint import load_model
    _, cfg, _, _ = load_model(checkpoint, pick_device(device))   # what the queries ran in
    ran = {**describe(pick_device(device), cfg.precision), "load_average": load_before,
           "load_average_after": load_average()}
    return BenchResult(NAME, figures, targets, ran, quick)


def from_args(args, progress) -> BenchResult:
    return run(args.checkpoint, args.device, progress=progress, quick=args.quick)


def format_table(result: BenchResult) -> str:
    phases = result["phases"]
    names = ("help", "first_query", "next_query", "bad_input")
    lines = [f"Machine: {machine_line(result.ran)}",
             f"`nlmm {result['query']}` on the built-in test gallery, a fresh process each, median of "
             f"{result['repeats']} (s):",
             f"{'':<24}" + "".join(f"{name.replace('_', ' '):>13}" for name in names)]
    for phase, figures in phases.items():
        lines.append(f"{phase:<24}" + "".join(f"{figures['median_s'][name]:>13.2f}" for name in names))
    lines.append("targets (quiet):\n" + result.targets_table())
    return "\n".join(lines)
