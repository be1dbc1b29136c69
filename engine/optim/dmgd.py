"""Deep Momentum Gradient Descent (Nested Learning, Sec. 2.3, Eqs. 21-23).

Momentum is an associative memory that compresses past gradients. DMGD keeps the classic
heavy-ball buffer ``m <- momentum*m + g`` and adds a small *deep* memory phi (an MLP shared by all
parameters and applied per coordinate) that reads the key ``k = [g/s, m/s]`` (``s`` = RMS of the
gradient over the tensor, so phi is shape-agnostic and scale-invariant) and corrects the update:

    d = m + s * phi(k),        p <- p - lr * (d + weight_decay * p)

phi's output layer starts at zero, so at initialisation DMGD *is* heavy-ball momentum (no random
sign, never gradient ascent), and its output is bounded by ``tanh``, so the correction can never
exceed ``memory_bound * s`` per coordinate. phi is trained online, one step of its own Adam per
``step()``, on pairs (key of a coordinate at step t-1, normalised gradient of that coordinate at
step t) gathered from a deterministic subsample of coordinates. See ``internal_loss_mode``.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import nn

_MODES = ("surrogate", "l2_regression")


class DMGD(torch.optim.Optimizer):
    """Heavy-ball momentum plus a learned, bounded, per-coordinate correction.

    internal_loss_mode:
      * ``"l2_regression"`` (paper-style): a linear memory ``P in R^{1x2}`` is written by the
        normalised delta rule ``P <- P - beta * mean((P k - v) k^T / (|k|^2 + eps))`` with ``k`` the
        previous step's key of a coordinate and ``v`` its gradient now (in the previous step's
        units ``g_t / s_{t-1}``): P learns to *predict the next gradient from the current
        context*. phi then takes one step on ``|phi(k) - clamp(P k)|^2`` (the deep memory
        regresses onto, and can refine, the linear one). Because phi anticipates the coming
        gradient, ``d = m + s*phi`` adds that anticipated gradient to the momentum: a learned
        look-ahead, in the spirit of Nesterov momentum.
      * ``"surrogate"``: phi takes one step on
        ``(1 - cos(d_hat, v)) + (|d_hat| / |m_hat| - 1)^2`` where ``d_hat = m/s + phi(k)`` is last
        step's update direction (normalised) and ``v`` the gradient observed *after* it was taken.
        The first term is a bounded form of the paper's dot-product objective ``-<d, u>``: the
        update should be a descent direction for the loss it leads to (aligning with the *current*
        gradient instead would just teach phi to cancel the momentum). The second term keeps the
        corrected direction as long as the momentum (phi may turn it, not rescale it), so the step
        size stays governed by lr and momentum. Both terms are bounded for bounded phi.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9, memory_lr: float = 1e-3,
                 memory_hidden: int = 16, internal_loss_mode: str = "surrogate",
                 weight_decay: float = 0.0, *, memory_samples: int = 4096, memory_bound: float = 1.0,
                 delta_beta: float = 0.5, seed: int = 0, eps: float = 1e-8):
        if not (isinstance(lr, (int, float)) and lr >= 0):
            raise ValueError(f"lr must be a number >= 0, got {lr!r}")
        if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if not (isinstance(memory_lr, (int, float)) and memory_lr >= 0):
            raise ValueError(f"memory_lr must be a number >= 0, got {memory_lr!r}")
        if isinstance(memory_hidden, bool) or not isinstance(memory_hidden, int) or memory_hidden < 1:
            raise ValueError(f"memory_hidden must be an int >= 1, got {memory_hidden!r}")
        if internal_loss_mode not in _MODES:
            raise ValueError(f"internal_loss_mode must be 'surrogate' or 'l2_regression', "
                             f"got {internal_loss_mode!r}")
        if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
            raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
        if not (isinstance(memory_samples, int) and memory_samples >= 1):
            raise ValueError(f"memory_samples must be an int >= 1, got {memory_samples!r}")
        if not (memory_bound > 0):
            raise ValueError(f"memory_bound must be > 0, got {memory_bound!r}")
        if not (0 < delta_beta <= 1):
            raise ValueError(f"delta_beta must be in (0, 1], got {delta_beta!r}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        self.internal_loss_mode = internal_loss_mode
        self.memory_samples, self.memory_bound = memory_samples, float(memory_bound)
        self.delta_beta, self.eps = float(delta_beta), float(eps)

        device = self.param_groups[0]["params"][0].device
        with torch.random.fork_rng(devices=[]):  # seeded init that leaves the global RNG untouched
            torch.manual_seed(seed)
            self.memory = nn.Sequential(nn.Linear(2, memory_hidden), nn.Tanh(), nn.Linear(memory_hidden, 1))
        with torch.no_grad():  # zero output layer: DMGD starts as exact heavy-ball momentum
            self.memory[2].weight.zero_()
            self.memory[2].bias.zero_()
        self.memory.to(device)
        self.memory_optimizer = torch.optim.Adam(self.memory.parameters(), lr=memory_lr)
        # Linear memory for l2_regression; prior "next gradient = current gradient".
        self.projection = torch.tensor([[1.0, 0.0]], device=device)
        self.generator = torch.Generator().manual_seed(seed)  # CPU: reproducible on any device
        self._last_internal_loss: Optional[torch.Tensor] = None

    # -- the deep memory -------------------------------------------------------------------------
    def _phi(self, keys: torch.Tensor) -> torch.Tensor:
        """Bounded memory read, (N, 2) float32 -> (N,)."""
        return self.memory_bound * torch.tanh(self.memory(keys).squeeze(-1))

    def _phi_chunked(self, keys: torch.Tensor, chunk: int = 1 << 18) -> torch.Tensor:
        # Chunked so a huge tensor never materialises a (numel, hidden) activation at once.
        return torch.cat([self._phi(keys[i:i + chunk]) for i in range(0, keys.shape[0], chunk)])

    @property
    def last_internal_loss(self) -> Optional[float]:
        """phi's internal loss at the last step that trained it (None before the first one)."""
        return None if self._last_internal_loss is None else float(self._last_internal_loss)

    def _train_memory(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """One internal step on pairs (key at t-1, normalised gradient at t)."""
        if self.internal_loss_mode == "l2_regression":
            with torch.no_grad():  # normalised delta rule on the linear memory P
                err = keys @ self.projection.T - values[:, None]                        # (N, 1)
                write = err * keys / (keys.pow(2).sum(-1, keepdim=True) + self.eps)     # (N, 2)
                self.projection -= self.delta_beta * write.mean(0, keepdim=True)
                # phi's output is bounded, so its target is the bounded linear prediction.
                target = (keys @ self.projection.T).squeeze(-1).clamp(-self.memory_bound, self.memory_bound)
            with torch.enable_grad():
                loss = (self._phi(keys) - target).pow(2).mean()
        else:
            with torch.enable_grad():
                d_hat = keys[:, 1] + self._phi(keys)
                cos = (d_hat @ values) / (d_hat.norm() * values.norm() + self.eps)
                ratio = d_hat.norm() / (keys[:, 1].norm() + self.eps)
                loss = (1 - cos) + (ratio - 1).pow(2)
        self.memory_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.memory_optimizer.step()
        self._last_internal_loss = loss.detach()

    # -- the optimiser step ----------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], float]] = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        live = [(p, grp) for grp in self.param_groups for p in grp["params"] if p.grad is not None]
        if not live:
            return loss
        dev = self.projection.device

        # 1. Momentum, keys, and the (key at t-1, gradient at t) pairs that phi learns from.
        scales, pairs_k, pairs_v = [], [], []
        for p, group in live:
            st, g = self.state[p], p.grad
            if "momentum_buffer" not in st:
                st["momentum_buffer"] = torch.zeros_like(p)
            st["momentum_buffer"].mul_(group["momentum"]).add_(g)
            g32 = g.detach().float()
            scales.append(g32.pow(2).mean().sqrt() + self.eps)
            if "memory_idx" in st:
                pairs_k.append(st["memory_key"].float().to(dev))
                pairs_v.append((g32.flatten()[st["memory_idx"]] / st["memory_scale"].float()).to(dev))

        # 2. The memory observes the newest gradients before it is read (none on the first step).
        if pairs_k:
            self._train_memory(torch.cat(pairs_k), torch.cat(pairs_v))

        # 3. Update: d = m + s*phi(k); sample the coordinates whose keys phi will learn from next.
        total = sum(p.numel() for p, _ in live)
        for (p, group), s in zip(live, scales):
            st = self.state[p]
            m = st["momentum_buffer"]
            # Keys are built one tensor at a time so only one (numel, 2) copy exists at once.
            k = torch.stack([p.grad.float().flatten(), m.float().flatten()], -1) / s
            corr = self._phi_chunked(k.to(dev)).to(p.device).view_as(p)
            d = m + (s * corr).to(p.dtype)
            if group["weight_decay"]:
                d = d + group["weight_decay"] * p
            p.add_(d, alpha=-group["lr"])

            n = min(p.numel(), max(1, math.ceil(self.memory_samples * p.numel() / total)))
            idx = torch.randint(p.numel(), (n,), generator=self.generator).to(p.device)
            st["memory_idx"], st["memory_key"], st["memory_scale"] = idx, k[idx], s
        return loss

    # -- checkpointing (phi, P, phi's optimiser and the sampler travel with the state) -----------
    def state_dict(self):
        sd = super().state_dict()
        sd["memory"] = {
            "phi": {k: v.detach().clone() for k, v in self.memory.state_dict().items()},
            "projection": self.projection.clone(),
            "memory_optimizer": self.memory_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "internal_loss_mode": self.internal_loss_mode,
            "last_internal_loss": self.last_internal_loss,
        }
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        mem = state_dict.pop("memory", None)
        if mem is None:
            raise ValueError("DMGD state_dict has no 'memory' entry (phi, P, ...): not a DMGD checkpoint")
        if mem["internal_loss_mode"] != self.internal_loss_mode:
            raise ValueError(f"checkpoint internal_loss_mode is {mem['internal_loss_mode']!r}, "
                             f"this optimizer uses {self.internal_loss_mode!r}")
        super().load_state_dict(state_dict)
        # The base class casts every state tensor to the param's dtype; the sampled indices must
        # stay integers and the float32 keys stay float32, so put those back as saved.
        saved_ids = [i for g in state_dict["param_groups"] for i in g["params"]]
        params = [p for g in self.param_groups for p in g["params"]]
        for i, p in zip(saved_ids, params):
            saved = state_dict["state"].get(i, {})
            for key in ("memory_idx", "memory_key", "memory_scale"):
                if key in saved:
                    self.state[p][key] = saved[key].to(p.device, copy=True)
        self.memory.load_state_dict(mem["phi"])
        self.projection.copy_(mem["projection"])
        self.memory_optimizer.load_state_dict(mem["memory_optimizer"])
        self.generator.set_state(mem["generator"].cpu())
        last = mem["last_internal_loss"]
        self._last_internal_loss = None if last is None else torch.tensor(last)

