"""`nlmm bench query`: latency of one live query against a 10,000-item gallery, on a quiet machine and
beside CPU-bound background processes that the benchmark starts and stops itself.

Each query is timed end to end as the studio runs it: read the file (or take the text), prepare it
(decode, resample, log-mel / ink crop / tokenise), encode, score against every gallery item, top-k.
The gallery is the built-in test split's embeddings, repeated with small perturbations to the size asked.
"""
from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

from engine.bench.machine import describe, load_average, machine_line
from engine.bench.result import BenchResult, Target
from engine.data.audio import load_audio
from engine.data.sources import load_source
from engine.retrieval import Retriever

# p50 targets, in ms: quiet and loaded alike; loaded p50 also at most LOADED_RATIO x quiet p50
TARGETS_MS = {"image": 50.0, "text": 50.0, "audio": 80.0}
LOADED_RATIO = 3.0
# One core's worth of CPU-bound work, as a build or a browser tab makes, that ends when the benchmark does,
# however it ends (SIGTERM, kill -9): it spins only while its parent is the one that started it.
BUSY_LOOP = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"
MAX_LOAD = 64   # background processes at most
NAME = __name__.rsplit(".", 1)[-1]   # its name in `nlmm bench NAME` (engine.bench.BENCHES)


def add_arguments(parser) -> None:
    from engine.cli_args import at_least, at_most, checkpoint_option
    checkpoint_option(parser)
    parser.add_argument("--load", type=at_most(MAX_LOAD, at_least(0)), default=1, metavar="N",
                        help=f"CPU-bound background processes in the loaded phase (default 1, at most {MAX_LOAD})")


def _grow(gallery, size: int, seed: int = 0) -> None:
    """Repeat a gallery's rows (with small noise) until it holds `size` items."""
    n = len(gallery.ids)
    reps = -(-size // n)
    g = torch.Generator().manual_seed(seed)
    embeddings = gallery.embeddings.repeat(reps, 1)[:size]
    gallery.embeddings = F.normalize(embeddings + 0.05 * torch.randn(embeddings.shape, generator=g), dim=-1)
    gallery.ids = gallery.ids.repeat(reps)[:size]
    gallery.items = (gallery.items * reps)[:size]


def _percentiles(times_ms: list[float]) -> dict:
    ordered = sorted(times_ms)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"p50_ms": statistics.median(ordered), "p99_ms": p99, "n": len(ordered)}


@contextlib.contextmanager
def busy_processes(count: int, settle_s: float = 0.5):
    """`count` CPU-bound processes for the duration of the block; their pids are yielded."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
    try:
        time.sleep(settle_s)  # started and spinning before the first timed query
        yield [proc.pid for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def _time_queries(retriever: Retriever, queries: dict) -> tuple[dict, dict]:
    """-> ({modality: percentiles}, {modality: intra-op threads the queries ran on})."""
    result, threads = {}, {}
    for modality, values in queries.items():
        for value in values[:5]:  # warm-up: first calls allocate and pick kernels
            retriever.query(modality, value, k=5)
        answers = [retriever.query(modality, value, k=5) for value in values]
        result[modality] = _percentiles([answer.latency_ms for answer in answers])
        threads[modality] = sorted({answer.threads for answer in answers})
    return result, threads


def run(checkpoint, device: str | None = None, gallery_size: int = 10_000, n_queries: int = 100,
        audio_seconds: float = 3.0, load_processes: int = 1, progress=print, quick: bool = False) -> BenchResult:
    torch.manual_seed(0)
    load_before = load_average()
    retriever = Retriever.from_checkpoint(checkpoint, device)
    items = load_source("builtin").splits["test"]
    retriever.build_gallery(items)
    for gallery in retriever.galleries.values():
        _grow(gallery, gallery_size)
    progress(f"gallery: {retriever.gallery_sizes()} items per modality on {retriever.device}")
    rate = retriever.cfg.audio.sample_rate
    phases = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = []
        for i, item in enumerate(items[:n_queries]):  # each spoken number padded with room noise to 3 s
            wave = load_audio(item.audio, rate, audio_seconds)
            clip = np.random.default_rng(i).normal(0, 0.003, int(audio_seconds * rate)).astype(np.float32)
            start = (len(clip) - len(wave)) // 2
            clip[start:start + len(wave)] += wave[: len(clip)]
            path = Path(tmp) / f"q{i}.wav"
            sf.write(path, clip, rate, subtype="PCM_16")
            clips.append(path)
        queries = {"image": [item.image for item in items[:n_queries]], "audio": clips,
                   "text": [item.text for item in items[:n_queries]]}
        phases["quiet"], threads = _time_queries(retriever, queries)
        with busy_processes(load_processes) as pids:
            phases["loaded"], _ = _time_queries(retriever, queries)
    for modality in queries:
        quiet, loaded = phases["quiet"][modality], phases["loaded"][modality]
        progress(f"{modality:>5}: quiet p50 {quiet['p50_ms']:.1f} ms, p99 {quiet['p99_ms']:.1f} ms | "
                 f"{load_processes} busy process(es): p50 {loaded['p50_ms']:.1f} ms, p99 {loaded['p99_ms']:.1f} ms")
    targets = {}
    for m, limit in TARGETS_MS.items():
        quiet, loaded = phases["quiet"][m]["p50_ms"], phases["loaded"][m]["p50_ms"]
        targets[f"{m}: quiet p50 (ms)"] = Target(limit, quiet, at_most=True)
        targets[f"{m}: loaded p50 (ms)"] = Target(limit, loaded, at_most=True)
        targets[f"{m}: loaded p50 / quiet p50"] = Target(LOADED_RATIO, loaded / quiet, at_most=True)
    figures = {"gallery_size": gallery_size, "queries_per_modality": n_queries, "audio_seconds": audio_seconds,
               "device": str(retriever.device), **phases,
               "background": {"processes": load_processes, "each": f"{sys.executable} -c '{BUSY_LOOP}'", "pids": pids},
               "query_threads": threads}
    ran = {**describe(retriever.device, retriever.cfg.precision),
           "load_average": load_before, "load_average_after": load_average()}
    return BenchResult(NAME, figures, targets, ran, quick)


def from_args(args, progress) -> BenchResult:
    sizes = {"gallery_size": 1000, "n_queries": 10} if args.quick else {}
    return run(args.checkpoint, args.device, load_processes=args.load, progress=progress,
               quick=args.quick, **sizes)


def format_table(result: BenchResult) -> str:
    lines = [f"Machine: {machine_line(result.ran)}",
             f"Query latency, {result['gallery_size']:,}-item gallery, {result['queries_per_modality']} queries each "
             f"(intra-op threads per query {result['query_threads']['text']}):",
             f"{'':>6} {'quiet p50':>10} {'p99':>8} {'loaded p50':>11} {'p99':>8}  target met"]
    for modality in TARGETS_MS:
        quiet, loaded = result["quiet"][modality], result["loaded"][modality]
        met = all(t.met for name, t in result.targets.items() if name.startswith(f"{modality}:"))
        lines.append(f"{modality:>6} {quiet['p50_ms']:>8.1f}ms {quiet['p99_ms']:>6.1f}ms {loaded['p50_ms']:>9.1f}ms "
                     f"{loaded['p99_ms']:>6.1f}ms  {'yes' if met else 'NO'}")
    lines.append(f"loaded: {result['background']['processes']} CPU-bound background process(es); "
                 f"load average after {result.ran['load_average_after']}")
    lines.append("targets:\n" + result.targets_table())
    return "\n".join(lines)
