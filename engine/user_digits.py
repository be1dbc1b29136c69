"""The user's own digits: cut from the numbers they corrected, put together into numbers they did not.

A correction of a written number teaches how this hand writes its digits. Its image (as a query is
prepared: the ink cropped and letterboxed) is cut into digits where the ink is thinnest, between 30 and 70 %
of its width. Each piece keeps the number's whole height, so a digit written small and high (a raised "0")
stays so. The pieces are written side by side again, at one height, with a random gap, into any number
whose digits the user has shown, and prepared as a query is. Replayed with
each correction (`engine.corrections`), they show the user's hand in numbers never corrected
(docs/corrections.md: "Numbers in the user's own digits").

Only numbers of one or two digits are cut, and only where the answer's label is the number itself.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from PIL import Image

from engine.config import ImageConfig
from engine.data.image import prepare_image

INK = 0.25          # a pixel brighter than this (of 1) is ink
MAX_DIGITS = 2
SPLIT_RANGE = (0.3, 0.7)   # where along the ink's width two digits are parted
GAP = 0.05     # at most this share of a median column's ink where they part: else they touch, and are not cut


def is_number(label: str, identity: int) -> bool:
    """A label that is a number of up to MAX_DIGITS digits, shown as itself (an identity of a number gallery)."""
    return label.isdigit() and len(label) <= MAX_DIGITS and str(identity) == label


def cut(image: torch.Tensor, label: str) -> list[tuple[str, np.ndarray]]:
    """A prepared image (C, H, W) of the number `label` -> its digits, each (digit, its piece: float H'xW', the
    number's ink rows by the digit's ink columns); none when the ink does not part into that many pieces."""
    grey = image.float().mean(0).cpu().numpy()
    rows, cols = np.flatnonzero(grey.max(1) > INK), np.flatnonzero(grey.max(0) > INK)
    if len(rows) < 3:
        return []
    grey = grey[rows[0]: rows[-1] + 1]
    left, right = int(cols[0]), int(cols[-1]) + 1
    bounds = [left, right]
    if len(label) == 2:
        width = right - left
        low, high = left + int(SPLIT_RANGE[0] * width), left + int(SPLIT_RANGE[1] * width) + 1
        ink = grey[:, left:right].sum(0)
        split = low + int(np.argmin(grey[:, low:high].sum(0)))
        if grey[:, split].sum() > GAP * float(np.median(ink)):
            return []
        bounds = [left, split, right]
    pieces = []
    for digit, start, stop in zip(label, bounds, bounds[1:]):
        piece = grey[:, start:stop]
        cols = np.flatnonzero(piece.max(0) > INK)
        if not len(cols):
            return []
        pieces.append((digit, piece[:, cols[0]: cols[-1] + 1]))
    return pieces


def composable(numbers, digits: dict[str, list[np.ndarray]]) -> list[int]:
    """Those of `numbers` (identities) of up to MAX_DIGITS digits that can be written in `digits`."""
    return [n for n in numbers if 0 <= n < 10 ** MAX_DIGITS and all(d in digits for d in str(n))]


def write(number: int, digits: dict[str, list[np.ndarray]], rng: random.Random, cfg: ImageConfig) -> torch.Tensor:
    """`number` in a random one of the user's crops of each of its digits -> a prepared image (C, H, W)."""
    height = cfg.height   # every piece at one height: the number's, as cut
    pieces = []
    for d in str(number):
        piece = digits[d][rng.randrange(len(digits[d]))]
        width = max(1, round(piece.shape[1] * height / piece.shape[0]))
        pieces.append(np.asarray(Image.fromarray(piece, "F").resize((width, height), Image.BILINEAR)))
    gaps = [int(round(height * rng.uniform(0.0, 0.2))) for _ in pieces[:-1]] + [0]
    margin = 4
    canvas = np.zeros((height + 2 * margin, sum(p.shape[1] for p in pieces) + sum(gaps) + 2 * margin), np.float32)
    x = margin
    for piece, gap in zip(pieces, gaps):
        region = canvas[margin: margin + height, x: x + piece.shape[1]]
        np.maximum(region, piece, out=region)
        x += piece.shape[1] + gap
    written = Image.fromarray(np.rint(canvas * 255).astype(np.uint8), "L")
    return prepare_image(written, cfg, "a number in the user's digits")
