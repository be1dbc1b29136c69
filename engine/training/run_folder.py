"""The run folder a training run writes into, held by one run at a time.

Two runs writing into one folder both "finished" and interleaved their metrics.jsonl lines; so a run
holds an exclusive lock (`flock` on `.lock`, released by the kernel when the process dies, even by
kill -9) for as long as it writes. Holding it also means that any temp file left in the folder comes
from a write that was killed half way, and is swept away.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK = ".lock"


class RunFolderError(ValueError):
    """The run folder cannot be used; the message names the folder and the problem."""


def _describe(err: OSError) -> str:
    return err.strerror or type(err).__name__


def check_usable(path: Path) -> None:
    """Fail early, before data is loaded, when `path` cannot be a run folder or another run holds it."""
    RunFolder(path).release()


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

    def sweep_temp_files(self) -> list[str]:
        """Remove what killed atomic writes left (`.<name>.<random>.tmp`, see engine.config)."""
        removed = []
        for stale in self.path.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
            removed.append(stale.name)
        return removed

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None
