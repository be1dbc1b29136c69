"""Optional decoder heads: reconstruct something of the input from a modality's latent, as an auxiliary
loss that keeps the latent informative (`train.decoder_weight` > 0 builds and trains them).

Retrieval never needs them. Each reconstructs a cheap summary of its input:
  text   the bag of words (multi-label, binary cross-entropy over the vocabulary)
  image  the pixels (sigmoid, mean squared error)
  audio  the clip's mean log-mel spectrum over its real frames (mean squared error)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import NLMMConfig


class Decoders(nn.Module):
    def __init__(self, cfg: NLMMConfig):
        super().__init__()
        image = cfg.image
        self.image_shape = (image.channels, image.height, image.width)
        self.heads = nn.ModuleDict({
            "text": nn.Linear(cfg.d_model, cfg.text.vocab_size),
            "image": nn.Linear(cfg.d_model, image.channels * image.height * image.width),
            "audio": nn.Linear(cfg.d_model, cfg.audio.n_mels),
        })

    def loss(self, modality: str, latent: torch.Tensor, inputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        out = self.heads[modality](latent.float())
        if modality == "text":
            target = torch.zeros_like(out).scatter_(1, inputs, 1.0)
            target[:, 0] = 0.0  # padding is not a word
            return F.binary_cross_entropy_with_logits(out, target)
        if modality == "image":
            return F.mse_loss(torch.sigmoid(out), inputs.flatten(1).float())
        weights = torch.ones(inputs.shape[0], inputs.shape[-1], device=inputs.device) if mask is None else mask.float()
        mean_mel = (inputs.float() * weights[:, None]).sum(-1) / weights.sum(-1, keepdim=True).clamp_min(1)
        return F.mse_loss(out, mean_mel)
