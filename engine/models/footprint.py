"""How much memory a config's model needs to train, estimated before anything is allocated: a size that
passes validation (d_model 1e6, L_mem 1e8, an image 1e5 pixels high) is refused with the estimate, instead
of failing inside an allocation with a traceback or being killed by the OS."""
from __future__ import annotations

import torch

from engine.config import ConfigError, NLMMConfig

BYTES_PER_PARAMETER = 16   # fp32 weight, its gradient and the optimiser's two moments
BYTES_PER_VALUE = 4        # what a block keeps for backward is fp32 at most


def tokens(cfg: NLMMConfig) -> dict[str, int]:
    """Tokens one item puts through each encoder's blocks."""
    image, audio = cfg.image, cfg.audio
    frames = int(audio.max_seconds * audio.sample_rate) // audio.hop_length + 1
    return {"text": cfg.text.max_tokens, "image": (image.height // image.patch_size) * (image.width // image.patch_size),
            "audio": max(1, frames // 2)}


def training_bytes(cfg: NLMMConfig, batch_size: int) -> tuple[int, int]:
    """-> (parameters, bytes to train a batch: weights and optimiser, plus activations)."""
    from engine.models.nlmm import NLMM
    params = NLMM.count_parameters(cfg)
    depth = {"text": cfg.depth.text, "image": cfg.depth.image, "audio": cfg.depth.audio}
    # per token and block: attention's projections and output (~10 d_model), each CMS level's hidden layer
    # before and after its activation (2 ffn_mult d_model)
    kept = (10 + 2 * max(1, cfg.ffn_mult) * max(1, len(cfg.cms_levels))) * cfg.d_model * BYTES_PER_VALUE
    activations = sum(batch_size * n * kept * depth[m] for m, n in tokens(cfg).items())
    return params, params * BYTES_PER_PARAMETER + activations


def available_bytes(device: torch.device) -> int | None:
    """Memory free for this process on `device` (MemAvailable on Linux for the CPU), or None if unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_fits(cfg: NLMMConfig, batch_size: int, device: torch.device) -> None:
    """A ConfigError naming the estimate when training `cfg` in batches of `batch_size` cannot fit."""
    params, need = training_bytes(cfg, batch_size)
    free = available_bytes(device)
    if free is not None and need > free:
        raise ConfigError("", f"this model does not fit: {params:,} parameters, about {need / 2**30:.1f} GiB to train "
                          f"in batches of {batch_size}, and {free / 2**30:.1f} GiB is free on {device} "
                          "(make d_model, L_mem, the vocabulary, the image size or the batch smaller)")
