"""Values read back from QSettings, which hold whatever an older version, another tool or a hand-edited
file left there: a bad value falls back to the default instead of stopping the studio at launch."""
from __future__ import annotations


def int_setting(settings, key: str, default: int) -> int:
    try:
        return int(settings.value(key, default))
    except (TypeError, ValueError):
        return default


def str_setting(settings, key: str, default: str = "") -> str:
    """A text setting; anything else stored there (a list an ini file made of "a, b", a number, bytes) is
    the default."""
    value = settings.value(key, default)
    return value if isinstance(value, str) else default


def bytes_setting(settings, key: str):
    """A saved window geometry or layout (QByteArray), or None when what is stored is not bytes: restoring
    a string aborted the studio at every launch."""
    from PySide6.QtCore import QByteArray
    value = settings.value(key)
    if isinstance(value, QByteArray):
        return value
    if isinstance(value, (bytes, bytearray)):
        return QByteArray(bytes(value))
    return None
