"""Fresh images of a number for training, drawn the ways people make numbers: handwritten (UCI digits),
printed in a font, sketched with a mouse or finger, and any of those photographed on paper.

Only training sources are used (training digit samples, training fonts, training stroke families); the
val/test images and the robustness benchmark hold out whole fonts and stroke families.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from engine.data.handwriting import TRAIN_DIGITS, HandwritingSynth
from engine.data.paper import TRAINING, photograph
from engine.data.printed import GLYPHS_FILE, PrintedSynth
from engine.data.sketched import STROKES_FILE, SketchSynth

# How often each way is drawn (renormalised over the ways the data folder has), then how often the
# result is photographed on paper.
MIX = {"handwritten": 0.45, "printed": 0.3, "sketched": 0.25}
PHOTO_PROB = 0.3


class NumberImageSynth:
    def __init__(self, ways: dict, photo_prob: float = PHOTO_PROB):
        self.ways = ways
        weights = np.array([MIX[name] for name in ways])
        self.names, self.weights = list(ways), weights / weights.sum()
        self.photo_prob = photo_prob

    @classmethod
    def from_folder(cls, root: str | Path) -> "NumberImageSynth | None":
        """The training synthesisers whose files the built-in data folder holds; None if it holds none."""
        root, ways = Path(root), {}
        if (root / TRAIN_DIGITS).is_file():
            ways["handwritten"] = HandwritingSynth(root / TRAIN_DIGITS)
        if (root / GLYPHS_FILE).is_file():
            with np.load(root / GLYPHS_FILE) as glyphs:
                ways["printed"] = PrintedSynth(glyphs["train_fonts"], [str(n) for n in glyphs["train_font_names"]])
        if (root / STROKES_FILE).is_file():
            ways["sketched"] = SketchSynth(json.loads((root / STROKES_FILE).read_text())["train"])
        return cls(ways) if ways else None

    def __call__(self, label: int, rng: np.random.Generator) -> Image.Image:
        way = self.names[int(rng.choice(len(self.names), p=self.weights))]
        number = self.ways[way](label, rng)
        if rng.random() < self.photo_prob:
            return photograph(number, rng, TRAINING)
        return Image.fromarray(number, "L")
