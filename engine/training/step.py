"""One optimisation step of NLMM: forward under autocast, InfoNCE, backward, clip, level scheduler.

The trainer, the benchmarks and the studio all step through this one object, so the nested-level
cadence, the deferred HOPE updates and the loss are the same wherever a model learns.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch

from engine.config import NLMMConfig
from engine.data.dataset import model_batch
from engine.device import autocast
from engine.vocabulary import MODALITIES
from engine.models.nlmm import NLMM
from engine.optim.levels import LevelScheduler
from engine.training.losses import ContrastiveLoss


@dataclass
class StepResult:
    step: int
    loss: float
    pair_losses: dict[str, float] = field(default_factory=dict)
    stepped_levels: list[str] = field(default_factory=list)
    lrs: dict[str, float] = field(default_factory=dict)
    grad_norm: float = 0.0


def shares_a_pair(batch: dict) -> bool:
    """True when two of the batch's modalities meet on at least two of its items: what InfoNCE needs to
    learn anything (a batch of image-only and text-only items has nothing to contrast)."""
    positions = [set(batch[f"{m}_index"].tolist()) if f"{m}_index" in batch else set(range(len(batch[m])))
                 for m in MODALITIES if m in batch]
    return any(len(a & b) >= 2 for a, b in itertools.combinations(positions, 2))


def batch_labels(batch: dict, device: torch.device) -> torch.Tensor | None:
    """Labels per batch position, or None when the items carry none (then item i pairs with item i)."""
    labels = batch.get("labels")
    if labels is None or bool((labels < 0).any()):
        return None
    return labels.to(device)


class TrainStep:
    """`forward_model` is the model wrapped for data parallelism (DDP) when there is one."""

    def __init__(self, model: NLMM, cfg: NLMMConfig, device: torch.device, forward_model=None,
                 average_across_ranks=None):
        self.model, self.cfg, self.device = model, cfg, device
        self.forward_model = forward_model or model
        self.average_across_ranks = average_across_ranks
        self.loss = ContrastiveLoss(cfg.train.temperature_init, cfg.train.learnable_temperature).to(device)
        outer = model.outer_parameters() + list(self.loss.parameters())
        self.scheduler = LevelScheduler(model.level_parameters(), cfg.cms_levels, outer,
                                        outer_lr=cfg.train.lr, outer_optimizer="adamw",
                                        weight_decay=cfg.train.weight_decay)
        self.parameters = [p for p in model.parameters()] + list(self.loss.parameters())

    def forward_backward(self, batch: dict, labels: torch.Tensor | None = None):
        inputs = model_batch(batch, self.device)
        with autocast(self.cfg.precision, self.device):
            out = self.forward_model(inputs)
        index = {m: inputs[f"{m}_index"] for m in out.embeddings if f"{m}_index" in inputs}
        total, pairs = self.loss(out.embeddings, labels, index or None)
        if out.decoder_loss is not None:
            pairs = {**pairs, "decoders": out.decoder_loss}
            total = total + self.cfg.train.decoder_weight * out.decoder_loss
        total.backward()
        if self.average_across_ranks is not None:  # DDP averages the model's gradients, not the loss's own
            for p in self.loss.parameters():
                if p.grad is not None:
                    p.grad = self.average_across_ranks(p.grad)
        return total, pairs

    def __call__(self, batch: dict, labels: torch.Tensor | None = None, lr_scale: float = 1.0) -> StepResult:
        self.model.train()
        total, pairs = self.forward_backward(batch, labels)
        loss = float(total.detach())
        if not math.isfinite(loss):
            for p in self.parameters:
                p.grad = None  # nothing of a diverged step may reach the weights
            raise FloatingPointError(f"loss became {loss} at step {self.scheduler.t + 1}")
        grad_norm = 0.0
        if self.cfg.train.grad_clip > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.parameters, self.cfg.train.grad_clip))
        report = self.scheduler.step(lr_scale)
        # HOPE self-modification, deferred until after the step (averaged over ranks under DDP)
        self.model.apply_pending_updates(self.average_across_ranks)
        return StepResult(report.step, loss, {k: float(v.detach()) for k, v in pairs.items()},
                          list(report.stepped), dict(report.lrs), grad_norm)

    def state_dict(self) -> dict:
        return {"loss": self.loss.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.loss.load_state_dict(state["loss"])
        self.scheduler.load_state_dict(state["scheduler"])


def synthetic_batch(cfg: NLMMConfig, batch_size: int, device: torch.device, seconds: float = 1.5,
                    text_tokens: int = 8, seed: int = 0) -> tuple[dict, torch.Tensor]:
    """Random inputs of the shapes real data has (for benchmarks and smoke tests); labels 0..99."""
    g = torch.Generator().manual_seed(seed)
    frames = int(seconds * cfg.audio.sample_rate) // cfg.audio.hop_length + 1
    image = cfg.image
    batch = {"text": torch.randint(1, cfg.text.vocab_size, (batch_size, text_tokens), generator=g),
             "image": torch.rand(batch_size, image.channels, image.height, image.width, generator=g),
             "audio": torch.randn(batch_size, cfg.audio.n_mels, frames, generator=g),
             "audio_mask": torch.ones(batch_size, frames, dtype=torch.bool)}
    labels = torch.randint(0, 100, (batch_size,), generator=g)
    return {k: v.to(device) for k, v in batch.items()}, labels.to(device)
