"""Test-time adaptation of the audio front end: a slot memory of acoustic domains.

Why: the central memory's writes did not help retrieval when the audio domain shifts (new voices,
noise, pitch: `nlmm bench ttt` measured no gain), while the shift is mostly visible in the statistics of
the log-mel bins (a noise floor lifts the quiet bins). So the audio encoder keeps
  - the training domain's per-bin mean and variance (running averages, like batch norm, learnt in
    training and saved with the checkpoint), and the spread of utterance "signatures" around it;
  - at test time, up to `n_slots` stream domains, each with the per-bin statistics of the queries
    routed to it (the writes).
Each query is routed by its signature (per-bin mean and floor over its frames): within the training domain's
usual spread it is left untouched; otherwise it goes to the nearest stream domain, which re-normalises
its bins to the training statistics. A query far from every domain opens a new slot (the least recently
used one is recycled). Writes happen
only while adapting; reads use whatever the memory holds, and `reset()` forgets every stream domain.
"""
from __future__ import annotations

import torch
from torch import nn


class DomainMemory(nn.Module):
    def __init__(self, n_mels: int, n_slots: int = 8, momentum: float = 0.01, spread: float = 3.0):
        super().__init__()
        self.n_slots, self.momentum, self.spread = n_slots, momentum, spread
        self.register_buffer("train_mean", torch.zeros(n_mels))
        self.register_buffer("train_var", torch.ones(n_mels))
        self.register_buffer("train_signature", torch.zeros(2 * n_mels))
        self.register_buffer("distance_mean", torch.zeros(()))
        self.register_buffer("distance_var", torch.ones(()))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self.adapting = False
        self.reset()

    def reset(self) -> None:
        """Forget every stream domain (the training statistics stay)."""
        self.slots: list[dict] = []
        self.clock = 0
        self.last_route: list[int] = []

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _frames(mel: torch.Tensor, mask: torch.Tensor | None, row: int) -> torch.Tensor:
        frames = mel[row].T  # (F, n_mels)
        return frames if mask is None else frames[mask[row]]

    @staticmethod
    def signature(frames: torch.Tensor) -> torch.Tensor:
        """What identifies a domain: the per-bin mean and the per-bin floor (10th percentile) over frames;
        the floor is where a noise background shows."""
        return DomainMemory._signatures(frames.T[None], None)[0]

    @staticmethod
    def _signatures(mel: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """`signature` of every row at once (padding frames ignored)."""
        return DomainMemory._frame_statistics(mel, mask)[0]

    @staticmethod
    def _frame_statistics(mel: torch.Tensor, mask: torch.Tensor | None):
        """Each row's signature, and the per-bin mean and (unbiased) variance of every real frame of the
        batch together, from per-row sums in one pass (gathering the frames first cost twice as long)."""
        bins = mel.float()  # (B, n_mels, F)
        if mask is None:
            mask = torch.ones(bins.shape[0], bins.shape[2], dtype=torch.bool, device=bins.device)
        counts = mask.sum(1)
        kept = bins * mask[:, None].to(bins.dtype)
        sums, squares = kept.sum(-1), (kept * bins).sum(-1)   # (B, n_mels)
        signatures = torch.cat([sums / counts.clamp_min(1)[:, None], _floor(bins, mask, counts.clamp_min(1))], dim=-1)
        n = int(counts.sum())
        mean = sums.double().sum(0) / n   # in double: the sum of squares less n mean^2 must not cancel
        var = (squares.double().sum(0) - n * mean.pow(2)) / max(n - 1, 1)
        return signatures, mean.float(), var.float(), n

    def _distance(self, signature: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
        scale = self.train_var.sqrt().clamp_min(1e-3).repeat(2)
        return ((signature - center) / scale).pow(2).mean(-1).sqrt()

    def threshold(self) -> float:
        return float(self.distance_mean + self.spread * self.distance_var.sqrt())

    # ------------------------------------------------------------------ training: learn the domain
    @torch.no_grad()
    def _learn(self, mel: torch.Tensor, mask: torch.Tensor | None) -> None:
        signatures, mean, var, n_frames = self._frame_statistics(mel, mask)
        if n_frames < 2:
            return
        m = self.momentum if self.updates > 0 else 1.0
        self.train_mean.lerp_(_rank_mean(mean), m)
        self.train_var.lerp_(_rank_mean(var), m)
        self.train_signature.lerp_(_rank_mean(signatures.mean(0)), m)
        distances = self._distance(signatures, self.train_signature)
        self.distance_mean.lerp_(_rank_mean(distances.mean()), m)
        spread = distances.var() if len(distances) > 1 else torch.zeros((), device=distances.device)
        self.distance_var.lerp_(_rank_mean(spread), m)
        self.updates += 1

    # ------------------------------------------------------------------ test time: route, read, write
    def forward(self, mel: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """mel (B, n_mels, F) -> the same, re-normalised for queries routed to a stream domain."""
        if self.training:
            self._learn(mel, mask)
            return mel
        if self.updates == 0 or (not self.slots and not self.adapting):
            return mel
        return self._route(mel, mask)

    @torch.no_grad()
    def _route(self, mel: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        out, self.last_route = mel.clone(), []
        for b in range(len(mel)):
            frames = self._frames(mel, mask, b).float()
            signature = self.signature(frames)
            # A query within the training domain's usual spread stays untouched: adapting to a noisy
            # stream must never change how clean queries are read.
            nearest = 0
            to_training = float(self._distance(signature, self.train_signature))
            if to_training > self.threshold():
                distances = [float(self._distance(signature, slot["center"])) for slot in self.slots]
                closest = min(range(len(distances)), key=distances.__getitem__) if distances else None
                if closest is not None and distances[closest] <= min(self.threshold(), to_training):
                    nearest = 1 + closest
                elif self.adapting:
                    nearest = self._open_slot(signature)
            if nearest > 0 and self.adapting:
                self._write(self.slots[nearest - 1], frames, signature)
            self.last_route.append(nearest)
            if nearest > 0:
                slot = self.slots[nearest - 1]
                mean = slot["sum"] / slot["count"]
                var = (slot["sumsq"] / slot["count"] - mean.pow(2)).clamp_min(1e-4)
                scale = (self.train_var / var).sqrt()
                out[b] = ((mel[b].float() - mean[:, None]) * scale[:, None] + self.train_mean[:, None]).to(mel.dtype)
        return out

    def _open_slot(self, signature: torch.Tensor) -> int:
        if len(self.slots) >= self.n_slots:
            self.slots.pop(min(range(len(self.slots)), key=lambda i: self.slots[i]["used"]))
        zeros = torch.zeros_like(self.train_mean)
        self.slots.append({"center": signature.clone(), "sum": zeros.clone(), "sumsq": zeros.clone(),
                           "count": 0, "queries": 0, "used": self.clock})
        return len(self.slots)

    def _write(self, slot: dict, frames: torch.Tensor, signature: torch.Tensor) -> None:
        self.clock += 1
        slot["sum"] = slot["sum"] + frames.sum(0)
        slot["sumsq"] = slot["sumsq"] + frames.pow(2).sum(0)
        slot["count"] += len(frames)
        slot["queries"] += 1
        slot["center"] = slot["center"] + (signature - slot["center"]) / slot["queries"]
        slot["used"] = self.clock

    def describe(self) -> dict:
        """Plain numpy copies for a viewer: each stream domain's size, how far it lies from the training
        domain (1.0 = the routing threshold) and its per-bin level offset from the training mean (the
        correction its queries get), plus where the last queries were routed (0 = training domain)."""
        threshold = max(self.threshold(), 1e-6)
        domains = []
        for slot in self.slots:
            mean = slot["sum"] / max(slot["count"], 1)
            domains.append({"queries": int(slot["queries"]), "frames": int(slot["count"]),
                            "distance": float(self._distance(slot["center"], self.train_signature)) / threshold,
                            "offset": (mean - self.train_mean).float().cpu().numpy().copy()})
        return {"domains": domains, "last_route": list(self.last_route), "n_mels": int(self.train_mean.numel()),
                "capacity": int(self.n_slots)}


def _rank_mean(value: torch.Tensor) -> torch.Tensor:
    """Average over data-parallel ranks, so every rank learns the same statistics."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        value = value.clone()
        torch.distributed.all_reduce(value)
        value /= torch.distributed.get_world_size()
    return value


def _floor(bins: torch.Tensor, mask: torch.Tensor, counts: torch.Tensor, q: float = 0.1) -> torch.Tensor:
    """The q-quantile (linear interpolation, as `torch.quantile`) of each bin over a row's frames, from
    the few smallest values only (a partial sort: the full sort of `nanquantile` cost 5 % of a training step)."""
    position = q * (counts - 1).to(bins.dtype)
    below = position.floor()
    weight = (position - below)[:, None, None]
    k = min(int(below.max()) + 2, bins.shape[-1])
    smallest = bins.masked_fill(~mask[:, None], float("inf")).topk(k, dim=-1, largest=False).values
    shape = (bins.shape[0], bins.shape[1], 1)
    low = below.long()[:, None, None].expand(shape)
    high = torch.minimum(low + 1, (counts - 1)[:, None, None].expand(shape))
    return (smallest.gather(-1, low) * (1 - weight) + smallest.gather(-1, high) * weight).squeeze(-1)
