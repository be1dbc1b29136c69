"""Errors raised by the data layer."""


class DataError(ValueError):
    """A data file or folder is unusable; the message names the file and the problem."""
