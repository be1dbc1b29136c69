"""The NLMM configuration: dataclasses loaded from and saved to YAML, validated with clear errors.

Every error is a `ConfigError` whose message starts with the key path that is wrong, e.g.
``cms_levels[1].chunk_size: must be >= 1, got 0`` — the studio shows it verbatim next to the field.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import reprlib
import tempfile
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.vocabulary import MODALITIES, SAMPLE_RATE

CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"

OPTIMIZERS = ("dmgd", "adamw", "sgd")
CMS_MODES = ("residual", "nested")
ATTENTIONS = ("fast_weight", "hebbian", "softmax")
DELTA_RULES = ("normalized", "paper_exact")
TTT_MODES = ("gated_topk", "l2_regression")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
AUTO_WORKERS = "auto"   # data.num_workers chosen for the machine (engine.threads.data_workers)
IMAGE_PREPROCESS = ("ink", "photo")
IMAGE_STEMS = ("patch", "conv")
CONV_STEM_STRIDE = 8   # the conv stem: three stride-2 convolutions
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # a config's name becomes part of a run folder's name
MAX_CONFIG_BYTES = 1_000_000  # the biggest preset is 2 KB; a config is never a data file
MAX_LR = 1000.0  # no rate here trains above ~1; 1e39 overflowed float32 inside torch.optim (a traceback)

# Values quoted in messages are cut short: 409 bytes of nested YAML anchors expand to a 722 MB repr.
_short = reprlib.Repr()
_short.maxlevel, _short.maxlist, _short.maxdict, _short.maxstring, _short.maxother = 2, 4, 4, 60, 60


class ConfigError(ValueError):
    """An invalid configuration. `path` is the key path ("cms_levels[1].lr"), '' for the whole file."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}" if path else reason)


@dataclass
class LevelConfig:
    """One Continuum-Memory level: its MLPs update every `chunk_size` steps with its own optimizer."""
    name: str = "fast"
    chunk_size: int = 1
    lr: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.0

    def check(self, path: str) -> None:
        """ConfigError for the first impossible setting of this level (`path`: "cms_levels[1]")."""
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ConfigError(f"{path}.name", f"must be letters, digits or '_', got {shown(self.name)}")
        _at_least(f"{path}.chunk_size", self.chunk_size, 1)
        _positive(f"{path}.lr", self.lr)
        _at_most(f"{path}.lr", self.lr, MAX_LR)
        _at_least(f"{path}.weight_decay", self.weight_decay, 0.0)
        _one_of(f"{path}.optimizer", self.optimizer, OPTIMIZERS)


@dataclass
class DepthConfig:
    text: int = 2
    image: int = 2
    audio: int = 2

    def check(self) -> None:
        for modality in MODALITIES:
            _at_least(f"depth.{modality}", getattr(self, modality), 1)


@dataclass
class HopeConfig:
    """Self-modifying q/k/v projections: W <- W (I - lr x x^T) (normalised by x^T x unless paper_exact)."""
    enable: bool = True
    mode: str = "normalized"
    lr: float = 1e-3

    def check(self) -> None:
        _one_of("hope.mode", self.mode, DELTA_RULES)
        _at_least("hope.lr", self.lr, 0.0)
        _at_most("hope.lr", self.lr, MAX_LR)


@dataclass
class TTTConfig:
    """Test-time writes into the central memory (eval mode only, when adaptation is switched on)."""
    enable: bool = True
    mode: str = "gated_topk"
    topk: int = 4
    lr: float = 0.5
    # Which queries write the central memory's slots. Audio adapts through the audio domain memory
    # instead: `nlmm bench ttt` measured slot writes from shifted audio costing 7.8 points of clean
    # recall, while the domain memory gained 20 points on the shifted domain and lost none on clean.
    write_modalities: list[str] = field(default_factory=lambda: ["text", "image"])

    def check(self, slots: int) -> None:
        """`slots`: the central memory's (L_mem), which a query's top k cannot exceed."""
        _one_of("ttt.mode", self.mode, TTT_MODES)
        _at_least("ttt.topk", self.topk, 1)
        if self.topk > slots:
            raise ConfigError("ttt.topk", f"must be <= L_mem ({slots}), got {self.topk}")
        _positive("ttt.lr", self.lr)
        _at_most("ttt.lr", self.lr, MAX_LR)
        for i, modality in enumerate(self.write_modalities):
            _one_of(f"ttt.write_modalities[{i}]", modality, MODALITIES)


@dataclass
class TextConfig:
    vocab_size: int = 512
    max_tokens: int = 16

    def check(self) -> None:
        _at_least("text.vocab_size", self.vocab_size, 4)
        _at_least("text.max_tokens", self.max_tokens, 1)


@dataclass
class ImageConfig:
    height: int = 32
    width: int = 64
    channels: int = 1
    patch_size: int = 8
    # ink: handwriting (light strokes on dark, cropped to the writing; photos of paper are inverted);
    # photo: natural images (resize the short side, centre crop).
    preprocess: str = "ink"
    # How pixels become patch tokens: patch, one linear map per patch (a ViT); conv, three 3x3 convolutions
    # at stride 2 (patch_size 8). Either gives the same tokens to the trunk (`engine.models.encoders`).
    stem: str = "patch"

    def check(self) -> None:
        _at_least("image.patch_size", self.patch_size, 1)
        _one_of("image.preprocess", self.preprocess, IMAGE_PREPROCESS)
        _one_of("image.stem", self.stem, IMAGE_STEMS)
        if self.stem == "conv" and self.patch_size != CONV_STEM_STRIDE:
            raise ConfigError("image.stem", f"conv makes patches of {CONV_STEM_STRIDE} pixels (three stride-2 "
                                            f"convolutions): it needs image.patch_size {CONV_STEM_STRIDE}, got "
                                            f"{self.patch_size}")
        if self.channels not in (1, 3):
            raise ConfigError("image.channels", f"must be 1 (grey) or 3 (RGB), got {self.channels}")
        for side in ("height", "width"):
            size = getattr(self, side)
            _at_least(f"image.{side}", size, 1)
            if size % self.patch_size:
                raise ConfigError(f"image.{side}",
                                  f"must be a multiple of image.patch_size ({self.patch_size}), got {size}")


@dataclass
class AudioConfig:
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 80
    max_seconds: float = 2.0

    def check(self) -> None:
        _at_least("audio.sample_rate", self.sample_rate, 1000)
        _at_least("audio.n_mels", self.n_mels, 1)
        _at_least("audio.n_fft", self.n_fft, 16)
        _at_least("audio.hop_length", self.hop_length, 1)
        if self.n_mels > self.n_fft // 2 + 1:
            raise ConfigError("audio.n_mels", f"must be <= n_fft/2+1 ({self.n_fft // 2 + 1}), got {self.n_mels}")
        _positive("audio.max_seconds", self.max_seconds)


@dataclass
class DataConfig:
    source: str = "builtin"
    batch_size: int = 64
    # Processes preparing batches beside the step; "auto": as many as this machine should give them
    # (engine.threads.data_workers), which is what a checkpoint's fine-tune uses on another machine too.
    num_workers: int | str = AUTO_WORKERS
    seed: int = 0
    augment: bool = False   # training clips through rooms, microphones and noise (engine.data.audio_augment)
    # A fine-tune on the user's data (`nlmm train --init`): the share of each batch drawn from the built-in
    # set, so that the old skills are rehearsed while the new ones are learnt (engine.data.mix).
    mix_builtin: float = 0.0

    def check(self) -> None:
        _at_least("data.batch_size", self.batch_size, 2)  # contrastive learning needs negatives
        if self.num_workers != AUTO_WORKERS:
            if not isinstance(self.num_workers, int):
                raise ConfigError("data.num_workers", f"must be an integer or '{AUTO_WORKERS}', got {shown(self.num_workers)}")
            _at_least("data.num_workers", self.num_workers, 0)
        _at_least("data.mix_builtin", self.mix_builtin, 0.0)
        if not self.mix_builtin < 1.0:  # a share of 1 would never show the user's own items
            raise ConfigError("data.mix_builtin", f"must be < 1, got {self.mix_builtin:g}")


@dataclass
class TrainConfig:
    steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    temperature_init: float = 0.07
    learnable_temperature: bool = True
    eval_every: int = 100
    checkpoint_every: int = 200
    seed: int = 0
    decoder_weight: float = 0.0  # > 0: train the optional decoder heads as an auxiliary loss
    # The modalities whose encoders and heads learn; the others and the shared central memory stay frozen.
    # Empty: everything learns, except in a fine-tune (`--init`), which learns what the user's items bring.
    learn_only: list[str] = field(default_factory=list)

    def check(self) -> None:
        _at_least("train.steps", self.steps, 1)
        _positive("train.lr", self.lr)
        _at_most("train.lr", self.lr, MAX_LR)
        _at_least("train.weight_decay", self.weight_decay, 0.0)
        _at_least("train.warmup_steps", self.warmup_steps, 0)
        _at_least("train.grad_clip", self.grad_clip, 0.0)
        _positive("train.temperature_init", self.temperature_init)
        _at_least("train.eval_every", self.eval_every, 1)
        _at_least("train.checkpoint_every", self.checkpoint_every, 1)
        _at_least("train.decoder_weight", self.decoder_weight, 0.0)
        for i, modality in enumerate(self.learn_only):
            _one_of(f"train.learn_only[{i}]", modality, MODALITIES)


@dataclass
class NLMMConfig:
    name: str = "tiny"
    d_model: int = 128
    n_heads: int = 4
    ffn_mult: int = 2
    L_mem: int = 32
    depth: DepthConfig = field(default_factory=DepthConfig)
    cms_levels: list[LevelConfig] = field(default_factory=lambda: [LevelConfig()])
    cms_mode: str = "residual"
    attention: str = "fast_weight"
    delta_rule: str = "normalized"
    attention_chunk: int = 32
    hope: HopeConfig = field(default_factory=HopeConfig)
    ttt: TTTConfig = field(default_factory=TTTConfig)
    precision: str = "auto"
    text: TextConfig = field(default_factory=TextConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def level_names(self) -> list[str]:
        return [level.name for level in self.cms_levels]


# ---------------------------------------------------------------- building from plain data

def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def shown(value: Any, limit: int = 120) -> str:
    """A value as a message quotes it: its repr, cut short whatever its size, depth or escapes."""
    text = _short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is types.UnionType:   # `int | str`: the first that fits
        for option in typing.get_args(tp):
            try:
                return _coerce(option, value, path)
            except ConfigError:
                pass
        raise ConfigError(path, f"must be {' or '.join(_type_name(t) for t in typing.get_args(tp))}, got {shown(value)}")
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(path, f"must be a list, got {type(value).__name__}")
        return [_coerce(item_tp, item, _join(path, i)) for i, item in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None:
            if not math.isfinite(number):  # "inf" passed every `> 0` check and trained to NaN
                raise ConfigError(path, f"must be a finite number, got {shown(value)}")
            return number
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(path, f"must be {_type_name(tp)}, got {shown(value)}")


def _build(cls: type, data: Any, path: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, f"must be a mapping of keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            text = key if isinstance(key, str) and len(key) <= 60 else shown(key)
            close = difflib.get_close_matches(text, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(names)})"
            raise ConfigError(_join(path, text), f"unknown key{hint}")
    kwargs = {name: _coerce(hints[name], data[name], _join(path, name)) for name in names if name in data}
    return cls(**kwargs)


# ---------------------------------------------------------------- validation

def _one_of(path: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        close = difflib.get_close_matches(value[:100], allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(path, f"must be one of {', '.join(allowed)}; got {shown(value)}{hint}")


def _at_least(path: str, value: float, low: float) -> None:
    if value < low:
        raise ConfigError(path, f"must be >= {low}, got {value}")


def _positive(path: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(path, f"must be > 0, got {value}")


def _at_most(path: str, value: float, high: float) -> None:
    if value > high:
        raise ConfigError(path, f"must be <= {high:g}, got {value:g}")


def validate(cfg: NLMMConfig) -> NLMMConfig:
    """Raise ConfigError for the first impossible setting; return cfg unchanged otherwise. The model's own
    sizes are checked here, each section's settings by the section (`check`)."""
    if not NAME.fullmatch(cfg.name):
        raise ConfigError("name", f"must be letters, digits, '.', '-' or '_' (at most 64), got {shown(cfg.name)}")
    _at_least("d_model", cfg.d_model, 8)
    _at_least("n_heads", cfg.n_heads, 1)
    if cfg.d_model % cfg.n_heads:
        raise ConfigError("n_heads", f"must divide d_model ({cfg.d_model}), got {cfg.n_heads}")
    _at_least("ffn_mult", cfg.ffn_mult, 1)
    _at_least("L_mem", cfg.L_mem, 1)
    cfg.depth.check()
    if not cfg.cms_levels:
        raise ConfigError("cms_levels", "needs at least one level")
    seen: set[str] = set()
    for i, level in enumerate(cfg.cms_levels):
        level.check(f"cms_levels[{i}]")
        if level.name in seen:
            raise ConfigError(f"cms_levels[{i}].name", f"duplicate level name {shown(level.name)}")
        seen.add(level.name)
    _one_of("cms_mode", cfg.cms_mode, CMS_MODES)
    _one_of("attention", cfg.attention, ATTENTIONS)
    _one_of("delta_rule", cfg.delta_rule, DELTA_RULES)
    _at_least("attention_chunk", cfg.attention_chunk, 1)
    cfg.hope.check()
    cfg.ttt.check(cfg.L_mem)
    _one_of("precision", cfg.precision, PRECISIONS)
    for section in (cfg.text, cfg.image, cfg.audio, cfg.data, cfg.train):
        section.check()
    return cfg


# ---------------------------------------------------------------- public API

def config_from_dict(data: Any) -> NLMMConfig:
    return validate(_build(NLMMConfig, data, ""))


def config_to_dict(cfg: NLMMConfig) -> dict:
    return dataclasses.asdict(cfg)


def load_config(path: str | os.PathLike) -> NLMMConfig:
    """Load a YAML file, or a preset name from configs/ ("tiny", "base", "paper_exact")."""
    path = Path(path)
    if not path.suffix and not path.exists() and (CONFIGS_DIR / f"{path}.yaml").exists():
        path = CONFIGS_DIR / f"{path}.yaml"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError("", f"{path}: too large for a config ({MAX_CONFIG_BYTES:,} bytes at most)")
        text = raw.decode("utf-8")
    except OSError as err:
        raise ConfigError("", f"{path}: cannot read config ({err.strerror or err})") from None
    except UnicodeDecodeError:
        raise ConfigError("", f"{path}: not a text file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "syntax error"
        raise ConfigError("", f"{path}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError("", f"{path}: not a config (nested too deeply)") from None
    try:
        return config_from_dict(data)
    except ConfigError as err:
        raise ConfigError(err.path, f"{err.reason} (in {path.name})") from None


def dump_config(cfg: NLMMConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def save_config(cfg: NLMMConfig, path: str | os.PathLike) -> None:
    """Write YAML atomically: a crash mid-write never leaves a half-written config behind."""
    atomic_write_bytes(Path(path), dump_config(cfg).encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the file should read like any other
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def preset_names() -> list[str]:
    return sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))
