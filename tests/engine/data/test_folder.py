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
