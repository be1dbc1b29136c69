"""The joint space drawn flat, for the studio's Joint space panel: every gallery embedding (images, captions,
spoken clips) as a point of a 2-D map, two ways.

- `joint_map`: the gallery's two principal directions (`torch.pca_lowrank`). Instant, and linear: a query
  lands by the same projection (`JointMap.place`), and moving points mean moving embeddings. But two
  directions of a 128-D space show little of it (17 % of the variance on the demo model's gallery): a
  hundred numbers overlap in one cloud.
- `neighbourhood_map`: t-SNE (openTSNE, cosine distances), which keeps each item's nearest neighbours near
  it on the map, so the numbers fall apart into their own groups, each holding its image, caption and
  clips. It takes seconds (progress is reported and may cancel it), so the studio shows PCA first.

A map is fitted to the gallery as embedded; a new model or gallery needs a new map.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from engine.events import JointMap
from engine.vocabulary import MODALITIES

SEED = 0    # pca_lowrank's and t-SNE's random start: the same gallery gives the same map
PERPLEXITY = 30.0     # t-SNE's neighbourhood size (openTSNE's default), smaller for a small gallery
PROGRESS_EVERY = 25   # t-SNE iterations between two progress reports


def joint_map(galleries: dict) -> JointMap:
    """galleries: modality -> EmbeddedGallery (engine.training.evaluate) -> the 2-D map of all their rows."""
    present = [m for m in MODALITIES if m in galleries and len(galleries[m].ids)]
    if not present:
        raise ValueError("the gallery is empty: nothing to map")
    embeddings = torch.cat([galleries[m].embeddings.float() for m in present])
    if len(embeddings) < 3:
        raise ValueError(f"the gallery holds {len(embeddings)} items: a map needs at least 3")
    mean = embeddings.mean(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        _, singular, axes = torch.pca_lowrank(embeddings - mean, q=min(6, *embeddings.shape), center=False, niter=4)
    axes = axes[:, :2]
    # an axis' sign is arbitrary: fix it (largest loading positive) so that redraws do not flip the map
    signs = torch.sign(axes.gather(0, axes.abs().argmax(0, keepdim=True)))
    axes = axes * torch.where(signs == 0, torch.ones_like(signs), signs)
    total = float(((embeddings - mean) ** 2).sum())
    explained = tuple(float(v) ** 2 / total if total > 0 else 0.0 for v in singular[:2])
    points = (embeddings - mean) @ axes
    modalities, labels, names = [], [], []
    for m in present:
        for item in galleries[m].items:
            source = getattr(item, m)
            modalities.append(MODALITIES.index(m))
            labels.append(-1 if item.label is None else int(item.label))
            names.append(str(source))
    index = {}
    for row, (code, name) in enumerate(zip(modalities, names)):
        index.setdefault((MODALITIES[code], name), row)
    unit = torch.nn.functional.normalize(embeddings, dim=-1).numpy().astype(np.float32)
    return JointMap(points.numpy().astype(np.float32), np.asarray(modalities, dtype=np.int8),
                    np.asarray(labels, dtype=np.int64), tuple(names), mean.numpy(), axes.numpy(),
                    (explained + (0.0, 0.0))[:2], index, embeddings=unit)


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
