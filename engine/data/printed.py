"""Numbers printed in a font, composed from one font's digit glyphs (`resources/builtin/glyphs.npz`).

A glyph atlas holds, per font, the ten digits at GLYPH_SIZE x GLYPH_SIZE, light on dark, all scaled by
the font's digit height so a composed number keeps the font's proportions. Composition varies what a
printed or displayed number varies: size, position, slant, a little rotation, letter spacing and weight.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from engine.data.builtin import IMAGE_SIZE  # (height, width)

GLYPH_SIZE = 32
GLYPHS_FILE = "glyphs.npz"   # train_fonts: (fonts, 10, 32, 32) uint8; train_font_names: (fonts,) str
# Handwriting fonts nothing trains on or is measured on but the corrections (scripts/make_font_atlases.py):
# atlas (fonts, 10, 32, 32), names.
STYLES_FILE = "styles.npz"
# Handwriting fonts by group (scripts/make_font_atlases.py): train / heldout atlases (fonts, 10, 32, 32), and
# per font its name (train_names, heldout_names) and its group, one hand (train_groups, heldout_groups).
HANDWRITING_FILE = "handwriting.npz"


def trim_columns(glyph: np.ndarray) -> np.ndarray:
    """A digit's glyph without the empty columns either side of it."""
    cols = np.flatnonzero(glyph.max(axis=0) > 40)
    return glyph[:, cols.min(): cols.max() + 1] if len(cols) else glyph


def compose(label: int, glyphs: np.ndarray, rng: np.random.Generator, tracking: float | None = None,
            slant: float | None = None) -> np.ndarray:
    """The digits of `label` from one font's (10, S, S) glyphs -> a light-on-dark uint8 (H, W) image."""
    pieces = [trim_columns(glyphs[int(d)]) for d in str(label)]
    size = glyphs.shape[-1]
    gap = int(round(size * (rng.uniform(0.04, 0.22) if tracking is None else tracking)))
    strip = np.zeros((size, sum(p.shape[1] for p in pieces) + gap * (len(pieces) - 1)), np.float32)
    x = 0
    for piece in pieces:
        strip[:, x: x + piece.shape[1]] = np.maximum(strip[:, x: x + piece.shape[1]], piece)
        x += piece.shape[1] + gap
    return place(strip, rng, slant)


def place(strip: np.ndarray, rng: np.random.Generator, slant: float | None = None, tilt: float = 6.0,
          max_slant: float = 0.22) -> np.ndarray:
    """A composed number (float strip, light on dark, 0..255) -> the canvas: a random weight (thinner, as
    designed, bolder), then scaled to fit with a margin, slanted, turned by up to `tilt` degrees and inked."""
    h, w = IMAGE_SIZE
    size = strip.shape[0]
    image = Image.fromarray(strip, "F")
    weight = int(rng.integers(-1, 2))  # thinner, as designed, bolder
    heavy = (strip > 128).mean()
    if heavy < 0.15:  # a light font is never thinned, and a hairline one is always made bolder
        weight = 1 if heavy < 0.06 else max(weight, 0)
    if weight:
        image = image.filter(ImageFilter.MaxFilter(3) if weight > 0 else ImageFilter.MinFilter(3))
    # Scale so the number fits the canvas with a margin, then place it with a small rotation and slant.
    fit = min((h - 4) / size, (w - 4) / strip.shape[1])
    s = fit * rng.uniform(0.62, 0.98)
    theta = np.deg2rad(rng.uniform(-tilt, tilt))
    shear = rng.uniform(-max_slant, max_slant) if slant is None else slant
    cx, cy = w / 2 + rng.uniform(-3.0, 3.0), h / 2 + rng.uniform(-1.5, 1.5)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    fwd = rot @ np.array([[s, -shear * s], [0.0, s]])
    inv = np.linalg.inv(fwd)
    off = np.array([strip.shape[1] / 2, size / 2]) - inv @ np.array([cx, cy])
    placed = image.transform((w, h), Image.AFFINE, (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1]),
                             resample=Image.BICUBIC, fillcolor=0.0)
    placed = np.asarray(placed)
    ink = rng.uniform(200.0, 255.0) / max(float(placed.max()), 1.0)  # thin strokes come out grey: full ink
    return np.clip(np.rint(placed * ink), 0, 255).astype(np.uint8)


class PrintedSynth:
    """Draws a number in a random one of the atlas' fonts."""

    def __init__(self, atlas: np.ndarray, names: list[str] | None = None):
        self.atlas, self.names = atlas, names or [f"font {i}" for i in range(len(atlas))]

    def __call__(self, label: int, rng: np.random.Generator) -> np.ndarray:
        return compose(label, self.atlas[int(rng.integers(len(self.atlas)))], rng)


def handwriting_styles(root=None) -> dict[str, np.ndarray]:
    """The never-used handwriting fonts' glyphs by font name: what a user's own handwriting is like to the
    model (`nlmm bench corrections`, `nlmm bench teach`)."""
    from engine.data.builtin import BUILTIN_ROOT
    with np.load((root or BUILTIN_ROOT) / STYLES_FILE) as data:
        return {str(name): atlas for name, atlas in zip(data["names"], data["atlas"])}
