"""How many CPU threads torch gives each kind of work.

- One live query (or a batch of a few) runs on one intra-op thread: its matrices are too small to
  split well, and a parallel region only ends when its slowest thread does. When another process holds
  a core, that thread waits for it; with one thread there is nobody to wait for, at no barrier.
- Big batches (a gallery, an evaluation) and training use the cores this process may use, less any
  core reserved for a user interface (`reserve_cores`).
- The OpenMP wait policy stays the runtime's default (libgomp: spin a while at a barrier, then sleep).
  A query on one thread never waits at a barrier, so the policy cannot slow it; training's many short
  parallel regions need the spinning: OMP_WAIT_POLICY=PASSIVE cut a quiet training step to a third.

Measurements behind these choices: docs/benchmarks.md ("nlmm bench query").

`torch.set_num_threads` acts on the calling thread (OpenMP's per-thread setting; threads that have not
run torch yet take the latest value), so the studio's query thread and its trainer thread keep their
own counts.
"""
from __future__ import annotations

import contextlib
import os

SMALL_BATCH = 8  # up to this many items, work runs on one intra-op thread

_reserved = 0


def openmp_wait_policy() -> str:
    """The wait policy torch's OpenMP runtime runs with: the user's OMP_WAIT_POLICY, else its default."""
    return os.environ.get("OMP_WAIT_POLICY") or "default (spin, then sleep)"


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


def data_workers(device_type: str = "cpu") -> int:
    """Worker processes that prepare a run's batches beside its step (`data.num_workers: auto`). On the
    CPU, half the cores big work may use, the step keeping the rest (`step_threads`): decoding, augmenting
    and drawing a batch costs about what the tiny model's step does, and on 2 cores one worker beside a
    one-thread step ran 36-89 % more steps a second than both cores on the step with the batches prepared
    between steps (docs/teaching.md). Beside a GPU's step, every such core but one, at most 4."""
    cores = work_threads()
    return cores // 2 if device_type == "cpu" else max(0, min(4, cores - 1))


def step_threads(workers: int, device_type: str = "cpu") -> int:
    """Intra-op threads of a training step beside `workers` worker processes: on the CPU the cores they
    leave (at least one), since a worker and a step thread on one core take turns at both."""
    return max(1, work_threads() - workers) if device_type == "cpu" else work_threads()


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
