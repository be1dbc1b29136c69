"""Flickr8k + the Flickr Audio Caption Corpus, from the release archives however they were unpacked.

Point it at the folder the user downloaded into. Each piece is looked for at any depth (up to
`MAX_DEPTH` folders down; `__MACOSX` and hidden folders ignored):

    *.jpg                              the images, in the folder that holds the most of them by name
                                       (Flickr8k_Dataset.zip unpacked into a folder of its own name gives
                                       Flickr8k_Dataset/Flicker8k_Dataset/*.jpg)
    Flickr8k.token.txt                 <image>#<n><TAB><caption>
    Flickr_8k.trainImages.txt, Flickr_8k.devImages.txt, Flickr_8k.testImages.txt
    dataset_flickr8k.json              Karpathy's split (used instead of the lists when present)
    wav2capt.txt (<wav> <image> #<n>), *.wav   the spoken captions (flickr_audio/)

Items are (image, caption n, spoken caption n) triples keyed by the image, so retrieval counts the
image's own captions as hits. A few missing files are counted in `skipped`; a whole modality missing is
reported in `missing`, with the places looked at, so that `nlmm train` can refuse to go on without it.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from engine.data.dataset import PROGRESS_EVERY, DataSplits, Item
from engine.data.errors import DataError

IMAGE_DIRS = ("Flicker8k_Dataset", "Flickr8k_Dataset")  # the original spelling, and the archive's
SPLIT_LISTS = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt",
               "test": "Flickr_8k.testImages.txt"}
KARPATHY = "dataset_flickr8k.json"
TOKENS = "Flickr8k.token.txt"
WAV2CAPT = "wav2capt.txt"
MAX_DEPTH = 5            # root/Flickr8k/flickr_audio/flickr_audio/wavs is 4 folders down
MAX_ENTRIES = 500_000    # Flickr8k + its audio is ~50 000 files; more means DIR is not the data set folder


class Tree:
    """The folders under `root` (to MAX_DEPTH) and the file names each holds, listed once."""

    def __init__(self, root: Path):
        self.root, self.files = root, {}
        seen = 0
        for folder, dirs, names in os.walk(root):
            depth = len(Path(folder).relative_to(root).parts)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX") if depth < MAX_DEPTH else []
            seen += len(names) + len(dirs)
            if seen > MAX_ENTRIES:
                raise DataError(f"{root}: more than {MAX_ENTRIES:,} files below it; point at the Flickr8k folder")
            self.files[Path(folder)] = set(names)

    def find(self, name: str) -> Path | None:
        """The shallowest file called `name`."""
        holding = [folder for folder, names in self.files.items() if name in names]
        return min(holding, key=lambda f: (len(f.parts), str(f))) / name if holding else None

    def folder_holding(self, wanted: set[str]) -> tuple[Path | None, int]:
        """The folder holding the most of the `wanted` file names, and how many it holds."""
        best, count = None, 0
        for folder, names in self.files.items():
            found = len(names & wanted) if wanted else 0
            if found > count:
                best, count = folder, found
        return best, count

    def named(self, *names: str) -> list[Path]:
        return [folder for folder in self.files if folder.name in names]


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


def _looked_in(tree: Tree, names: tuple[str, ...], wanted: int, what: str) -> str:
    """Where a modality was looked for, for the message that says it is missing."""
    named = tree.named(*names)
    if named:
        places = ", ".join(f"{folder} (0 of the {wanted} {what})" for folder in named)
    else:
        places = f"no folder named {' or '.join(names)}"
    return f"{places}; and every folder up to {MAX_DEPTH} levels under {tree.root}"


def load_flickr8k(root: str | Path, progress=None) -> DataSplits:
    """progress(done, total): images looked at so far (see engine.data.sources)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: Flickr8k folder not found")
    tree = Tree(root)
    token_file = tree.find(TOKENS)
    if token_file is None:
        raise DataError(f"{root}: no {TOKENS} in it or up to {MAX_DEPTH} folders down (is this the Flickr8k folder?)")
    notes, skipped, missing = [], Counter(), {}

    karpathy = tree.find(KARPATHY)
    if karpathy is not None:
        splits = _splits_from_karpathy(karpathy)
        notes.append(f"splits from Karpathy's {karpathy.name}")
    else:
        splits = {}
        for split, name in SPLIT_LISTS.items():
            path = tree.find(name)
            if path is None:
                raise DataError(f"{root}: split list {name} not found (nor {KARPATHY})")
            splits[split] = {line.strip() for line in _read_lines(path) if line.strip()}

    captions = read_captions(token_file)
    wanted_images = set().union(*splits.values())
    image_dir, found = tree.folder_holding(wanted_images)
    if image_dir is None:
        missing["image"] = _looked_in(tree, IMAGE_DIRS, len(wanted_images), "images")
    else:
        notes.append(f"images from {image_dir} ({found} of {len(wanted_images)})")

    wav2capt_file = tree.find(WAV2CAPT)
    wav_of = read_wav2capt(wav2capt_file) if wav2capt_file else {}
    audio_dir, found = tree.folder_holding(set(wav_of.values()))
    if audio_dir is None:
        what = f"{WAV2CAPT} not found" if wav2capt_file is None else f"none of the {len(wav_of)} wavs of {wav2capt_file}"
        missing["audio"] = f"{what}: looked in every folder up to {MAX_DEPTH} levels under {root}"
    else:
        notes.append(f"spoken captions from {audio_dir} ({found} of {len(wav_of)})")
    present_wavs = tree.files.get(audio_dir, set())
    present_images = tree.files.get(image_dir, set())

    items: dict[str, list[Item]] = {split: [] for split in splits}
    total, done = sum(len(names) for names in splits.values()), 0
    if progress:
        progress(0, total)
    for split, names in splits.items():
        for image_name in sorted(names):
            done += 1
            if progress and done % PROGRESS_EVERY == 0:
                progress(done, total)
            image = None
            if image_dir is not None:
                if image_name in present_images:
                    image = image_dir / image_name
                else:
                    skipped["missing image"] += 1
            image_captions = captions.get(image_name)
            if not image_captions:
                skipped["image without captions"] += 1
                continue
            for number, caption in sorted(image_captions.items()):
                audio = None
                wav = wav_of.get((image_name, number))
                if wav is not None and audio_dir is not None:
                    if wav in present_wavs:
                        audio = audio_dir / wav
                    else:
                        skipped["missing audio"] += 1
                item = Item(image=image, text=caption, audio=audio, key=image_name)
                if len(item.modalities()) >= 2:
                    items[split].append(item)
    if progress:
        progress(total, total)
    return DataSplits(f"flickr8k:{root}", items, skipped, notes, missing=missing)
