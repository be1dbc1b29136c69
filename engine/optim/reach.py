"""What learns at test time is kept near what was trained: a projection onto a ball around the trained
value, used by the fast CMS level (one ball per tensor) and the central memory's slots (one per slot)."""
from __future__ import annotations

import torch


def within_reach(value: torch.Tensor, trained: torch.Tensor, fraction: float, dim: int | None = None) -> torch.Tensor:
    """`value`, or where it strayed further than `fraction` x the norm of `trained` from `trained`, the point
    that far along the way; over the whole tensor (`dim` None) or each slice along `dim`. A value within
    reach comes back bit for bit."""
    delta = value - trained
    if dim is None:
        distance, radius = delta.norm(), fraction * trained.norm()
    else:
        distance, radius = delta.norm(dim=dim, keepdim=True), fraction * trained.norm(dim=dim, keepdim=True)
    return torch.where(distance > radius, trained + delta * (radius / distance.clamp_min(1e-12)), value)
