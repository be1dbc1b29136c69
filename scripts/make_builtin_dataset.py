#!/usr/bin/env python3
"""Build the shipped built-in dataset ``resources/builtin`` ("spoken numbers" 0-99).

Each item is (handwritten image, caption, spoken clip, label):

* image: real handwriting from scikit-learn's bundled UCI handwritten digits
  (``load_digits()``, 1797 8x8 samples), upscaled, thresholded softly (stroke
  thickness jitter), shifted/rotated/scaled/sheared slightly and composed side by
  side into the number; 32 x 64, 8-bit grey, light strokes on a dark background.
* text: one of ``engine.data.builtin.caption_forms(label)``.
* audio: espeak-ng speaking the word form ("forty two") in one of 34 voice
  settings (voice + variant + speed + pitch), resampled 22.05 -> 16 kHz, trimmed,
  peak-normalised, stored as Ogg Opus.

Splits: handwriting samples are split 70/10/20 per digit class with a seeded
permutation; voice settings are split 24/4/6 (their variants are disjoint too).
Train/val/test images only use their own split's samples, audio only its own
split's voices.

The output is reproducible bit for bit from the seed on the same toolchain
(espeak-ng 1.51, libsndfile/libopus, Pillow/zlib, numpy, torch): libsndfile gives
each Ogg stream a random serial number, so the writer replaces it with a fixed one
(and drops the OpusTags zero padding) and recomputes the page checksums.

Needs (generator only): scikit-learn, espeak-ng, torch + torchaudio, numpy,
Pillow, soundfile.  Run:  .venv/bin/python scripts/make_builtin_dataset.py
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.data.builtin import (  # noqa: E402
    IMAGE_SIZE, NUM_LABELS, SAMPLE_RATE, SPLITS, caption_forms, number_words,
)
from engine.data.handwriting import TRAIN_DIGITS, render_number  # noqa: E402

DEFAULT_SEED = 20240
ITEMS_PER_LABEL = {"train": 16, "val": 4, "test": 6}
SAMPLE_FRACTIONS = (0.7, 0.1, 0.2)  # handwriting samples per digit class: train / val / test
PEAK = 0.89  # about -1 dBFS, leaves room for Opus overshoot
OPUS_LEVEL = None  # libsndfile default Opus bitrate (about 25 kbit/s at 16 kHz)

BASE_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp",
               "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
# espeak-ng variants per split; disjoint, so held-out voices are new timbres, not just new speed/pitch.
# Left out: whisper/whisperf (whispered), Demonic/croak and the robot variants (distorted), klatt6 (== klatt).
VARIANTS = {
    "train": ("m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "f4", "klatt", "klatt2",
              "klatt3", "Alex", "Annie", "Andy", "david", "edward", "linda", "max", "paul",
              "rob", "steph", "zac"),
    "val": ("m7", "f5", "klatt4", "quincy"),
    "test": ("m8", "klatt5", "aunty", "belinda", "robert", "travis"),
}


# ----------------------------------------------------------------------------- voices
def voice_settings() -> list[dict]:
    """34 distinct (voice, variant, speed, pitch) settings with their split."""
    out, i = [], 0
    for split in SPLITS:
        for variant in VARIANTS[split]:
            voice = BASE_VOICES[(i * 3) % len(BASE_VOICES)]
            speed = 130 + (i * 17) % 56  # words per minute, 130..185 (espeak default 175)
            pitch = 30 + (i * 23) % 41  # 30..70 (espeak default 50)
            out.append({"id": f"{voice}+{variant}-s{speed}-p{pitch}", "voice": voice, "variant": variant,
                        "speed": speed, "pitch": pitch, "split": split})
            i += 1
    assert len({v["id"] for v in out}) == len(out)
    return out


def espeak_version() -> str:
    return subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True).stdout.split("Data")[0].strip()


def synthesise(setting: dict, text: str, tmp: Path) -> np.ndarray:
    """espeak-ng -> 16 kHz mono float64, silence trimmed, faded, peak-normalised."""
    from engine.data.dsp import resample

    wav = tmp / "clip.wav"
    cmd = ["espeak-ng", "-v", f"{setting['voice']}+{setting['variant']}", "-s", str(setting["speed"]),
           "-p", str(setting["pitch"]), "-w", str(wav), text]
    subprocess.run(cmd, check=True, capture_output=True)
    x, sr = sf.read(str(wav), dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    y = resample(x, sr, SAMPLE_RATE)
    env = np.abs(y)
    loud = np.flatnonzero(env > 0.03 * env.max())
    start = max(0, loud[0] - int(0.03 * SAMPLE_RATE))
    end = min(len(y), loud[-1] + int(0.05 * SAMPLE_RATE))
    y = y[start:end].copy()
    fade = int(0.005 * SAMPLE_RATE)
    ramp = np.linspace(0.0, 1.0, fade)
    y[:fade] *= ramp
    y[-fade:] *= ramp[::-1]
    return y * (PEAK / np.abs(y).max())


# ----------------------------------------------------------------------------- ogg
def _ogg_crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_CRC = _ogg_crc_table()


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[((crc >> 24) & 0xFF) ^ b]
    return crc


def _lacing(n: int) -> bytes:
    return bytes([255] * (n // 255) + [n % 255])


def canonical_ogg(data: bytes, serial: int) -> bytes:
    """Fix the stream serial number (libsndfile picks a random one), drop the OpusTags
    zero padding, recompute page CRCs.  Needs single-stream Ogg with OpusTags on one page."""
    pages, pos = [], 0
    while pos < len(data):
        if data[pos:pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}")
        nseg = data[pos + 26]
        seg = data[pos + 27:pos + 27 + nseg]
        body_start = pos + 27 + nseg
        body_end = body_start + sum(seg)
        pages.append([bytearray(data[pos:pos + 27]), bytes(seg), data[body_start:body_end]])
        pos = body_end
    out = bytearray()
    for k, (head, seg, body) in enumerate(pages):
        if body.startswith(b"OpusTags"):
            if seg[-1] == 255 or (k + 1 < len(pages) and pages[k + 1][0][5] & 1):
                raise ValueError("OpusTags spans several pages")
            vendor_len = struct.unpack_from("<I", body, 8)[0]
            p = 12 + vendor_len
            count = struct.unpack_from("<I", body, p)[0]
            p += 4
            for _ in range(count):
                p += 4 + struct.unpack_from("<I", body, p)[0]
            body, seg = body[:p], _lacing(p)
        head[26] = len(seg)
        struct.pack_into("<I", head, 14, serial)
        struct.pack_into("<I", head, 22, 0)
        page = bytes(head) + seg + body
        out += page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]
    return bytes(out)


def encode_opus(wave: np.ndarray, serial: int) -> bytes:
    buf = io.BytesIO()
    kw = {} if OPUS_LEVEL is None else {"compression_level": OPUS_LEVEL}
    sf.write(buf, wave.astype(np.float32), SAMPLE_RATE, format="OGG", subtype="OPUS", **kw)
    return canonical_ogg(buf.getvalue(), serial)


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
    Image.fromarray(arr, "L").save(path, format="PNG", optimize=True)


# ----------------------------------------------------------------------------- main
def clean(out: Path) -> None:
    for name in ("images", "audio"):
        if (out / name).exists():
            shutil.rmtree(out / name)
    for name in ("manifest.json", "captions.json", "voices.json", TRAIN_DIGITS):
        (out / name).unlink(missing_ok=True)


def build(out: Path, seed: int) -> dict:
    import PIL
    import sklearn
    import torch
    from sklearn.datasets import load_digits

    torch.set_num_threads(1)
    t0 = time.time()
    digits = load_digits()
    digit_images, targets = digits.images, digits.target
    pools = split_samples(targets, seed)
    voices = voice_settings()
    voices_by_split = {s: [v for v in voices if v["split"] == s] for s in SPLITS}

    out.mkdir(parents=True, exist_ok=True)
    clean(out)
    splits: dict[str, list[dict]] = {s: [] for s in SPLITS}
    clips: dict[tuple[str, int], str] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for si, split in enumerate(SPLITS):
            (out / "images" / split).mkdir(parents=True)
            n_items = ITEMS_PER_LABEL[split]
            split_voices = voices_by_split[split]
            for label in range(NUM_LABELS):
                rng = np.random.default_rng([seed, 2, si, label])
                if n_items == len(split_voices):
                    chosen = list(range(n_items))
                else:
                    chosen = sorted(rng.choice(len(split_voices), n_items, replace=False).tolist())
                digits_of = [int(c) for c in str(label)]
                picks = {d: rng.permutation(pools[split][d]) for d in set(digits_of)}
                used = {d: 0 for d in picks}
                forms = caption_forms(label)
                offset = int(rng.integers(len(forms)))
                for k in range(n_items):
                    sample_ids = []
                    for d in digits_of:
                        sample_ids.append(int(picks[d][used[d] % len(picks[d])]))
                        used[d] += 1
                    img = render_number(label, sample_ids, digit_images, rng)
                    img_rel = f"images/{split}/{label:02d}_{k:02d}.png"
                    save_png(img, out / img_rel)
                    setting = split_voices[chosen[k]]
                    key = (setting["id"], label)
                    if key not in clips:
                        rel = f"audio/{setting['id']}/{label:02d}.ogg"
                        (out / rel).parent.mkdir(parents=True, exist_ok=True)
                        wave = synthesise(setting, number_words(label), tmp)
                        (out / rel).write_bytes(encode_opus(wave, serial=zlib.crc32(rel.encode())))
                        clips[key] = rel
                    splits[split].append({
                        "image": img_rel, "text": forms[(k + offset) % len(forms)], "audio": clips[key],
                        "label": label, "voice": setting["id"], "writer": sample_ids[0], "samples": sample_ids,
                    })
            print(f"{split}: {len(splits[split])} items, {time.time() - t0:.1f}s", flush=True)

    manifest = {
        "format": "nlmm-builtin-spoken-numbers",
        "version": 1,
        "seed": seed,
        "labels": NUM_LABELS,
        "image": {"height": IMAGE_SIZE[0], "width": IMAGE_SIZE[1], "mode": "L", "polarity": "light strokes on dark"},
        "audio": {"sample_rate": SAMPLE_RATE, "channels": 1, "container": "ogg", "codec": "opus"},
        "provenance": {
            "images": "scikit-learn load_digits() (UCI Optical Recognition of Handwritten Digits, CC BY 4.0)",
            "audio": "espeak-ng",
            "tools": {"espeak-ng": espeak_version(), "libsndfile": sf.__libsndfile_version__,
                      "scikit-learn": sklearn.__version__, "pillow": PIL.__version__, "numpy": np.__version__,
                      "torch": torch.__version__.split("+")[0]},
        },
        "handwriting_samples": {s: sorted(int(i) for d in range(10) for i in pools[s][d]) for s in SPLITS},
        "splits": splits,
    }
    # The training split's 8x8 digit samples ship too, so training can compose fresh numbers from them.
    train_ids = manifest["handwriting_samples"]["train"]
    rows = np.concatenate([targets[train_ids, None], digit_images[train_ids].reshape(-1, 64)], axis=1)
    np.save(out / TRAIN_DIGITS, rows.astype(np.uint8))
    write_json(out / "voices.json", voices, per_line=True)
    write_json(out / "captions.json", {str(n): caption_forms(n) for n in range(NUM_LABELS)}, per_line=True)
    write_json(out / "manifest.json", manifest, per_line=True)
    print(f"done: {sum(len(v) for v in splits.values())} items, {len(clips)} clips, {time.time() - t0:.1f}s")
    return manifest


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
                    help="output folder (default: resources/builtin); images/, audio/ and the JSON files are replaced")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = ap.parse_args(argv)
    build(args.out, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
