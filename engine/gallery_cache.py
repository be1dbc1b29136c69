"""Embedded galleries kept on disk, so that a query from the command line or a studio launch does not
embed the same items again (the built-in test gallery took 5 s of an 8 s `nlmm query` on 2 cores).

A cached gallery is found by a key made of everything its embeddings depend on: the weights that embed it
(their digest), the model's config, the tokenizer, the device kind and this file's `CACHE_VERSION`, and
the items, each with the size and modification time of its files. Change any of them and the key
changes, so a stale gallery is never read. Files are written atomically and read with
`weights_only=True`; a damaged one is removed and the gallery embedded again. The folder keeps the
`KEPT` most recently used galleries.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import torch

from engine.training.checkpoint import load_payload, save_payload, state_digest

CACHE_VERSION = 1   # raise it when the way items are embedded changes (views, preprocessing)
KEPT = 8            # galleries kept in the folder, the least recently used removed first
SUFFIX = ".gallery.pt"
FOLDER = "galleries"   # inside the cache folder ($NLMM_CACHE_DIR)


class GalleryCacheError(ValueError):
    """A cache file that cannot be written or read."""


def default_folder() -> Path:
    """$NLMM_CACHE_DIR, else $XDG_CACHE_HOME/nlmm/galleries, else ~/.cache/nlmm/galleries."""
    if os.environ.get("NLMM_CACHE_DIR"):
        return Path(os.environ["NLMM_CACHE_DIR"]) / FOLDER
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nlmm" / FOLDER


def _file_stamp(path) -> list:
    """A file's name, size and modification time (nanoseconds); a missing file stamps as missing."""
    if path is None:
        return []
    try:
        stat = os.stat(path)
    except OSError:
        return [str(path), "missing"]
    return [str(path), stat.st_size, stat.st_mtime_ns]


def gallery_key(model, cfg, tokenizer, device: torch.device, items) -> str:
    """The key of `items` embedded by `model` (its weights as they are now) on `device`."""
    digest = hashlib.sha256()
    digest.update(f"v{CACHE_VERSION} {device.type}\n".encode())
    digest.update(state_digest(model.state_dict()).encode())
    digest.update(json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=str).encode())
    digest.update(json.dumps(tokenizer.state_dict(), sort_keys=True, default=str).encode())
    for item in items:
        digest.update(json.dumps([_file_stamp(item.image), item.text, _file_stamp(item.audio), item.label,
                                  item.key]).encode())
    return digest.hexdigest()


class GalleryCache:
    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(folder) if folder is not None else default_folder()

    def _path(self, key: str) -> Path:
        return self.folder / f"{key[:32]}{SUFFIX}"

    def load(self, key: str) -> dict[str, dict[str, torch.Tensor]] | None:
        """modality -> its named tensors, of the gallery cached under `key`, or None when there is none
        (or its file is damaged: it is removed)."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            payload = load_payload(path, GalleryCacheError, "cached gallery")
            if payload.get("key") != key:
                raise GalleryCacheError(f"{path}: another gallery's")
            galleries = {str(m): {str(k): v for k, v in g.items() if isinstance(v, torch.Tensor)}
                         for m, g in payload["galleries"].items()}
        except (GalleryCacheError, KeyError, TypeError, AttributeError):
            path.unlink(missing_ok=True)
            return None
        try:
            os.utime(path)   # most recently used: kept longest
        except OSError:
            pass
        return galleries

    def save(self, key: str, galleries: dict[str, dict[str, torch.Tensor]]) -> Path | None:
        """Keep `galleries` under `key`; a cache that cannot be written (read-only, disk full) is skipped:
        the gallery is in memory and the next run embeds it again. Returns the file, or None."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = save_payload(self._path(key), {"key": key, "galleries": {
                m: {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
                for m, tensors in galleries.items()}}, GalleryCacheError, "cached gallery")
        except (GalleryCacheError, OSError):
            return None
        self._trim()
        return path

    def _trim(self) -> None:
        try:
            files = sorted(self.folder.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
            for old in files[KEPT:]:
                old.unlink(missing_ok=True)
        except OSError:
            pass

    def clear(self) -> int:
        """Remove every cached gallery; returns how many."""
        removed = 0
        for path in self.folder.glob(f"*{SUFFIX}"):
            path.unlink(missing_ok=True)
            removed += 1
        return removed
