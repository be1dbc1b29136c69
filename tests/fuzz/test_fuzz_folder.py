"""The folder loader under generated items.csv files: DataSplits whose items exist, or one DataError."""
import io

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.data.dataset import SPLITS
from engine.data.errors import DataError
from engine.data.folder import load_folder
from tests.fuzz.conftest import one_line

COLUMNS = ["image", "text", "audio", "label", "split", "notes", "IMAGE", " text "]
CELLS = st.one_of(st.sampled_from(["", "a.png", "missing.png", "a.wav", "../a.png", "/etc/passwd", "train",
                                   "val", "test", "TEST", "later", "42", "cat", "a, b", '"quoted"']),
                  st.text(max_size=30))


def check(root) -> None:
    try:
        data = load_folder(root)
    except DataError as err:
        assert one_line(str(err)) and str(root) in str(err), str(err)
        return
    assert set(data.splits) == set(SPLITS)
    for items in data.splits.values():
        for item in items:
            assert item.modalities()
            assert all(path.is_file() for path in (item.image, item.audio) if path is not None)
    assert set(data.missing) <= {"image", "audio"}


@st.composite
def csv_files(draw) -> bytes:
    columns = draw(st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=6))
    rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=8), max_size=12))
    delimiter = draw(st.sampled_from([",", ",", ";", "\t"]))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    buffer = io.StringIO()
    for line in [columns] + rows:
        buffer.write(delimiter.join(cell if delimiter not in cell else f'"{cell}"' for cell in line) + ending)
    text = buffer.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace")


@settings(max_examples=240)
@given(blob=csv_files())
def test_generated_items_csv_loads_or_says_why(scratch, blob):
    root = scratch / "data"
    root.mkdir(exist_ok=True)
    if not (root / "a.png").exists():
        Image.new("L", (8, 8), 255).save(root / "a.png")
        (root / "a.wav").write_bytes(b"RIFF")
    (root / "items.csv").write_bytes(blob)
    check(root)


@settings(max_examples=80)
@given(blob=st.binary(max_size=2000))
def test_random_bytes_as_items_csv_are_one_line(scratch, blob):
    root = scratch / "noise"
    root.mkdir(exist_ok=True)
    (root / "items.csv").write_bytes(blob)
    check(root)
