"""The benchmarks (`nlmm bench NAME`): each module owns its arguments (`add_arguments`), its measurement
(`from_args(args, progress) -> BenchResult`, `engine/bench/result.py`) and its table (`format_table`)."""
from __future__ import annotations

import importlib

# name -> what it measures (its module is engine.bench.<name>; imported only when that bench runs)
BENCHES = {
    "kernels": "delta rule + training step",
    "train": "time to target recall",
    "query": "live query latency, quiet and beside busy processes",
    "ttt": "the test-time learners on shifted query streams",
    "robustness": "retrieval on sources never trained on, next to the in-domain test",
    "teach": "fine-tune on a voice never heard (or a handwriting), recall before/after",
    "corrections": "corrections learnt at once: shifts taught by a stream of corrections, latency, memory",
    "scale": "a Flickr8k-sized gallery: the first query, the cached one, query latency over it",
    "startup": "`nlmm query` in a fresh process: the first query, the cached one, a bad input, beside --help",
}


def bench_module(name: str):
    """The module of benchmark `name` (one of BENCHES)."""
    if name not in BENCHES:
        raise ValueError(f"unknown benchmark '{name}'; expected one of {', '.join(BENCHES)}")
    return importlib.import_module(f"engine.bench.{name}")
