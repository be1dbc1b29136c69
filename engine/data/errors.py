"""Errors raised by the data layer."""


class DataError(ValueError):
    """A data file or folder is unusable; the message names the file and the problem."""


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of a library's error message (some span pages), cut to `limit` characters."""
    text = str(err).strip().splitlines()
    return text[0][:limit] if text else type(err).__name__
