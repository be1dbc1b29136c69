"""Nested-level update scheduler (Continuum Memory System cadence, Eqs. 30-31).

Every level ``l`` owns some parameters, an optimizer and a chunk size ``C_l``: its parameters
change only on steps ``t`` with ``t % C_l == 0``, from the gradients of the ``C_l`` steps of that
chunk. The "outer" parameters (everything not in a level) are stepped every step.

Each call to :meth:`LevelScheduler.step` moves a level's ``.grad`` into a scheduler-owned
accumulator and clears it, so

* a caller's gradient clipping only ever sees one step's gradient, and
* a slow level's parameters are bit-identical between its steps (a seed bug: the level kept
  changing because its grads were never cleared).

At the chunk boundary the level steps on the *mean* of the chunk's gradients, not the sum: the
mean has the scale of a single-step gradient, so a slow level's lr stays comparable with a fast
level's (the sum of 256 steps at an unscaled lr was another seed bug). For SGD this is exactly
``theta <- theta - (eta_l / C_l) * sum_{t in chunk} grad_t`` of the design notes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from engine.config import OPTIMIZERS

from .dmgd import DMGD


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """"adamw" -> AdamW, "sgd" -> SGD(momentum=0.9), "dmgd" -> DMGD."""
    params = list(params)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=can_fuse(params))
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if name == "dmgd":
        return DMGD(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}")


def can_fuse(params: list[torch.Tensor]) -> bool:
    """torch's fused Adam/AdamW: one kernel for every tensor (on 2 cores the per-tensor loop took 9 ms of
    a step for the tiny model, fused 1.7 ms). It needs floating-point tensors on the CPU or CUDA."""
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


@dataclass
class StepReport:
    step: int                                           # the step just taken (1 on the first call)
    stepped: list[str] = field(default_factory=list)    # levels that stepped, in level order
    lrs: dict[str, float] = field(default_factory=dict)  # lr of each level and of "outer" now


class LevelScheduler:
    def __init__(self, level_params: dict[str, list[nn.Parameter]], levels: list,
                 outer_params: list[nn.Parameter], outer_lr: float, outer_optimizer: str = "adamw",
                 weight_decay: float = 0.0):
        names = [lv.name for lv in levels]
        if len(set(names)) != len(names):
            raise ValueError(f"level names must be unique, got {names}")
        unknown = set(level_params) - set(names)
        if unknown:
            raise ValueError(f"level_params has params for unknown levels {sorted(unknown)}; levels: {names}")
        for lv in levels:
            if isinstance(lv.chunk_size, bool) or not isinstance(lv.chunk_size, int) or lv.chunk_size < 1:
                raise ValueError(f"level {lv.name!r}: chunk_size must be an int >= 1, got {lv.chunk_size!r}")
            if lv.optimizer not in OPTIMIZERS:  # fail at construction even for a level with no params
                raise ValueError(f"level {lv.name!r}: unknown optimizer {lv.optimizer!r}; "
                                 f"allowed: {', '.join(OPTIMIZERS)}")
        self.levels = list(levels)
        self.params = {lv.name: list(level_params.get(lv.name, [])) for lv in levels}
        self.outer_params = list(outer_params)
        seen: set[int] = set()
        for group in [self.outer_params, *self.params.values()]:
            for p in group:  # a shared param would be stepped by two optimizers
                if id(p) in seen:
                    raise ValueError("a parameter belongs to more than one level (or to a level and outer)")
                seen.add(id(p))
        self.outer_lr = outer_lr
        self.outer = make_optimizer(outer_optimizer, self.outer_params, outer_lr, weight_decay) \
            if self.outer_params else None
        self.optimizers: dict[str, Optional[torch.optim.Optimizer]] = {
            lv.name: make_optimizer(lv.optimizer, self.params[lv.name], lv.lr,
                                    getattr(lv, "weight_decay", 0.0)) if self.params[lv.name] else None
            for lv in levels}
        # None until a gradient arrives in the chunk: a param without any gradient is not stepped.
        self.accumulators: dict[str, list[Optional[torch.Tensor]]] = {
            lv.name: [None] * len(self.params[lv.name]) for lv in levels}
        self.t = 0

    def levels_due(self, step: int) -> list[str]:
        """Names of the levels whose chunk size divides ``step`` (in level order)."""
        return [lv.name for lv in self.levels if step % lv.chunk_size == 0]

    def lrs(self, lr_scale: float = 1.0) -> dict[str, float]:
        return {**{lv.name: lv.lr * lr_scale for lv in self.levels}, "outer": self.outer_lr * lr_scale}

    @staticmethod
    def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
        for group in opt.param_groups:
            group["lr"] = lr

    def step(self, lr_scale: float = 1.0) -> StepReport:
        """Call after ``loss.backward()`` (and after any gradient clipping)."""
        self.t += 1
        if self.outer is not None:
            self._set_lr(self.outer, self.outer_lr * lr_scale)
            self.outer.step()
            self.outer.zero_grad(set_to_none=True)
        due = set(self.levels_due(self.t))
        stepped = []
        for lv in self.levels:
            params, acc = self.params[lv.name], self.accumulators[lv.name]
            for i, p in enumerate(params):
                if p.grad is not None:
                    acc[i] = p.grad.detach().clone() if acc[i] is None else acc[i].add_(p.grad)
                    p.grad = None
            if lv.name not in due:
                continue
            stepped.append(lv.name)
            opt = self.optimizers[lv.name]
            if opt is None:
                continue
            for i, p in enumerate(params):
                p.grad = None if acc[i] is None else acc[i] / lv.chunk_size  # mean over the chunk
            self._set_lr(opt, lv.lr * lr_scale)
            opt.step()
            opt.zero_grad(set_to_none=True)
            self.accumulators[lv.name] = [None] * len(params)
        return StepReport(step=self.t, stepped=stepped, lrs=self.lrs(lr_scale))

    def zero_grad(self) -> None:
        """Clear the current ``.grad`` of every param; accumulated chunk gradients are kept."""
        for p in [*self.outer_params, *(p for ps in self.params.values() for p in ps)]:
            p.grad = None

    def state_dict(self) -> dict:
        """Step counter, every optimizer's state and the accumulators (``weights_only``-loadable)."""
        return {
            "step": self.t,
            "outer": None if self.outer is None else self.outer.state_dict(),
            "levels": {lv.name: {
                "optimizer": None if self.optimizers[lv.name] is None else self.optimizers[lv.name].state_dict(),
                "accumulators": [None if a is None else a.clone() for a in self.accumulators[lv.name]],
            } for lv in self.levels},
        }

    def load_state_dict(self, state: dict) -> None:
        if set(state["levels"]) != set(self.params):
            raise ValueError(f"checkpoint levels {sorted(state['levels'])} != scheduler levels {sorted(self.params)}")
        for name, entry in state["levels"].items():
            if len(entry["accumulators"]) != len(self.params[name]):
                raise ValueError(f"level {name!r}: checkpoint has {len(entry['accumulators'])} accumulators "
                                 f"for {len(self.params[name])} params")
        self.t = int(state["step"])
        if self.outer is not None:
            self.outer.load_state_dict(state["outer"])
        for name, entry in state["levels"].items():
            if self.optimizers[name] is not None:
                self.optimizers[name].load_state_dict(entry["optimizer"])
            self.accumulators[name] = [None if a is None else a.to(p.device).clone()
                                       for a, p in zip(entry["accumulators"], self.params[name])]
