"""Reader for the shipped built-in dataset: "spoken numbers" 0-99 in three modalities.

The data lives in ``resources/builtin`` (see its README.md) and is produced by
``scripts/make_builtin_dataset.py``.  Every item joins one handwritten-number image
(32 x 64, 8-bit grey, light strokes on a dark background), one caption string, one
spoken clip (16 kHz mono, Ogg Opus) and the number itself (``label``).

This module needs only the standard library, numpy, Pillow and soundfile; it never
imports torch, scikit-learn or espeak-ng.

Item fields:

* ``image``  - absolute path of the PNG file.
* ``text``   - the caption of this item (one of :func:`caption_forms`).
* ``audio``  - absolute path of the Ogg Opus clip.  One clip exists per (number,
  voice setting); an item references the clip of its label and voice.
* ``label``  - the number, 0-99.
* ``voice``  - the id of the voice that spoke the clip (see ``voices.json``), e.g.
  ``"en-gb-scotland+m3-s160-p45"`` (espeak-ng) or ``"kokoro-test02"``.
* ``engine`` - the speech engine of that voice: espeak-ng, festival or kokoro.
* ``writer`` - the scikit-learn ``load_digits()`` sample index of the first (or only)
  digit drawn in the image.  The UCI set does not publish who wrote each sample, so
  this is a handwriting *sample* id, not a person id.
* ``samples`` - all the ``load_digits()`` sample indices drawn in the image, one per
  digit, left to right.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.data.errors import DataError
from engine.vocabulary import SAMPLE_RATE, SPLITS

BUILTIN_ROOT = Path(__file__).resolve().parents[2] / "resources" / "builtin"
MANIFEST_NAME = "manifest.json"
HELDOUT = "heldout"  # sources no training sample comes from (manifest["heldout"]; engine.bench.robustness)
NUM_LABELS = 100
IMAGE_SIZE = (32, 64)  # height, width

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
    "seventeen", "eighteen", "nineteen",
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


@dataclass(frozen=True)
class BuiltinItem:
    image: Path
    text: str
    audio: Path
    label: int
    voice: str
    writer: int
    samples: tuple[int, ...] = ()
    engine: str = "espeak-ng"


@dataclass(frozen=True)
class HeldoutItem:
    """One item of a held-out condition: an image or a clip, its label and the source it came from."""
    label: int
    source: str              # the font, stroke family or voice
    family: str = ""         # a font's family
    image: Path | None = None
    audio: Path | None = None
    engine: str = ""


def number_words(label: int) -> str:
    """The number in English words, space separated: 42 -> "forty two"."""
    _check_label(label)
    if label < 20:
        return _ONES[label]
    tens, ones = divmod(label, 10)
    return _TENS[tens] if ones == 0 else f"{_TENS[tens]} {_ONES[ones]}"


def caption_forms(label: int) -> list[str]:
    """All caption forms of a number, canonical spoken form first, no duplicates.

    42 -> ["forty two", "forty-two", "the number forty two", "42", "the number 42"]
    7  -> ["seven", "the number seven", "7", "the number 7"]
    """
    words = number_words(label)
    forms = [words, words.replace(" ", "-"), f"the number {words}", str(label), f"the number {label}"]
    return list(dict.fromkeys(forms))


def _check_label(label: int) -> None:
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < NUM_LABELS:
        raise ValueError(f"label must be an int in 0..{NUM_LABELS - 1}, got {label!r}")


def _read_json(path: Path):
    if not path.is_file():
        raise DataError(f"{path}: file is missing")
    try:
        with path.open("r", encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as JSON ({exc})") from exc


def _item(root: Path, manifest: Path, split: str, idx: int, raw, check_files: bool) -> BuiltinItem:
    where = f"{manifest}: splits.{split}[{idx}]"
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected an object, got {type(raw).__name__}")
    try:
        image, text, audio = raw["image"], raw["text"], raw["audio"]
        label, voice, writer = raw["label"], raw["voice"], raw["writer"]
        samples = raw.get("samples", [writer])
    except KeyError as exc:
        raise DataError(f"{where}: missing key {exc.args[0]!r}") from None
    for key, value in (("image", image), ("text", text), ("audio", audio), ("voice", voice)):
        if not isinstance(value, str) or not value:
            raise DataError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < NUM_LABELS:
        raise DataError(f"{where}: 'label' must be an int in 0..{NUM_LABELS - 1}, got {label!r}")
    if (
        not isinstance(samples, list)
        or not samples
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in samples)
        or writer != samples[0]
    ):
        raise DataError(f"{where}: 'writer'/'samples' must be sample ids with writer == samples[0]")
    image_path, audio_path = root / image, root / audio
    if check_files:
        for key, path in (("image", image_path), ("audio", audio_path)):
            if not path.is_file():
                raise DataError(f"{where}: {key} file {path} is missing")
    return BuiltinItem(image_path, text, audio_path, label, voice, writer, tuple(samples),
                       str(raw.get("engine", "espeak-ng")))


def load_builtin_manifest(root: Path | str = BUILTIN_ROOT, check_files: bool = True,
                          splits: tuple[str, ...] = SPLITS) -> dict[str, list[BuiltinItem]]:
    """Read ``manifest.json`` under ``root``: {"train": [...], "val": [...], "test": [...]}, or only the
    `splits` asked (a query's gallery reads the test split's 1 200 items, not all 5 800).

    Raises DataError (naming the file) when the folder or manifest is missing or
    malformed, or, with ``check_files``, when an item's image or audio file is missing.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: built-in dataset folder is missing (regenerate with scripts/make_builtin_dataset.py)")
    manifest = root / MANIFEST_NAME
    data = _read_json(manifest)
    wanted = splits
    splits = data.get("splits") if isinstance(data, dict) else None
    if not isinstance(splits, dict):
        raise DataError(f"{manifest}: expected an object with a 'splits' object")
    for split in SPLITS:
        raw_items = splits.get(split)
        if not isinstance(raw_items, list) or not raw_items:
            raise DataError(f"{manifest}: split {split!r} is missing or empty")
    return {
        split: [_item(root, manifest, split, i, raw, check_files) for i, raw in enumerate(splits[split])]
        for split in SPLITS if split in wanted
    }


def load_heldout(root: Path | str = BUILTIN_ROOT) -> dict[str, list[HeldoutItem]]:
    """The held-out conditions of the manifest: {"speech_engine": clips, "fonts": images, "strokes": images}."""
    root = Path(root)
    manifest = root / MANIFEST_NAME
    data = _read_json(manifest)
    conditions = data.get(HELDOUT) if isinstance(data, dict) else None
    if not isinstance(conditions, dict):
        raise DataError(f"{manifest}: no held-out sources (rebuild with scripts/make_builtin_dataset.py)")
    out = {}
    for name, raw_items in conditions.items():
        items = []
        for i, raw in enumerate(raw_items):
            try:
                media = {k: root / raw[k] for k in ("image", "audio") if k in raw}
                source = raw.get("font") or raw.get("family") or raw["voice"]
                items.append(HeldoutItem(int(raw["label"]), source, raw.get("font_family", ""),
                                         engine=raw.get("engine", ""), **media))
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{manifest}: {HELDOUT}.{name}[{i}]: malformed item ({exc})") from None
        out[name] = items
    return out


def load_voices(root: Path | str = BUILTIN_ROOT) -> dict[str, dict]:
    """Every voice, by id: {id: {engine, split, and the engine's own settings}}."""
    path = Path(root) / "voices.json"
    data = _read_json(path)
    if not isinstance(data, list) or not all(isinstance(v, dict) and "id" in v for v in data):
        raise DataError(f"{path}: expected a list of objects with an 'id'")
    return {v["id"]: v for v in data}


def by_label(items: list[BuiltinItem]) -> dict[int, list[BuiltinItem]]:
    """Group items by label, keeping manifest order (to pair modalities within a label)."""
    groups: dict[int, list[BuiltinItem]] = {}
    for item in items:
        groups.setdefault(item.label, []).append(item)
    return groups


def load_image(path: Path | str):
    """Decode one image: numpy uint8 array of shape (32, 64), light strokes on dark."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im.convert("L") if im.mode != "L" else im, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot decode image ({exc})") from exc
    if arr.shape != IMAGE_SIZE:
        raise DataError(f"{path}: image is {arr.shape[0]}x{arr.shape[1]}, expected {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}")
    return arr


def load_audio(path: Path | str):
    """Decode one clip: (numpy float32 mono array in [-1, 1], SAMPLE_RATE)."""
    import soundfile as sf

    try:
        wave, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except (RuntimeError, OSError) as exc:  # soundfile.LibsndfileError is a RuntimeError
        raise DataError(f"{path}: cannot decode audio ({exc})") from exc
    if wave.ndim != 1:
        raise DataError(f"{path}: expected mono audio, got shape {wave.shape}")
    if sr != SAMPLE_RATE:
        raise DataError(f"{path}: sample rate {sr}, expected {SAMPLE_RATE}")
    return wave, sr
