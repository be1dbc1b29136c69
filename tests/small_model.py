"""The one small model configuration the engine tests train: a few steps take a second or two."""
from engine.config import LevelConfig, NLMMConfig, load_config


def small_config(slow_chunk: int = 3, fast_lr: float = 2e-3) -> NLMMConfig:
    """tiny.yaml shrunk to 32 dimensions and one block per encoder, with a fast and a slow CMS level."""
    cfg = load_config("tiny")
    cfg.name = "test"
    cfg.d_model, cfg.n_heads, cfg.L_mem, cfg.ffn_mult = 32, 2, 8, 2
    cfg.depth.text = cfg.depth.image = cfg.depth.audio = 1
    cfg.cms_levels = [LevelConfig("fast", 1, fast_lr, "adamw"), LevelConfig("slow", slow_chunk, 1e-2, "dmgd")]
    cfg.data.batch_size = 8
    return cfg
