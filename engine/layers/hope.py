"""HOPE self-modifying projections: a linear map whose weights change with what it reads.

Paper-exact update (Eqs. 28-29): ``W <- W (I - lr x x^T)``; the normalised variant divides by
``x^T x`` so the step is bounded whatever the activation scale. For a batch of N vectors the update
uses the mean outer product ``(1/N) sum x x^T`` (for one vector it is exactly the formula above).

- Training: the update is computed in forward and *deferred* (`pending_update`); the trainer applies it
  after the optimiser step, so autograd always sees the weights the forward pass used.
- Inference with adaptation on: applied at once after each forward; `adaptation_scope()` in the model
  snapshots and restores the weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def input_outer_mean(x: torch.Tensor, mode: str, dtype: torch.dtype) -> torch.Tensor:
    """G, the mean outer product of the rows of x (each of unit length in the normalised mode)."""
    rows = x.reshape(-1, x.shape[-1]).to(dtype)
    if mode == "normalized":
        rows = rows / rows.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    return rows.T @ rows / max(rows.shape[0], 1)


def self_modification(weight: torch.Tensor, x: torch.Tensor, lr: float, mode: str) -> torch.Tensor:
    """The change ``W (I - lr G) - W = -lr W G`` with G the mean outer product of the rows of x."""
    return -lr * (weight @ input_outer_mean(x, mode, weight.dtype))


class SelfModifyingLinear(nn.Linear):
    def __init__(self, in_features: int, out_features: int, bias: bool = False,
                 lr: float = 1e-3, mode: str = "normalized"):
        super().__init__(in_features, out_features, bias=bias)
        self.lr, self.mode = lr, mode
        self.adapting = False  # set by the model's adaptation_scope()
        self.pending_update: torch.Tensor | None = None

    def modifies(self) -> bool:
        # A frozen layer (a fine-tune that keeps this modality as it was) does not modify itself either.
        return self.lr > 0 and ((self.training and self.weight.requires_grad) or self.adapting)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)
        self.modify(x)
        return y

    @torch.no_grad()
    def modify(self, x: torch.Tensor | None = None, outer_mean: torch.Tensor | None = None) -> None:
        """The self-modification for input x (or its `input_outer_mean`, when layers reading the same x
        share it): deferred while training, applied at once while adapting."""
        if not self.modifies():
            return
        if outer_mean is None:
            outer_mean = input_outer_mean(x.detach(), self.mode, self.weight.dtype)
        self.pending_update = -self.lr * (self.weight @ outer_mean)
        if self.adapting and not self.training:
            self.apply_pending_update()

    @torch.no_grad()
    def apply_pending_update(self) -> bool:
        if self.pending_update is None:
            return False
        self.weight.add_(self.pending_update)
        self.pending_update = None
        return True

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, hope_lr={self.lr}, mode={self.mode}"
