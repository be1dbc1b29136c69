"""CSV files as people make them: UTF-8 (with or without a BOM), UTF-16 (Excel's "Unicode text") or
Windows-1252 (Excel's plain "CSV" on a Western Windows), cells separated by commas, semicolons (Excel where
the decimal mark is a comma) or tabs. The standard library's `csv.Sniffer` finds the separator."""
from __future__ import annotations

import csv
import io

ENCODINGS = ("utf-8-sig", "cp1252")   # tried in order when the file has no UTF-16 byte-order mark
SEPARATORS = ",;\t"


def decode(data: bytes) -> tuple[str, str]:
    """-> (the text, the encoding it was read with). UTF-16 is known by its byte-order mark; otherwise UTF-8,
    and when that fails Windows-1252 (which maps every byte but five, rejected as not text)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16"), "UTF-16"
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding), "UTF-8" if encoding == "utf-8-sig" else "Windows-1252"
        except UnicodeDecodeError:
            continue
    raise UnicodeDecodeError("utf-8", data, 0, 1, "neither UTF-8, UTF-16 nor Windows-1252 text")


def dialect_of(text: str) -> type[csv.Dialect] | csv.Dialect:
    """The separator the first lines use (comma when they do not tell)."""
    try:
        return csv.Sniffer().sniff(text[:8192], delimiters=SEPARATORS)
    except csv.Error:
        return csv.excel


def read_text(data: bytes) -> tuple[io.StringIO, csv.Dialect, str]:
    """A CSV file's bytes -> (its text to read rows from, its dialect, "UTF-8, ';'": what was found)."""
    text, encoding = decode(data)
    dialect = dialect_of(text)
    found = f"{encoding}, cells separated by {_separator_name(dialect.delimiter)}"
    return io.StringIO(text, newline=""), dialect, found


def _separator_name(delimiter: str) -> str:
    return {",": "commas", ";": "semicolons", "\t": "tabs"}.get(delimiter, repr(delimiter))
