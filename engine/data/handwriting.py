"""Handwritten numbers composed from single digits: how the built-in images are drawn.

The generator draws the shipped images with `render_number`; training draws fresh ones from the same
training-split digit samples (`resources/builtin/train_digits.npy`), so the model sees far more
handwriting than the 1600 stored images without ever seeing a validation or test sample.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.data.builtin import IMAGE_SIZE  # (height, width)

TRAIN_DIGITS = "train_digits.npy"  # rows of [digit, 64 pixels of an 8x8 sample with values 0..16]


def upscale_glyph(sample: np.ndarray) -> np.ndarray:
    """An 8 x 8 digit sample (values 0..16) -> 32 x 32 in [0, 1]; deterministic, so callers may cache it."""
    glyph = Image.fromarray((sample / 16.0).astype(np.float32), "F").resize((32, 32), Image.BICUBIC)
    return np.clip(np.asarray(glyph), 0.0, 1.0)


def render_number(label: int, sample_ids: list[int], digit_images: np.ndarray, rng: np.random.Generator,
                  glyphs: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """Compose the handwritten digits of ``label`` into a 32 x 64 uint8 image (light on dark).
    `glyphs` caches `upscale_glyph` per sample id (training draws the same samples again and again)."""
    h, w = IMAGE_SIZE
    canvas = np.zeros((h, w), dtype=np.float32)
    n = len(sample_ids)
    gap = rng.uniform(21.0, 26.0)
    for j, sid in enumerate(sample_ids):
        if glyphs is None:
            g = upscale_glyph(digit_images[sid])
        else:
            if sid not in glyphs:
                glyphs[sid] = upscale_glyph(digit_images[sid])
            g = glyphs[sid]
        t = rng.uniform(0.25, 0.55)  # soft threshold: lower -> thicker strokes
        g = np.clip((g - t) / 0.18 + 0.5, 0.0, 1.0).astype(np.float32)
        glyph = Image.fromarray(g, "F")
        s = 0.82 * rng.uniform(0.9, 1.06)  # glyph px -> canvas px
        sx, sy = s * rng.uniform(0.92, 1.08), s
        theta = np.deg2rad(rng.uniform(-10.0, 10.0))
        shear = rng.uniform(-0.15, 0.15)
        cx = w / 2 + (0.0 if n == 1 else (j - 0.5) * gap) + rng.uniform(-2.0, 2.0)
        cy = h / 2 + rng.uniform(-1.5, 1.5)
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        fwd = rot @ np.array([[sx, shear * sy], [0.0, sy]])  # glyph offset -> canvas offset
        inv = np.linalg.inv(fwd)
        off = np.array([16.0, 16.0]) - inv @ np.array([cx, cy])
        data = (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1])
        placed = glyph.transform((w, h), Image.AFFINE, data, resample=Image.BICUBIC, fillcolor=0.0)
        canvas = np.maximum(canvas, np.clip(np.asarray(placed), 0.0, 1.0))
    ink = rng.uniform(225.0, 255.0)
    return np.clip(np.rint(canvas * ink), 0, 255).astype(np.uint8)




class HandwritingSynth:
    """Draws a new image of a number from random training-split digit samples."""

    def __init__(self, path: str | Path):
        rows = np.load(path)
        self.images = rows[:, 1:].reshape(-1, 8, 8).astype(np.float64)
        self.pools = {d: np.flatnonzero(rows[:, 0] == d) for d in range(10)}
        self.glyphs: dict[int, np.ndarray] = {}

    def __call__(self, label: int, rng: np.random.Generator) -> np.ndarray:
        ids = [int(rng.choice(self.pools[int(d)])) for d in str(label)]
        return render_number(label, ids, self.images, rng, self.glyphs)
