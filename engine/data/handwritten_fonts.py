"""Numbers written in a handwriting font (`resources/builtin/handwriting.npz`), the way a hand writes them:
each digit with its own size, tilt and height on a baseline that rises or falls, digits that touch or overlap
as in joined-up writing, and pressure that fades along the line. The rest (weight, slant, placement, ink)
is what a printed number gets (`printed.place`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.data.printed import HANDWRITING_FILE, trim_columns, place


def write(label: int, glyphs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digits of `label` from one handwriting font's (10, S, S) glyphs -> light-on-dark uint8 (H, W)."""
    size = glyphs.shape[-1]
    pieces = []
    for d in str(label):
        glyph = Image.fromarray(trim_columns(glyphs[int(d)]).astype(np.float32), "F")
        scale = rng.uniform(0.85, 1.12)
        width = max(1, round(glyph.width * scale * rng.uniform(0.88, 1.12)))
        glyph = glyph.resize((width, max(1, round(glyph.height * scale))), Image.BICUBIC)
        pieces.append(np.asarray(glyph.rotate(rng.uniform(-9.0, 9.0), resample=Image.BICUBIC, expand=True,
                                              fillcolor=0.0)))
    lefts, x = [], 0
    for piece in pieces:     # a gap below zero: the digits touch or overlap, as joined-up writing does
        lefts.append(x)
        x = max(0, x + piece.shape[1] + int(round(size * rng.uniform(-0.12, 0.2))))
    margin = int(0.2 * size)
    height = max(p.shape[0] for p in pieces) + 2 * margin
    strip = np.zeros((height, max(left + p.shape[1] for left, p in zip(lefts, pieces))), np.float32)
    slope = rng.uniform(-0.12, 0.12)   # the baseline rises or falls along the number
    for left, piece in zip(lefts, pieces):
        top = (height - piece.shape[0]) // 2 + int(round(rng.uniform(-0.07, 0.07) * size + slope * left))
        top = min(max(top, 0), height - piece.shape[0])
        region = strip[top: top + piece.shape[0], left: left + piece.shape[1]]
        np.maximum(region, piece, out=region)
    pressure = np.interp(np.arange(strip.shape[1]), [0, strip.shape[1] - 1], rng.uniform(0.55, 1.0, 2))
    return place((np.clip(strip, 0, 255) * pressure[None, :]).astype(np.float32), rng, tilt=8.0, max_slant=0.35)


class HandwritingFontSynth:
    """Writes a number in a random one of the atlas' handwriting fonts."""

    def __init__(self, atlas: np.ndarray, names: list[str]):
        self.atlas, self.names = atlas, names

    def __call__(self, label: int, rng: np.random.Generator) -> np.ndarray:
        return write(label, self.atlas[int(rng.integers(len(self.atlas)))], rng)


def handwriting_fonts(split: str, root: str | Path | None = None) -> dict[str, tuple[str, np.ndarray]]:
    """The `split` ("train" or "heldout") handwriting fonts: font name -> (its group, its (10, S, S) atlas)."""
    from engine.data.builtin import BUILTIN_ROOT
    with np.load(Path(root or BUILTIN_ROOT) / HANDWRITING_FILE) as data:
        return {str(name): (str(group), atlas)
                for name, group, atlas in zip(data[f"{split}_names"], data[f"{split}_groups"], data[split])}
