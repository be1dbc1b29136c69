"""Symmetric InfoNCE over every pair of modalities present in a batch."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from engine.vocabulary import PAIR_NAMES, PAIRS


def info_nce(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor,
             labels: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE between unit embeddings a (B, D) and b (B, D).

    Without labels the positive of row i is column i. With labels, every item of the same label is a
    positive (soft targets spread over them): in a batch of spoken numbers two "forty two"s are not
    negatives of each other.
    """
    logits = logit_scale * a @ b.T
    if labels is None:
        target = torch.arange(len(a), device=a.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    same = (labels[:, None] == labels[None, :]).to(logits.dtype)
    target = same / same.sum(-1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target.T))


class ContrastiveLoss(nn.Module):
    """InfoNCE summed over the present pairs, with a temperature that is learnable (CLIP-style) or fixed."""

    def __init__(self, temperature_init: float = 0.07, learnable: bool = True, max_scale: float = 100.0):
        super().__init__()
        log_scale = torch.tensor(math.log(1.0 / temperature_init))
        self.log_scale = nn.Parameter(log_scale) if learnable else nn.Buffer(log_scale)
        self.max_scale = max_scale

    @property
    def temperature(self) -> float:
        return float(1.0 / self.scale().detach())

    def scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=self.max_scale)

    def forward(self, embeddings: dict[str, torch.Tensor], labels: torch.Tensor | None = None,
                index: dict[str, torch.Tensor] | None = None):
        """Returns (total loss, {"image-text": loss, ...}) over every pair of present modalities.

        `index[m]` gives the batch position of each row of `embeddings[m]` (when items miss modalities);
        a pair is trained on the positions both modalities have. `labels` are per batch position.
        """
        scale = self.scale()
        pairs = {}
        for (m1, m2), name in zip(PAIRS, PAIR_NAMES):
            if m1 not in embeddings or m2 not in embeddings:
                continue
            a, b, pair_labels = embeddings[m1], embeddings[m2], labels
            if index is not None and (m1 in index or m2 in index):
                a, b, positions = _common_rows(a, index.get(m1), b, index.get(m2))
                pair_labels = None if labels is None else labels[positions]
            if len(a) >= 2:
                pairs[name] = info_nce(a, b, scale, pair_labels)
        if not pairs:
            raise ValueError("contrastive training needs two modalities on at least two common items per batch")
        return sum(pairs.values()) / len(pairs), pairs


def _common_rows(a, a_index, b, b_index):
    """Rows of a and b that belong to the same batch positions, and those positions."""
    a_index = torch.arange(len(a), device=a.device) if a_index is None else a_index.to(a.device)
    b_index = torch.arange(len(b), device=b.device) if b_index is None else b_index.to(b.device)
    common = a_index[torch.isin(a_index, b_index)]
    row_a = {int(p): i for i, p in enumerate(a_index)}
    row_b = {int(p): i for i, p in enumerate(b_index)}
    rows_a = torch.tensor([row_a[int(p)] for p in common], dtype=torch.long, device=a.device)
    rows_b = torch.tensor([row_b[int(p)] for p in common], dtype=torch.long, device=b.device)
    return a[rows_a], b[rows_b], common
