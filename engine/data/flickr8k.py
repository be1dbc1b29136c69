"""Flickr8k + the Flickr Audio Caption Corpus, from the standard release layout.

Point it at the folder the user downloaded; each piece is looked for there and one folder down:

    Flicker8k_Dataset/ (the original spelling) or Flickr8k_Dataset/   the .jpg images
    Flickr8k.token.txt                 <image>#<n><TAB><caption>
    Flickr_8k.trainImages.txt, Flickr_8k.devImages.txt, Flickr_8k.testImages.txt
    dataset_flickr8k.json              Karpathy's split (used instead of the lists when present)
    flickr_audio/wavs/*.wav, flickr_audio/wav2capt.txt (<wav> <image> #<n>), flickr_audio/wav2spk.txt

Items are (image, caption n, spoken caption n) triples keyed by the image, so retrieval counts the
image's own captions as hits. An image with no audio still trains image-text; missing files are
counted in `skipped` and reported once, never fatal.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from engine.data.dataset import PROGRESS_EVERY, DataSplits, Item
from engine.data.errors import DataError

IMAGE_DIRS = ("Flicker8k_Dataset", "Flickr8k_Dataset")
SPLIT_LISTS = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt",
               "test": "Flickr_8k.testImages.txt"}
KARPATHY = "dataset_flickr8k.json"


def _find(root: Path, *names: str, folder: bool = False) -> Path | None:
    """`root/name` or `root/*/name` (or `root/*/*/name`, for archives that unpack into a folder twice)."""
    for pattern in ("", "*/", "*/*/"):
        for name in names:
            for candidate in sorted(root.glob(pattern + name)):
                if candidate.is_dir() == folder:
                    return candidate
    return None


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None


def read_captions(path: Path) -> dict[str, dict[int, str]]:
    """`<image>#<n>\\t<caption>` -> {image: {n: caption}}; malformed lines are skipped."""
    captions: dict[str, dict[int, str]] = {}
    for line in _read_lines(path):
        if "\t" not in line or "#" not in line.split("\t", 1)[0]:
            continue
        ref, caption = line.split("\t", 1)
        image, _, number = ref.rpartition("#")
        if number.strip().isdigit() and caption.strip():
            captions.setdefault(image.strip(), {})[int(number)] = caption.strip()
    return captions


def read_wav2capt(path: Path) -> dict[tuple[str, int], str]:
    """`<wav> <image> #<n>` -> {(image, n): wav}. The caption number may be written '#0' or '0'."""
    mapping = {}
    for line in _read_lines(path):
        parts = line.split()
        if len(parts) >= 3 and parts[2].lstrip("#").isdigit():
            mapping[(parts[1], int(parts[2].lstrip("#")))] = parts[0]
    return mapping


def read_speakers(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    return {p[0]: p[1] for p in (line.split() for line in _read_lines(path)) if len(p) >= 2}


def _splits_from_karpathy(path: Path) -> dict[str, set[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        images = data["images"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a readable Karpathy split file ({err})") from None
    splits: dict[str, set[str]] = {"train": set(), "val": set(), "test": set()}
    for entry in images:
        split = {"restval": "train"}.get(entry.get("split"), entry.get("split"))
        if split in splits and "filename" in entry:
            splits[split].add(entry["filename"])
    return splits


def load_flickr8k(root: str | Path, progress=None) -> DataSplits:
    """progress(done, total): images looked at so far (see engine.data.sources)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: Flickr8k folder not found")
    image_dir = _find(root, *IMAGE_DIRS, folder=True)
    token_file = _find(root, "Flickr8k.token.txt")
    if token_file is None:
        raise DataError(f"{root}: no Flickr8k.token.txt here or one folder down (is this the Flickr8k folder?)")
    notes, skipped = [], Counter()
    if image_dir is None:
        notes.append(f"no image folder ({' or '.join(IMAGE_DIRS)}) found: training text-audio only")

    karpathy = _find(root, KARPATHY)
    if karpathy is not None:
        splits = _splits_from_karpathy(karpathy)
        notes.append(f"splits from Karpathy's {karpathy.name}")
    else:
        splits = {}
        for split, name in SPLIT_LISTS.items():
            path = _find(root, name)
            if path is None:
                raise DataError(f"{root}: split list {name} not found (nor {KARPATHY})")
            splits[split] = {line.strip() for line in _read_lines(path) if line.strip()}

    captions = read_captions(token_file)
    audio_dir = _find(root, "flickr_audio/wavs", "wavs", folder=True)
    wav2capt_file = _find(root, "flickr_audio/wav2capt.txt", "wav2capt.txt")
    wav_of = read_wav2capt(wav2capt_file) if wav2capt_file else {}
    if not wav_of:
        notes.append("no spoken captions (flickr_audio/wav2capt.txt) found: training image-text only")
    present_wavs = {p.name for p in audio_dir.iterdir()} if audio_dir else set()

    items: dict[str, list[Item]] = {split: [] for split in splits}
    total, done = sum(len(names) for names in splits.values()), 0
    if progress:
        progress(0, total)
    for split, names in splits.items():
        for image_name in sorted(names):
            done += 1
            if progress and done % PROGRESS_EVERY == 0:
                progress(done, total)
            image = image_dir / image_name if image_dir else None
            if image is not None and not image.is_file():
                skipped["missing image"] += 1
                image = None
            image_captions = captions.get(image_name)
            if not image_captions:
                skipped["image without captions"] += 1
                continue
            for number, caption in sorted(image_captions.items()):
                audio = None
                wav = wav_of.get((image_name, number))
                if wav is not None:
                    if wav in present_wavs:
                        audio = audio_dir / wav
                    else:
                        skipped["missing audio"] += 1
                item = Item(image=image, text=caption, audio=audio, key=image_name)
                if len(item.modalities()) >= 2:
                    items[split].append(item)
    if progress:
        progress(total, total)
    return DataSplits(f"flickr8k:{root}", items, skipped, notes)
