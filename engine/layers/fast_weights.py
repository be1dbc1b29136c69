"""Fast-weight attention: a per-sequence associative memory S written token by token.

Shapes (per head): keys/queries ``(B, H, T, d_k)``, values ``(B, H, T, d_v)``, write strengths
``beta (B, H, T)``, state ``S (B, H, d_v, d_k)``; the output is ``o_t = S_t q_t`` (read after the write).

- delta rule (L2-regression objective):  S_t = S_{t-1} - beta_t (S_{t-1} k_t - v_t) k_t^T
- Hebbian / linear attention:            S_t = S_{t-1} + beta_t v_t k_t^T

`fast_weight_recurrent` is the obviously-correct token loop (the reference);
`fast_weight_chunked` is the fast path (WY/UT form, as in DeltaNet): inside a chunk of C tokens the
C rank-one writes compose through one unit-lower-triangular solve, so the work is batched matmuls plus
one state hand-off per chunk. Tests hold the two together to 1e-10 in float64.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.layers.hope import SelfModifyingLinear, input_outer_mean

RULES = ("delta", "hebbian")


def _initial_state(k: torch.Tensor, v: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
    batch, heads, _, d_k = k.shape
    if state is None:
        return k.new_zeros(batch, heads, v.shape[-1], d_k)
    return state.to(k.dtype)


def fast_weight_recurrent(q, k, v, beta, state=None, rule: str = "delta"):
    """Token-by-token reference. Returns (outputs (B,H,T,d_v), final state (B,H,d_v,d_k))."""
    S = _initial_state(k, v, state)
    outputs = []
    for t in range(k.shape[2]):
        k_t, v_t, b_t = k[:, :, t], v[:, :, t], beta[:, :, t, None, None]
        if rule == "delta":
            error = torch.einsum("bhvk,bhk->bhv", S, k_t) - v_t
            S = S - b_t * error.unsqueeze(-1) * k_t.unsqueeze(-2)
        else:
            S = S + b_t * v_t.unsqueeze(-1) * k_t.unsqueeze(-2)
        outputs.append(torch.einsum("bhvk,bhk->bhv", S, q[:, :, t]))
    return torch.stack(outputs, dim=2), S


def unit_lower_inverse(strictly_lower: torch.Tensor) -> torch.Tensor:
    """(I + A)^-1 for strictly lower-triangular A (..., C, C), by matmuls only (ONNX has no triangular
    solve), as accurate as the solve.

    Block inversion: [[T11, 0], [T21, T22]]^-1 = [[T11^-1, 0], [-T22^-1 T21 T11^-1, T22^-1]], halves
    recursively. (The earlier product form prod_j (I + (-A)^(2^j)) is exact in exact arithmetic, but the
    powers of A grow huge and cancel: with the nearly parallel keys of a trained image encoder's patches
    it was off by 0.19 where the solve is off by 2e-7, and the exported encoder missed its 1e-4 check.)
    """
    C = strictly_lower.shape[-1]
    if C == 1:
        return torch.ones_like(strictly_lower)
    half = C // 2
    top = unit_lower_inverse(strictly_lower[..., :half, :half])
    bottom = unit_lower_inverse(strictly_lower[..., half:, half:])
    corner = -(bottom @ strictly_lower[..., half:, :half]) @ top
    upper = torch.cat([top, torch.zeros_like(strictly_lower[..., :half, half:])], dim=-1)
    return torch.cat([upper, torch.cat([corner, bottom], dim=-1)], dim=-2)


def fast_weight_chunked(q, k, v, beta, chunk_size: int = 32, state=None, rule: str = "delta"):
    """Chunk-parallel form of `fast_weight_recurrent`: same result for any length T."""
    batch, heads, length, d_k = k.shape
    d_v = v.shape[-1]
    S = _initial_state(k, v, state)
    C = max(1, min(chunk_size, length))
    pad = (-length) % C
    if pad:  # padded tokens have beta = 0: they write nothing and are cut off the output
        q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
        beta = F.pad(beta, (0, pad))
    n_chunks = (length + pad) // C
    q, k, v = (x.reshape(batch, heads, n_chunks, C, x.shape[-1]) for x in (q, k, v))
    beta = beta.reshape(batch, heads, n_chunks, C, 1)
    k_beta, v_beta = k * beta, v * beta

    if rule == "delta":
        # (I + tril(diag(beta) K K^T, -1)) W = diag(beta) K, likewise U for V: the WY representation
        strictly_lower = torch.tril(k_beta @ k.transpose(-1, -2), diagonal=-1)
        if torch.onnx.is_in_onnx_export():  # ONNX has no triangular solve: the same by matmuls
            inverse = unit_lower_inverse(strictly_lower)
            w, u = inverse @ k_beta, inverse @ v_beta
        else:
            # one solve for both right-hand sides: half the calls, forward and backward
            system = strictly_lower + torch.eye(C, dtype=k.dtype, device=k.device)
            wu = torch.linalg.solve_triangular(system, torch.cat([k_beta, v_beta], dim=-1), upper=False,
                                               unitriangular=True)
            w, u = wu.split([d_k, d_v], dim=-1)
    else:
        w, u = None, v_beta

    causal = torch.ones(C, C, dtype=torch.bool, device=k.device).tril()
    intra = (q @ k.transpose(-1, -2)).masked_fill(~causal, 0.0)  # every chunk at once
    outputs = []
    for n in range(n_chunks):
        u_n = u[:, :, n] if w is None else u[:, :, n] - w[:, :, n] @ S.transpose(-1, -2)
        outputs.append(q[:, :, n] @ S.transpose(-1, -2) + intra[:, :, n] @ u_n)
        S = S + u_n.transpose(-1, -2) @ k[:, :, n]
    out = torch.stack(outputs, dim=2).reshape(batch, heads, n_chunks * C, d_v)
    return out[:, :, :length], S


class FastWeightAttention(nn.Module):
    """Multi-head fast-weight attention (delta rule or Hebbian), per-sequence state.

    `mode="normalized"`: q and k are L2-normalised and beta = sigmoid(w_beta . x) in (0, 1): the write
    is a contraction, stable at any length. `mode="paper_exact"`: raw keys as in the paper's Eqs. 27-29;
    guarded by capping beta at 1.9 / ||k||^2 so that (I - beta k k^T) never expands the state (without
    the cap, raw keys blow S up within tens of tokens).
    """

    def __init__(self, d_model: int, n_heads: int, rule: str = "delta", mode: str = "normalized",
                 chunk_size: int = 32, hope_lr: float = 0.0, hope_mode: str = "normalized"):
        super().__init__()
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        self.n_heads, self.rule, self.mode, self.chunk_size = n_heads, rule, mode, chunk_size
        self.head_dim = d_model // n_heads

        def projection() -> nn.Linear:
            if hope_lr > 0:
                return SelfModifyingLinear(d_model, d_model, bias=False, lr=hope_lr, mode=hope_mode)
            return nn.Linear(d_model, d_model, bias=False)

        self.q_proj, self.k_proj, self.v_proj = projection(), projection(), projection()
        self.beta_proj = nn.Linear(d_model, n_heads)
        self.out_proj = nn.Linear(d_model, d_model)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, x, mask=None, state=None, return_state: bool = False, impl: str = "chunked"):
        """x (B, T, D); mask (B, T) True where a token is real; state (B, H, d, d) carried in."""
        projections = (self.q_proj, self.k_proj, self.v_proj)
        q, k, v = (self._heads(F.linear(x, p.weight)) for p in projections)
        # HOPE: the three read the same x, so its outer product is computed once for all of them
        modifying = [p for p in projections if isinstance(p, SelfModifyingLinear) and p.modifies()]
        if modifying:
            with torch.no_grad():
                outer_mean = input_outer_mean(x.detach(), modifying[0].mode, modifying[0].weight.dtype)
            for p in modifying:   # built alike: one mode, one dtype
                p.modify(outer_mean=outer_mean)
        beta = torch.sigmoid(self.beta_proj(x)).transpose(1, 2)  # (B, H, T)
        if self.mode == "normalized":
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        elif self.rule == "delta":
            beta = torch.minimum(beta, 1.9 / (k.pow(2).sum(-1) + 1e-6))
        if mask is not None:
            beta = beta * mask[:, None, :].to(beta.dtype)  # padding writes nothing
        kernel = fast_weight_chunked if impl == "chunked" else fast_weight_recurrent
        kwargs = {"chunk_size": self.chunk_size} if impl == "chunked" else {}
        # The state recurrence and the triangular solve run in fp32 even under bf16/fp16 autocast:
        # half precision loses the state within a few chunks (and CPU has no half triangular solve).
        wide = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
        with torch.autocast(device_type=x.device.type, enabled=False):
            out, new_state = kernel(*(t.to(wide) for t in (q, k, v, beta)), state=state, rule=self.rule, **kwargs)
        out = self.out_proj(out.transpose(1, 2).reshape(x.shape))
        if mask is not None:
            out = out * mask[..., None].to(out.dtype)
        return (out, new_state) if return_state else out


class SoftmaxAttention(nn.Module):
    """Bidirectional softmax attention through `scaled_dot_product_attention`, for comparison."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x, mask=None, **_):
        batch, length, d_model = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attn_mask = None if mask is None else mask[:, None, None, :]
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=attn_mask)
        out = self.out_proj(out.transpose(1, 2).reshape(batch, length, d_model))
        return out if mask is None else out * mask[..., None].to(out.dtype)
