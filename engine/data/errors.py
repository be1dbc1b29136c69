"""Errors raised by the data layer, and what is wrong with a file before its format is blamed."""
from __future__ import annotations

import os
import stat
from pathlib import Path


class DataError(ValueError):
    """A data file or folder is unusable; the message names the file and the problem."""


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of a library's error message (some span pages), cut to `limit` characters."""
    text = str(err).strip().splitlines()
    return text[0][:limit] if text else type(err).__name__


def file_problem(path: str | os.PathLike, what: str = "file") -> str | None:
    """What keeps `path` from being read as a `what` ("image file"), whatever its format: missing, a
    folder, a device or a pipe (/dev/zero reads forever and has no size), unreadable for this user, or
    empty. None when it is a readable regular file with bytes, so that a reader's error is then about its
    content."""
    path = Path(path)
    try:
        status = path.stat()
    except FileNotFoundError:
        return "file not found"
    except PermissionError:
        return "permission denied (its folder cannot be read)"
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    mode = status.st_mode
    if stat.S_ISDIR(mode):
        return f"a folder, not {_a(what)}"
    if not stat.S_ISREG(mode):
        kind = "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
            "a pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
        return f"{kind}, not {_a(what)}"
    if not os.access(path, os.R_OK):
        return "permission denied (this user may not read it)"
    if status.st_size == 0:
        return "empty file (0 bytes)"
    return None


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"
