"""The central latent memory: L_mem slots shared by every modality, read always, written at test time.

Read (every modality):  a = softmax(q M^T / sqrt(d)),  r = a M,  z' = z + W_o r,
where q comes from z plus a learned modality-type embedding, so one memory serves all modalities.

Test-time write (eval mode, under no_grad, only while `adapting`), for each query in stream order:
- gated top-k:    pick the k slots with the largest a_j; proposal u_j = f([M_j, z]), gate
                  g_j = sigmoid(h([M_j, z])); with rate_j = lr g_j a_j:  M_j <- M_j (1 - rate_j) + u_j rate_j
- l2_regression:  one normalised delta-rule step on 1/2 ||a M - z||^2 restricted to the top-k slots:
                  M_j <- M_j - lr a_j (a M - z) / ||a_topk||^2

At query time each slot stays within `max_move` of its trained value (relative to its norm; set by the
adapter), so a stream of any length cannot carry the memory off. The gate and proposal networks are trained: in training mode, half of the steps read through a
differentiable "virtual write" of the batch's mean latent, so the contrastive loss reaches f and h.
`reset()` restores the trained slots bit for bit; every write is logged (which slots, by how much).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from engine.optim.reach import within_reach
from engine.vocabulary import MODALITIES


@dataclass
class MemoryWrite:
    """One logged test-time write: which slots moved and by how much (L2 norm of the change)."""
    index: int
    modality: str
    slots: np.ndarray
    change: np.ndarray


class CentralMemory(nn.Module):
    def __init__(self, n_slots: int, d_model: int, modalities: tuple[str, ...] = MODALITIES,
                 ttt_mode: str = "gated_topk", topk: int = 4, ttt_lr: float = 0.5,
                 train_write_prob: float = 0.5, log_size: int = 512, write_modalities=None):
        super().__init__()
        self.modalities = modalities
        self.ttt_mode, self.topk, self.ttt_lr = ttt_mode, min(topk, n_slots), ttt_lr
        self.train_write_prob = train_write_prob
        self.slots = nn.Parameter(torch.randn(n_slots, d_model) / math.sqrt(d_model))
        self.type_embedding = nn.Embedding(len(modalities), d_model)
        self.query_norm = nn.LayerNorm(d_model)
        self.query_proj = nn.Linear(d_model, d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model)
        self.proposal = nn.Linear(2 * d_model, d_model)
        self.gate = nn.Linear(2 * d_model, 1)
        self.adapting = False
        self.write_modalities = set(write_modalities if write_modalities is not None else modalities)
        self.writes: deque[MemoryWrite] = deque(maxlen=log_size)
        self.write_count = 0
        self._trained_slots: torch.Tensor | None = None
        self.max_move: float | None = None   # test-time writes keep each slot this near its trained value

    # ------------------------------------------------------------------ read
    def attention(self, z: torch.Tensor, modality: str, slots: torch.Tensor | None = None) -> torch.Tensor:
        slots = self.slots if slots is None else slots
        type_vec = self.type_embedding.weight[self.modalities.index(modality)]
        q = self.query_proj(self.query_norm(z + type_vec))
        logits = q @ slots.transpose(-1, -2) / math.sqrt(q.shape[-1])
        return torch.softmax(logits.float(), dim=-1).to(z.dtype)

    def read(self, z: torch.Tensor, modality: str, slots: torch.Tensor | None = None) -> torch.Tensor:
        slots = self.slots if slots is None else slots
        a = self.attention(z, modality, slots)
        return z + self.out_proj(a @ slots.to(a.dtype))

    def forward(self, z: torch.Tensor, modality: str) -> torch.Tensor:
        """z (B, D) pooled encoder output -> (B, D) after reading (and, when adapting, writing) memory."""
        if self.training and self.ttt_mode == "gated_topk" and torch.rand(()) < self.train_write_prob:
            context = z.detach().mean(0, keepdim=True)
            a = self.attention(context, modality)[0]
            return self.read(z, modality, self._gated_write(self.slots, context[0], a))
        if self.adapting and not self.training and modality in self.write_modalities:
            return self._read_and_write_stream(z, modality)
        return self.read(z, modality)

    # ------------------------------------------------------------------ write
    def _gated_write(self, slots: torch.Tensor, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Differentiable gated top-k write of one latent z (D,) with attention a (L,); returns new slots."""
        top = torch.topk(a, self.topk).indices
        context = torch.cat([slots[top], z.expand(len(top), -1)], dim=-1)
        proposal = self.proposal(context)
        rate = (self.ttt_lr * torch.sigmoid(self.gate(context)) * a[top, None]).clamp(max=1.0)
        new_rows = slots[top] * (1 - rate) + proposal * rate
        return slots.index_copy(0, top, new_rows.to(slots.dtype))

    def _l2_write(self, slots: torch.Tensor, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        top = torch.topk(a, self.topk).indices
        a_top = a[top]
        error = a @ slots - z  # gradient of 1/2 ||a M - z||^2 w.r.t. M_j is a_j * error
        step = self.ttt_lr * a_top[:, None] * error[None, :] / a_top.pow(2).sum().clamp_min(1e-8)
        return slots.index_copy(0, top, slots[top] - step)

    @torch.no_grad()
    def _read_and_write_stream(self, z: torch.Tensor, modality: str) -> torch.Tensor:
        """Queries in stream order: each one reads the memory as the earlier ones left it, then writes."""
        if self._trained_slots is None:
            self._trained_slots = self.slots.detach().clone()
        outputs = []
        for item in z:
            out = self.read(item[None], modality)
            a = self.attention(item[None], modality)[0].float()
            slots = self.slots.float()
            write = self._gated_write if self.ttt_mode == "gated_topk" else self._l2_write
            new_slots = write(slots, item.float(), a)
            if self.max_move:   # each slot, however long the stream
                new_slots = within_reach(new_slots, self._trained_slots.float(), self.max_move, dim=-1)
            change = (new_slots - slots).norm(dim=-1)
            moved = torch.nonzero(change > 0).flatten()
            self.slots.copy_(new_slots.to(self.slots.dtype))
            self.writes.append(MemoryWrite(self.write_count, modality, moved.cpu().numpy(),
                                           change[moved].cpu().numpy()))
            self.write_count += 1
            outputs.append(out)
        return torch.cat(outputs)

    # ------------------------------------------------------------------ observe / restore
    @torch.no_grad()
    def reset(self) -> None:
        """Back to the trained slots, bit for bit; the write log starts afresh."""
        if self._trained_slots is not None:
            self.slots.copy_(self._trained_slots)
        self._trained_slots = None
        self.writes.clear()

    def mark_trained(self) -> None:
        """Accept the current slots as the trained ones (after training steps changed them)."""
        self._trained_slots = None
        self.writes.clear()

    @torch.no_grad()
    def snapshot(self, since: torch.Tensor | None = None) -> dict:
        """Plain numpy copies for a viewer: the slots, each slot's change (L2) since `since` (slots taken
        earlier, as when a training run started; by default the trained slots, i.e. since the last
        reset), the number of test-time writes and the slots the last one moved."""
        slots = self.slots.detach().float().cpu()
        reference = since if since is not None else self._trained_slots
        reference = slots if reference is None else reference.detach().float().cpu()
        last = self.writes[-1] if self.writes else None
        return {"slots": slots.numpy().copy(),
                "change": (slots - reference).norm(dim=-1).numpy(),
                "write_count": self.write_count,
                "last_write_slots": last.slots.copy() if last else np.zeros(0, dtype=np.int64)}

    def writes_since(self, index: int) -> list[MemoryWrite]:
        return [w for w in self.writes if w.index >= index]
