"""Where a fine-tune starts (`nlmm train --init CHECKPOINT`): a trained model's weights, tokenizer and
audio domain statistics, with a fresh optimiser and step 0.

Text the tokenizer has never seen grows the vocabulary rather than falling to `<unk>`: a user teaching
"my cat" needs "cat" to become a word of its own, which no mapping of unknown words onto known ones can
give. The new words are appended (every old word keeps its id) and their embedding rows start as a copy
of the `<unk>` row, so before any step the model reads them exactly as it read them before — as unknown
— and the fine-tune moves them from there. When the words outgrow `text.vocab_size` the embedding (and
the text decoder, when there is one) is resized and the config records the new size.
"""
from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.config import AUTO_WORKERS, NLMMConfig, config_to_dict
from engine.data.text import UNK, Tokenizer
from engine.training.checkpoint import CheckpointError, checkpoint_config, load_checkpoint, non_finite, upgrade

VOCAB_GROWTH = 64   # the embedding grows by whole blocks of rows: a few new words do not resize it each time
# Sections of a config that say how to train, not what the model is: these may differ from the checkpoint's.
TRAINING_SECTIONS = ("name", "train", "data", "precision")
# Settings outside those sections that change how the model learns or adapts, not its weights: the
# vocabulary may grow; the levels' rates, test-time training and HOPE's rate are free to differ.
TRAINING_KEY = re.compile(r"text\.vocab_size|cms_levels\[\d+\]\.(lr|optimizer|weight_decay)|ttt\..*|hope\.lr")
# The weights indexed by token id: rows are added to these when the vocabulary grows.
TOKEN_ROWS = ("encoders.text.embed.weight", "decoders.heads.text.weight", "decoders.heads.text.bias")


@dataclass
class Start:
    cfg: NLMMConfig            # the checkpoint's model, with the training settings asked for
    tokenizer: Tokenizer       # the checkpoint's vocabulary, grown by the new words
    state: dict                # the weights, rows added for the new words
    new_words: list[str]
    trained_config: dict       # the config the model was first trained with (`first_config`)


def model_mismatch(requested: NLMMConfig, trained: NLMMConfig) -> str | None:
    """The first setting where `requested` describes another model than `trained` ('d_model: 256 here,
    128 in the checkpoint'), or None."""
    def flat(value, path=""):
        if isinstance(value, dict):
            for key, inner in value.items():
                yield from flat(inner, f"{path}.{key}" if path else key)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for i, inner in enumerate(value):
                yield from flat(inner, f"{path}[{i}]")
        else:
            yield path, value
    mine = dict(flat({k: v for k, v in config_to_dict(requested).items() if k not in TRAINING_SECTIONS}))
    theirs = dict(flat({k: v for k, v in config_to_dict(trained).items() if k not in TRAINING_SECTIONS}))
    for key in sorted(set(mine) | set(theirs)):
        if TRAINING_KEY.fullmatch(key):
            continue
        if mine.get(key) != theirs.get(key):
            return f"{key}: {mine[key]!r} in the config, {theirs.get(key)!r} in the checkpoint"
    return None


DEFAULT_MIX = 0.5   # a fine-tune on the user's data: half of each batch rehearses the built-in set
# A quarter of the rates the model was trained with: on the demo model, 120 steps of `bench teach` at the full
# rates lost 18 points of image->audio test R@1 (+77 on the taught voice); at a quarter, 9 (+70). A model
# whose last training ran slower (the demo's final 600 steps at 2e-4) is taught at that rate: at a quarter
# of its first rates (5e-4) it lost 2.9 points of audio->image, at 2e-4 0.7.
FINE_TUNE_LR_SCALE = 0.25
FINE_TUNE_BATCH = 16    # at most: a step costs about its batch, so a one-minute teach takes more, smaller steps


def first_config(payload: dict) -> dict:
    """The config a checkpoint's model was first trained with: a fine-tune's records its origin's."""
    return payload.get("trained_config", payload["config"])


def checkpoint_training_config(path: str | os.PathLike) -> NLMMConfig:
    """The config a checkpoint was trained with."""
    return checkpoint_config(load_checkpoint(path), path)


def fine_tune_config(path: str | os.PathLike, steps: int | None = None, mix: float = DEFAULT_MIX,
                     batch_size: int | None = None, lr_scale: float = FINE_TUNE_LR_SCALE) -> NLMMConfig:
    """What a fine-tune trains with unless told otherwise: the checkpoint's config, a warm-up that fits a
    short run (the checkpoint's 50 steps would be most of a one-minute teach), `mix` of each batch
    rehearsing the built-in set, batches of at most FINE_TUNE_BATCH, every modality free to learn, and every rate (outer and each CMS
    level's) the model was first trained with times `lr_scale` (so teaching a taught model again does not
    shrink them again), but never above the rate the checkpoint's own last training used: a model last
    trained at a lower rate (the demo model's final stage) moves too far at more."""
    payload = load_checkpoint(path)
    cfg = checkpoint_config(payload, path)
    trained = checkpoint_config({"config": first_config(payload)}, path)
    cfg.train.lr = min(trained.train.lr * lr_scale, cfg.train.lr)
    for level, first in zip(cfg.cms_levels, trained.cms_levels):
        level.lr = min(first.lr * lr_scale, level.lr)
    steps = steps or cfg.train.steps
    # What learns is what the user's items bring (`Trainer`), never what the checkpoint's own last stage
    # chose: the demo model's audio-only stage froze the image encoder of every image fine-tune.
    cfg.train.learn_only = []
    cfg.train.warmup_steps = min(cfg.train.warmup_steps, max(1, steps // 10))
    cfg.data.mix_builtin = mix
    cfg.data.num_workers = AUTO_WORKERS   # the checkpoint's machine is not this one
    cfg.data.batch_size = batch_size if batch_size is not None else min(cfg.data.batch_size, FINE_TUNE_BATCH)
    return cfg


def start_from(path: str | os.PathLike, captions: list[str], requested: NLMMConfig | None = None) -> Start:
    """The model of checkpoint `path`, ready to fine-tune on items whose captions are `captions`.

    `requested`: the config to train with (steps, rates, batch size, mix); its model must be the
    checkpoint's (a CheckpointError names the first setting that is not). A missing or unusable
    checkpoint is a CheckpointError too."""
    path = Path(path)
    payload = load_checkpoint(path)
    trained = checkpoint_config(payload, path)
    cfg = copy.deepcopy(trained)
    if requested is not None:
        mismatch = model_mismatch(requested, trained)
        if mismatch:
            raise CheckpointError(f"{path}: config mismatch, the checkpoint holds another model ({mismatch})")
        cfg = copy.deepcopy(requested)
        cfg.text.vocab_size = trained.text.vocab_size   # the weights' size; grown below if needed
    tokenizer = Tokenizer.from_state_dict(payload["tokenizer"])
    grown = tokenizer.grown(captions)
    if len(grown) > cfg.text.vocab_size:
        cfg.text.vocab_size = -(-len(grown) // VOCAB_GROWTH) * VOCAB_GROWTH
    state = dict(payload["model"])
    broken = non_finite(state)
    if broken:
        raise CheckpointError(f"{path}: holds NaN or infinite weights ({broken[0]}); it cannot be fine-tuned")
    from engine.models.nlmm import NLMM
    model = NLMM(cfg)
    upgrade(payload, model)
    state = payload["model"]
    state = _grow_token_rows(state, model.state_dict(), len(tokenizer), len(grown), tokenizer.index[UNK])
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit its config ({first[:200]})") from None
    return Start(cfg, grown, state, grown.vocabulary[len(tokenizer):], first_config(payload))


def _grow_token_rows(state: dict, target: dict, old_words: int, new_words: int, unk: int) -> dict:
    """The weights indexed by token id resized to the new vocabulary size, the rows of new words set to
    the `<unk>` row (rows no word uses stay as they were, or zero when added)."""
    out = dict(state)
    for name in TOKEN_ROWS:
        if name not in state or name not in target:
            continue
        value = state[name]
        grown = torch.zeros(target[name].shape, dtype=value.dtype)
        kept = min(len(value), len(grown))
        grown[:kept] = value[:kept]
        grown[old_words:new_words] = value[unk]
        out[name] = grown
    return out
