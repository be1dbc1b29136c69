"""Text, image and audio encoders: a modality-specific front end, then the same NLMM blocks, then a
masked mean over tokens — one vector per item."""
from __future__ import annotations

import math

import torch
from torch import nn

from engine.config import ImageConfig, NLMMConfig
from engine.layers.cms import ContinuumMemory
from engine.layers.domain_memory import DomainMemory
from engine.layers.fast_weights import FastWeightAttention, SoftmaxAttention


class Block(nn.Module):
    """x + Attention(LN x), then the Continuum Memory System (residual MLP per level)."""

    def __init__(self, cfg: NLMMConfig):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.d_model)
        if cfg.attention == "softmax":
            self.attn = SoftmaxAttention(cfg.d_model, cfg.n_heads)
        else:
            self.attn = FastWeightAttention(
                cfg.d_model, cfg.n_heads, rule="hebbian" if cfg.attention == "hebbian" else "delta",
                mode=cfg.delta_rule, chunk_size=cfg.attention_chunk,
                hope_lr=cfg.hope.lr if cfg.hope.enable else 0.0, hope_mode=cfg.hope.mode)
        self.cms = ContinuumMemory(cfg.d_model, cfg.d_model * cfg.ffn_mult, cfg.level_names(), cfg.cms_mode)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.norm(x), mask=mask)
        return self.cms(x)


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return x.mean(1)
    weights = mask.to(x.dtype)[..., None]
    return (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class TokenEncoder(nn.Module):
    """Shared trunk: positional embedding, blocks, final norm, masked mean pooling."""

    def __init__(self, cfg: NLMMConfig, depth: int, max_positions: int):
        super().__init__()
        self.max_positions = max_positions
        self.position = nn.Parameter(torch.randn(max_positions, cfg.d_model) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(depth))
        self.norm = nn.LayerNorm(cfg.d_model)

    def trunk(self, x: torch.Tensor, mask: torch.Tensor | None, what: str) -> torch.Tensor:
        if x.shape[1] > self.max_positions:
            raise ValueError(f"{what}: {x.shape[1]} positions exceed the model's maximum of {self.max_positions}")
        # tokens in (B, T, D) order in memory: a front end's transposed output would otherwise keep its
        # layout through every residual add, and each norm and matmul would copy it again
        x = x.contiguous() + self.position[: x.shape[1]]
        for block in self.blocks:
            x = block(x, mask)
        return masked_mean(self.norm(x), mask)


class TextEncoder(TokenEncoder):
    """Token ids (B, T), 0 = padding -> (B, D)."""

    def __init__(self, cfg: NLMMConfig):
        super().__init__(cfg, cfg.depth.text, cfg.text.max_tokens)
        self.embed = nn.Embedding(cfg.text.vocab_size, cfg.d_model, padding_idx=0)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"text: expected integer token ids of shape (B, T), got {tuple(tokens.shape)} {tokens.dtype}")
        if mask is None:
            mask = tokens != 0
        return self.trunk(self.embed(tokens), mask, "text")


def image_stem(image: ImageConfig, d_model: int) -> nn.Module:
    """Pixels (B, C, H, W) -> one d_model vector per patch, (B, d_model, H / patch, W / patch).
    conv: the convolutions before the last have no bias, so the black background stays exactly zero; with
    biases the same offset on every background pixel swamps the ink and the encoder does not learn
    (docs/demo-model.md)."""
    if image.stem == "patch":
        return nn.Conv2d(image.channels, d_model, image.patch_size, stride=image.patch_size)
    return nn.Sequential(nn.Conv2d(image.channels, 32, 3, stride=2, padding=1, bias=False), nn.GELU(),
                         nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False), nn.GELU(),
                         nn.Conv2d(64, d_model, 3, stride=2, padding=1))


class ImageEncoder(TokenEncoder):
    """Images (B, C, H, W) in [0, 1] -> patch tokens (`image_stem`) -> (B, D)."""

    def __init__(self, cfg: NLMMConfig):
        image = cfg.image
        self.size = (image.channels, image.height, image.width)
        n_patches = (image.height // image.patch_size) * (image.width // image.patch_size)
        super().__init__(cfg, cfg.depth.image, n_patches)
        self.patch = image_stem(image, cfg.d_model)

    def forward(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if images.dim() != 4 or tuple(images.shape[1:]) != self.size:
            raise ValueError(f"image: expected shape (B, {', '.join(map(str, self.size))}), got {tuple(images.shape)}")
        patches = self.patch(images).flatten(2).transpose(1, 2)
        return self.trunk(patches, None, "image")


def audio_token_count(n_frames: int) -> int:
    """Two stride-2 convolutions: frames -> ceil(ceil(F/2)/2) tokens."""
    return math.ceil(math.ceil(n_frames / 2) / 2)


class AudioEncoder(TokenEncoder):
    """Log-mel frames (B, n_mels, F) with a frame mask (B, F) -> conv front end (4x fewer) -> (B, D)."""

    def __init__(self, cfg: NLMMConfig):
        audio = cfg.audio
        max_frames = int(audio.max_seconds * audio.sample_rate) // audio.hop_length + 1
        super().__init__(cfg, cfg.depth.audio, audio_token_count(max_frames))
        self.n_mels = audio.n_mels
        self.domain = DomainMemory(audio.n_mels)  # test-time adaptation to new acoustic domains
        self.conv1 = nn.Conv1d(audio.n_mels, cfg.d_model, 3, stride=2, padding=1)
        self.conv2 = nn.Conv1d(cfg.d_model, cfg.d_model, 3, stride=2, padding=1)
        self.act = nn.GELU()

    def forward(self, mel: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mel.dim() != 3 or mel.shape[1] != self.n_mels:
            raise ValueError(f"audio: expected log-mel of shape (B, {self.n_mels}, frames), got {tuple(mel.shape)}")
        mel = self.domain(mel, mask)
        # Padding is zeroed before each conv so a padded clip encodes exactly like the unpadded one.
        h = _zero_padding(mel, mask)
        mask = None if mask is None else mask[:, ::2]  # stride 2: a step is real when its first frame is
        h = _zero_padding(self.act(self.conv1(h)), mask)
        mask = None if mask is None else mask[:, ::2]
        tokens = self.act(self.conv2(h)).transpose(1, 2)
        return self.trunk(tokens, mask, "audio")


def _zero_padding(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask[:, None, :].to(x.dtype)


def build_encoders(cfg: NLMMConfig) -> nn.ModuleDict:
    return nn.ModuleDict({"text": TextEncoder(cfg), "image": ImageEncoder(cfg), "audio": AudioEncoder(cfg)})
