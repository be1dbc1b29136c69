"""How many CPU threads torch gives each kind of work, and how its idle OpenMP threads wait.

- One live query (or a batch of a few) runs on one intra-op thread: its matrices are too small to
  split well, and a parallel region only ends when its slowest thread does. When another process holds
  a core, that thread waits for it; with one thread there is nobody to wait for.
- Big batches (a gallery, an evaluation) and training use the cores this process may use, less any
  core reserved for a user interface (`reserve_cores`).
- Idle OpenMP threads sleep instead of spinning (`OMP_WAIT_POLICY=PASSIVE`), so a team that is done
  does not burn the cores a query or another process needs.

Measurements behind these choices are in the README ("nlmm bench query").

`torch.set_num_threads` acts on the calling thread (OpenMP's per-thread setting; threads that have not
run torch yet take the latest value), so the studio's query thread and its trainer thread keep their
own counts.
"""
from __future__ import annotations

import contextlib
import os
import sys

SMALL_BATCH = 8          # up to this many items, work runs on one intra-op thread
WAIT_POLICY = "PASSIVE"  # OpenMP: idle threads sleep at once (libgomp's default spins 300 000 times)

_reserved = 0


def prefer_passive_openmp_wait() -> None:
    """Choose the OpenMP wait policy; only effective before torch is imported (libgomp reads it once).
    A policy the user set in the environment wins."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)


def openmp_wait_policy() -> str:
    """The policy torch's OpenMP runtime is running with, as far as this process can tell."""
    return os.environ.get("OMP_WAIT_POLICY", "default (spin, then sleep)").upper()


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def reserve_cores(count: int) -> None:
    """Keep `count` cores out of big work (the studio keeps one for its UI thread)."""
    global _reserved
    _reserved = max(0, int(count))


def work_threads() -> int:
    """Intra-op threads for training and big batches."""
    return max(1, usable_cores() - _reserved)


def threads_for(batch_size: int) -> int:
    """Intra-op threads for a batch of `batch_size` items."""
    return 1 if batch_size <= SMALL_BATCH else work_threads()


@contextlib.contextmanager
def intra_op_threads(count: int):
    """Run the body on `count` intra-op threads; the calling thread's count is restored afterwards."""
    import torch
    before = torch.get_num_threads()
    if count != before:
        torch.set_num_threads(count)
    try:
        yield count
    finally:
        if count != before:
            torch.set_num_threads(before)
