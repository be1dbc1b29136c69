"""CSV files as spreadsheets save them: any encoding Excel writes (UTF-8 with or without its mark, UTF-16,
Windows-1252) and any of its separators; the same rows come back, and the note says what was found."""
import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data.table import read_text

CELL = st.text(alphabet=st.characters(codec="cp1252", exclude_characters="\r\n\x00"), max_size=12)
ENCODINGS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16", "cp1252": "Windows-1252"}


@settings(max_examples=200)
@given(rows=st.lists(st.lists(CELL, min_size=2, max_size=4), min_size=2, max_size=6),
       encoding=st.sampled_from(sorted(ENCODINGS)), separator=st.sampled_from([",", ";", "\t"]))
def test_rows_come_back_whatever_the_encoding_and_the_separator(rows, encoding, separator):
    width = len(rows[0])
    rows = [["image", "label", *[f"extra{i}" for i in range(width - 2)]]] + [(r + [""] * width)[:width] for r in rows]
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=separator, lineterminator="\r\n", quoting=csv.QUOTE_ALL).writerows(rows)
    data = out.getvalue().encode(encoding)
    said = ENCODINGS[encoding]
    if said == "Windows-1252" and _is_utf8(data):
        # bytes that are UTF-8 as well (ASCII, or "Â" before a C1 control): read as UTF-8, the first tried
        said, rows = "UTF-8", list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=separator))
    text, dialect, found = read_text(data)
    assert list(csv.reader(text, dialect)) == rows
    assert found.startswith(said), found
    assert {",": "commas", ";": "semicolons", "\t": "tabs"}[separator] in found


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
