"""Values read back from QSettings, which hold whatever an older version, another tool or a hand-edited
file left there: a bad value falls back to the default instead of stopping the studio at launch."""
from __future__ import annotations


def int_setting(settings, key: str, default: int) -> int:
    try:
        return int(settings.value(key, default))
    except (TypeError, ValueError):
        return default
