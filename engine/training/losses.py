"""Symmetric InfoNCE over every pair of modalities present in a batch."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


PAIRS = (("image", "text"), ("image", "audio"), ("text", "audio"))


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
        return float(1.0 / self.scale())

    def scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=self.max_scale)

    def forward(self, embeddings: dict[str, torch.Tensor], labels: torch.Tensor | None = None):
        """Returns (total loss, {"image-text": loss, ...}) over every pair of present modalities."""
        if len(embeddings) < 2:
            raise ValueError("contrastive training needs at least two modalities per batch")
        scale = self.scale()
        pairs = {f"{m1}-{m2}": info_nce(embeddings[m1], embeddings[m2], scale, labels)
                 for m1, m2 in PAIRS if m1 in embeddings and m2 in embeddings}
        return sum(pairs.values()) / len(pairs), pairs
