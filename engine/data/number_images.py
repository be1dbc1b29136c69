"""Fresh images of a number for training, drawn the ways people make numbers: handwritten (UCI digits),
written in a handwriting font, printed in a font, sketched with a mouse or finger (a drawing as the image
generator draws it, and a pen trajectory as the studio's sketch pad renders it), and any of those except the
pad's photographed on paper.

Only training sources are used (training digit samples, training fonts and handwriting groups, training
stroke families); the val/test images and the robustness benchmark hold out whole fonts, handwriting groups
and stroke families.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.data.handwriting import TRAIN_DIGITS, HandwritingSynth
from engine.data.handwritten_fonts import HandwritingFontSynth, handwriting_fonts
from engine.data.paper import TRAINING, photograph
from engine.data.printed import GLYPHS_FILE, HANDWRITING_FILE, PrintedSynth
from engine.data.sketched import STROKES_FILE, SketchSynth, stroke_families
from engine.data.trajectories import PenSynth

# How often each way is drawn (renormalised over the ways the data folder has), then how often the
# result is photographed on paper (never a drawing on the pad: it is on screen).
MIX = {"handwritten": 0.35, "handwriting font": 0.2, "printed": 0.2, "sketched": 0.1, "sketch pad": 0.15}
PHOTO_PROB = 0.3
ON_SCREEN = ("sketch pad",)


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
        if (root / HANDWRITING_FILE).is_file():
            fonts = handwriting_fonts("train", root)
            ways["handwriting font"] = HandwritingFontSynth(np.stack([a for _, a in fonts.values()]), list(fonts))
        if (root / STROKES_FILE).is_file():
            families = stroke_families("train", root)
            ways["sketched"], ways["sketch pad"] = SketchSynth(families), PenSynth(families)
        return cls(ways) if ways else None

    def __call__(self, label: int, rng: np.random.Generator) -> Image.Image:
        way = self.names[int(rng.choice(len(self.names), p=self.weights))]
        number = self.ways[way](label, rng)
        if way in ON_SCREEN:
            return number
        if rng.random() < self.photo_prob:
            return photograph(number, rng, TRAINING)
        return Image.fromarray(number, "L")
