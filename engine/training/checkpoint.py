"""Checkpoints: one file holding everything needed to use or resume a model.

Written atomically (temp file in the same folder, fsync, rename): a crash mid-write leaves the previous
checkpoint intact. Read with `torch.load(weights_only=True)`: a checkpoint can never run code.
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch

from engine.config import ConfigError, NLMMConfig, config_from_dict, config_to_dict
from engine.config import atomic_write_bytes
from engine.data.errors import file_problem
from engine.data.text import Tokenizer

FORMAT = "nlmm-checkpoint"
VERSION = 2
# Weights that earlier versions saved and this one no longer has. Version 1 had the central memory's
# presence projection, which fed a fused embedding that no loss ever reached (it learned nothing); its
# checkpoints (the shipped demo model among them) load and resume with these weights dropped.
RETIRED = ("memory.presence_proj.weight", "memory.presence_proj.bias")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


def save_payload(path: str | os.PathLike, payload: dict, error: type[ValueError], what: str) -> Path:
    """`payload` (tensors and plain data) written atomically; a write that fails (disk full, `ulimit -f`,
    read-only) is an `error` naming the file and `what` it held, and the old file stays."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as err:
        raise error(f"{path}: cannot write the {what} ({err.strerror or err}); the previous one is kept") from None
    return path


def load_payload(path: str | os.PathLike, error: type[ValueError], what: str, map_location="cpu"):
    """What `save_payload` wrote, read with weights_only (it can never run code); a missing or unreadable
    file is an `error` naming it."""
    path = Path(path)
    if not path.exists():
        raise error(f"{path}: {what} not found")
    problem = file_problem(path, f"{what} file")
    if problem:
        raise error(f"{path}: {problem}")
    with open(path, "rb") as handle:
        head = handle.read(4)
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):  # torch.save's zip, or its legacy pickle
        kind = ("an ONNX model (as `nlmm export` writes), not a PyTorch file" if path.suffix.lower() == ".onnx"
                else "not a PyTorch file (neither the zip nor the pickle torch.save writes)")
        raise error(f"{path}: not a readable {what}: {kind}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many kinds here (pickle, zip, runtime): all mean "unusable"
        text = str(err).strip().splitlines()
        reason = text[0] if text else type(err).__name__
        if "Weights only load failed" in reason or "weights_only" in str(err):
            reason = "it holds Python objects beyond tensors (refused: loading it could run code)"
        raise error(f"{path}: not a readable {what} ({reason[:200]})") from None


def state_digest(tensors: dict[str, torch.Tensor]) -> str:
    """A SHA-256 of named tensors' values (names, shapes and bytes): what a file's weights must match."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        value = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}{tuple(value.shape)}{value.dtype}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """A write that fails (disk full, `ulimit -f`, read-only) is a CheckpointError; the old file stays. The
    weights' digest goes with them: a byte changed on disk is found when the file is loaded."""
    return save_payload(path, {"format": FORMAT, "version": VERSION, **payload,
                               "digest": state_digest(payload["model"])}, CheckpointError, "checkpoint")


def non_finite(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding NaN or infinity."""
    return [name for name, value in state.items()
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all())]


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    payload = load_payload(path, CheckpointError, "checkpoint", map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an NLMM checkpoint (no '{FORMAT}' marker)")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: written by a newer NLMM (format version {payload['version']})")
    for key in ("config", "model", "tokenizer"):
        if key not in payload:
            raise CheckpointError(f"{path}: incomplete checkpoint (no '{key}')")
    vocabulary = payload["tokenizer"].get("vocabulary") if isinstance(payload["tokenizer"], dict) else None
    if not (isinstance(vocabulary, list) and all(isinstance(word, str) for word in vocabulary)
            and vocabulary[:2] == ["<pad>", "<unk>"]):
        raise CheckpointError(f"{path}: its tokenizer is missing or damaged (expected a vocabulary starting "
                              "with '<pad>', '<unk>')")
    if not isinstance(payload["model"], dict) or not all(torch.is_tensor(v) for v in payload["model"].values()):
        raise CheckpointError(f"{path}: its weights are missing or damaged (expected named tensors)")
    if "digest" in payload and payload["digest"] != state_digest(payload["model"]):   # older files have none
        raise CheckpointError(f"{path}: damaged: its weights do not match the digest written with them "
                              "(a changed or corrupted byte); use another copy")
    return payload


def checkpoint_config(payload: dict, path: str | os.PathLike = "checkpoint") -> NLMMConfig:
    try:
        return config_from_dict(payload["config"])
    except ConfigError as err:
        raise CheckpointError(f"{path}: its config is invalid ({err})") from None


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu"):
    """-> (model in eval mode on device, config, tokenizer, payload)."""
    from engine.models.nlmm import NLMM
    payload = load_checkpoint(path)
    cfg = checkpoint_config(payload, path)
    model = NLMM(cfg)
    upgrade(payload, model)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit its config ({first[:200]})") from None
    broken = non_finite(payload["model"])
    if broken:
        raise CheckpointError(f"{path}: holds NaN or infinite weights ({', '.join(broken[:3])}"
                              f"{', …' if len(broken) > 3 else ''}); the model cannot be used")
    tokenizer = Tokenizer.from_state_dict(payload["tokenizer"])
    return model.to(device).eval(), cfg, tokenizer, payload


def upgrade(payload: dict, model) -> dict:
    """An older payload brought to this version, in place: retired weights out of the model's state, and
    out of the outer optimiser's state when it is there (it numbers parameters by position, so a
    retired one shifts every later one)."""
    state = payload["model"]
    retired = [name for name in RETIRED if name in state]
    if not retired:
        return payload
    outer = {name for name, _ in model.named_outer_parameters()}
    old_outer = [name for name in state if name in outer or name in retired]   # a state dict keeps model order
    gone = {i for i, name in enumerate(old_outer) if name in retired}
    for name in retired:
        del state[name]
    optimizer = (payload.get("train_state") or {}).get("scheduler", {}).get("outer")
    if optimizer is not None:
        kept = sorted(i for group in optimizer["param_groups"] for i in group["params"] if i not in gone)
        renumber = {old: new for new, old in enumerate(kept)}
        optimizer["state"] = {renumber[i]: v for i, v in optimizer["state"].items() if i not in gone}
        for group in optimizer["param_groups"]:
            group["params"] = [renumber[i] for i in group["params"] if i not in gone]
    return payload


def model_payload(model, cfg: NLMMConfig, tokenizer: Tokenizer, **extra) -> dict:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {"config": config_to_dict(cfg), "model": state, "tokenizer": tokenizer.state_dict(), **extra}


def slim_checkpoint(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """A checkpoint for using the model, not resuming it: optimiser and RNG state dropped (3x smaller)."""
    payload = load_checkpoint(source)
    keep = {k: v for k, v in payload.items() if k not in ("train_state", "rng", "format", "version")}
    return save_checkpoint(target, keep)
