"""A user's own data set: a folder anyone can make by hand, and that the studio appends to.

    my_data/
      items.csv          image,text,audio,label[,split]   (paths relative to the folder; any cell may be empty)
      images/…  audio/…  (anywhere inside the folder, really)

`label` groups items that count as the same thing in retrieval (any text: "cat", "42"). `split` is
train/val/test; when the column is missing or empty, the split is derived from a hash of the row so it
never changes as rows are added (80 % train, 10 % val, 10 % test).
"""
from __future__ import annotations

import csv
import fcntl
import hashlib
import os
import shutil
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.data.dataset import PROGRESS_EVERY, SPLITS, DataSplits, Item
from engine.data.errors import DataError, first_line
from engine.data.table import read_text
from engine.vocabulary import SAMPLE_RATE

INDEX = "items.csv"
COLUMNS = ["image", "text", "audio", "label", "split"]


def _hash_split(key: str) -> str:
    bucket = int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16) % 100
    return "train" if bucket < 80 else "val" if bucket < 90 else "test"


def load_folder(root: str | Path, progress=None) -> DataSplits:
    """progress(done, total): rows looked at so far (see engine.data.sources)."""
    root = Path(root).expanduser()
    index = root / INDEX
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    if not index.is_file():
        raise DataError(f"{root}: no {INDEX} (columns: image,text,audio,label; see docs/data.md)")
    try:
        # Any encoding and separator Excel writes (engine/data/table.py): a byte-order mark would otherwise
        # become part of the first column's name. The shared lock waits out a FolderWriter's append, so no
        # half-written row is read.
        with index.open("rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            data = handle.read()
        text, dialect, found = read_text(data)
        reader = csv.DictReader(text, dialect=dialect)
        header = [h.strip() for h in (reader.fieldnames or [])]
        rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{index}: not a readable CSV file ({first_line(err)})") from None
    if not {"image", "text", "audio"} & set(header):
        raise DataError(f"{index}: header must name some of image,text,audio,label; got {','.join(header) or 'nothing'}")

    skipped, splits, named = Counter(), {split: [] for split in SPLITS}, Counter()
    names = sorted({(row.get("label") or "").strip() for row in rows} - {""})
    if all(name.isdigit() for name in names):  # numbers keep their value; any other names get 0, 1, …
        label_ids = {name: int(name) for name in names}
    else:
        label_ids = {name: i for i, name in enumerate(names)}
    if progress:
        progress(0, len(rows))
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        if progress and (number - 1) % PROGRESS_EVERY == 0:
            progress(number - 1, len(rows))
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        paths = {}
        for modality in ("image", "audio"):
            cell = row.get(modality, "")
            if cell:
                named[modality] += 1
                path = Path(cell) if os.path.isabs(cell) else root / cell
                if path.is_file():
                    paths[modality] = path
                else:
                    skipped[f"missing {modality}"] += 1
        item = Item(image=paths.get("image"), text=row.get("text") or None, audio=paths.get("audio"),
                    label=label_ids.get(row.get("label", "")), key=f"{INDEX}:{number}")
        if not item.modalities():
            skipped["empty row"] += 1
            continue
        split = row.get("split", "").lower() or _hash_split(f"{row.get('image')}|{row.get('text')}|{row.get('audio')}")
        if split not in splits:
            raise DataError(f"{index}: line {number}: split must be train, val or test, got '{row['split']}'")
        splits[split].append(item)
    if progress:
        progress(len(rows), len(rows))
    missing = {modality: f"{count} named in {index}, none of them found under {root}"
               for modality, count in named.items() if skipped[f"missing {modality}"] == count}
    notes = [] if found == "UTF-8, cells separated by commas" else [f"{index}: read as {found}"]
    return DataSplits(f"folder:{root}", splits, skipped, notes=notes, missing=missing,
                      label_names={i: name for name, i in label_ids.items()})


class FolderWriter:
    """Adds items to a folder data set: media are copied in under unique names first, then one CSV row
    is appended under an exclusive lock, so a crash never leaves a row pointing at nothing."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    def _unique(self, subdir: str, suffix: str) -> Path:
        folder = self.root / subdir
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}{suffix}"

    def add(self, image: str | Path | None = None, text: str | None = None,
            audio: str | Path | np.ndarray | None = None, sample_rate: int = SAMPLE_RATE,
            label: str | int | None = None, split: str = "") -> dict:
        if image is None and not text and audio is None:
            raise DataError("nothing to add: give an image, a text or an audio clip")
        row = {"image": "", "text": (text or "").replace("\n", " "), "audio": "",
               "label": "" if label is None else str(label), "split": split}
        if image is not None:
            source = Path(image)
            target = self._unique("images", source.suffix.lower() or ".png")
            shutil.copyfile(source, target)
            row["image"] = target.relative_to(self.root).as_posix()
        if audio is not None:
            target = self._unique("audio", ".wav" if isinstance(audio, np.ndarray) else Path(audio).suffix.lower())
            if isinstance(audio, np.ndarray):
                sf.write(str(target), audio, sample_rate, subtype="PCM_16")
            else:
                shutil.copyfile(audio, target)
            row["audio"] = target.relative_to(self.root).as_posix()
        self._append(row)
        return row

    def _append(self, row: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        index = self.root / INDEX
        with index.open("a+", newline="", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                existing = handle.read().removeprefix("\ufeff")  # Excel's byte-order mark is not a column
                # Keep the columns of a hand-made file (its order, its extra columns).
                header = next(csv.reader([existing.splitlines()[0]]), []) if existing.strip() else COLUMNS
                writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore", restval="")
                if not existing.strip():
                    writer.writeheader()
                elif not existing.endswith("\n"):
                    handle.write("\n")
                writer.writerow(row)
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
