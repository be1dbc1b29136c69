"""The joint space drawn flat, for the studio's Joint space panel: every gallery embedding (images, captions,
spoken clips) as a point of a 2-D map, two ways.

- `joint_map`: the gallery's two principal directions (`torch.pca_lowrank`). Instant, and linear: a query
  lands by the same projection (`JointMap.place`), and moving points mean moving embeddings. But two
  directions of a 128-D space show little of it (17 % of the variance on the demo model's gallery): a
  hundred numbers overlap in one cloud.
- `engine.neighbourhood_map`: t-SNE (openTSNE, cosine distances), which keeps each item's nearest
  neighbours near it on the map, so the numbers fall apart into their own groups, each holding its image,
  caption and clips. It takes seconds, so the studio shows PCA first.

A map is fitted to the gallery as embedded; a new model or gallery needs a new map.
"""
from __future__ import annotations

import numpy as np
import torch

from engine.events import JointMap
from engine.vocabulary import MODALITIES

SEED = 0    # pca_lowrank's random start: the same gallery gives the same map


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
