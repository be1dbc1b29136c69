"""Continuum Memory System (Eqs. 30-31): one MLP per level, each updated at its own cadence.

Each level's map is the pre-norm residual MLP ``h -> h + FFN_l(LN(h))``. The two compositions:
- residual (stable default): ``y = x + sum_l FFN_l(LN_l(x))`` — the levels read the same input;
- nested (paper-exact):       ``y = MLP_L(... MLP_2(MLP_1(x)))`` — each level reads the one below.

The cadence itself (level l steps every chunk_size steps) lives in `engine.optim.levels`; the model
exposes each level's parameters by name so the scheduler can group them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LevelMLP(nn.Module):
    """The branch FFN_l(LN(h)) of one level."""

    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.up = nn.Linear(d_model, hidden)
        self.act = nn.GELU()
        self.down = nn.Linear(hidden, d_model)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(self.norm(h))))


class ContinuumMemory(nn.Module):
    def __init__(self, d_model: int, hidden: int, level_names: list[str], mode: str = "residual"):
        super().__init__()
        if mode not in ("residual", "nested"):
            raise ValueError(f"mode must be 'residual' or 'nested', got {mode!r}")
        self.mode = mode
        self.levels = nn.ModuleDict({name: LevelMLP(d_model, hidden) for name in level_names})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "residual":
            return x + self._residual_branches(x)
        h = x
        for level in self.levels.values():
            h = h + level(h)
        return h

    def _residual_branches(self, x: torch.Tensor) -> torch.Tensor:
        """sum_l FFN_l(LN_l(x)) as two matmuls for all levels: the levels read the same x, so it is normalised
        once, each level's LayerNorm affine is folded into its `up` weights, the ups are stacked into one and
        the downs side by side into another (one level's parameters stay its own; only the arithmetic is
        shared: on 2 cores the six small matmuls of three levels ran well below the machine's peak)."""
        levels = list(self.levels.values())
        first = levels[0].norm
        normalised = F.layer_norm(x, first.normalized_shape, eps=first.eps)
        up_weight = torch.cat([lv.up.weight * lv.norm.weight for lv in levels])
        up_bias = torch.cat([lv.up.weight @ lv.norm.bias + lv.up.bias for lv in levels])
        hidden = levels[0].act(F.linear(normalised, up_weight, up_bias))
        down_weight = torch.cat([lv.down.weight for lv in levels], dim=1)
        return F.linear(hidden, down_weight, sum(lv.down.bias for lv in levels))
