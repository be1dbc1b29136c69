"""NLMM: three encoders meet in one joint space through a shared central memory.

    text tokens ─┐                                   ┌─> L2-normalised text embedding
    image ───────┼─ encoder (NLMM blocks) ─ pool ─ central memory read (+ test-time write) ─ head ─┼─> image
    log-mel ─────┘                                   └─> audio

A block is fast-weight attention (delta rule) + the Continuum Memory System, whose per-level MLPs the
nested-level scheduler steps at their own cadence (`level_parameters()`). Retrieval compares the
embeddings of different modalities by cosine similarity.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import NLMMConfig, validate
from engine.layers.hope import SelfModifyingLinear
from engine.layers.memory import CentralMemory
from engine.models.decoders import Decoders
from engine.models.encoders import build_encoders
from engine.vocabulary import BATCH_KEYS, MODALITIES


@dataclass
class NLMMOutput:
    embeddings: dict[str, torch.Tensor]  # modality -> (B, D), unit length
    decoder_loss: torch.Tensor | None = None  # the auxiliary reconstruction loss, when decoders exist


class NLMM(nn.Module):
    def __init__(self, cfg: NLMMConfig):
        super().__init__()
        self.cfg = validate(cfg)
        self.encoders = build_encoders(cfg)
        self.memory = CentralMemory(cfg.L_mem, cfg.d_model, MODALITIES, cfg.ttt.mode, cfg.ttt.topk, cfg.ttt.lr,
                                    write_modalities=cfg.ttt.write_modalities)
        self.heads = nn.ModuleDict({m: nn.Linear(cfg.d_model, cfg.d_model) for m in MODALITIES})
        self.decoders = Decoders(cfg) if cfg.train.decoder_weight > 0 else None

    # ------------------------------------------------------------------ forward
    def encode(self, modality: str, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """One modality -> (B, D) L2-normalised joint embeddings."""
        return self._embed(modality, self._latent(modality, inputs, mask))

    def forward(self, batch: dict[str, torch.Tensor]) -> NLMMOutput:
        """`batch` holds any non-empty subset of 'text', 'image', 'audio' (+ optional '<m>_mask').

        Modalities may hold different numbers of items when the batch says which rows belong together
        ('<m>_index', as the data collate makes them).
        """
        unknown = [k for k in batch if k not in BATCH_KEYS]
        if unknown:
            raise ValueError(f"unknown batch keys {unknown}; expected some of {', '.join(MODALITIES)} "
                             "(+ '<modality>_mask', '<modality>_index')")
        present = [m for m in MODALITIES if batch.get(m) is not None]
        if not present:
            raise ValueError("NLMM needs at least one of text, image or audio; the batch has none")
        sizes = {m: len(batch[m]) for m in present}
        indexed = any(f"{m}_index" in batch for m in present)
        if len(set(sizes.values())) != 1 and not indexed:
            raise ValueError(f"modalities in one batch must hold the same number of items, got {sizes}")
        latents = {m: self._latent(m, batch[m], batch.get(f"{m}_mask")) for m in present}
        embeddings = {m: self._embed(m, z) for m, z in latents.items()}
        decoder_loss = None
        if self.decoders is not None:
            decoder_loss = sum(self.decoders.loss(m, z, batch[m], batch.get(f"{m}_mask"))
                               for m, z in latents.items()) / len(latents)
        return NLMMOutput(embeddings, decoder_loss)

    def _latent(self, modality: str, inputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality '{modality}'; expected one of {', '.join(MODALITIES)}")
        if inputs is None or len(inputs) == 0:
            raise ValueError(f"{modality}: empty input (0 items)")
        pooled = self.encoders[modality](inputs, mask)
        return self.memory(pooled, modality)

    def _embed(self, modality: str, latent: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.heads[modality](latent).float(), dim=-1)

    # ------------------------------------------------------------------ nested levels
    def level_parameters(self) -> dict[str, list[nn.Parameter]]:
        """CMS parameters grouped by level name (every block of every encoder)."""
        groups: dict[str, list[nn.Parameter]] = {name: [] for name in self.cfg.level_names()}
        for name, param in self.named_parameters():
            level = _level_of(name)
            if level is not None:
                groups[level].append(param)
        return groups

    def named_outer_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Everything outside the CMS levels: stepped every step (the outer level)."""
        return [(name, p) for name, p in self.named_parameters() if _level_of(name) is None]

    def outer_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self.named_outer_parameters()]

    def learn_only(self, modalities) -> int:
        """Freeze every weight that does not read one of `modalities`: the other modalities' encoders, heads
        and decoders, and the central memory every modality passes through. Teaching the model a voice
        then leaves how it reads images and text exactly as it was, and the voice is learnt against them.
        Returns how many parameters were frozen (none when `modalities` is empty or names them all)."""
        keep = set(modalities)
        if not keep or keep >= set(MODALITIES):
            return 0
        frozen = 0
        for name, param in self.named_parameters():
            reads = next((m for m in MODALITIES if m in name.split(".")[:3]), None)
            if reads not in keep:
                param.requires_grad_(False)
                frozen += param.numel()
        return frozen

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @staticmethod
    def count_parameters(cfg: NLMMConfig) -> int:
        """The exact count of a config's model, built on the meta device: no memory, milliseconds even at 140 M."""
        with torch.device("meta"):
            return NLMM(cfg).num_parameters()

    # ------------------------------------------------------------------ self-modification and TTT
    def self_modifying_layers(self) -> list[SelfModifyingLinear]:
        return [m for m in self.modules() if isinstance(m, SelfModifyingLinear)]

    def apply_pending_updates(self, average=None) -> int:
        """Apply the HOPE updates deferred during a training forward (call after the optimiser step).
        Under data parallelism `average` (a tensor -> tensor all-reduce mean) keeps every rank's weights
        identical, since each rank computed its update from its own shard of the batch."""
        applied = 0
        for layer in self.self_modifying_layers():
            if layer.pending_update is not None and average is not None:
                layer.pending_update = average(layer.pending_update)
            applied += layer.apply_pending_update()
        return applied

    @contextlib.contextmanager
    def adaptation_scope(self, memory: bool = True, hope: bool = True):
        """Adapt while inside (memory writes, HOPE updates); restore every weight on exit."""
        layers = self.self_modifying_layers() if hope else []
        saved = [layer.weight.detach().clone() for layer in layers]
        saved_slots = self.memory.slots.detach().clone()
        self.set_adapting(memory=memory, hope=hope)
        try:
            yield self
        finally:
            self.set_adapting(memory=False, hope=False)
            with torch.no_grad():
                for layer, weight in zip(layers, saved):
                    layer.weight.copy_(weight)
                    layer.pending_update = None
                self.memory.slots.copy_(saved_slots)
            self.reset_memory()

    def set_adapting(self, memory: bool = True, hope: bool = False) -> None:
        """Switch test-time training on or off (memory writes and/or HOPE updates); eval mode only."""
        self.memory.adapting = memory and self.cfg.ttt.enable
        self.encoders["audio"].domain.adapting = memory and self.cfg.ttt.enable
        for layer in self.self_modifying_layers():
            layer.adapting = hope

    def reset_memory(self) -> None:
        """Forget every test-time write: central memory slots and the audio domain memory."""
        self.memory.reset()
        self.encoders["audio"].domain.reset()


def _level_of(param_name: str) -> str | None:
    parts = param_name.split(".")
    for i in range(len(parts) - 2):
        if parts[i] == "cms" and parts[i + 1] == "levels":
            return parts[i + 2]
    return None
