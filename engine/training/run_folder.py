"""The run folder a training run writes into, held by one run at a time.

Two runs writing into one folder both "finished" and interleaved their metrics.jsonl lines; so a run
holds an exclusive lock (`flock` on `.lock`, released by the kernel when the process dies, even by
kill -9) for as long as it writes. Holding it also means that any temp file left in the folder comes
from a write that was killed half way, and is swept away. A process forked from the run (a worker
preparing its batches) closes its copy of the lock: it would otherwise hold the folder after the run was
killed, until it noticed.
"""
from __future__ import annotations

import fcntl
import os
import time
import weakref
from glob import escape as glob_escape
from pathlib import Path

LOCK = ".lock"


def new_run_name(label: str) -> str:
    """A run folder's name: when it started, then what it is (`20261207-113340-tiny`), so runs sort by time."""
    return time.strftime(f"%Y%m%d-%H%M%S-{label}")


class RunFolderError(ValueError):
    """The run folder cannot be used; the message names the folder and the problem."""


def _describe(err: OSError) -> str:
    return err.strerror or type(err).__name__


def check_usable(path: Path, holds_a_run: bool = False) -> None:
    """Fail early, before data is loaded, when `path` cannot be a run folder or another run holds it.
    `holds_a_run`: the folder's files belong to a run this one does not continue (no --resume), so it
    is refused rather than overwritten."""
    if holds_a_run:
        raise RunFolderError(f"{path}: already holds a training run; continue it with --resume, or give "
                             "--out a new folder (nothing was changed)")
    created = not Path(path).exists()
    folder = RunFolder(path)
    folder.release()
    if created:     # checked, not yet used: a run refused later leaves no folder behind
        (Path(path) / LOCK).unlink(missing_ok=True)
        try:
            Path(path).rmdir()
        except OSError:
            pass


_HELD: "weakref.WeakSet[RunFolder]" = weakref.WeakSet()   # the folders this process holds


def _let_go_in_child() -> None:
    """In a forked child: close the copies of the held folders' lock descriptors (the parent keeps its lock)."""
    for folder in list(_HELD):
        if folder._fd is not None:
            try:
                os.close(folder._fd)
            except OSError:
                pass
            folder._fd = None
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_let_go_in_child)


class RunFolder:
    """Creates `path` if needed and locks it; `release()` (or the process ending) unlocks it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"{self.path}: exists and is not a folder; give --out a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise RunFolderError(f"{self.path}: cannot write the run folder ({_describe(err)})") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise RunFolderError(f"{self.path}: another training run is writing into this folder; "
                                 "wait for it or choose another --out") from None
        _HELD.add(self)

    def sweep_temp_files(self, written: tuple[str, ...]) -> list[str]:
        """Remove what killed atomic writes of the run's own files (`written`, e.g. checkpoint.pt) left:
        `.<name>.<random>.tmp` (engine.config.atomic_write_bytes). Any other file is the user's."""
        removed = []
        for name in written:
            for stale in self.path.glob(f".{glob_escape(name)}.*.tmp"):
                stale.unlink(missing_ok=True)
                removed.append(stale.name)
        return removed

    def set_aside(self, name: str) -> str:
        """Rename the folder's file `name` (e.g. metrics.jsonl) to the first free `<stem>.earlier-N<suffix>`,
        so a new run starts it afresh and nothing of the old one is lost. Returns the new name."""
        stem, suffix = os.path.splitext(name)
        n = 1
        while (self.path / f"{stem}.earlier-{n}{suffix}").exists():
            n += 1
        kept = f"{stem}.earlier-{n}{suffix}"
        os.replace(self.path / name, self.path / kept)
        return kept

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None
        _HELD.discard(self)
