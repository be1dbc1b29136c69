"""A user's folder: written by FolderWriter (as the studio will), read back, and hand-made CSVs."""
import numpy as np
import pytest
from PIL import Image

from engine.data.errors import DataError
from engine.data.folder import FolderWriter, load_folder


def test_write_then_read_round_trip(tmp_path):
    source = tmp_path / "drop.png"
    Image.new("L", (10, 10), 255).save(source)
    writer = FolderWriter(tmp_path / "mine")
    for i in range(30):
        writer.add(image=source, text=f"item {i}", audio=0.2 * np.sin(np.arange(8000) / 5.0).astype(np.float32),
                   label=i % 3)
    writer.add(text="only text", label="7", split="test")
    data = load_folder(tmp_path / "mine")
    items = [item for split in data.splits.values() for item in split]
    assert len(items) == 31
    assert {item.label for item in items} == {0, 1, 2, 7}
    assert all(item.image.is_file() and item.audio.is_file() for item in items if item.text != "only text")
    assert [i.text for i in data.splits["test"] if i.text == "only text"] == ["only text"]
    assert len(data.splits["train"]) > len(data.splits["val"])  # the hash split puts ~80 % in train


def test_hand_made_csv_with_other_column_order_and_missing_files(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")  # present (its content is checked only when loaded)
    (tmp_path / "items.csv").write_text("label,text,image\ncat,a cat,a.png\ndog,a dog,missing.png\n,,\n")
    data = load_folder(tmp_path)
    items = [item for split in data.splits.values() for item in split]
    assert sorted(i.text for i in items) == ["a cat", "a dog"]
    assert data.skipped == {"missing image": 1, "empty row": 1}
    assert {i.label for i in items} == {0, 1}
    FolderWriter(tmp_path).add(text="a bird", label="bird")
    lines = (tmp_path / "items.csv").read_text().splitlines()
    assert lines[0] == "label,text,image" and lines[-1] == "bird,a bird,"  # the file's own columns kept


def test_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no items.csv"):
        load_folder(tmp_path)
    (tmp_path / "items.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(DataError, match="header must name"):
        load_folder(tmp_path)
    (tmp_path / "items.csv").write_text("text,split\nhello,later\n")
    with pytest.raises(DataError, match="line 2: split must be"):
        load_folder(tmp_path)
    with pytest.raises(DataError, match="nothing to add"):
        FolderWriter(tmp_path).add()


def test_loading_reports_progress_and_a_raising_callback_abandons_it(tmp_path):
    from engine.data.sources import load_source
    rows = "".join(f"caption {i},{i % 10}\n" for i in range(450))
    (tmp_path / "items.csv").write_text("text,label\n" + rows)
    calls = []
    data = load_source(f"folder:{tmp_path}", progress=lambda done, total: calls.append((done, total)))
    assert sum(len(items) for items in data.splits.values()) == 450
    assert calls[0] == (0, 450) and calls[-1] == (450, 450)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls) and len(calls) >= 4

    class Cancelled(Exception):
        pass

    def cancel_at_200(done, total):
        if done >= 200:
            raise Cancelled()
    with pytest.raises(Cancelled):
        load_source(f"folder:{tmp_path}", progress=cancel_at_200)


def test_excel_csv_utf8_with_a_byte_order_mark_keeps_its_first_column(tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM; it became part of the first column's name ("\\ufeffimage")
    and every image was silently dropped."""
    Image.new("L", (8, 8), 255).save(tmp_path / "a.png")
    (tmp_path / "items.csv").write_bytes("image,text,label\r\na.png,a square,sq\r\n".encode("utf-8-sig"))
    data = load_folder(tmp_path)
    [item] = [i for split in data.splits.values() for i in split]
    assert item.image == tmp_path / "a.png" and item.text == "a square"
    FolderWriter(tmp_path).add(image=tmp_path / "a.png", text="another", label="sq")
    items = [i for split in load_folder(tmp_path).splits.values() for i in split]
    assert len(items) == 2 and all(i.image is not None for i in items)  # the appended row kept its image too


APPEND = """
import sys
import numpy as np
from engine.data.folder import FolderWriter
writer = FolderWriter(sys.argv[1])
for i in range(int(sys.argv[3])):
    writer.add(image=sys.argv[4], text=f"{sys.argv[2]} {i}", label=sys.argv[2],
               audio=0.2 * np.sin(np.arange(1600) / 3.0).astype(np.float32))
"""


def test_two_processes_appending_to_one_folder_lose_no_row(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    image = tmp_path / "drop.png"
    Image.new("L", (8, 8), 200).save(image)
    root = tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, "-c", APPEND, str(root), name, "60", str(image)],
                              cwd=Path(__file__).resolve().parents[3], stderr=subprocess.PIPE, text=True)
             for name in ("left", "right")]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    items = [i for split in load_folder(root).splits.values() for i in split]
    assert sorted(i.text for i in items) == sorted(f"{n} {i}" for n in ("left", "right") for i in range(60))
    assert all(i.image.is_file() and i.audio.is_file() for i in items)
    assert (root / "items.csv").read_text().count("image,text,audio,label,split") == 1


def test_a_modality_named_in_the_csv_but_never_found_is_reported_missing(tmp_path):
    (tmp_path / "items.csv").write_text("image,text\nphotos/1.jpg,one\nphotos/2.jpg,two\n,three\n")
    data = load_folder(tmp_path)
    assert set(data.missing) == {"image"}
    assert data.missing_message("image") == (f"folder:{tmp_path}: no image files found (2 named in "
                                             f"{tmp_path / 'items.csv'}, none of them found under {tmp_path})")
    (tmp_path / "items.csv").write_text("image,text,audio\n,one,\n,two,\n")  # empty columns: not expected
    assert load_folder(tmp_path).missing == {}


@pytest.mark.parametrize("encoding,separator,found", [
    ("cp1252", ";", "Windows-1252, cells separated by semicolons"),    # Excel "CSV" where the decimal mark is ","
    ("utf-16", "\t", "UTF-16, cells separated by tabs"),                # Excel "Unicode text"
    ("utf-8-sig", ",", None),                                          # Excel "CSV UTF-8": nothing to say
])
def test_csv_files_as_excel_writes_them_are_read_and_say_how(tmp_path, encoding, separator, found):
    rows = [["image", "text", "audio", "label", "split"], ["", "un café crème", "", "café", "train"],
            ["", "zwölf Äpfel", "", "zwölf", "train"]]
    (tmp_path / "items.csv").write_bytes("\r\n".join(separator.join(r) for r in rows).encode(encoding))
    data = load_folder(tmp_path)
    assert [i.text for i in data.splits["train"]] == ["un café crème", "zwölf Äpfel"]
    assert sorted(data.label_names.values()) == ["café", "zwölf"]
    assert data.notes == ([f"{tmp_path / 'items.csv'}: read as {found}"] if found else [])


def test_a_csv_that_is_not_text_is_one_line(tmp_path):
    (tmp_path / "items.csv").write_bytes(b"image,text\n\x81\x8d\x8f\x90\x9d\x00\xff" * 3)
    with pytest.raises(DataError, match="not a readable CSV file"):
        load_folder(tmp_path)
