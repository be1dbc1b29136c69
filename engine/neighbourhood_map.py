"""The joint space's neighbourhood map: a t-SNE layout (openTSNE, cosine distances, seeded) of a PCA map's
rows (`engine.joint_space.joint_map`), which keeps each item's nearest neighbours near it on the map.

It takes seconds (8 s for the built-in test gallery's 2 872 points, 23 s for 10 000, on one core), and the
t-SNE holds Python's lock for up to 0.1 s at a time (a 5 ms timer beside it on 10 000 points ran 102 ms
late), which a window would feel: `neighbourhood_map_apart` runs it in a process of its own. This module
imports numpy and openTSNE only (no torch), so that process starts quickly.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import queue as queues

import numpy as np

from engine.events import JointMap

SEED = 0              # t-SNE's random start: the same gallery gives the same map
PERPLEXITY = 30.0     # t-SNE's neighbourhood size (openTSNE's default), smaller for a small gallery
PROGRESS_EVERY = 25   # t-SNE iterations between two progress reports
POLL_S = 0.05         # how often the waiting side looks for news (and lets its caller cancel)


def neighbourhood_map(base: JointMap, progress=None, threads: int = 1) -> JointMap:
    """The t-SNE map of the rows of `base` (a `joint_map`, whose PCA layout starts it, so both maps face the
    same way): openTSNE on cosine distances, seeded. Numpy only (no torch): it may run beside the engine.
    `progress(done, total)` is called every PROGRESS_EVERY iterations; an exception from it stops the map."""
    from openTSNE import TSNE   # scipy and scikit-learn come with it: imported only when a map is asked for
    x = base.embeddings.astype(np.float64)
    exaggerated, normal = 250, 500     # openTSNE's default phases
    total = (exaggerated + normal) // PROGRESS_EVERY
    reports = [0]

    def report(iteration, error, embedding) -> None:
        reports[0] += 1
        if progress is not None:
            progress(min(reports[0], total), total)

    start = base.points.astype(np.float64)
    start = 1e-4 * start / max(float(start[:, 0].std()), 1e-12)   # openTSNE's scale for an initial layout
    tsne = TSNE(n_components=2, perplexity=min(PERPLEXITY, max(1.0, (len(x) - 1) / 3)), metric="cosine",
                initialization=start, early_exaggeration_iter=exaggerated, n_iter=normal, n_jobs=threads,
                random_state=SEED, callbacks=report, callbacks_every_iters=PROGRESS_EVERY, verbose=False)
    points = np.asarray(tsne.fit(x), dtype=np.float32)
    return dataclasses.replace(base, points=points, method="tsne")


def neighbours_kept(embeddings: np.ndarray, points: np.ndarray, k: int = 10) -> float:
    """The share of each item's k nearest neighbours in the joint space (cosine) that are also among its k
    nearest on the map: how much of the space's neighbourhoods the map shows (1 = all)."""
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    near_space = np.argsort(-(unit @ unit.T), axis=1)[:, 1:k + 1]
    squared = (points ** 2).sum(1)
    distances = squared[:, None] + squared[None, :] - 2 * points @ points.T
    near_map = np.argsort(distances, axis=1)[:, 1:k + 1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(near_space, near_map)]))


def neighbourhood_map_apart(base: JointMap, progress=None) -> JointMap:
    """`neighbourhood_map` in a process of its own (spawned: no thread of the caller's is copied), its
    progress passed back; an exception from `progress` (a cancelled task) ends the process at once."""
    context = multiprocessing.get_context("spawn")
    news = context.Queue()
    process = context.Process(target=_layout_apart, args=(base, news), name="nlmm-neighbourhood-map", daemon=True)
    process.start()
    done, total = 0, 1
    try:
        while True:
            try:
                kind, value = news.get(timeout=POLL_S)
            except queues.Empty:
                if not process.is_alive():
                    raise RuntimeError(f"the t-SNE process ended without a map (exit code {process.exitcode})")
                if progress is not None:
                    progress(done, total)          # lets the caller stop it
                continue
            if kind == "progress":
                done, total = value
                if progress is not None:
                    progress(done, total)
            elif kind == "error":
                raise RuntimeError(value)
            else:
                return dataclasses.replace(base, points=value, method="tsne")
    finally:
        if process.is_alive():
            process.terminate()
        process.join(5)
        news.close()


def _layout_apart(base: JointMap, news) -> None:
    """The spawned process: the layout, its progress and its points (or the error) put on `news`."""
    try:
        laid_out = neighbourhood_map(base, progress=lambda done, total: news.put(("progress", (done, total))))
        news.put(("points", laid_out.points))
    except Exception as err:  # noqa: BLE001 - whatever openTSNE raises goes back as one line
        news.put(("error", f"{type(err).__name__}: {err}"))
